"""Pipeline ingest rate on real recordings (depth events/s, µs/event, split by stage).

    .venv/bin/python bench/ingest.py [FILE …] [--repeat N] [--json]

The same figures as ``python -m market bench FILE``. Without files it uses the recordings in
../shared/fixtures (dev machines only): cryptofeed's Binance and Binance.US (with their REST
snapshots) and hftbacktest's HyperLiquid one. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.bench import bench, describe  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
DEFAULT_SETS = [
    [FIXTURES / "cryptofeed_BINANCE.ws.1.0"],  # + cryptofeed_BINANCE.http.0.0, found by name
    [FIXTURES / "cryptofeed_BINANCE_US.ws.1.0"],
    [FIXTURES / "hftbacktest_hyperliquid_btc_20250126.gz"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="one JSON object a recording")
    args = parser.parse_args()
    sets = [args.files] if args.files else DEFAULT_SETS
    for files in sets:
        missing = [f for f in files if not f.is_file()]
        if missing:
            print(f"skipped: {', '.join(map(str, missing))} not found", file=sys.stderr)
            continue
        result = bench(files, args.repeat)
        print(json.dumps(result) if args.json else describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
