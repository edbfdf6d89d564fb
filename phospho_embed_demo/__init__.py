"""The demo of ``phospho-embed demo``: classify, route and discover customer-support intents,
through the core and both framework adapters, then compare batch embedding with a loop.

A package of its own, beside the core rather than inside it: the demo uses both adapters,
and the core (``phospho_embed``) never imports them. Importing it needs the ``demo`` extra,
``pip install "phospho-embed[demo]"``.
"""

from ._screens import run

__all__ = ["run"]
