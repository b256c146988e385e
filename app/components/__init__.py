"""Render functions of the dashboard; the ``*_html``, ``*_spec`` and ``build_*`` builders never
call st.*."""
