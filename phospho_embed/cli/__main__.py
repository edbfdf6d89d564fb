"""``python -m phospho_embed.cli``: the same as the ``phospho-embed`` command."""

from phospho_embed.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
