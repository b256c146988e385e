"""The Streamlit UI of the market monitor: a thin entry page (``app/main.py``) with three pages
(``app/views``: Market, the default; Overview; Feeds) and components.

Nothing here feeds the market: the pages read ``MarketStore.snapshot()`` of the one cached
worker (``app.runtime.get_worker``) and draw it. Builders of HTML and figures are pure
functions (no ``st.*``) so they can be tested and timed without a browser.
"""
