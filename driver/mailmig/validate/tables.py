"""The migrated tables as validate compares them: columns with their kinds, the key
first, the canonical query of the PostgreSQL side, and how keys fall into buckets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    database: str  # "emails" or "auth": which SQLite file
    columns: tuple  # ((name, kind), ...), the key first
    query: str  # the canonical query file
    int_key: bool

    @property
    def column_names(self):
        return [name for name, _ in self.columns]


TABLES = (
    TableSpec(
        "emails", "emails",
        (("id", "int"), ("message_id", "text"), ("from_address", "text"), ("to_address", "text"),
         ("subject", "text"), ("body", "text"), ("html", "text"), ("headers", "json"),
         ("raw_email", "text"), ("size", "int"), ("starred", "flag"), ("is_read", "flag"),
         ("spam_score", "float"), ("created_at", "timestamp_required")),
        "validate_emails_canonical", True,
    ),
    TableSpec(
        "accounts", "auth",
        (("id", "int"), ("email", "text"), ("password_hash", "text"), ("token", "text"),
         ("created_at", "timestamp"), ("expires_at", "timestamp"), ("last_login_at", "timestamp"),
         ("is_active", "flag")),
        "validate_accounts_canonical", True,
    ),
    TableSpec(
        "sessions", "auth",
        (("id", "text"), ("account_id", "int"), ("created_at", "timestamp"), ("expires_at", "timestamp"),
         ("ip", "text"), ("user_agent", "text")),
        "validate_sessions_canonical", False,
    ),
)
BUCKET_SHIFT = 10  # 1024 ids per bucket


def bucket_of(spec: TableSpec, key: bytes | None) -> int:
    if spec.int_key:
        return int(key) >> BUCKET_SHIFT
    return int(hashlib.md5(key or b"").hexdigest()[:3], 16)

