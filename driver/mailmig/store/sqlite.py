"""The SQLite backend: the legacy files, written exactly as the running service writes them.

- Connections: journal_mode WAL, busy_timeout 5000 ms (the app's settings), borrowed
  for one operation at a time and kept open for the next (as many per file as
  operations ever ran at once), foreign keys enforced on auth.db so that a session of
  a missing account fails as in PostgreSQL.
- Writes run in `BEGIN IMMEDIATE` transactions: the write lock is taken up front, so a
  busy file waits busy_timeout instead of failing a read-to-write upgrade.
- A duplicate message_id is not stored and not an error (the legacy
  `ON CONFLICT (message_id) DO NOTHING`): its id comes back as None.
- The FTS5 index `emails_fts` (external content, content_rowid=id) is kept in step in
  the same transaction: the new row's subject and body on insert, the old values
  (read in SQL, byte-exact) before a delete. The store never rewrites subject or body.
- Timestamps are written as UTC 'YYYY-MM-DD HH:MM:SS', flags as 0/1, headers as JSON
  text; reading accepts every legacy form (ISO-8601, epoch seconds or milliseconds,
  flag words) and undecodable bytes (each becomes U+FFFD, as the load repairs them).
- Change capture (`mailmig capture install`, the live sync) needs nothing from here: its
  triggers record each write in the same transaction.
"""

from __future__ import annotations

import codecs
import json
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from mailmig import queries
from mailmig.sqlite_source import largest_assigned_id
from mailmig.store.fts_query import to_fts5
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

BUSY_TIMEOUT_MS = 5000
FLAG_FALSE = {"0", "f", "false", "n", "no", "off"}
FLAG_TRUE = {"1", "t", "true", "y", "yes", "on"}
ACCOUNT_ATTEMPTS = 5  # fresh addresses tried before giving up (a collision is ~1 in 10^18)


def _each_byte(error: UnicodeDecodeError):
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("mailmig_store_each_byte", _each_byte)


def _text(value: bytes) -> str:
    """SQLite text as str; invalid UTF-8 bytes and NUL each become U+FFFD (the load's
    text_bytes_replaced rule), so a legacy row reads the same from both stores."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("utf-8", "mailmig_store_each_byte")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def legacy_timestamp(value: Any) -> datetime | None:
    """A legacy timestamp value as a UTC datetime; None when unreadable."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = _text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value if abs(value) < 1e11 else value / 1000
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return legacy_timestamp(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    return None


def legacy_flag(value: Any) -> bool | None:
    """0/1 and the flag words as bool; another integer is true; anything else None."""
    if value is None:
        return None
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in FLAG_FALSE:
            return False
        if word in FLAG_TRUE:
            return True
    return None


def legacy_number(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if kind is int and isinstance(value, float) and value != number:
        return None
    return number


def legacy_headers(value: Any) -> dict | None:
    """The headers JSON text as a dict; None when it is not a JSON object (the load
    repairs invalid JSON to NULL)."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def sqlite_time(value: datetime | None) -> str | None:
    """The legacy form: UTC 'YYYY-MM-DD HH:MM:SS'."""
    if value is None:
        return None
    return whole_seconds(value).strftime("%Y-%m-%d %H:%M:%S")


def _headers_text(headers: dict | None) -> str | None:
    return None if headers is None else json.dumps(headers, ensure_ascii=False)


def _email(row) -> Email:
    (id_, message_id, from_address, to_address, subject, body, html, headers, raw_email,
     size, starred, is_read, spam_score, created_at) = row
    return Email(
        id=id_, message_id=message_id, from_address=from_address, to_address=to_address,
        subject=subject, body=body, html=html, headers=legacy_headers(headers), raw_email=raw_email,
        size=legacy_number(size, int), starred=legacy_flag(starred), is_read=legacy_flag(is_read),
        spam_score=legacy_number(spam_score, float), created_at=legacy_timestamp(created_at),
    )


def _account(row) -> Account:
    id_, email, token, password_hash, created_at, expires_at, last_login_at, is_active = row
    return Account(
        id=id_, email=email, token=token, password_hash=password_hash,
        created_at=legacy_timestamp(created_at), expires_at=legacy_timestamp(expires_at),
        last_login_at=legacy_timestamp(last_login_at), is_active=legacy_flag(is_active),
    )


def _session(row) -> Session:
    id_, account_id, created_at, expires_at, ip, user_agent = row
    return Session(id=id_, account_id=account_id, created_at=legacy_timestamp(created_at),
                   expires_at=legacy_timestamp(expires_at), ip=ip, user_agent=user_agent)


def _email_params(email: NewEmail) -> dict[str, Any]:
    return {
        "message_id": email.message_id, "from_address": email.from_address,
        "to_address": email.to_address, "subject": email.subject, "body": email.body,
        "html": email.html, "headers": _headers_text(email.headers), "raw_email": email.raw_email,
        "size": email.size, "starred": int(bool(email.starred)), "is_read": int(bool(email.is_read)),
        "spam_score": email.spam_score, "created_at": sqlite_time(email.created_at),
    }


class SQLiteBackend:
    """The store on the legacy files emails.db and auth.db (they must exist)."""

    name = "sqlite"

    def __init__(self, emails_db: str | Path, auth_db: str | Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.emails_db = Path(emails_db)
        self.auth_db = Path(auth_db)
        self.busy_timeout_ms = busy_timeout_ms
        for path in (self.emails_db, self.auth_db):
            if not path.is_file():
                raise StoreError(f"{path}: no such SQLite file (generate one with `mailmig demo-data`)")
        self._idle: dict[str, list[sqlite3.Connection]] = {"emails": [], "auth": []}
        self._open_count = 0
        self._lock = threading.Lock()
        self._closed = False
        with self._borrow("emails") as conn:
            self.has_fts = bool(conn.execute(queries.load("store_sqlite_has_fts")).fetchone()[0])

    # -- connections --------------------------------------------------------------
    # A connection is borrowed for one operation and given back: as many stay open as
    # operations ever ran at once (sqlite3 connections must not be used by two threads
    # at a time, and per-thread connections would leak with short-lived threads).
    def _connect(self, which: str) -> sqlite3.Connection:
        path = self._path(which)
        try:
            conn = sqlite3.connect(path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.text_factory = _text
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                conn.close()
                raise StoreError(f"{path}: journal_mode is {mode}, not wal")
            if which == "auth":
                conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{path}: cannot open: {exc}") from exc
        with self._lock:
            self._open_count += 1
        return conn

    @contextmanager
    def _borrow(self, which: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the SQLite store is closed")
            idle = self._idle[which]
            conn = idle.pop() if idle else None
        if conn is None:
            conn = self._connect(which)
        try:
            yield conn
        finally:
            with self._lock:
                if not self._closed and not conn.in_transaction:
                    self._idle[which].append(conn)
                    conn = None
            if conn is not None:
                self._discard(conn)

    def _discard(self, conn: sqlite3.Connection) -> None:
        try:
            conn.close()
        except sqlite3.Error:
            pass
        with self._lock:
            self._open_count -= 1

    def close(self) -> None:
        """Close the connections (operations still running close theirs when done)."""
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle = {"emails": [], "auth": []}
        for conn in idle:
            self._discard(conn)

    def _write(self, which: str, work):
        """Run work(conn) in one BEGIN IMMEDIATE transaction."""
        try:
            with self._borrow(which) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"{self._path(which)}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path(which)}: {exc}") from exc

    def _read(self, which: str, name: str, params: dict) -> list:
        try:
            with self._borrow(which) as conn:
                return conn.execute(queries.load(name), params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"{self._path(which)}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path(which)}: {exc}") from exc

    def _path(self, which: str) -> Path:
        return self.emails_db if which == "emails" else self.auth_db

    # -- emails -------------------------------------------------------------------
    def save_email(self, email: NewEmail) -> int | None:
        """Store one email; its id, or None when its message_id is already stored."""
        return self.save_emails([email])[0]

    def save_emails(self, emails: Iterable[NewEmail], ids: list[int | None] | None = None) -> list[int | None]:
        """Store emails in one transaction (all or none); per email its id or None for a
        duplicate message_id. SQLite assigns the ids: `ids` must be None here."""
        if ids is not None:
            raise StoreError("the SQLite store assigns email ids itself")
        now = utc_now()
        checked = [e.checked(now) for e in emails]
        insert = queries.load("store_sqlite_insert_email")
        index = queries.load("store_sqlite_fts_insert")

        def work(conn):
            result = []
            for email in checked:
                params = _email_params(email)
                row = conn.execute(insert, params).fetchone()
                new_id = row[0] if row else None
                if new_id is not None and self.has_fts:
                    conn.execute(index, {"id": new_id, "subject": email.subject, "body": email.body})
                result.append(new_id)
            return result

        try:
            return self._write("emails", work)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.emails_db}: {exc}") from exc

    def inbox(self, address: str, limit: int = 50) -> list[Email]:
        """The newest `limit` emails of an inbox, newest first."""
        return [_email(r) for r in self._read("emails", "store_sqlite_inbox", {"address": address, "limit": int(limit)})]

    def get_email(self, email_id: int) -> Email | None:
        rows = self._read("emails", "store_sqlite_get_email", {"id": int(email_id)})
        return _email(rows[0]) if rows else None

    def search(self, query: str, address: str | None = None, limit: int = 50) -> list[SearchHit]:
        """Full-text search (websearch syntax, see fts_query), best match first."""
        if not self.has_fts:
            raise StoreError(f"{self.emails_db}: no emails_fts table: full-text search is not possible")
        expression = to_fts5(query)
        if expression is None:
            return []
        rows = self._read("emails", "store_sqlite_search",
                          {"query": expression, "address": address, "limit": int(limit)})
        return [SearchHit(id=r[0], message_id=r[1], from_address=r[2], to_address=r[3], subject=r[4],
                          created_at=legacy_timestamp(r[5]), rank=float(r[6])) for r in rows]

    def _set_flag(self, name: str, email_id: int, value: bool) -> bool:
        statement = queries.load(name)
        return self._write("emails", lambda conn: conn.execute(
            statement, {"id": int(email_id), "flag": int(bool(value))}).rowcount) > 0

    def mark_read(self, email_id: int, read: bool = True) -> bool:
        """Set is_read; False when there is no such email."""
        return self._set_flag("store_sqlite_set_read", email_id, read)

    def star(self, email_id: int, starred: bool = True) -> bool:
        """Set starred; False when there is no such email."""
        return self._set_flag("store_sqlite_set_starred", email_id, starred)

    def delete_email(self, email_id: int) -> bool:
        """Delete one email (and its FTS5 entry); False when there is no such email."""
        unindex = queries.load("store_sqlite_fts_delete")
        delete = queries.load("store_sqlite_delete_email")

        def work(conn):
            if self.has_fts:
                conn.execute(unindex, {"id": int(email_id)})
            return conn.execute(delete, {"id": int(email_id)}).rowcount

        return self._write("emails", work) > 0

    def expire_emails(self, keep: timedelta = timedelta(days=90), now: datetime | None = None) -> int:
        """Retention as the legacy service runs it: one transaction deleting every email
        created before `now - keep` (and its FTS5 entry). Holds the file's write lock for
        the whole DELETE. Returns the rows deleted."""
        cutoff = sqlite_time((now or utc_now()) - keep)
        unindex = queries.load("store_sqlite_fts_delete_before")
        delete = queries.load("store_sqlite_delete_before")

        def work(conn):
            if self.has_fts:
                conn.execute(unindex, {"cutoff": cutoff})
            return conn.execute(delete, {"cutoff": cutoff}).rowcount

        return self._write("emails", work)

    # -- accounts and sessions ----------------------------------------------------
    def create_account(self, *, domain: str | None = None, email: str | None = None, token: str | None = None,
                       expires_at: datetime | None = None, created_at: datetime | None = None,
                       password_hash: str | None = None, id: int | None = None) -> Account:
        """A new account: `email` as given, or a fresh address at `domain`; a fresh token
        unless one is given. AddressTaken when a given address exists."""
        if id is not None:
            raise StoreError("the SQLite store assigns account ids itself")
        if email is None and not domain:
            raise ValueError("create_account needs an address or a domain")
        created = whole_seconds(created_at) or utc_now()
        expires = whole_seconds(expires_at)
        statement = queries.load("store_sqlite_insert_account")
        for _ in range(ACCOUNT_ATTEMPTS):
            address = email if email is not None else fresh_address(domain)
            secret = token if token is not None else fresh_token()
            params = {"email": address, "password_hash": password_hash, "token": secret,
                      "created_at": sqlite_time(created), "expires_at": sqlite_time(expires)}
            try:
                new_id = self._write("auth", lambda conn: conn.execute(statement, params).fetchone()[0])
            except sqlite3.IntegrityError as exc:
                if email is not None and "accounts.email" in str(exc):
                    raise AddressTaken(f"an account with the address {email!r} exists") from None
                if token is not None and "accounts.token" in str(exc):
                    raise StoreError("an account holds this token already") from None
                continue  # a fresh address or token collided: draw again
            return Account(id=new_id, email=address, token=secret, password_hash=password_hash,
                           created_at=created, expires_at=expires, last_login_at=None, is_active=True)
        raise StoreError(f"no free address at {domain} after {ACCOUNT_ATTEMPTS} attempts")

    def find_account_by_address(self, email: str) -> Account | None:
        rows = self._read("auth", "store_sqlite_account_by_address", {"email": email})
        return _account(rows[0]) if rows else None

    def find_account_by_token(self, token: str) -> Account | None:
        if not token:
            return None
        rows = self._read("auth", "store_sqlite_account_by_token", {"token": token})
        return _account(rows[0]) if rows else None

    def create_session(self, account_id: int, *, expires_at: datetime | None = None, ip: str | None = None,
                       user_agent: str | None = None, session_id: str | None = None,
                       created_at: datetime | None = None) -> Session:
        """A new session of an existing account (StoreError when there is none)."""
        created = whole_seconds(created_at) or utc_now()
        session = Session(id=session_id or fresh_session_id(), account_id=int(account_id), created_at=created,
                          expires_at=whole_seconds(expires_at), ip=ip, user_agent=user_agent)
        statement = queries.load("store_sqlite_insert_session")
        params = {"id": session.id, "account_id": session.account_id, "created_at": sqlite_time(created),
                  "expires_at": sqlite_time(session.expires_at), "ip": ip, "user_agent": user_agent}
        try:
            self._write("auth", lambda conn: conn.execute(statement, params))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.auth_db}: session not created: {exc}") from None
        return session

    def find_session(self, session_id: str) -> Session | None:
        rows = self._read("auth", "store_sqlite_session_by_id", {"id": session_id})
        return _session(rows[0]) if rows else None

    def largest_ids(self) -> dict[str, int]:
        """The largest id each file ever assigned: {"emails": n, "accounts": n}."""
        out = {}
        for which, table in (("emails", "emails"), ("auth", "accounts")):
            try:
                with self._borrow(which) as conn:
                    out[table] = largest_assigned_id(conn, table) or 0
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self._path(which)}: {exc}") from exc
        return out

    # -- status ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"emails_db": str(self.emails_db), "auth_db": str(self.auth_db), "fts": self.has_fts,
                "busy_timeout_ms": self.busy_timeout_ms, "connections": self._open_count}

    def ping(self) -> None:
        """Raise StoreUnavailable unless both files answer a query."""
        for which in ("emails", "auth"):
            try:
                with self._borrow(which) as conn:
                    conn.execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self._path(which)}: {exc}") from exc


def create_legacy_files(emails_db: str | Path, auth_db: str | Path) -> None:
    """Empty legacy files with exactly the legacy DDL (config/legacy), in WAL mode."""
    from mailmig.demo_data import AUTH_DDL, EMAILS_DDL

    for path, ddl in ((Path(emails_db), EMAILS_DDL), (Path(auth_db), AUTH_DDL)):
        if path.exists():
            raise StoreError(f"{path}: exists already")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.executescript(ddl)
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
