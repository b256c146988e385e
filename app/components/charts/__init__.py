"""The charts: pure figure builders (plotly.graph_objects only, never ``st.*``), one module each.

- ``price``: three stacked panes on one time axis: mid with the best bid/ask band, spread in
  bps, the top-N imbalance.
- ``flow``: the mid again, with the session CVD and the book's depth delta under it, on the
  same time axis (the series columns ``cvd`` and ``depth_delta``).
- ``candles``: OHLC with volume bars and the VWAP line, at one timeframe.
- ``depth``: cumulative bid and ask size against price, the mid between.
- ``layout``: what they share (the figure spec, title, axes, theme, "waiting" message).
- ``encode``: the spec in the form the browser gets, encoded once (``encoded``).

Each chart has a ``*_spec`` builder that returns the plain figure dict (``{"data": [...],
"layout": {...}}``, numpy arrays in it) and a ``build_*_figure`` twin that wraps it in a
``go.Figure`` (tests inspect those; ``go.Figure(spec)`` validates every property in full).
The page sends ``encoded(spec)``: the dict with its arrays already in Plotly's base64 typed
form, built once per tick and shared by every tab (see ``app.components.shared``), so no tab
pays for Plotly's object tree, deep copy and encoding pass (~10 ms a figure).

Long series are min-max decimated to ``MAX_DRAWN_POINTS`` (about two points per pixel of the
chart's width); y values go as float32 (~7 digits, plenty to draw). ``layout.uirevision`` is
constant per market and chart so Plotly keeps a user's zoom across updates whenever the
browser-side chart is updated in place rather than rebuilt (Streamlit 1.67 rebuilds it: Pause
keeps zoom).
"""
