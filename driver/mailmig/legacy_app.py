"""A stand-in for the legacy application's writes to emails.db and auth.db.

The tests and `make bench-sync` need a real writer process that does what the running
service does to the SQLite files while capture, load and sync run: receive mail
(INSERT, FTS5 kept in step as the app does), mark mail read or starred (UPDATE), the
retention job (DELETE of the oldest), create inboxes (accounts), log in (UPDATE of
last_login_at, a new session), expire accounts (DELETE, sessions too). Each operation
is its own transaction on connections set up as the app sets them (WAL,
busy_timeout=5000, foreign_keys off). Optional traps: INSERT OR REPLACE that silently
replaces a row conflicting on message_id, a created_at moved to another month.

    python -m mailmig.legacy_app --emails-db E --auth-db A --emails-per-s 28 \
        --updates-per-s 10 --seconds 30 [--stats-file out.json]

It runs until --seconds have passed or it gets SIGTERM/SIGINT, then prints (and writes)
the counts of what it did.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mailmig.demo_data import EMAIL_COLUMNS, EmailMaker, _ts, build_corpus

BUSY_TIMEOUT_MS = 5000  # the app's setting (config/legacy/emails.sql)
INSERT_EMAIL = (f"INSERT INTO emails ({', '.join(c for c in EMAIL_COLUMNS if c != 'id')}) "
                f"VALUES ({', '.join('?' * (len(EMAIL_COLUMNS) - 1))}) ON CONFLICT (message_id) DO NOTHING")
REPLACE_EMAIL = (f"INSERT OR REPLACE INTO emails ({', '.join(c for c in EMAIL_COLUMNS if c != 'id')}) "
                 f"VALUES ({', '.join('?' * (len(EMAIL_COLUMNS) - 1))})")


def connect_app(path: Path) -> sqlite3.Connection:
    """A connection set up as the app's: autocommit statements, WAL, busy_timeout."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


@dataclass
class Counts:
    email_inserts: int = 0
    email_replaces: int = 0
    email_flag_updates: int = 0
    email_month_moves: int = 0
    email_deletes: int = 0
    account_inserts: int = 0
    account_logins: int = 0
    account_deletes: int = 0
    session_inserts: int = 0
    busy_retries: int = 0


class LegacyApp:
    """The app's write operations; each call is one transaction."""

    def __init__(self, emails_db: Path, auth_db: Path | None, seed: int | None = None):
        seed = seed if seed is not None else random.SystemRandom().getrandbits(48)
        self.rng = random.Random(seed)
        self.emails = connect_app(emails_db)
        self.auth = connect_app(auth_db) if auth_db else None
        self.maker = EmailMaker(build_corpus(seed, chars=200_000), self.rng,
                                self._addresses(), set())
        self.counts = Counts()
        # the keys to pick from for updates and deletes (kept current as this writer goes)
        self.email_ids = [r[0] for r in self.emails.execute("SELECT id FROM emails")]
        self.account_ids = ([r[0] for r in self.auth.execute("SELECT id FROM accounts")]
                            if self.auth is not None else [])

    def _pick(self, ids: list[int]) -> int | None:
        return ids[self.rng.randrange(len(ids))] if ids else None

    def _addresses(self) -> list[str]:
        if self.auth is None:
            return ["someone@tempmail.test"]
        rows = self.auth.execute("SELECT email FROM accounts ORDER BY id DESC LIMIT 500").fetchall()
        return [r[0] if isinstance(r[0], str) else "x@tempmail.test" for r in rows] or ["someone@tempmail.test"]

    def _retry(self, fn):
        """SQLITE_BUSY past the busy timeout: the app retries the operation."""
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                self.counts.busy_retries += 1
                time.sleep(0.05)

    def _in_transaction(self, conn: sqlite3.Connection, work):
        """work(conn) in one BEGIN IMMEDIATE transaction (ROLLBACK on any error), retried
        as the app retries SQLITE_BUSY."""
        def op():
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return self._retry(op)

    def _email_values(self, epoch: float | None = None):
        row = self.maker.row(self.rng.getrandbits(40), int(epoch or time.time()))
        row["created_at"] = _ts(int(epoch or time.time()))
        return row

    def insert_email(self, epoch: float | None = None) -> int | None:
        """Receive one email: the row and its FTS5 entry in one transaction."""
        row = self._email_values(epoch)
        values = [row[c] for c in EMAIL_COLUMNS if c != "id"]

        def work(conn):
            cur = conn.execute(INSERT_EMAIL, values)
            new_id = cur.lastrowid if cur.rowcount else None
            if new_id:
                conn.execute("INSERT INTO emails_fts (rowid, subject, body) VALUES (?, ?, ?)",
                             (new_id, row["subject"], row["body"]))
            return new_id

        new_id = self._in_transaction(self.emails, work)
        self.counts.email_inserts += 1
        if new_id:
            self.email_ids.append(new_id)
        return new_id

    def replace_email(self) -> None:
        """INSERT OR REPLACE with the message_id of an existing row: SQLite deletes that row
        without firing a DELETE trigger (recursive_triggers is off) and inserts a new id."""
        victim = self.emails.execute("SELECT message_id FROM emails WHERE id = ?",
                                     (self._pick(self.email_ids),)).fetchone()
        if not victim:
            return
        row = self._email_values()
        row["message_id"] = victim[0]
        values = [row[c] for c in EMAIL_COLUMNS if c != "id"]
        cur = self._retry(lambda: self.emails.execute(REPLACE_EMAIL, values))
        self.email_ids.append(cur.lastrowid)
        self.counts.email_replaces += 1

    def flag_update(self) -> None:
        column = self.rng.choice(["is_read", "starred"])
        target = self._pick(self.email_ids)
        self._retry(lambda: self.emails.execute(
            f"UPDATE emails SET {column} = CASE WHEN {column} = 1 THEN 0 ELSE 1 END WHERE id = ?", (target,)))
        self.counts.email_flag_updates += 1

    def move_month(self) -> None:
        """created_at changed (an old app bug fixed in place): the row moves month."""
        target = self._pick(self.email_ids)
        self._retry(lambda: self.emails.execute(
            "UPDATE emails SET created_at = datetime(created_at, '-40 days') WHERE id = ? "
            "AND typeof(created_at) = 'text' AND created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] *'",
            (target,)))
        self.counts.email_month_moves += 1

    def retention(self, rows: int = 1) -> None:
        """The retention job: delete the oldest emails (and their FTS5 entries)."""
        def work(conn):
            ids = [r[0] for r in conn.execute("SELECT id FROM emails ORDER BY id LIMIT ?", (rows,))]
            marks = ",".join("?" * len(ids))
            if ids:
                conn.execute("INSERT INTO emails_fts (emails_fts, rowid, subject, body) "
                             f"SELECT 'delete', id, subject, body FROM emails WHERE id IN ({marks})", ids)
                conn.execute(f"DELETE FROM emails WHERE id IN ({marks})", ids)
            return ids

        deleted = self._in_transaction(self.emails, work)
        self.counts.email_deletes += len(deleted)
        if deleted:
            gone = set(deleted)
            self.email_ids = [i for i in self.email_ids if i not in gone]

    def new_account(self) -> None:
        if self.auth is None:
            return
        email = f"app{self.rng.getrandbits(40):x}@tempmail.test"
        now = time.time()
        cur = self._retry(lambda: self.auth.execute(
            "INSERT INTO accounts (email, password_hash, token, created_at, expires_at, is_active) "
            "VALUES (?, NULL, ?, ?, ?, 1)", (email, self.rng.randbytes(16).hex(), _ts(int(now)),
                                             _ts(int(now) + 30 * 86400))))
        self.account_ids.append(cur.lastrowid)
        self.counts.account_inserts += 1

    def login(self) -> None:
        """A login: last_login_at updated and a new session, in one transaction."""
        if self.auth is None:
            return

        def work(conn):
            row = conn.execute("SELECT id FROM accounts WHERE id = ?", (self._pick(self.account_ids),)).fetchone()
            if row:
                now = int(time.time())
                conn.execute("UPDATE accounts SET last_login_at = ? WHERE id = ?", (_ts(now), row[0]))
                conn.execute("INSERT INTO sessions (id, account_id, created_at, expires_at, ip, user_agent) "
                             "VALUES (?, ?, ?, ?, '192.0.2.7', 'legacy-app-standin')",
                             (self.rng.randbytes(16).hex(), row[0], _ts(now), _ts(now + 14 * 86400)))
            return row is not None

        if self._in_transaction(self.auth, work):
            self.counts.account_logins += 1
            self.counts.session_inserts += 1

    def expire_account(self) -> None:
        """Account expiry: the account and its sessions (the app deletes both)."""
        if self.auth is None:
            return

        def work(conn):
            row = conn.execute("SELECT id FROM accounts WHERE id = ?", (self._pick(self.account_ids),)).fetchone()
            if row:
                conn.execute("DELETE FROM sessions WHERE account_id = ?", row)
                conn.execute("DELETE FROM accounts WHERE id = ?", row)
            return row[0] if row else None

        gone = self._in_transaction(self.auth, work)
        if gone:
            self.account_ids.remove(gone)
            self.counts.account_deletes += 1

    def close(self) -> None:
        self.emails.close()
        if self.auth is not None:
            self.auth.close()


class _Stop(Exception):
    pass


def run(app: LegacyApp, rates: dict[str, float], seconds: float | None, progress=None) -> Counts:
    """Do each operation at its rate per second (Poisson arrivals) until stopped."""
    operations = {
        "emails": app.insert_email, "updates": app.flag_update, "deletes": app.retention,
        "replaces": app.replace_email, "moves": app.move_month, "accounts": app.new_account,
        "logins": app.login, "expiries": app.expire_account,
    }
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    due = {name: started + app.rng.expovariate(rate) for name, rate in rates.items() if rate > 0}
    if progress:
        progress(f"legacy-app: writing ({', '.join(f'{n} {r}/s' for n, r in rates.items() if r > 0)})")
    while not stop["now"] and due:
        name = min(due, key=due.get)
        wait = due[name] - time.monotonic()
        if seconds is not None and due[name] - started > seconds:
            break
        if wait > 0:
            time.sleep(min(wait, 0.2))
            continue
        operations[name]()
        due[name] += app.rng.expovariate(rates[name])
    return app.counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mailmig.legacy_app", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emails-db", required=True)
    p.add_argument("--auth-db")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until SIGTERM)")
    p.add_argument("--seed", type=int, help="random seed (default: a fresh one, so that two runs never repeat "
                                          "each other's message ids and session ids)")
    for name, default, what in [
        ("emails", 28.0, "emails received"), ("updates", 0.0, "flag updates"),
        ("deletes", 0.0, "retention deletes (one row each)"), ("replaces", 0.0, "INSERT OR REPLACE on an existing message_id"),
        ("moves", 0.0, "created_at moved 40 days back"), ("accounts", 0.0, "accounts created"),
        ("logins", 0.0, "logins (account update + new session)"), ("expiries", 0.0, "accounts expired with their sessions"),
    ]:
        p.add_argument(f"--{name}-per-s", type=float, default=default, help=f"{what} per second (default {default})")
    p.add_argument("--stats-file", help="write the counts here as JSON when done")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(48)
    app = LegacyApp(Path(args.emails_db), Path(args.auth_db) if args.auth_db else None, seed)
    rates = {name: getattr(args, f"{name}_per_s") for name in
             ("emails", "updates", "deletes", "replaces", "moves", "accounts", "logins", "expiries")}
    try:
        counts = run(app, rates, args.seconds, progress=lambda m: print(m, flush=True))
    finally:
        app.close()
    out = json.dumps(asdict(counts))
    if args.stats_file:
        Path(args.stats_file).write_text(out + "\n")
    print(out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
