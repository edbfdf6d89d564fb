"""The optional dependencies of discovery, imported when first needed.

``import phospho_embed.discovery`` needs numpy only; scikit-learn (with scipy) and
matplotlib are imported by the functions that use them, and a missing one is an
``ImportError`` that names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'phospho-embed[analytics]'"
"""How to get every optional dependency of `phospho_embed.discovery`."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"sklearn.cluster"``), or raise an ImportError saying what
    needs it and how to install it.

    Raises:
        ImportError: the module is not installed; the message names the ``analytics`` extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs {package}, which is not installed: {INSTALL_HINT}"
        ) from error
