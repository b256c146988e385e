#!/usr/bin/env bash
# The dashboard on the simulated feed: no exchange needed, every view labelled SIMULATED.
#   ./run_mock.sh [streamlit options]   e.g. ./run_mock.sh --server.port 8502
set -euo pipefail
cd "$(dirname "$0")"
export MARKET_EXCHANGE=mock
export MARKET_SYMBOLS="${MARKET_SYMBOLS:-BTCUSDT,ETHUSDT,SOLUSDT}"
exec ./run.sh app "$@"
