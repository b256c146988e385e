"""Loopback fakes of the exchanges: one module a venue (``binance``, ``bybit``, ``hyperliquid``),
each a real WebSocket and REST server on 127.0.0.1 over a true order book, scripted to misbehave;
what they share is in ``server`` (the true book, the loop thread and its knobs) and ``rest``
(the REST endpoint, the truth of a venue's klines).

Only impersonations of a venue live here; the helpers that start our own programs or real
servers (PostgreSQL, redis-server, streamlit) or read our output are in ``tests.helpers``.
"""
