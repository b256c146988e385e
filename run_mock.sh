#!/usr/bin/env bash
# The dashboard on the simulated feed: no exchange needed, every view labelled SIMULATED.
#   ./run_mock.sh [streamlit options]   e.g. ./run_mock.sh --server.port 8502
set -euo pipefail
cd "$(dirname "$0")"
export MARKET_EXCHANGE=mock
export MARKET_SYMBOLS="${MARKET_SYMBOLS:-BTCUSDT,ETHUSDT,SOLUSDT}"
# simulated trades reach ~4k-90k notional: a lower threshold shows the whale alerts working
export WHALE_NOTIONAL="${WHALE_NOTIONAL:-25000}"
exec ./run.sh app "$@"
