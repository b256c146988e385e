"""The headless CLI: ``python -m market watch …`` prints the store as JSON lines.

    python -m market watch --exchange E --symbols BTCUSDT --seconds 20 --interval 1 \
        [--depth 20]

One JSON object per symbol every ``--interval`` seconds and a last one on exit. Exit status 0
after ``--seconds``, 2 on bad arguments or settings (one line on stderr naming the problem).
Simulated data says ``"source": "simulated"`` on every line, replayed data ``"replay"``.

    python -m market record --exchange E --symbols BTCUSDT --out FILE.gz [--seconds 60]
    python -m market watch --replay FILE.gz --speed 1|10|max [--symbols …]
    python -m market bench FILE.gz [--json] [--repeat N]

    python -m market history --exchange E --symbol S --since 24h [--until …]
        [--kind candles|series|alerts|statuses] [--format csv|json]

``record`` writes every raw frame as received (``<ns> <frame>`` gzip lines, the hftbacktest
collector's format, REST snapshots inline); ``watch --replay`` plays it through the same
pipeline and ends when the recording does; ``bench`` prints the pipeline's ingest rate.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import orjson

from market.analytics import depth_delta
from market.bench import bench as run_bench
from market.bench import describe as describe_bench
from market.errors import InvalidSymbol, SettingsError
from market.events import FeedStatus
from market.history.db import Database, HistoryError
from market.history.reader import FORMATS as HISTORY_FORMATS
from market.history.reader import KINDS as HISTORY_KINDS
from market.history.reader import export, parse_when, read_rows
from market.history.writer import HistoryWriter, start_history
from market.metrics import imbalance, top_of_book
from market.recording import Recorder
from market.settings import (
    REPLAY,
    Settings,
    check_redis_url,
    exchange_names,
    parse_db_url,
    parse_exchanges,
    parse_speed,
)
from market.store import MarketStore
from market.symbols import parse_symbols
from market.venues import RECORDABLE, VENUES
from market.views import MarketView, StoreSnapshot
from market.worker import Worker

PROG = "python -m market"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")  # one line, no usage dump


def _positive(kind: type[float] | type[int], name: str, upper: float) -> Any:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (0 < value <= upper) or (isinstance(value, float) and math.isnan(value)):
            raise argparse.ArgumentTypeError(f"{name} must be > 0 and <= {upper:g}, got {text!r}")
        return value

    return parse


def _exchanges(text: str) -> tuple[str, ...]:
    try:
        return parse_exchanges("--exchange", text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--exchange=", "", 1)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Live market monitor, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    watch = commands.add_parser("watch", help="print the store as JSON lines")
    watch.add_argument(
        "--exchange",
        type=_exchanges,
        help=f"one of {', '.join(exchange_names())}, or several comma-separated (one line per "
        f"exchange and symbol); default: MARKET_EXCHANGE or {Settings().exchange}",
    )
    watch.add_argument(
        "--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT (default: MARKET_SYMBOLS)"
    )
    watch.add_argument("--seconds", type=_positive(float, "--seconds", 7 * 86_400), default=20.0)
    watch.add_argument("--interval", type=_positive(float, "--interval", 3_600), default=1.0)
    watch.add_argument("--depth", type=_positive(int, "--depth", 1000), default=20)
    watch.add_argument("--verbose", action="store_true", help="log connection events to stderr")
    watch.add_argument(
        "--replay", type=_recording, metavar="FILE",
        help="play a recording (python -m market record) instead of an exchange; ends with it",
    )  # fmt: skip
    watch.add_argument(
        "--speed", type=_speed, help="replay speed: 1 (as recorded, the default), 10, … or max"
    )
    record = commands.add_parser("record", help="write every raw frame as received (gzip)")
    record.add_argument("--exchange", type=_exchanges, help=f"one of {', '.join(RECORDABLE)}")
    record.add_argument("--symbols", help="comma-separated (default: MARKET_SYMBOLS)")
    record.add_argument("--out", required=True, metavar="FILE.gz", help="the recording to write")
    record.add_argument("--seconds", type=_positive(float, "--seconds", 7 * 86_400), default=60.0)
    record.add_argument(
        "--depth", type=_positive(int, "--depth", 1000), default=20,
        help="levels a side of each book in the closing summary (what the live client held)",
    )  # fmt: skip
    record.add_argument("--verbose", action="store_true", help="log connection events to stderr")
    bench = commands.add_parser("bench", help="pipeline ingest rate on a recording")
    bench.add_argument("files", nargs="+", type=_recording, metavar="FILE")
    bench.add_argument("--repeat", type=_positive(int, "--repeat", 10_000), default=20)
    bench.add_argument("--json", action="store_true", help="one JSON object (DESIGN.md)")
    bench.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    history = commands.add_parser("history", help="export stored history (MARKET_DB)")
    history.add_argument("--exchange", required=True, help=", ".join(v.name for v in VENUES))
    history.add_argument("--symbol", help="e.g. BTCUSDT (not needed for --kind statuses)")
    history.add_argument("--since", default="24h", help="24h, 90m, 7d, an ISO time or epoch ms")
    history.add_argument("--until", help="the same forms (default: now)")
    history.add_argument("--kind", choices=tuple(HISTORY_KINDS), default="candles")
    history.add_argument("--format", choices=HISTORY_FORMATS, default="csv")
    history.add_argument("--db", help="a MARKET_DB URL (default: MARKET_DB)")
    history.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    _bus_commands(commands, watch)
    return parser


def _recording(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _speed(text: str) -> str:
    try:
        parse_speed("--speed", text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--speed=", "", 1)) from None
    return text


CANDLES_SHOWN = 5  # the last five one-minute candles
ALERTS_SHOWN = 20


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def market_line(
    view: MarketView,
    status: FeedStatus | None,
    depth: int,
    now: float,
    history: HistoryWriter | None = None,
) -> dict[str, Any]:
    """One JSON-ready line for one market (the public schema of DESIGN.md); with ``history``,
    the candles include the stored ones and ``history`` says how the writer is doing."""
    bids, asks = (view.bids, view.asks) if view.synced else ((), ())
    tob = top_of_book(bids, asks)
    last = view.last_trade
    session, ticker = view.session, view.ticker
    age = status.last_message_age(now) if status else None  # as of the line's time
    return {
        "t": round(now, 3),
        "exchange": view.exchange,
        "symbol": view.symbol,
        "source": view.source,
        "status": {
            "state": status.state if status else "connecting",
            "detail": (status.detail if status else "")
            + ("" if view.synced else f" [{view.symbol}: {view.detail}]"),
            "reconnects": status.reconnects if status else 0,
            "resyncs": status.resyncs if status else 0,
            "messages": status.messages if status else 0,
            "bad_messages": status.bad_messages if status else 0,
            "last_message_age_s": None if age is None else _num(round(age, 3)),
            "msg_rate": status.msg_rate if status else 0.0,
        },
        "best_bid": tob.best_bid,
        "best_ask": tob.best_ask,
        "mid": tob.mid,
        "spread": tob.spread,
        "imbalance": imbalance(bids, asks),
        "bids": [[p, q] for p, q in bids[:depth]],
        "asks": [[p, q] for p, q in asks[:depth]],
        "trades": view.trades_seen,
        "last_trade": None
        if last is None
        else {"price": last.price, "qty": last.qty, "side": last.side, "ts": last.ts_ms},
        # analytics over the session (the trades seen since the feed started)
        "vwap": session.vwap,
        "cvd": session.cvd,
        "depth_delta": depth_delta(bids, asks) if view.synced else None,
        "volatility_spread": session.volatility_spread,
        "candles": [c.as_list() for c in _candles(view, history)[-CANDLES_SHOWN:]],
        "alerts": [
            {"ts": a.ts_ms, "side": a.side, "price": a.price, "qty": a.qty, "notional": a.notional}
            for a in session.alerts[-ALERTS_SHOWN:]
        ],
        "ticker": None
        if ticker is None
        else {
            "last": ticker.last,
            "change_pct": ticker.change_pct,
            "volume": ticker.volume,
            "quote_volume": ticker.quote_volume,
            "high": ticker.high,
            "low": ticker.low,
        },
    }


def _candles(view: MarketView, history: HistoryWriter | None) -> Sequence[Any]:
    session = view.session.candles
    if history is None:
        return session
    return history.joined_candles(view.exchange, view.symbol, view.source, session)


class _HistoryReport:
    """One stderr line when the history database starts failing and when it recovers (the JSON
    lines on stdout keep their schema and keep coming either way)."""

    def __init__(self, history: HistoryWriter | None) -> None:
        self.history = history
        self.failing = False

    def check(self) -> None:
        if self.history is None:
            return
        s = self.history.status()
        if s.state == "failing" and not self.failing:
            print(
                f"{PROG} watch: history failing ({s.pending_rows} rows pending, "
                f"{s.dropped_rows} dropped): {s.detail}",
                file=sys.stderr,
                flush=True,
            )
        elif s.state == "ok" and self.failing:
            print(f"{PROG} watch: history ok again: {s.detail}", file=sys.stderr, flush=True)
        self.failing = s.state == "failing"


def snapshot_lines(
    snap: StoreSnapshot,
    exchanges: str | Sequence[str],
    symbols: Sequence[str],
    depth: int,
    history: HistoryWriter | None = None,
) -> list[bytes]:
    """One line per exchange and symbol watched, in that order."""
    lines = []
    for exchange in (exchanges,) if isinstance(exchanges, str) else exchanges:
        status = snap.statuses.get(exchange)
        for symbol in symbols:
            view = snap.markets.get((exchange, symbol))
            if view is None:
                continue
            line = market_line(view, status, depth, snap.taken_at, history)
            lines.append(orjson.dumps(line))
    return lines


def watch(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(_replay_environ(args))
        exchanges = args.exchange or settings.exchanges
        if args.speed is not None and exchanges != (REPLAY,):
            raise SettingsError("--speed applies to a replay only (--replay FILE)")
        symbols = settings.symbols if args.symbols is None else _symbols_argument(args.symbols)
        worker = Worker(
            Settings(**{**_fields(settings), "exchanges": exchanges, "symbols": symbols}),
            MarketStore(depth=max(args.depth, 20)),
        )
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} watch: error: {exc}", file=sys.stderr)
        return 2
    exchanges, symbols = worker.settings.exchanges, worker.settings.symbols
    over = _replay_over(worker) if exchanges == (REPLAY,) else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = sys.stdout.buffer
    deadline = time.monotonic() + args.seconds
    worker.start()
    settings = worker.settings
    history = start_history(worker.store, settings)
    report = _HistoryReport(history)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or _wait(stop, min(args.interval, remaining), over):
                break
            if deadline - time.monotonic() <= 0:
                break
            _emit(out, worker, exchanges, symbols, args.depth, history)
            report.check()
        _emit(out, worker, exchanges, symbols, args.depth, history)  # the feed as it ends
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # the reader went away (e.g. `… | head -n 2`): stop quietly, without a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail too
    finally:
        worker.stop()
        if history is not None:
            history.stop()  # after the worker: flushes the last trades
    return 0


def _symbols_argument(text: str) -> tuple[str, ...]:
    try:
        return parse_symbols(text)
    except InvalidSymbol as exc:
        raise InvalidSymbol(f"--symbols: {exc}") from exc


def _emit(
    out: Any,
    worker: Worker,
    exchanges: Sequence[str],
    symbols: Sequence[str],
    depth: int,
    history: HistoryWriter | None = None,
) -> None:
    snap = worker.store.snapshot(series=False, max_trades=1)
    for line in snapshot_lines(snap, exchanges, symbols, depth, history):
        out.write(line + b"\n")
    out.flush()


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


def _replay_environ(args: argparse.Namespace) -> dict[str, str] | None:
    """``--replay FILE`` / ``--speed`` as the environment variables they stand for."""
    if args.replay is None and args.speed is None:
        return None
    if args.replay is not None and args.exchange not in (None, (REPLAY,)):
        named = ",".join(args.exchange)
        raise SettingsError(f"--replay cannot be combined with --exchange {named}")
    replaying = args.replay is not None or args.exchange == (REPLAY,)
    overlay = {"MARKET_EXCHANGE": REPLAY} if replaying else {}
    if args.replay is not None:
        overlay["MARKET_REPLAY_FILE"] = args.replay
    if args.speed is not None:
        overlay["MARKET_REPLAY_SPEED"] = args.speed
    return {**os.environ, **overlay}


def _replay_over(worker: Worker) -> Callable[[], bool]:
    def over() -> bool:
        status = worker.store.snapshot(series=False, max_trades=0).statuses.get(REPLAY)
        return status is not None and status.state == "stopped"

    return over


def _wait(stop: threading.Event, seconds: float, over: Callable[[], bool] | None) -> bool:
    """Wait ``seconds``; True when told to stop (or, ``over`` given, when the replay is over)."""
    if over is None:
        return stop.wait(seconds)
    deadline = time.monotonic() + seconds
    while not over():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if stop.wait(min(0.05, remaining)):
            return True
    return True


def record(args: argparse.Namespace) -> int:
    """Record one exchange's raw traffic for ``--seconds`` (or until SIGTERM / Ctrl-C)."""
    try:
        settings = Settings.from_env()
        exchanges = args.exchange or settings.exchanges
        if len(exchanges) != 1 or exchanges[0] not in RECORDABLE:
            raise SettingsError(
                f"--exchange {','.join(exchanges)}: record takes one of {', '.join(RECORDABLE)}"
            )
        symbols = settings.symbols if args.symbols is None else _symbols_argument(args.symbols)
        if not symbols:
            raise InvalidSymbol("--symbols: no symbols given")
        fields = {**_fields(settings), "exchanges": exchanges, "symbols": symbols}
        fields["fallback"] = "none"  # record what the exchange sends, never simulated data
        worker = Worker(Settings(**fields), MarketStore(depth=max(args.depth, 20)))
        recorder = Recorder(args.out)
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} record: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG} record: error: --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    exchange = exchanges[0]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.recorder = recorder
    started = time.monotonic()
    worker.start()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        # the feed's state as the recording ends (after stop() it would say "stopped")
        status = worker.store.snapshot(series=False, max_trades=0).statuses.get(exchange)
        worker.stop()  # joins the thread: nothing writes to the recorder any more
        recorder.close()
    # the books the live client held as the recording ended (a stopped worker keeps them)
    final = worker.store.snapshot(series=False, max_trades=0)
    books = {
        symbol: {"bids": [list(level) for level in view.bids[: args.depth]],
                 "asks": [list(level) for level in view.asks[: args.depth]],
                 "update_id": view.update_id, "synced": view.synced}
        for (name, symbol), view in final.markets.items() if name == exchange
    }  # fmt: skip
    summary = {
        "out": str(args.out), "exchange": exchange, "symbols": list(worker.settings.symbols),
        "frames": recorder.frames, "snapshots": recorder.snapshots,
        "seconds": round(time.monotonic() - started, 3),
        "status": None if status is None else {
            "state": status.state, "detail": status.detail, "reconnects": status.reconnects,
            "messages": status.messages, "bad_messages": status.bad_messages,
            "resyncs": status.resyncs,
        },
        "books": books,
    }  # fmt: skip
    print(orjson.dumps(summary).decode(), flush=True)
    if recorder.frames == 0:
        reason = status.detail if status is not None and status.detail else "no data arrived"
        print(f"{PROG} record: nothing recorded: {reason}", file=sys.stderr)
        return 1
    return 0


def bench(args: argparse.Namespace) -> int:
    """Print the pipeline's ingest rate on a recording (figures, never a pass/fail)."""
    try:
        result = run_bench(args.files, args.repeat)
    except SettingsError as exc:
        print(f"{PROG} bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        print(describe_bench(result))
    return 0


def history(args: argparse.Namespace) -> int:
    """Export stored rows of one market (statuses: of one exchange) to stdout."""
    err = f"{PROG} history: error:"
    if args.format == "parquet":
        print(f"{err} parquet needs pyarrow, not installed (use csv or json)", file=sys.stderr)
        return 2
    now_ms = int(time.time() * 1000)
    try:
        url = parse_db_url(args.db, "--db") if args.db else parse_db_url(Settings.from_env().db)
        since = parse_when(args.since, now_ms)
        until = now_ms + 1 if args.until is None else parse_when(args.until, now_ms)
        symbol = None if args.symbol is None else _symbols_argument(args.symbol)[0]
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{err} --since/--until: {exc}", file=sys.stderr)
        return 2
    if symbol is None and HISTORY_KINDS[args.kind][3]:
        print(f"{err} --symbol is required for --kind {args.kind}", file=sys.stderr)
        return 2
    if not url.enabled:
        print(f"{err} history is off (MARKET_DB=none)", file=sys.stderr)
        return 2
    try:
        db = Database(url)
        try:
            columns, rows = read_rows(db, args.kind, args.exchange, symbol, since, until)
        finally:
            db.close()
    except HistoryError as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(export(columns, rows, args.format))
    sys.stdout.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "watch":
        return watch_bus(args) if args.bus is not None else watch(args)
    if args.command == "collect":
        return collect(args)
    if args.command == "status":
        return status(args)
    if args.command == "record":
        return record(args)
    if args.command == "bench":
        return bench(args)
    if args.command == "history":
        return history(args)
    return 2  # pragma: no cover - argparse requires a command


# -- the bus (market/bus): collect, watch --bus, status ---------------------------------------


def _bus_commands(commands: Any, watch: argparse.ArgumentParser) -> None:
    watch.add_argument(
        "--bus", metavar="URL",
        help="read a collector's bus (redis://HOST:PORT/DB) instead of connecting to exchanges",
    )  # fmt: skip
    collect = commands.add_parser("collect", help="run the feeds and publish them to the bus")
    collect.add_argument("--exchange", type=_exchanges, help="as for watch")
    collect.add_argument("--symbols", help="comma-separated (default: MARKET_SYMBOLS)")
    collect.add_argument("--bus", required=True, metavar="URL", help="redis://HOST:PORT/DB")
    collect.add_argument(
        "--seconds", type=_positive(float, "--seconds", 366 * 86_400),
        help="stop after this long (default: until SIGTERM or Ctrl-C)",
    )  # fmt: skip
    collect.add_argument("--verbose", action="store_true", help="log connection events")
    status = commands.add_parser("status", help="the bus's collectors and readers as JSON")
    status.add_argument("--bus", metavar="URL", help="redis://HOST:PORT/DB (default: MARKET_BUS)")
    status.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)


def collect(args: argparse.Namespace) -> int:
    """Run the feeds (the same ``Worker``) and publish the store to the bus until stopped."""
    from market.bus.ops import WantsServer
    from market.bus.publisher import BusPublisher

    try:
        settings = Settings.from_env()
        url = check_redis_url("--bus", args.bus)
        exchanges = args.exchange or settings.exchanges
        symbols = settings.symbols if args.symbols is None else _symbols_argument(args.symbols)
        if exchanges == (REPLAY,) and settings.replay_file is None:
            raise SettingsError("collect --exchange replay needs MARKET_REPLAY_FILE")
        worker = Worker(
            Settings(**{**_fields(settings), "exchanges": exchanges, "symbols": symbols}),
            MarketStore(),
        )
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} collect: error: {exc}", file=sys.stderr)
        return 2
    publisher = BusPublisher(worker.store, url, on_wants=WantsServer(worker))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    history = start_history(worker.store, worker.settings)  # MARKET_DB: the collector keeps it
    publisher.start()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        publisher.stop()  # hands its markets over at once (ownership keys deleted)
        worker.stop()
        if history is not None:
            history.stop()  # after the worker: the last trades are flushed too
    link = publisher.link
    summary = {
        "collector": publisher.id, "bus": link.detail, "state": link.state,
        "exchanges": list(worker.settings.exchanges), "symbols": list(worker.settings.symbols),
        "published": publisher.published, "bus_reconnects": link.reconnects,
        "refused": [{"exchange": x, "symbol": s, "owner": o}
                    for (x, s), o in sorted(publisher.refused.items())],
    }  # fmt: skip
    print(orjson.dumps(summary).decode(), flush=True)
    return 0


def watch_bus(args: argparse.Namespace) -> int:
    """``watch --bus URL``: the same JSON lines, from a collector's bus (no exchange)."""
    from market.bus.reader import BusReader

    try:
        if args.replay is not None or args.speed is not None:
            raise SettingsError("--bus cannot be combined with --replay or --speed")
        settings = Settings.from_env()
        url = check_redis_url("--bus", args.bus)
        symbols = settings.symbols if args.symbols is None else _symbols_argument(args.symbols)
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} watch: error: {exc}", file=sys.stderr)
        return 2
    store = MarketStore(depth=max(args.depth, 20))
    reader = BusReader(url, store, symbols, stale_after=settings.stale_after, role="watch")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = sys.stdout.buffer

    def emit() -> None:
        snap = store.snapshot(series=False, max_trades=1)
        exchanges = args.exchange or reader.exchanges() or sorted({x for x, _ in snap.markets})
        for line in snapshot_lines(snap, exchanges, symbols, args.depth):
            out.write(line + b"\n")
        out.flush()

    deadline = time.monotonic() + args.seconds
    reader.start()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stop.wait(min(args.interval, remaining)):
                break
            if deadline - time.monotonic() <= 0:
                break
            emit()
        emit()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        reader.stop()
    return 0


def status(args: argparse.Namespace) -> int:
    """The bus's operations view as one JSON object (exit 1 when Redis is unreachable)."""
    from market.bus.ops import bus_status
    from market.bus.reader import down_after

    try:
        settings = Settings.from_env()
        url = args.bus or settings.bus
        if url is None:
            raise SettingsError(
                "no bus: pass --bus redis://HOST:PORT/DB or set MARKET_BUS (a single-process "
                "dashboard shows this on its Feeds page)"
            )
        url = check_redis_url("--bus" if args.bus else "MARKET_BUS", url)
    except SettingsError as exc:
        print(f"{PROG} status: error: {exc}", file=sys.stderr)
        return 2
    result = bus_status(url, time.time(), down_after(settings.stale_after))
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if result["state"] == "connected" else 1


if __name__ == "__main__":
    sys.exit(main())
