"""``python -m phospho_embed.emulator``: serve the emulator until Ctrl-C."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
