"""The store: the same behaviour from SQLite (the legacy files), PostgreSQL (the mail.*
functions) and dual mode, checked by the same tests run against each; then what each
backend must do on its own (legacy forms and FTS5 in SQLite, one round trip and the
pool in PostgreSQL, counting and falling back in dual mode)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig.store import (
    AddressTaken,
    NewEmail,
    PoolSettings,
    PostgresBackend,
    SQLiteBackend,
    Store,
    StoreError,
    StoreUnavailable,
    create_legacy_files,
)
from mailmig.store.fts_query import to_fts5

INBOX = "me@tempmail.test"
OTHER = "you@tempmail.test"
T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc)


def email(n: int, to: str = INBOX, **kw) -> NewEmail:
    values = dict(message_id=f"<m{n}@example.org>", from_address=f"sender{n}@example.org", to_address=to,
                  subject=f"subject {n}", body=f"body number {n}", html=None,
                  headers={"Subject": f"subject {n}", "X-N": str(n)}, raw_email=f"Subject: subject {n}\r\n\r\nbody",
                  size=40 + n, created_at=T0 + timedelta(minutes=n))
    values.update(kw)
    return NewEmail(**values)


@pytest.fixture(scope="module")
def store_database(pg, template_db):
    """One database for this module's tests (a clone per test costs ~0.5 s each)."""
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname="mailmig_test_store",
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    yield pg.conninfo("mailmig_test_store")
    janitor.drop()


@pytest.fixture
def dsn(store_database):
    """The module's database, emptied: every test starts from no rows and fresh sequences."""
    with psycopg.connect(store_database, autocommit=True) as conn:
        conn.execute("TRUNCATE mail.emails, mail.accounts, mail.sessions RESTART IDENTITY CASCADE")
        conn.execute("DROP ROLE IF EXISTS app_login")
        conn.execute("DROP ROLE IF EXISTS reader_login")
    return store_database


@pytest.fixture
def legacy_files(tmp_path):
    emails_db, auth_db = tmp_path / "emails.db", tmp_path / "auth.db"
    create_legacy_files(emails_db, auth_db)
    return emails_db, auth_db


def small_pool() -> PoolSettings:
    return PoolSettings(min_size=0, max_size=4, timeout=2)


@pytest.fixture(params=["sqlite", "postgres", "dual"])
def store(request, tmp_path):
    mode = request.param
    sqlite_backend = postgres_backend = None
    if mode in ("sqlite", "dual"):
        emails_db, auth_db = tmp_path / "emails.db", tmp_path / "auth.db"
        create_legacy_files(emails_db, auth_db)
        sqlite_backend = SQLiteBackend(emails_db, auth_db)
    if mode in ("postgres", "dual"):
        postgres_backend = PostgresBackend(request.getfixturevalue("dsn"), small_pool())
    s = Store(mode, sqlite_backend, postgres_backend, shadow_read_rate=1.0 if mode == "dual" else 0.0)
    yield s
    if mode == "dual":
        counters = s.counters()
        assert counters["dual_postgres_write_failures"] == 0
        assert counters["shadow_mismatches"] == 0 and counters["shadow_errors"] == 0
        assert counters["read_fallbacks"] == 0
    s.close()


# -- the same behaviour from every mode -------------------------------------------------

def test_an_email_round_trips_whole(store):
    sent = email(1, subject="Grüße ✉ «quoted»", html="<p>hi</p>", headers={"Subject": "Grüße", "To": [INBOX, OTHER]},
                 spam_score=0.125, created_at=datetime(2026, 11, 20, 10, 0, 0, 987654, tzinfo=timezone.utc))
    new_id = store.save_email(sent)
    got = store.get_email(new_id)
    assert got.id == new_id
    assert (got.message_id, got.from_address, got.to_address, got.subject, got.body, got.html) == (
        sent.message_id, sent.from_address, sent.to_address, sent.subject, sent.body, sent.html)
    assert got.headers == {"Subject": "Grüße", "To": [INBOX, OTHER]}
    assert (got.raw_email, got.size, got.spam_score, got.starred, got.is_read) == (sent.raw_email, 41, 0.125, False, False)
    assert got.created_at == datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc)  # whole seconds, UTC
    assert store.get_email(new_id + 1000) is None


def test_created_at_defaults_to_now_at_whole_seconds(store):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    got = store.get_email(store.save_email(email(1, created_at=None)))
    assert got.created_at.microsecond == 0
    assert before <= got.created_at <= datetime.now(timezone.utc)


def test_a_duplicate_message_id_is_not_stored_and_not_an_error(store):
    first = store.save_email(email(1))
    assert first is not None
    assert store.save_email(email(1, subject="again", to=OTHER)) is None
    assert store.inbox(OTHER) == []
    assert store.get_email(first).subject == "subject 1"
    # within one batch: the first of a message_id is stored, the rest are duplicates
    ids = store.save_emails([email(2), email(2, subject="twice"), email(3), email(1)])
    assert ids[0] is not None and ids[2] is not None and ids[1] is None and ids[3] is None
    assert [e.subject for e in store.inbox(INBOX)] == ["subject 3", "subject 2", "subject 1"]


def test_message_ids_are_case_sensitive(store):
    assert store.save_email(email(1, message_id="<Case@x>")) is not None
    assert store.save_email(email(2, message_id="<case@x>")) is not None


def test_a_batch_is_all_or_nothing(store):
    with pytest.raises(ValueError, match="NUL"):
        store.save_emails([email(1), email(2, body="a\x00b")])
    assert store.inbox(INBOX) == []


def test_inbox_is_newest_first_limited_and_only_its_own(store):
    ids = store.save_emails([email(n) for n in range(1, 8)] + [email(50, to=OTHER)])
    assert len(set(ids)) == 8
    inbox = store.inbox(INBOX, limit=5)
    assert [e.subject for e in inbox] == [f"subject {n}" for n in (7, 6, 5, 4, 3)]
    assert [e.to_address for e in store.inbox(OTHER)] == [OTHER]
    assert store.inbox("nobody@tempmail.test") == []


def test_same_second_ties_are_newest_id_first(store):
    ids = store.save_emails([email(n, created_at=T0) for n in range(1, 4)])
    assert [e.id for e in store.inbox(INBOX)] == sorted(ids, reverse=True)


def test_flags_and_delete(store):
    a, b = store.save_emails([email(1), email(2)])
    assert store.mark_read(a) is True
    assert store.star(b) is True
    assert (store.get_email(a).is_read, store.get_email(a).starred) == (True, False)
    assert (store.get_email(b).is_read, store.get_email(b).starred) == (False, True)
    assert store.mark_read(a, False) and store.get_email(a).is_read is False
    assert store.delete_email(a) is True
    assert store.get_email(a) is None
    assert store.delete_email(a) is False
    assert store.mark_read(a) is False and store.star(a) is False
    # the id is free again for nobody: a new email gets a new id
    assert store.save_email(email(3)) not in (a, b)


SEARCH_MAIL = [
    ("Invoice payment due", "Please pay the invoice by Friday", INBOX),
    ("Payment received", "Thanks, your payment arrived", INBOX),
    ("Weekly newsletter", "Nothing about money here, only cats and dogs", INBOX),
    ("Invoice reminder", "The invoice payment is late", OTHER),
    ("Überweisung", "Die Rechnung über 20 EUR ist bezahlt", OTHER),
]


@pytest.fixture
def searchable(store):
    ids = store.save_emails([email(n, subject=s, body=b, to=to) for n, (s, b, to) in enumerate(SEARCH_MAIL)])
    return store, ids


SEARCHES = [
    ("invoice", None, {0, 3}),
    ("INVOICE Payment", None, {0, 3}),
    ('"invoice payment"', None, {0, 3}),
    ('"payment invoice"', None, set()),
    ("payment -invoice", None, {1}),
    ("cats or rechnung", None, {2, 4}),
    ("invoice", INBOX, {0}),
    ("überweisung", None, {4}),
    ("", None, set()),
    ('NEAR( "x" ) AND OR * ^ :', None, set()),
]


def test_search_finds_the_same_emails(searchable):
    store, ids = searchable
    for query, address, expected in SEARCHES:
        hits = store.search(query, address)
        assert {ids.index(h.id) for h in hits} == expected, query
        assert [h.rank for h in hits] == sorted((h.rank for h in hits), reverse=True), query


def test_search_of_only_negations_is_a_known_difference(searchable):
    """FTS5 has no "everything but": SQLite finds nothing where PostgreSQL finds the rest."""
    store, ids = searchable
    store.shadow_read_rate = 0.0
    expected = set() if store.mode == "sqlite" else {1, 2, 4}
    assert {ids.index(h.id) for h in store.search("-invoice")} == expected


def test_search_keeps_the_index_in_step_with_deletes(searchable):
    store, ids = searchable
    store.delete_email(ids[0])
    assert {ids.index(h.id) for h in store.search("invoice")} == {3}


def test_accounts(store):
    account = store.create_account(domain="tempmail.test", expires_at=T0 + timedelta(days=1))
    assert account.email.endswith("@tempmail.test") and len(account.token) == 64
    assert account.token not in repr(account)
    assert account.is_active and account.expires_at == T0 + timedelta(days=1)
    assert store.find_account_by_address(account.email) == account
    assert store.find_account_by_address(account.email.upper().replace("@TEMPMAIL.TEST", "@tempmail.test")) == account
    assert store.find_account_by_token(account.token) == account
    assert store.find_account_by_token("nope") is None
    assert store.find_account_by_token("") is None
    assert store.find_account_by_address("nobody@tempmail.test") is None
    other = store.create_account(domain="tempmail.test")
    assert other.email != account.email and other.token != account.token


def test_account_addresses_fold_ascii_case_only(store):
    store.create_account(email="Bob@tempmail.test")
    with pytest.raises(AddressTaken):
        store.create_account(email="bob@TEMPMAIL.test")
    upper = store.create_account(email="Ärger@tempmail.test")
    lower = store.create_account(email="ärger@tempmail.test")  # distinct under NOCASE
    assert upper.id != lower.id
    assert store.find_account_by_address("ärger@tempmail.test").id == lower.id


def test_sessions(store):
    account = store.create_account(domain="tempmail.test")
    session = store.create_session(account.id, expires_at=T0, ip="127.0.0.1", user_agent="curl/8")
    assert session.id not in repr(session)
    found = store.find_session(session.id)
    assert found == session and found.account_id == account.id and found.ip == "127.0.0.1"
    assert store.find_session("nope") is None
    with pytest.raises(StoreError):
        store.create_session(account.id + 999)


# -- SQLite: the legacy files as the app writes them ---------------------------------------

def test_sqlite_writes_the_legacy_forms_and_keeps_fts5_in_step(legacy_files):
    emails_db, auth_db = legacy_files
    backend = SQLiteBackend(emails_db, auth_db)
    a, b = backend.save_emails([email(1, starred=True), email(2)])
    backend.mark_read(b)
    backend.delete_email(a)
    backend.save_email(email(3, subject="löschen später"))
    backend.create_account(email="x@tempmail.test", expires_at=T0)
    backend.close()
    with sqlite3.connect(emails_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = conn.execute("SELECT created_at, starred, is_read, headers, typeof(size) FROM emails WHERE id = ?",
                           (b,)).fetchone()
        assert row == ("2026-11-20 10:02:00", 0, 1, json.dumps({"Subject": "subject 2", "X-N": "2"}), "integer")
        # the external-content index matches the table exactly
        conn.execute("INSERT INTO emails_fts (emails_fts, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("SELECT rowid FROM emails_fts WHERE emails_fts MATCH 'löschen'").fetchall() == [(b + 1,)]
        assert conn.execute("SELECT count(*) FROM emails_fts WHERE emails_fts MATCH 'subject'").fetchone()[0] == 1
    with sqlite3.connect(auth_db) as conn:
        assert conn.execute("SELECT created_at IS NOT NULL, expires_at, is_active FROM accounts").fetchone() == (
            1, "2026-11-20 10:00:00", 1)


def test_sqlite_reads_every_legacy_form(legacy_files):
    emails_db, auth_db = legacy_files
    with sqlite3.connect(emails_db) as conn:
        conn.executemany(
            "INSERT INTO emails (id, message_id, from_address, to_address, subject, headers, starred, is_read,"
            " spam_score, size, created_at) VALUES (?, ?, 'f', ?, CAST(? AS TEXT), ?, ?, ?, ?, ?, ?)",
            [(1, "<a>", INBOX, b"bad \xff byte", "not json", "true", 2, "high", 12.0, "2026-11-20T10:00:00Z"),
             (2, "<b>", INBOX, b"nul \x00 here", '{"a": 1}', "maybe", 0, 0.5, None, 1795000000123),
             (3, "<c>", INBOX, b"ok", None, 1, None, None, "big", "2026-11-20 09:00:00.250+01:00")])
    backend = SQLiteBackend(emails_db, auth_db)
    one, two, three = (backend.get_email(i) for i in (1, 2, 3))
    assert (one.subject, one.headers, one.starred, one.is_read, one.spam_score, one.size) == (
        "bad \ufffd byte", None, True, True, None, 12)
    assert one.created_at == datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    assert (two.subject, two.headers, two.starred, two.is_read, two.spam_score) == ("nul \ufffd here", {"a": 1}, None,
                                                                                      False, 0.5)
    assert two.created_at == datetime.fromtimestamp(1795000000.123, timezone.utc)
    assert three.created_at == datetime(2026, 11, 20, 8, 0, 0, 250000, tzinfo=timezone.utc)
    assert three.size is None
    # mixed legacy forms sort as SQLite compares them (numbers before text): not by instant
    assert sorted(e.id for e in backend.inbox(INBOX)) == [1, 2, 3]
    backend.close()


def test_sqlite_connections_are_reused_across_short_lived_threads(legacy_files):
    backend = SQLiteBackend(*legacy_files)
    for n in range(30):  # one thread per request, as an HTTP server does
        thread = threading.Thread(target=backend.save_email, args=(email(n),))
        thread.start()
        thread.join()
    assert backend.status()["connections"] == 1
    threads = [threading.Thread(target=backend.inbox, args=(INBOX,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= backend.status()["connections"] <= 8
    assert len(backend.inbox(INBOX, limit=100)) == 30
    backend.close()
    assert backend.status()["connections"] == 0
    with pytest.raises(StoreUnavailable, match="closed"):
        backend.get_email(1)


def test_sqlite_refuses_a_missing_file(tmp_path):
    with pytest.raises(StoreError, match="emails.db"):
        SQLiteBackend(tmp_path / "emails.db", tmp_path / "auth.db")


def test_sqlite_busy_beyond_the_timeout_is_unavailable(legacy_files):
    emails_db, auth_db = legacy_files
    backend = SQLiteBackend(emails_db, auth_db, busy_timeout_ms=200)
    locker = sqlite3.connect(emails_db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            backend.save_email(email(1))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert backend.save_email(email(1)) is not None
    backend.close()


def test_expire_emails_removes_the_same_month_from_each_backend(dsn, legacy_files):
    """Retention as each store runs it (SQLite: one DELETE with FTS5 in step; PostgreSQL:
    mail.drop_expired_partitions): the same August rows go, the November ones stay."""
    emails_db, auth_db = legacy_files
    august = datetime(2026, 8, 10, 12, 0, tzinfo=timezone.utc)
    rows = [email(n, created_at=august + timedelta(days=n)) for n in range(3)] + [email(n) for n in range(3, 5)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2026-08-01', '2026-11-01']::date[])")
    sqlite_backend = SQLiteBackend(emails_db, auth_db)
    postgres_backend = PostgresBackend(dsn, small_pool())
    try:
        now = datetime(2026, 9, 1, tzinfo=timezone.utc) + timedelta(days=90)
        for backend in (sqlite_backend, postgres_backend):
            backend.save_emails(rows)
            assert backend.expire_emails(timedelta(days=90), now) == 3
            assert sorted(e.message_id for e in backend.inbox(INBOX)) == ["<m3@example.org>", "<m4@example.org>"]
            assert [h.message_id for h in backend.search("number")] != []
            assert backend.expire_emails(timedelta(days=90), now) == 0
    finally:
        sqlite_backend.close()
        postgres_backend.close()
    with sqlite3.connect(emails_db) as conn:
        conn.execute("INSERT INTO emails_fts (emails_fts, rank) VALUES ('integrity-check', 1)")
        assert conn.execute("SELECT count(*) FROM emails_fts WHERE emails_fts MATCH 'number'").fetchone()[0] == 2


def test_fts5_query_translation():
    assert to_fts5("invoice payment") == '("invoice" AND "payment")'
    assert to_fts5('"late invoice" -paid or x-ray') == '(("late invoice") NOT "paid") OR ("x ray")'
    assert to_fts5('" ( ) * :') is None
    assert to_fts5("-only") is None


# -- PostgreSQL: functions, one round trip, the pool ---------------------------------------

def test_postgres_batch_is_one_statement(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    backend = PostgresBackend(dsn, small_pool())
    ids = backend.save_emails([email(n) for n in range(100)])
    assert len(set(ids)) == 100
    backend.close()
    with psycopg.connect(dsn) as conn:
        calls = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE "
                             "'%mail.insert_emails%' AND query NOT LIKE '%pg_stat_statements%'").fetchone()[0]
        assert calls == 1
        assert conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0] == 100


def test_postgres_keeps_given_ids_and_whole_seconds(dsn):
    backend = PostgresBackend(dsn, small_pool())
    assert backend.save_emails([email(1), email(2)], ids=[1000, 2000]) == [1000, 2000]
    assert backend.save_email(email(3), id=3000) == 3000
    assert backend.get_email(2000).message_id == "<m2@example.org>"
    backend.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM mail.emails WHERE created_at <> date_trunc('second', created_at)"
                            ).fetchone()[0] == 0


def test_the_functions_work_from_psql_for_mail_app(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE app_login LOGIN IN ROLE mail_app")
        conn.execute("CREATE ROLE reader_login LOGIN IN ROLE mail_readonly")
    params = psycopg.conninfo.conninfo_to_dict(dsn)

    def psql(user, sql):
        return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", params["host"], "-p",
                               str(params["port"]), "-U", user, "-d", params["dbname"], "-c", sql],
                              capture_output=True, text=True)

    script = ("SELECT mail.insert_emails('[{\"message_id\": \"<p1>\", \"from_address\": \"f@x\", "
              "\"to_address\": \"psql@x\", \"subject\": \"from psql\"}]');"
              "SELECT subject FROM mail.inbox_emails('psql@x');"
              "SELECT mail.create_account('psql@x', 'tok');"
              "SELECT email FROM mail.find_account_by_token('tok');")
    done = psql("app_login", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["from psql", "1", "psql@x"]
    refused = psql("reader_login", "SELECT * FROM mail.find_account_by_token('tok')")
    assert refused.returncode != 0 and "permission denied" in refused.stderr
    assert psql("reader_login", "SELECT count(*) FROM mail.inbox_emails('psql@x')").stdout.strip() == "1"
    moved = psql("app_login", "SELECT sequence_name, was, now_at FROM mail.ids_past(41, 0)")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.splitlines() == ["mail.emails_id_seq|1|41", "mail.accounts_id_seq|1|1"]
    assert psql("reader_login", "SELECT * FROM mail.ids_past(99, 0)").returncode != 0


def _save_from_threads(backend, threads: int, each: int) -> tuple[list, list]:
    """`threads` threads each saving `each` distinct emails at once; the ids and errors."""
    ids, errors = [], []

    def writer(n):
        try:
            ids.extend(backend.save_email(email(n * 100 + k)) for k in range(each))
        except Exception as exc:  # pragma: no cover - reported by the caller's assert
            errors.append(exc)

    started = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return ids, errors


def test_the_pool_never_exceeds_its_size_and_reports_usage(dsn):
    # each save its own statement (no group commit), so each borrows a connection
    backend = PostgresBackend(dsn, PoolSettings(min_size=0, max_size=3, timeout=5, group_writers=0))
    ids, errors = _save_from_threads(backend, threads=12, each=5)
    usage = backend.pool_usage()
    backend.close()
    assert errors == [] and len(set(ids)) == 60
    assert usage["borrows"] == 60 and usage["in_use"] == 0
    assert 1 <= usage["peak_in_use"] <= 3 and usage["max_size"] == 3
    assert 0 < usage["average_in_use"] <= 3


def test_the_pool_wait_fails_after_its_timeout(dsn):
    backend = PostgresBackend(dsn, PoolSettings(min_size=0, max_size=1, timeout=0.5))
    with backend._connection():  # the one connection, borrowed as the store borrows
        with pytest.raises(StoreUnavailable, match="no connection within 0.5 s"):
            backend.get_email(1)
    assert backend.pool_usage()["wait_timeouts"] == 1
    assert backend.pool_usage()["renewals"] == 0  # exhausted, not stuck: the pool stays
    backend.close()


# -- group commit: concurrent saves of one process share a statement ----------------------------

def _wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _starter(saver, threads: list, results: dict):
    """start(key, email, id=None): saver.save_email in a new thread, its result or error
    into results[key]."""
    def start(key, new_email, id=None):
        def run():
            try:
                results[key] = saver.save_email(new_email) if id is None else saver.save_email(new_email, id=id)
            except Exception as exc:  # noqa: BLE001 - checked by the test
                results[key] = exc
        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
    return start


def _blocked_saves(dsn):
    """A backend writing one statement at a time (group_writers=1) while another
    connection holds a lock on the guard table that every save waits for. Returns the
    backend, release() (the lock), start(key, email, id) (a save in a thread, its result
    or error into results[key]), the threads, results, and a count of the store's
    statements waiting on the lock."""
    backend = PostgresBackend(dsn, PoolSettings(min_size=0, max_size=4, timeout=30, group_writers=1, group_max=25))
    locker = psycopg.connect(dsn)
    locker.execute("LOCK TABLE mail.message_id_guard IN SHARE MODE")
    threads, results = [], {}

    start = _starter(backend, threads, results)

    watcher = psycopg.connect(dsn, autocommit=True)  # the locker's own snapshot would not change

    def waiting_on_the_lock() -> int:
        return watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mailmig-store' "
            "AND wait_event_type = 'Lock'").fetchone()[0]

    def release() -> None:
        locker.rollback()
        locker.close()
        watcher.close()

    return backend, release, start, threads, results, waiting_on_the_lock


def _hold_one_then_queue(dsn, queued: list[tuple[str, NewEmail, int | None]], via=None):
    """Save email(1) (held on the lock), then `queued` behind it, through the backend or
    through `via(backend)` (a Store); the results and the group-commit stats."""
    backend, release, start, threads, results, waiting = _blocked_saves(dsn)
    saver = via(backend) if via else backend
    start = _starter(saver, threads, results)
    try:
        start("first", email(1))
        _wait_for(lambda: waiting() == 1, "the first save to wait on the lock")
        for key, new_email, id in queued:
            start(key, new_email, id)
        _wait_for(lambda: backend._group.queued == len(queued), "the other saves to queue behind it")
        assert waiting() == 1  # the queued saves have not reached the server
    finally:
        release()
    for thread in threads:
        thread.join(30)
    stats = backend.group_commit_stats()
    saver.close()
    return results, stats


def test_concurrent_saves_are_written_as_one_group(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    results, stats = _hold_one_then_queue(dsn, [(f"q{n}", email(n), None) for n in range(2, 8)])
    assert results["first"] == 1 and sorted(results[f"q{n}"] for n in range(2, 8)) == [2, 3, 4, 5, 6, 7]
    assert stats == {"alone": 1, "groups": 1, "grouped_items": 6, "largest_group": 6, "regrouped_alone": 0}
    with psycopg.connect(dsn) as conn:
        calls = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE "
                             "'%mail.insert_emails%' AND query NOT LIKE '%pg_stat_statements%'").fetchone()[0]
        assert calls == 1  # the six queued saves: one statement
        stored = dict(conn.execute("SELECT message_id, id FROM mail.emails").fetchall())
    assert stored == {"<m1@example.org>": 1, **{f"<m{n}@example.org>": results[f"q{n}"] for n in range(2, 8)}}


def test_a_bad_save_in_a_group_fails_alone_and_the_others_are_stored(dsn):
    backend = PostgresBackend(dsn, small_pool())
    assert backend.save_email(email(50), id=500) == 500
    backend.close()
    # q3 asks for an id another email holds (dual mode's given ids): a unique violation
    # that fails the whole group's statement; each is then written alone
    queued = [("q2", email(2), None), ("q3", email(3), 500), ("q4", email(4), None), ("q5", email(5), None)]
    results, stats = _hold_one_then_queue(dsn, queued)
    assert isinstance(results["q3"], StoreError) and "23505" in str(results["q3"])
    assert all(isinstance(results[k], int) for k in ("first", "q2", "q4", "q5")), results
    assert stats["groups"] == 0 and stats["regrouped_alone"] == 4
    with psycopg.connect(dsn) as conn:
        stored = {r[0] for r in conn.execute("SELECT message_id FROM mail.emails")}
    assert stored == {f"<m{n}@example.org>" for n in (1, 2, 4, 5, 50)}


def test_a_group_keeps_one_of_two_saves_of_the_same_message_id(dsn):
    results, stats = _hold_one_then_queue(dsn, [("a", email(2), None), ("b", email(2), None), ("c", email(3), None)])
    assert stats["groups"] == 1 and stats["grouped_items"] == 3
    assert [results["a"], results["b"]].count(None) == 1  # the other one's message_id is stored
    assert isinstance(results["a"] or results["b"], int) and isinstance(results["c"], int)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM mail.emails WHERE message_id = '<m2@example.org>'"
                            ).fetchone()[0] == 1


def test_many_writers_through_group_commit_store_every_email_once(dsn):
    backend = PostgresBackend(dsn, PoolSettings(min_size=0, max_size=4, timeout=10))
    ids, errors = _save_from_threads(backend, threads=30, each=20)
    stats = backend.group_commit_stats()
    usage = backend.pool_usage()
    backend.close()
    assert errors == [] and len(ids) == 600 and len(set(ids)) == 600 and None not in ids
    assert stats["alone"] + stats["grouped_items"] + stats["regrouped_alone"] == 600
    assert usage["peak_in_use"] <= 2  # at most group_commit_writers statements at a time
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT message_id) FROM mail.emails").fetchone() == (600, 600)


@pytest.mark.parametrize("mode", ["postgres", "dual"])
def test_the_service_store_writes_concurrent_saves_through_group_commit(dsn, legacy_files, mode):
    """Store.save_email (what the service calls for each message) reaches the backend's
    group commit: with the first PostgreSQL write held on a lock, the others queue and are
    written as one group, with SQLite's ids in dual mode."""
    stores = []

    def through_a_store(backend):
        stores.append(Store(mode, SQLiteBackend(*legacy_files), backend))
        return stores[0]

    results, stats = _hold_one_then_queue(dsn, [(f"q{n}", email(n), None) for n in range(2, 7)], via=through_a_store)
    store = stores[0]
    assert stats["groups"] == 1 and stats["grouped_items"] == 5, stats
    assert sorted(results.values()) == [1, 2, 3, 4, 5, 6], results
    with psycopg.connect(dsn) as conn:
        stored = dict(conn.execute("SELECT message_id, id FROM mail.emails").fetchall())
    assert stored == {f"<m{n}@example.org>": results["first" if n == 1 else f"q{n}"] for n in range(1, 7)}
    if mode == "dual":
        conn = sqlite3.connect(legacy_files[0])
        legacy = dict(conn.execute("SELECT message_id, id FROM emails").fetchall())
        conn.close()
        assert legacy == stored  # PostgreSQL kept SQLite's ids, in a group
        counters = store.counters()
        assert counters["dual_postgres_write_failures"] == 0 and counters["dual_postgres_duplicates"] == 0


def test_a_store_closed_with_saves_queued_answers_each_of_them(dsn):
    backend, release, start, threads, results, waiting = _blocked_saves(dsn)
    try:
        start("first", email(1))
        _wait_for(lambda: waiting() == 1, "the first save to wait on the lock")
        start("queued", email(2))
        _wait_for(lambda: backend._group.queued == 1, "the second save to queue")
        backend._group.close(timeout=0.5)  # its flusher cannot start while the first holds the slot
        threads[1].join(5)
        assert isinstance(results.get("queued"), StoreUnavailable), results
        assert "closed" in str(results["queued"]) and "first" not in results
    finally:
        release()
    threads[0].join(30)
    backend.pool.close()
    assert results["first"] == 1


# -- dual mode: SQLite first, PostgreSQL with the same ids, failures counted --------------------

def test_dual_writes_the_same_ids_to_both_stores(dsn, legacy_files):
    store = Store("dual", SQLiteBackend(*legacy_files), PostgresBackend(dsn, small_pool()))
    ids = store.save_emails([email(1), email(2)])
    account = store.create_account(domain="tempmail.test")
    store.close()
    with sqlite3.connect(legacy_files[0]) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM emails ORDER BY id")] == ids
    with psycopg.connect(dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT id FROM mail.emails ORDER BY id")] == ids
        assert conn.execute("SELECT id, email FROM mail.accounts").fetchall() == [(account.id, account.email)]
    assert store.counters()["writes_sqlite"] == 2 and store.counters()["writes_postgres"] == 2  # one per call


def _sequence_and_max(dsn) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
                            "FROM mail.emails_id_seq), (SELECT max(id) FROM mail.emails)").fetchone()


def test_postgres_mode_after_dual_never_hands_out_a_stored_id(dsn, legacy_files, caplog):
    """An operator restarts the service from dual straight into postgres mode (no
    cut-over): dual stored SQLite's ids without nextval, so the sequence is behind."""
    dual = Store("dual", SQLiteBackend(*legacy_files), PostgresBackend(dsn, small_pool()))
    dual_ids = dual.save_emails([email(1), email(2), email(3)])
    dual_account = dual.create_account(domain="tempmail.test")
    dual.close()
    sequence, largest = _sequence_and_max(dsn)
    assert sequence < largest == max(dual_ids)  # the hazard is there before the first write

    store = Store("postgres", postgres=PostgresBackend(dsn, small_pool()))  # no SQLite files at all
    with caplog.at_level("WARNING", logger="mailmig.store"):
        new_id = store.save_email(email(4))
    account = store.create_account(domain="tempmail.test")
    store.close()
    assert new_id > max(dual_ids) and account.id > dual_account.id
    assert "mail.emails_id_seq moved" in caplog.text
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM mail.emails").fetchone() == (4, 4)


def test_postgres_mode_after_sqlite_skips_the_ids_sqlite_assigned(dsn, legacy_files):
    """From sqlite mode straight into postgres mode: the mail SQLite took (not in
    PostgreSQL yet: the sync brings it later, with its ids) keeps its ids to itself."""
    sqlite_only = Store("sqlite", SQLiteBackend(*legacy_files))
    sqlite_ids = sqlite_only.save_emails([email(1), email(2)])
    sqlite_only.close()
    store = Store("postgres", postgres=PostgresBackend(dsn, small_pool()),
                  open_sqlite=lambda: SQLiteBackend(*legacy_files))
    assert store.save_email(email(3)) > max(sqlite_ids)
    assert store.sqlite is None  # read for the ids, then closed: postgres mode does not keep it
    # a switch into postgres mode checks again before its first write
    store.switch_mode("sqlite")
    later = store.save_emails([email(4), email(5)])  # SQLite's ids: past its own largest, not PostgreSQL's
    store.switch_mode("postgres")
    assert store.save_email(email(6)) > max(later)
    store.close()


def unreachable_postgres(tmp_path) -> PostgresBackend:
    """A pool aimed at a socket directory where no server listens: every call fails."""
    return PostgresBackend(f"host={tmp_path} port=1 dbname=x user=x", PoolSettings(min_size=0, max_size=2, timeout=0.5))


def test_dual_counts_a_postgres_failure_and_still_succeeds(legacy_files, tmp_path):
    store = Store("dual", SQLiteBackend(*legacy_files), unreachable_postgres(tmp_path), pg_down_backoff=60)
    first = store.save_email(email(1))
    second = store.save_email(email(2))  # within the backoff: not even tried
    assert first and second
    got = store.get_email(first)  # PostgreSQL is down: answered by SQLite
    assert got.subject == "subject 1"
    counters = store.counters()
    store.close()
    assert counters["writes_sqlite"] == 2
    assert counters["dual_postgres_write_failures"] == 2 and counters["dual_postgres_writes_skipped"] == 1
    assert counters["read_fallbacks"] == 1 and counters["reads_sqlite"] == 1


def test_dual_read_falls_back_when_postgres_fails(legacy_files, tmp_path, dsn):
    store = Store("dual", SQLiteBackend(*legacy_files), PostgresBackend(dsn, small_pool()))
    new_id = store.save_email(email(1))
    store.postgres.close()
    store.postgres = unreachable_postgres(tmp_path)
    assert store.get_email(new_id).subject == "subject 1"
    assert store.counters()["read_failures"] == 1 and store.counters()["read_fallbacks"] == 1
    store.close()


def test_dual_shadow_reads_count_a_real_difference(dsn, legacy_files, caplog):
    store = Store("dual", SQLiteBackend(*legacy_files), PostgresBackend(dsn, small_pool()), shadow_read_rate=1.0)
    account = store.create_account(domain="tempmail.test")
    new_id = store.save_email(email(1))
    assert store.get_email(new_id).subject == "subject 1"
    assert store.counters()["shadow_mismatches"] == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE mail.emails SET subject = 'changed behind the store' WHERE id = %s", (new_id,))
        conn.execute("UPDATE mail.accounts SET is_active = false")
    with caplog.at_level("WARNING", logger="mailmig.store"):
        assert store.get_email(new_id).subject == "changed behind the store"
        store.find_account_by_token(account.token)
    assert store.counters()["shadow_reads"] == 3 and store.counters()["shadow_mismatches"] == 2
    assert account.token not in caplog.text
    store.close()


def test_mode_switch_needs_a_working_backend(legacy_files, tmp_path, dsn):
    store = Store("sqlite", SQLiteBackend(*legacy_files), open_postgres=lambda: unreachable_postgres(tmp_path))
    with pytest.raises(StoreUnavailable):
        store.switch_mode("postgres")
    assert store.mode == "sqlite"
    store.postgres.close()
    store.postgres = PostgresBackend(dsn, small_pool())
    assert store.switch_mode("postgres") == "sqlite"
    new_id = store.save_email(email(1))
    assert store.sqlite.get_email(new_id) is None and store.postgres.get_email(new_id).id == new_id
    store.close()
