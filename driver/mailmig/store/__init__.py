"""The application's store: the mail service's operations over SQLite, PostgreSQL or both.

Usable as a library::

    from mailmig.store import NewEmail, open_store
    store = open_store(cfg)               # mode from app.db_mode / DB_MODE
    store.save_email(NewEmail(message_id="<1@x>", from_address="a@x", to_address="me@tempmail.test",
                              subject="hi", body="hello"))
    store.inbox("me@tempmail.test", limit=50)
    store.close()

`Store` routes every call by mode (`sqlite`, `dual`, `postgres`: see router.py);
`SQLiteBackend` and `PostgresBackend` have the same operations and can be used alone
(the benchmarks do). docs/contracts.md lists the API and README the failure semantics.
"""

from __future__ import annotations

from mailmig.store.model import (
    Account,
    AddressTaken,
    Email,
    NewEmail,
    SearchHit,
    Session,
    StoreError,
    StoreUnavailable,
    fresh_address,
    fresh_token,
    utc_now,
)
from mailmig.store.postgres import PoolSettings, PostgresBackend
from mailmig.store.router import COUNTER_NAMES, DB_MODES, Store
from mailmig.store.sqlite import SQLiteBackend, create_legacy_files


def pool_settings(cfg) -> PoolSettings:
    """The pool's settings from the configuration's `app` section."""
    app = cfg.raw["app"]
    return PoolSettings(min_size=app["pool_min_size"], max_size=app["pool_max_size"],
                        max_idle=app["pool_max_idle"], timeout=app["pool_timeout"],
                        connect_timeout=app["pool_connect_timeout"], check=app["pool_check"],
                        prepare=app["prepared_statements"], reconnect_timeout=app["pool_reconnect_timeout"],
                        group_writers=app["group_commit_writers"], group_max=app["group_commit_max"])


def open_sqlite(cfg) -> SQLiteBackend:
    sources = cfg.sources
    return SQLiteBackend(sources.emails_db, sources.auth_db, busy_timeout_ms=cfg.raw["app"]["sqlite_busy_timeout_ms"])


def open_postgres(cfg) -> PostgresBackend:
    return PostgresBackend(cfg.conninfo(), pool_settings(cfg))


def open_store(cfg, mode: str | None = None) -> Store:
    """A Store on the configured files and database, in `mode` (default app.db_mode).
    Backends the mode does not need are opened when a switch needs them."""
    app = cfg.raw["app"]
    return Store(mode or cfg.db_mode, shadow_read_rate=app["shadow_read_rate"], pg_down_backoff=app["pg_down_backoff"],
                 open_sqlite=lambda: open_sqlite(cfg), open_postgres=lambda: open_postgres(cfg))


__all__ = [
    "Account", "AddressTaken", "COUNTER_NAMES", "DB_MODES", "Email", "NewEmail", "PoolSettings",
    "PostgresBackend", "SQLiteBackend", "SearchHit", "Session", "Store", "StoreError", "StoreUnavailable",
    "create_legacy_files", "fresh_address", "fresh_token", "open_postgres", "open_sqlite", "open_store",
    "pool_settings", "utc_now",
]
