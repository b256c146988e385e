"""Plain helpers shared by several test modules: no fixtures and no tests (the fixtures built
on them are in ``tests/conftest.py``), so no test module imports another.

They start or read *our own* side, or real servers we run on loopback: ``cli`` (the CLI as a
subprocess and its JSON lines), ``recordings`` (synthetic recordings with their truth),
``timing`` (the workers' fast delays), ``net`` (ports), ``pg_server`` and ``redis_server``
(a real PostgreSQL and redis-server), ``browser`` (the app served by streamlit, chromium's
settings), ``apptest`` (the real page through AppTest), ``cards_html`` and ``figures`` (read the
page's cards and charts back). Impersonations of an exchange are apart, in ``tests.fakes``:
those stand for the outside world, these for our own programs and their infrastructure.
"""
