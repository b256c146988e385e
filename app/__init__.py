"""The Streamlit UI of the market monitor: a thin entry page (``app/main.py``) and components.

Nothing here feeds the market: the page reads ``MarketStore.snapshot()`` of the one cached
worker (``app.runtime.get_worker``) and draws it. Builders of HTML and figures are pure
functions (no ``st.*``) so they can be tested and timed without a browser.
"""
