"""Render functions of the dashboard; the ``*_html`` / ``build_*`` builders never call st.*."""
