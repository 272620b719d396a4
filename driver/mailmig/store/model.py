"""What the store's operations take and return, the same for every backend.

Values are what the legacy service stores, in Python types: text as str, flags as bool,
timestamps as UTC-aware datetimes at whole seconds (the legacy files hold UTC
'YYYY-MM-DD HH:MM:SS', so both stores keep whole seconds and compare exactly), headers
as a JSON object (dict). Secrets (account tokens and password hashes, session ids) are
left out of every repr, so logging an object never prints one.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any


class StoreError(RuntimeError):
    """An operation failed; nothing of it was committed."""


class StoreUnavailable(StoreError):
    """The store could not be reached or could not commit in time (locked, down, pool
    exhausted): the same call may succeed later. The service answers SMTP 451."""


class AddressTaken(StoreError):
    """An account with this address (ASCII case folded, as SQLite's NOCASE) exists."""


def utc_now() -> datetime:
    """Now, UTC, at whole seconds: the resolution of the legacy files."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def whole_seconds(value: datetime | None) -> datetime | None:
    """A timestamp as the stores keep it: UTC, microseconds dropped. Naive means UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(microsecond=0)


ADDRESS_ALPHABET = string.ascii_lowercase + string.digits


def fresh_address(domain: str, length: int = 12) -> str:
    """A new inbox address: random lower-case letters and digits at `domain`."""
    return "".join(secrets.choice(ADDRESS_ALPHABET) for _ in range(length)) + "@" + domain


def fresh_token() -> str:
    """A new API token (a secret: never logged or printed)."""
    return secrets.token_hex(32)


def fresh_session_id() -> str:
    """A new opaque session id (a secret)."""
    return secrets.token_urlsafe(32)


def ascii_lower(text: str) -> str:
    """A-Z to a-z and nothing else: SQLite's NOCASE and mail.ascii_lower."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True)
class NewEmail:
    """An email to store. created_at None means now."""

    message_id: str
    from_address: str
    to_address: str
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    headers: dict[str, Any] | None = None
    raw_email: str | None = None
    size: int | None = None
    created_at: datetime | None = None
    starred: bool = False
    is_read: bool = False
    spam_score: float = 0.0

    def checked(self, now: datetime) -> "NewEmail":
        """This email with created_at set (whole seconds, UTC); ValueError naming the
        field for a value no store can hold the same way (PostgreSQL text has no NUL)."""
        for name in ("message_id", "from_address", "to_address"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"email {self.message_id!r}: {name} must be text, not {type(value).__name__}")
        if not self.message_id:
            raise ValueError("email: message_id must not be empty")
        for name in ("message_id", "from_address", "to_address", "subject", "body", "html", "raw_email"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"email {self.message_id!r}: {name} must be text or None")
            if value and ("\x00" in value or _has_surrogate(value)):
                raise ValueError(f"email {self.message_id!r}: {name} holds a NUL or an unpaired surrogate")
        if self.headers is not None and not isinstance(self.headers, dict):
            raise ValueError(f"email {self.message_id!r}: headers must be a JSON object (dict) or None")
        created = whole_seconds(self.created_at) if self.created_at is not None else now
        return _replace(self, created_at=created)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)


@dataclass(frozen=True)
class Email:
    """A stored email."""

    id: int
    message_id: str
    from_address: str
    to_address: str
    subject: str | None
    body: str | None
    html: str | None
    headers: dict[str, Any] | None
    raw_email: str | None
    size: int | None
    starred: bool | None
    is_read: bool | None
    spam_score: float | None
    created_at: datetime | None

    def as_json(self, full: bool = True) -> dict[str, Any]:
        """The email as the JSON API shows it (without headers and raw_email unless full)."""
        data = {
            "id": self.id,
            "message_id": self.message_id,
            "from": self.from_address,
            "to": self.to_address,
            "subject": self.subject,
            "body": self.body,
            "html": self.html,
            "size": self.size,
            "starred": self.starred,
            "is_read": self.is_read,
            "spam_score": self.spam_score,
            "created_at": iso(self.created_at),
        }
        if full:
            data["headers"] = self.headers
            data["raw_email"] = self.raw_email
        return data


@dataclass(frozen=True)
class SearchHit:
    """One full-text search result. `rank` is the backend's own relevance (higher is
    better; FTS5's bm25 and PostgreSQL's ts_rank are not comparable numbers)."""

    id: int
    message_id: str
    from_address: str
    to_address: str
    subject: str | None
    created_at: datetime | None
    rank: float = field(compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "message_id": self.message_id, "from": self.from_address,
                "to": self.to_address, "subject": self.subject, "created_at": iso(self.created_at),
                "rank": self.rank}


@dataclass(frozen=True)
class Account:
    """An account (an inbox address). token and password_hash are secrets: not in repr."""

    id: int
    email: str
    token: str | None = field(repr=False)
    password_hash: str | None = field(repr=False)
    created_at: datetime | None
    expires_at: datetime | None
    last_login_at: datetime | None
    is_active: bool | None

    def usable(self, now: datetime | None = None) -> bool:
        """Active and not expired."""
        now = now or utc_now()
        return bool(self.is_active) and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class Session:
    """A login session. id is a secret: not in repr."""

    id: str = field(repr=False)
    account_id: int
    created_at: datetime | None
    expires_at: datetime | None
    ip: str | None
    user_agent: str | None


def iso(value: datetime | None) -> str | None:
    """UTC ISO-8601 with Z, as the API prints timestamps."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def expires_after(ttl_seconds: float | None, now: datetime) -> datetime | None:
    return None if not ttl_seconds else now + timedelta(seconds=ttl_seconds)
