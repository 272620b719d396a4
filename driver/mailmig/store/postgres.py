"""The PostgreSQL backend: every operation is one call of a `mail.*` SQL function
(sql/functions/mail/), so any language's application, or psql, does the same.

Connections come from one psycopg_pool per process with the seed's node-postgres
settings (FIELD-NOTES): at most 20, idle ones above the minimum closed after 30 s, a
wait for a free connection failing after 2 s; every one configurable (`app.pool_*`).
Each connection is checked when borrowed (an empty query; a server restart leaves dead
connections in the pool), runs in autocommit (each function call is one transaction),
and prepares its statements on first use. A batch of emails is one statement, one
round trip: `mail.insert_emails(json)`; concurrent save_email calls of one process are
written that way too (group commit, mailmig.store.group_commit; `app.group_commit_*`).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from mailmig import queries
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
    fresh_session_id,
    fresh_token,
    utc_now,
    whole_seconds,
)
from mailmig.store.group_commit import GroupCommit
from mailmig.store.sqlite import ACCOUNT_ATTEMPTS

ADDRESS_INDEX = "accounts_email_ascii_lower_key"
TOKEN_INDEX = "accounts_token_key"




class _PoolWaitTimeout(StoreUnavailable):
    """No connection came within the pool's timeout."""


class PoolSettings:
    """The pool's configuration (`app.pool_*`); the defaults are the seed's."""

    def __init__(self, min_size: int = 1, max_size: int = 20, max_idle: float = 30.0, timeout: float = 2.0,
                 connect_timeout: int = 2, check: bool = True, prepare: bool = True, reconnect_timeout: float = 5.0,
                 group_writers: int = 2, group_max: int = 25):
        if max_size < 1 or min_size < 0 or min_size > max_size:
            raise ValueError(f"pool sizes: need 0 <= min_size ({min_size}) <= max_size ({max_size}), max_size >= 1")
        self.min_size = min_size
        self.max_size = max_size
        self.max_idle = max_idle
        self.timeout = timeout
        self.connect_timeout = max(2, int(connect_timeout))  # libpq's minimum is 2 s
        self.check = check
        self.prepare = prepare
        # psycopg_pool retries a lost server with a doubling delay (1, 2, 4, ... s) for
        # reconnect_timeout (default 5 min): after a long outage it would wait minutes
        # after the server is back. Giving up after a few seconds lets the next request
        # start a fresh attempt at once.
        self.reconnect_timeout = reconnect_timeout
        # Group commit (mailmig.store.group_commit): concurrent save_email calls of one
        # process written together, at most `group_writers` statements at a time of at
        # most `group_max` emails each; 0 writers: each save its own statement.
        if group_writers < 0 or group_max < 1:
            raise ValueError(f"group commit: need group_writers >= 0 ({group_writers}), group_max >= 1 ({group_max})")
        self.group_writers = group_writers
        self.group_max = group_max

    def as_dict(self) -> dict[str, Any]:
        return {"min_size": self.min_size, "max_size": self.max_size, "max_idle_s": self.max_idle,
                "wait_timeout_s": self.timeout, "connect_timeout_s": self.connect_timeout,
                "check_on_borrow": self.check, "prepared_statements": self.prepare,
                "reconnect_timeout_s": self.reconnect_timeout, "group_commit_writers": self.group_writers,
                "group_commit_max": self.group_max}


class PoolUsage:
    """Connections in use: now, peak, and the time-weighted average since the last reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        now = time.monotonic()
        with self._lock:
            self._in_use = getattr(self, "_in_use", 0)
            self._peak = self._in_use
            self._area = 0.0
            self._since = self._last = now
            self._borrows = 0
            self._wait_total = 0.0
            self._wait_max = 0.0
            self._timeouts = 0

    def _advance(self, now: float) -> None:
        self._area += self._in_use * (now - self._last)
        self._last = now

    def borrowed(self, waited: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._advance(now)
            self._in_use += 1
            self._peak = max(self._peak, self._in_use)
            self._borrows += 1
            self._wait_total += waited
            self._wait_max = max(self._wait_max, waited)

    def returned(self) -> None:
        with self._lock:
            self._advance(time.monotonic())
            self._in_use -= 1

    def timed_out(self) -> None:
        with self._lock:
            self._timeouts += 1

    def snapshot(self, max_size: int) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            self._advance(now)
            span = now - self._since
            average = self._area / span if span > 0 else 0.0
            return {
                "max_size": max_size, "in_use": self._in_use, "peak_in_use": self._peak,
                "average_in_use": round(average, 3),
                "peak_usage_pct": round(100.0 * self._peak / max_size, 1),
                "average_usage_pct": round(100.0 * average / max_size, 1),
                "borrows": self._borrows, "wait_timeouts": self._timeouts,
                "wait_avg_ms": round(1000 * self._wait_total / self._borrows, 3) if self._borrows else 0.0,
                "wait_max_ms": round(1000 * self._wait_max, 3), "since_s": round(span, 3),
            }


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc)


def _email(row) -> Email:
    (id_, message_id, from_address, to_address, subject, body, html, headers, raw_email,
     size, starred, is_read, spam_score, created_at) = row
    return Email(id=id_, message_id=message_id, from_address=from_address, to_address=to_address,
                 subject=subject, body=body, html=html, headers=headers if isinstance(headers, dict) else None,
                 raw_email=raw_email, size=size, starred=starred, is_read=is_read, spam_score=spam_score,
                 created_at=_utc(created_at))


def _account(row) -> Account:
    id_, email, token, password_hash, created_at, expires_at, last_login_at, is_active = row
    return Account(id=id_, email=email, token=token, password_hash=password_hash, created_at=_utc(created_at),
                   expires_at=_utc(expires_at), last_login_at=_utc(last_login_at), is_active=is_active)


def _session(row) -> Session:
    id_, account_id, created_at, expires_at, ip, user_agent = row
    return Session(id=id_, account_id=account_id, created_at=_utc(created_at), expires_at=_utc(expires_at),
                   ip=ip, user_agent=user_agent)


def _email_size(item: tuple[NewEmail, int | None]) -> int:
    email = item[0]
    return sum(len(v or "") for v in (email.subject, email.body, email.html, email.raw_email))


def _email_json(email: NewEmail, email_id: int | None) -> dict[str, Any]:
    return {
        "id": email_id, "message_id": email.message_id, "from_address": email.from_address,
        "to_address": email.to_address, "subject": email.subject, "body": email.body, "html": email.html,
        "headers": email.headers, "raw_email": email.raw_email, "size": email.size,
        "created_at": email.created_at.isoformat(), "starred": bool(email.starred),
        "is_read": bool(email.is_read), "spam_score": email.spam_score,
    }


class PostgresBackend:
    """The store in PostgreSQL's `mail` schema, through the mail.* functions."""

    name = "postgres"

    def __init__(self, conninfo: str, settings: PoolSettings | None = None, *, open_wait: float | None = None):
        """Opens the pool without waiting for the server (a down server does not stop a
        dual-mode service from starting); `open_wait` seconds to wait for min_size."""
        self.settings = settings or PoolSettings()
        self.usage = PoolUsage()
        self._conninfo = conninfo
        self._kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": self.settings.connect_timeout,
                                        "application_name": "mailmig-store"}
        if not self.settings.prepare:
            self._kwargs["prepare_threshold"] = None  # pgbouncer < 1.21 in transaction mode
        self._renew_lock = threading.Lock()
        self._next_renew = 0.0
        self.pool_renewals = 0
        self.pool = self._new_pool()
        self._group: GroupCommit | None = None
        if self.settings.group_writers:
            self._group = GroupCommit(self._save_one, self._save_many, writers=self.settings.group_writers,
                                      max_items=self.settings.group_max, size=_email_size, name="mailmig-save")
        if open_wait:
            try:
                self.pool.wait(timeout=open_wait)
            except PoolTimeout as exc:
                self.pool.close()
                raise StoreUnavailable(f"PostgreSQL: no connection within {open_wait} s: {exc}") from exc

    def _new_pool(self) -> ConnectionPool:
        pool = ConnectionPool(
            self._conninfo, min_size=self.settings.min_size, max_size=self.settings.max_size,
            max_idle=self.settings.max_idle, timeout=self.settings.timeout, kwargs=self._kwargs,
            check=ConnectionPool.check_connection if self.settings.check else None,
            reconnect_timeout=self.settings.reconnect_timeout, name="mailmig-store", open=False,
        )
        pool.open(wait=False)
        return pool

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
        self.pool.close()

    def _renew_stuck_pool(self) -> bool:
        """After a wait for a connection timed out: when nobody holds a connection (so the
        pool is not simply exhausted) but the server answers a direct connection, the pool
        is waiting out its reconnection backoff; replace it. True when replaced."""
        with self._renew_lock:
            now = time.monotonic()
            if now < self._next_renew or self.usage.snapshot(self.settings.max_size)["in_use"] > 0:
                return False
            self._next_renew = now + 1.0
            try:
                psycopg.connect(self._conninfo, **self._kwargs).close()
            except psycopg.Error:
                return False
            old, self.pool = self.pool, self._new_pool()
            self.pool_renewals += 1
        threading.Thread(target=old.close, kwargs={"timeout": 5.0}, daemon=True).start()
        return True

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        started = time.monotonic()
        try:
            with self.pool.connection() as conn:
                self.usage.borrowed(time.monotonic() - started)
                try:
                    yield conn
                finally:
                    self.usage.returned()
        except PoolTimeout as exc:
            self.usage.timed_out()
            raise _PoolWaitTimeout(f"PostgreSQL: no connection within {self.settings.timeout} s ({exc})") from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}".strip()) from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {exc.sqlstate or ''} {exc}".strip()) from exc

    def _execute(self, text: str, params: dict[str, Any] | None = None, prepare: bool | None = None) -> list:
        """Run one statement; after a pool wait that timed out because the pool was stuck
        in its backoff, once more on a renewed pool (nothing ran the first time)."""
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    return conn.execute(text, params, prepare=prepare).fetchall()
            except _PoolWaitTimeout:
                if attempt == 2 or not self._renew_stuck_pool():
                    raise
        raise AssertionError("unreachable")

    def _rows(self, name: str, params: dict[str, Any]) -> list:
        return self._execute(queries.load(name), params, prepare=self.settings.prepare)

    def _one(self, name: str, params: dict[str, Any]):
        rows = self._rows(name, params)
        return rows[0][0] if rows else None

    # -- emails -------------------------------------------------------------------
    def save_email(self, email: NewEmail, id: int | None = None) -> int | None:
        """Store one email (with the given id, in dual mode); its id, or None when its
        message_id is already stored."""
        email = email.checked(utc_now())
        if self._group is None:
            return self._save_one((email, id))
        return self._group.submit((email, id))

    def _save_one(self, item: tuple[NewEmail, int | None]) -> int | None:
        email, id = item
        params = _email_json(email, id)
        params["headers"] = None if email.headers is None else Jsonb(email.headers)
        params["created_at"] = email.created_at
        return self._one("store_pg_insert_email", params)

    def _save_many(self, items: list[tuple[NewEmail, int | None]]) -> list[int | None]:
        ids = [id for _, id in items]
        return self._insert_checked([email for email, _ in items], ids if any(i is not None for i in ids) else None)

    def group_commit_stats(self) -> dict[str, int] | None:
        """Saves written alone, groups written and their saves, the largest group, and
        saves written again alone after their group met a data error."""
        return None if self._group is None else dict(self._group.stats)

    def save_emails(self, emails: Iterable[NewEmail], ids: list[int | None] | None = None) -> list[int | None]:
        """Store emails in one statement (all or none); per email its id or None for a
        duplicate message_id. `ids`: the ids to use (dual mode), None to draw new ones."""
        now = utc_now()
        checked = [e.checked(now) for e in emails]
        if not checked:
            return []
        if ids is not None and len(ids) != len(checked):
            raise ValueError(f"{len(ids)} ids for {len(checked)} emails")
        return self._insert_checked(checked, ids)

    def _insert_checked(self, checked: list[NewEmail], ids: list[int | None] | None) -> list[int | None]:
        """save_emails' statement, for emails already checked (a group's were, one by one)."""
        document = json.dumps([_email_json(e, ids[i] if ids else None) for i, e in enumerate(checked)],
                              ensure_ascii=False)
        result: list[int | None] = [None] * len(checked)
        for position, new_id in self._rows("store_pg_insert_emails", {"emails": document}):
            result[position - 1] = new_id
        return result

    def inbox(self, address: str, limit: int = 50) -> list[Email]:
        return [_email(r) for r in self._rows("store_pg_inbox", {"address": address, "limit": int(limit)})]

    def get_email(self, email_id: int) -> Email | None:
        rows = self._rows("store_pg_get_email", {"id": int(email_id)})
        return _email(rows[0]) if rows else None

    def search(self, query: str, address: str | None = None, limit: int = 50) -> list[SearchHit]:
        rows = self._rows("store_pg_search", {"query": query, "address": address, "limit": int(limit)})
        return [SearchHit(id=r[0], message_id=r[1], from_address=r[2], to_address=r[3], subject=r[4],
                          created_at=_utc(r[5]), rank=float(r[6])) for r in rows]

    def mark_read(self, email_id: int, read: bool = True) -> bool:
        return bool(self._one("store_pg_set_read", {"id": int(email_id), "flag": bool(read)}))

    def star(self, email_id: int, starred: bool = True) -> bool:
        return bool(self._one("store_pg_set_starred", {"id": int(email_id), "flag": bool(starred)}))

    def delete_email(self, email_id: int) -> bool:
        return bool(self._one("store_pg_delete_email", {"id": int(email_id)}))

    def expire_emails(self, keep: timedelta = timedelta(days=90), now: datetime | None = None) -> int:
        """Retention as PostgreSQL runs it: `mail.drop_expired_partitions(keep, now)` drops
        the monthly partitions wholly older than `now - keep` (a month partly inside the
        retention stays until it is wholly out). Returns the rows dropped."""
        rows = self._rows("store_pg_drop_expired", {"keep": keep, "now": now or utc_now()})
        return sum(int(r[1] or 0) for r in rows)  # one row: (partitions dropped, their rows)

    # -- accounts and sessions ----------------------------------------------------
    def create_account(self, *, domain: str | None = None, email: str | None = None, token: str | None = None,
                       expires_at: datetime | None = None, created_at: datetime | None = None,
                       password_hash: str | None = None, id: int | None = None) -> Account:
        """As SQLiteBackend.create_account; `id` sets the id (dual mode)."""
        if email is None and not domain:
            raise ValueError("create_account needs an address or a domain")
        created = whole_seconds(created_at) or utc_now()
        expires = whole_seconds(expires_at)
        for _ in range(ACCOUNT_ATTEMPTS):
            address = email if email is not None else fresh_address(domain)
            secret = token if token is not None else fresh_token()
            params = {"email": address, "token": secret, "expires_at": expires, "password_hash": password_hash,
                      "created_at": created, "id": id}
            try:
                new_id = self._one("store_pg_create_account", params)
            except StoreError as exc:
                cause = exc.__cause__
                constraint = getattr(getattr(cause, "diag", None), "constraint_name", None)
                if not isinstance(cause, psycopg.errors.UniqueViolation):
                    raise
                if email is not None and constraint == ADDRESS_INDEX:
                    raise AddressTaken(f"an account with the address {email!r} exists") from None
                if token is not None and constraint == TOKEN_INDEX:
                    raise StoreError("an account holds this token already") from None
                if id is not None and constraint not in (ADDRESS_INDEX, TOKEN_INDEX):
                    raise
                continue
            return Account(id=new_id, email=address, token=secret, password_hash=password_hash,
                           created_at=created, expires_at=expires, last_login_at=None, is_active=True)
        raise StoreError(f"no free address at {domain} after {ACCOUNT_ATTEMPTS} attempts")

    def find_account_by_address(self, email: str) -> Account | None:
        rows = self._rows("store_pg_account_by_address", {"email": email})
        return _account(rows[0]) if rows else None

    def find_account_by_token(self, token: str) -> Account | None:
        if not token:
            return None
        rows = self._rows("store_pg_account_by_token", {"token": token})
        return _account(rows[0]) if rows else None

    def create_session(self, account_id: int, *, expires_at: datetime | None = None, ip: str | None = None,
                       user_agent: str | None = None, session_id: str | None = None,
                       created_at: datetime | None = None) -> Session:
        created = whole_seconds(created_at) or utc_now()
        session = Session(id=session_id or fresh_session_id(), account_id=int(account_id), created_at=created,
                          expires_at=whole_seconds(expires_at), ip=ip, user_agent=user_agent)
        self._rows("store_pg_create_session", {
            "id": session.id, "account_id": session.account_id, "expires_at": session.expires_at,
            "ip": ip, "user_agent": user_agent, "created_at": created})
        return session

    def find_session(self, session_id: str) -> Session | None:
        rows = self._rows("store_pg_session_by_id", {"id": session_id})
        return _session(rows[0]) if rows else None

    # -- status ------------------------------------------------------------------
    def pool_usage(self) -> dict[str, Any]:
        """In use now, peak and average since the last reset, waits; plus psycopg_pool's own figures."""
        usage = self.usage.snapshot(self.settings.max_size)
        stats = self.pool.get_stats()
        usage["pool_size"] = stats.get("pool_size", 0)
        usage["pool_available"] = stats.get("pool_available", 0)
        usage["requests_waiting"] = stats.get("requests_waiting", 0)
        usage["connections_errors"] = stats.get("connections_errors", 0)
        usage["renewals"] = self.pool_renewals
        return usage

    def status(self) -> dict[str, Any]:
        return {"pool": self.pool_usage(), "settings": self.settings.as_dict()}

    def ids_past(self, emails: int = 0, accounts: int = 0) -> list[tuple[str, int, int]]:
        """mail.ids_past: each id sequence past its table's largest id and the floor given
        (SQLite's largest assigned id); per sequence (name, last id before, after)."""
        return [(r[0], int(r[1]), int(r[2]))
                for r in self._rows("store_pg_ids_past", {"emails": int(emails), "accounts": int(accounts)})]

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers."""
        self._execute("SELECT 1")
