"""The pages of ``st.navigation`` (see ``app/main.py``): each a script run after the sidebar."""
