"""Pipeline ingest rate on real Binance recordings (depth events/s, µs/event, split by stage).

    .venv/bin/python bench/ingest.py [FILE …] [--repeat N]

Without files it uses the cryptofeed recordings in ../shared/fixtures (dev machines only).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.bench import bench  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
DEFAULT_SETS = [
    [FIXTURES / "cryptofeed_BINANCE.ws.1.0", FIXTURES / "cryptofeed_BINANCE.http.0.0"],
    [FIXTURES / "cryptofeed_BINANCE_US.ws.1.0", FIXTURES / "cryptofeed_BINANCE_US.http.0.0"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    sets = [args.files] if args.files else DEFAULT_SETS
    for files in sets:
        missing = [f for f in files if not f.is_file()]
        if missing:
            print(f"skipped: {', '.join(map(str, missing))} not found", file=sys.stderr)
            continue
        print(json.dumps(bench(files, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
