"""History that survives restarts: candles, the one-second series, whale alerts and feed
status changes in SQLite (default, ``MARKET_DB=sqlite:///data/market.db``) or PostgreSQL.

    db.py       the DB-API seam (SQLite in WAL mode, psycopg 3), MARKET_DB, the schema
    writer.py   HistoryWriter: the thread that copies what is new in the store, batched
    candles.py  the writer's candle math (minute candles, stored and backfilled ones, joins)
    reader.py   queries and exports (``python -m market history``)
    backfill.py the venues' recent candles (each venue module builds the request and parses
                the answer), fetched on start and when a symbol is added ("charts that open full")

Every row carries its ``source``: live, simulated, replay, or venue (backfilled).
"""
