"""Django's PostgreSQL backend, whose pooled connections are checked for free before use (see base.py)."""
