"""The store the application uses: one API over the two backends, routed by DB_MODE.

- `sqlite`: SQLite only, as the legacy service.
- `dual`: SQLite is the source of truth and is written first; a write that fails there
  fails (the service answers 451). Then PostgreSQL is written with the ids SQLite
  assigned. A PostgreSQL failure is counted and logged, and the caller still succeeds:
  the write is in SQLite, where change capture recorded it in the same transaction, and
  `mailmig sync` replays it from that changelog (the durable retry queue). After a
  failure PostgreSQL writes are skipped for `pg_down_backoff` seconds (counted as
  failures too, replayed the same way) so that a down server costs one pool wait, not
  one per email. Reads come from PostgreSQL and fall back to SQLite, counted, when it
  fails. A sampled fraction of reads (`shadow_read_rate`) is also answered by SQLite
  and compared; a difference that persists on a second look is a counted, logged
  mismatch.
- `postgres`: PostgreSQL only; a failure fails the call.

The mode can be switched while the store runs (`switch_mode`); each call reads the mode
once, so it runs wholly in one mode.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any, Callable, Iterable

from mailmig.store.model import (
    Account,
    Email,
    NewEmail,
    SearchHit,
    Session,
    StoreError,
    fresh_address,
    fresh_session_id,
    fresh_token,
    utc_now,
    whole_seconds,
)

DB_MODES = ("sqlite", "dual", "postgres")
log = logging.getLogger("mailmig.store")

COUNTER_NAMES = (
    "writes_sqlite", "writes_postgres", "write_failures_sqlite", "write_failures_postgres",
    "dual_postgres_write_failures", "dual_postgres_writes_skipped", "dual_postgres_duplicates",
    "reads_sqlite", "reads_postgres", "read_failures", "read_fallbacks",
    "shadow_reads", "shadow_mismatches", "shadow_errors",
)


class Store:
    """The application's store. Give it the backends its mode needs (a backend may be
    None until a switch needs it: `open_postgres` / `open_sqlite` open one on demand)."""

    def __init__(self, mode: str, sqlite=None, postgres=None, *, shadow_read_rate: float = 0.0,
                 pg_down_backoff: float = 2.0, open_sqlite: Callable | None = None,
                 open_postgres: Callable | None = None, rng: random.Random | None = None):
        if mode not in DB_MODES:
            raise ValueError(f"DB mode {mode!r}: expected one of {', '.join(DB_MODES)}")
        self.sqlite = sqlite
        self.postgres = postgres
        self._open = {"sqlite": open_sqlite, "postgres": open_postgres}
        self.shadow_read_rate = float(shadow_read_rate)
        self.pg_down_backoff = float(pg_down_backoff)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._counters: Counter = Counter({name: 0 for name in COUNTER_NAMES})
        self._pg_skip_until = 0.0
        self._mode = mode
        self._mode_since = utc_now()
        self._ids_ready = False  # postgres mode: the sequences checked before its first write
        self._ids_lock = threading.Lock()
        for name in self.backends_needed(mode):
            self._ensure(name)

    # -- mode -----------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @staticmethod
    def backends_needed(mode: str) -> tuple[str, ...]:
        return {"sqlite": ("sqlite",), "dual": ("sqlite", "postgres"), "postgres": ("postgres",)}[mode]

    def _ensure(self, name: str):
        backend = getattr(self, name)
        if backend is None:
            opener = self._open[name]
            if opener is None:
                raise StoreError(f"no {name} backend configured")
            backend = opener()
            setattr(self, name, backend)
        return backend

    def prepare_mode(self, mode: str) -> None:
        """Open and check (ping) every backend `mode` needs; raises when one cannot serve."""
        if mode not in DB_MODES:
            raise ValueError(f"DB mode {mode!r}: expected one of {', '.join(DB_MODES)}")
        for name in self.backends_needed(mode):
            self._ensure(name).ping()

    def switch_mode(self, mode: str, check: bool = True) -> str:
        """Switch to `mode` (after checking its backends unless check=False); the previous mode."""
        if check:
            self.prepare_mode(mode)
        else:
            for name in self.backends_needed(mode):
                self._ensure(name)
        with self._lock:
            previous, self._mode = self._mode, mode
            self._mode_since = utc_now()
            self._pg_skip_until = 0.0
            if previous != mode:
                self._ids_ready = False
        if previous != mode:
            log.warning("store mode switched: %s -> %s", previous, mode)
        return previous

    def close(self) -> None:
        for backend in (self.sqlite, self.postgres):
            if backend is not None:
                backend.close()

    # -- counting -------------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def status(self) -> dict[str, Any]:
        """The mode, the counters and the pool usage (the service's health and status)."""
        status: dict[str, Any] = {"mode": self._mode, "mode_since": self._mode_since.isoformat(),
                                  "counters": self.counters(), "shadow_read_rate": self.shadow_read_rate}
        if self.postgres is not None:
            status["postgres"] = self.postgres.status()
            status["pool"] = status["postgres"]["pool"]
        if self.sqlite is not None:
            status["sqlite"] = self.sqlite.status()
        return status

    # -- writes ---------------------------------------------------------------------
    def _pg_skipping(self) -> bool:
        return time.monotonic() < self._pg_skip_until

    def _write(self, op: str, on_sqlite: Callable, on_postgres: Callable, describe: Callable[[Any], str]):
        """Run a write in the current mode. on_postgres(result_of_sqlite) in dual mode."""
        mode = self._mode
        if mode == "sqlite":
            return self._primary("sqlite", on_sqlite)
        if mode == "postgres":
            return self._primary("postgres", lambda: on_postgres(None))
        result = self._primary("sqlite", on_sqlite)
        if self._pg_skipping():
            self._count("dual_postgres_writes_skipped")
            self._count("dual_postgres_write_failures")
            log.warning("dual: PostgreSQL marked down, %s of %s not written there; the sync replays it "
                        "from the SQLite changelog", op, describe(result))
            return result
        try:
            on_postgres(result)
            self._count("writes_postgres")
        except Exception as exc:  # any failure: counted, logged, replayed by the sync
            self._count("dual_postgres_write_failures")
            self._count("write_failures_postgres")
            with self._lock:
                self._pg_skip_until = time.monotonic() + self.pg_down_backoff
            log.warning("dual: PostgreSQL write failed, %s of %s stays for the sync to replay from the "
                        "SQLite changelog: %s", op, describe(result), _one_line(exc))
        return result

    def _postgres_ids(self) -> None:
        """Before the first write in postgres mode (after a start or a switch), the id
        sequences past every id either store assigned (mail.ids_past): dual mode stores
        SQLite's ids without nextval, and a restart from dual or sqlite straight into
        postgres mode (no cut-over) would otherwise hand out ids stored emails have.
        SQLite's files count when they can be read; a failure here fails the write, and
        the next write tries again."""
        if self._ids_ready:
            return
        with self._ids_lock:
            if self._ids_ready:
                return
            floors = {"emails": 0, "accounts": 0}
            sqlite, opened = self.sqlite, None
            try:
                if sqlite is None and self._open["sqlite"] is not None:
                    sqlite = opened = self._open["sqlite"]()
                if sqlite is not None:
                    floors = sqlite.largest_ids()
            except StoreError as exc:  # no legacy files any more: PostgreSQL's own ids count
                log.info("postgres mode: SQLite's largest ids not read (%s); PostgreSQL's own count", _one_line(exc))
            finally:
                if opened is not None:
                    opened.close()
            for sequence, was, now in self.postgres.ids_past(**floors):
                if now != was:
                    log.warning("postgres mode: %s moved from %d to %d, past ids already stored (written in "
                                "dual mode, or in SQLite without a cut-over)", sequence, was, now)
            self._ids_ready = True

    def _primary(self, name: str, fn: Callable):
        try:
            if name == "postgres":
                self._postgres_ids()
            result = fn()
        except Exception:
            self._count(f"write_failures_{name}")
            raise
        self._count(f"writes_{name}")
        return result

    def save_email(self, email: NewEmail) -> int | None:
        """Store one email; its id, or None when its message_id is already stored."""
        return self.save_emails([email])[0]

    def save_emails(self, emails: Iterable[NewEmail]) -> list[int | None]:
        """Store emails in one transaction per store (all or none); per email its id, or
        None for a message_id already stored (the legacy duplicate semantics)."""
        now = utc_now()
        batch = [e.checked(now) for e in emails]  # one created_at for both stores

        def on_postgres(sqlite_ids):
            if sqlite_ids is None:
                return self._postgres_save(batch)
            kept = [(e, i) for e, i in zip(batch, sqlite_ids) if i is not None]
            if not kept:
                return []
            stored = self._postgres_save([e for e, _ in kept], ids=[i for _, i in kept])
            duplicates = sum(1 for s in stored if s is None)
            if duplicates:
                # already there: the sync applied it first, or the row exists under another id
                self._count("dual_postgres_duplicates", duplicates)
            return stored

        return self._write("save_emails", lambda: self.sqlite.save_emails(batch), on_postgres,
                           lambda ids: f"email ids {[i for i in ids if i is not None]}")

    def _postgres_save(self, emails: list[NewEmail], ids: list[int] | None = None) -> list[int | None]:
        """A lone email through the backend's save_email, which group commit may write
        together with other threads' (the service saves one message per call); a batch
        in one statement, as asked."""
        if len(emails) == 1:
            return [self.postgres.save_email(emails[0], id=None if ids is None else ids[0])]
        return self.postgres.save_emails(emails, ids=ids)

    def _flag_write(self, op: str, email_id: int, call: Callable[[Any], bool]) -> bool:
        def on_postgres(sqlite_result):
            result = call(self.postgres)
            if sqlite_result is not None and result != sqlite_result:
                raise StoreError(f"{op}({email_id}): PostgreSQL found {'no' if not result else 'a'} row "
                                 f"where SQLite found {'one' if sqlite_result else 'none'}")
            return result

        return self._write(op, lambda: call(self.sqlite), on_postgres, lambda _: f"email id {email_id}")

    def mark_read(self, email_id: int, read: bool = True) -> bool:
        """Set is_read; False when there is no such email."""
        return self._flag_write("mark_read", email_id, lambda b: b.mark_read(email_id, read))

    def star(self, email_id: int, starred: bool = True) -> bool:
        """Set starred; False when there is no such email."""
        return self._flag_write("star", email_id, lambda b: b.star(email_id, starred))

    def delete_email(self, email_id: int) -> bool:
        """Delete one email; False when there is no such email."""
        return self._flag_write("delete_email", email_id, lambda b: b.delete_email(email_id))

    def create_account(self, *, domain: str | None = None, email: str | None = None,
                       expires_at: datetime | None = None, password_hash: str | None = None) -> Account:
        """A new account: `email`, or a fresh address at `domain`, with a fresh token
        (a secret: the returned Account's repr leaves it out)."""
        created = utc_now()
        expires = whole_seconds(expires_at)
        mode = self._mode
        if mode != "dual":
            backend = self.sqlite if mode == "sqlite" else self.postgres
            return self._primary(mode, lambda: backend.create_account(
                domain=domain, email=email, expires_at=expires, created_at=created, password_hash=password_hash))

        def on_sqlite():
            return self.sqlite.create_account(domain=domain, email=email, expires_at=expires,
                                              created_at=created, password_hash=password_hash)

        def on_postgres(account: Account):
            return self.postgres.create_account(email=account.email, token=account.token, expires_at=expires,
                                                created_at=created, password_hash=password_hash, id=account.id)

        return self._write("create_account", on_sqlite, on_postgres, lambda a: f"account id {a.id}")

    def create_session(self, account_id: int, *, expires_at: datetime | None = None, ip: str | None = None,
                       user_agent: str | None = None) -> Session:
        """A new session (its id is a fresh secret) of an existing account."""
        session_id = fresh_session_id()
        created = utc_now()
        expires = whole_seconds(expires_at)

        def call(backend):
            return backend.create_session(account_id, expires_at=expires, ip=ip, user_agent=user_agent,
                                          session_id=session_id, created_at=created)

        return self._write("create_session", lambda: call(self.sqlite), lambda _: call(self.postgres),
                           lambda s: f"a session of account {account_id}")

    # -- reads ----------------------------------------------------------------------
    def _read(self, op: str, call: Callable[[Any], Any], same: Callable[[Any, Any], bool] | None = None):
        mode = self._mode
        if mode == "sqlite":
            self._count("reads_sqlite")
            return call(self.sqlite)
        if mode == "postgres":
            self._count("reads_postgres")
            return call(self.postgres)
        if self._pg_skipping():
            self._count("read_fallbacks")
            self._count("reads_sqlite")
            return call(self.sqlite)
        try:
            answer = call(self.postgres)
            self._count("reads_postgres")
        except Exception as exc:
            self._count("read_failures")
            self._count("read_fallbacks")
            self._count("reads_sqlite")
            with self._lock:
                self._pg_skip_until = time.monotonic() + self.pg_down_backoff
            log.warning("dual: PostgreSQL read %s failed, answered from SQLite: %s", op, _one_line(exc))
            return call(self.sqlite)
        if self.shadow_read_rate > 0 and self._rng.random() < self.shadow_read_rate:
            self._shadow(op, call, answer, same or _equal)
        return answer

    def _shadow(self, op: str, call: Callable, answer, same: Callable[[Any, Any], bool]) -> None:
        """Compare PostgreSQL's answer with SQLite's; look twice before calling it a
        mismatch (a write between the two reads is not one)."""
        self._count("shadow_reads")
        try:
            if same(answer, call(self.sqlite)):
                return
            time.sleep(0.05)
            again = call(self.postgres)
            other = call(self.sqlite)
        except Exception as exc:
            self._count("shadow_errors")
            log.warning("dual: shadow read %s failed: %s", op, _one_line(exc))
            return
        if not same(again, other):
            self._count("shadow_mismatches")
            log.warning("dual: shadow read mismatch on %s: PostgreSQL %s, SQLite %s", op, _summary(again),
                        _summary(other))

    def inbox(self, address: str, limit: int = 50) -> list[Email]:
        """The newest `limit` emails of an inbox, newest first."""
        return self._read(f"inbox({address!r}, {limit})", lambda b: b.inbox(address, limit))

    def get_email(self, email_id: int) -> Email | None:
        return self._read(f"get_email({email_id})", lambda b: b.get_email(email_id))

    def search(self, query: str, address: str | None = None, limit: int = 50) -> list[SearchHit]:
        """Full-text search: words, "phrases", -word, or (PostgreSQL's websearch syntax)."""
        return self._read(f"search({query!r}, {address!r}, {limit})", lambda b: b.search(query, address, limit),
                          same=lambda a, b: _same_hits(a, b, limit))

    def find_account_by_address(self, email: str) -> Account | None:
        return self._read("find_account_by_address", lambda b: b.find_account_by_address(email))

    def find_account_by_token(self, token: str) -> Account | None:
        return self._read("find_account_by_token", lambda b: b.find_account_by_token(token))

    def find_session(self, session_id: str) -> Session | None:
        return self._read("find_session", lambda b: b.find_session(session_id))


def _equal(a, b) -> bool:
    return a == b


def _same_hits(a: list[SearchHit], b: list[SearchHit], limit: int) -> bool:
    """The two engines rank differently: compare the sets of ids, and only when neither
    answer was cut by the limit (otherwise each kept its own best)."""
    if len(a) >= limit or len(b) >= limit:
        return True
    return {h.id for h in a} == {h.id for h in b}


def _summary(value) -> str:
    """Ids only: an answer may hold secrets (tokens, session ids) that must not be logged."""
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return f"{len(value)} rows, ids {[getattr(v, 'id', '?') for v in value][:20]}"
    if isinstance(value, Session):
        return f"a session of account {value.account_id}"
    return f"id {getattr(value, 'id', '?')}"


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


__all__ = ["Store", "DB_MODES", "COUNTER_NAMES", "fresh_address", "fresh_token"]
