"""``python -m market …``: the headless CLI, ``market.cli`` (its docstring lists the commands)."""

from __future__ import annotations

import sys

from market.cli import main

if __name__ == "__main__":
    sys.exit(main())
