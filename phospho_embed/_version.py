"""The distribution's version, read by the build backend and exposed as ``__version__``."""

__version__ = "0.1.0"
