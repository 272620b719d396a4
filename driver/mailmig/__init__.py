"""mailmig: move the mail store from SQLite to PostgreSQL, prove it, and run it."""

__version__ = "0.1.0"
