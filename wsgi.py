"""`gunicorn wsgi:app`: the app, from the one factory, configured from SOXARA_* variables."""

from api.app import create_app

app = create_app()
