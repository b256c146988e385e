"""One collector, many dashboards: the market store carried over Redis.

    collector process                                    reader processes (dashboards, watch)
    Worker ─▶ MarketStore ─▶ BusPublisher ─▶ Redis ─▶ BusReader ─▶ MarketStore ─▶ same pages

Transport: Redis pub/sub plus a latest-value hash per market, not Streams. A reader needs the
current state of a market, never its history: each book message is a whole top-20 image, so a
missed one costs nothing, and pub/sub delivers it with the least latency and no per-reader
backlog in Redis's memory (Streams would keep ``MAXLEN`` entries per market for readers that
only ever look at the newest). What a late joiner needs at once (the book, the ticker, the last
100 trades, the session's candles and alerts) is the market's hash ``mkt:v:<exchange>:<symbol>``,
written with the publications (the book on every one, the tape and candles once a second); a
reader subscribes first, then reads the hashes, and drops anything not newer than what it has.

Messages (``schema``): msgpack maps ``{"v": 2, "kind": "book", …}`` through msgspec, small
envelopes carrying the store's own structs (trades, candles, alerts, tickers, session figures,
feed statuses); a reader refuses a version it does not know with a status and counts garbage.
Ownership of a market is a ``SET NX PX`` key refreshed with the collector's heartbeat: a second
collector is refused (and says by whom), and readers drop an older owner's messages by epoch.
"""
