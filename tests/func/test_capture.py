"""Change capture in real SQLite files (mailmig.capture), with a real writer process.

Install and uninstall must be idempotent and safe while the app writes, uninstall must
leave sqlite_master exactly as install found it, the triggers must log keys (never rows),
both keys of a key change, nothing for the FTS5 table, and nothing for a writer that
suppresses capture in its own transaction.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from mailmig import capture, cli
from mailmig.demo_data import generate
from mailmig.mapping import load_mapping

END = date(2026, 11, 1)
TABLES = load_mapping()
EMAILS_TABLES = capture.tables_of(TABLES, "emails_db")
AUTH_TABLES = capture.tables_of(TABLES, "auth_db")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("capture-legacy")
    generate(out, emails=300, accounts=200, seed=11, end=END)
    return out


@pytest.fixture
def files(pristine, tmp_path):
    for name in ("emails.db", "auth.db"):
        shutil.copyfile(pristine / name, tmp_path / name)
    return tmp_path / "emails.db", tmp_path / "auth.db"


def connect(path: Path, **kw) -> contextlib.closing:
    """A connection closed at the end of the block (sqlite3's own `with` only commits: the
    connection would stay open, holding locks, until the garbage collector gets to it)."""
    return contextlib.closing(sqlite3.connect(path, **kw))


def master(path: Path) -> list[tuple]:
    with connect(path) as conn:
        return sorted(conn.execute("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master").fetchall(),
                      key=repr)


def changelog(path: Path) -> list[tuple]:
    with connect(path) as conn:
        return conn.execute("SELECT seq, source_table, source_key, op FROM mailmig_changelog ORDER BY seq").fetchall()


def start_writer(emails: Path, auth: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "mailmig.legacy_app", "--emails-db", str(emails),
                             "--auth-db", str(auth), *args], stdout=subprocess.PIPE, text=True)
    assert "legacy-app: writing" in proc.stdout.readline()
    return proc


def stop_writer(proc: subprocess.Popen) -> dict:
    import json

    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def test_triggers_log_keys_of_inserts_updates_deletes(files):
    emails, auth = files
    capture.install(emails, EMAILS_TABLES)
    capture.install(auth, AUTH_TABLES)
    with connect(emails, isolation_level=None) as conn:
        conn.execute("INSERT INTO emails (id, message_id, from_address, to_address, created_at) "
                     "VALUES (777001, '<n@x>', 'a@x', 'b@x', '2026-10-01 00:00:00')")
        conn.execute("UPDATE emails SET starred = 1 WHERE id = 777001")
        conn.execute("UPDATE emails SET id = 777002 WHERE id = 777001")  # a key change: both keys
        conn.execute("DELETE FROM emails WHERE id = 777002")
        # the FTS5 index is written as the app writes it, and is not captured
        conn.execute("INSERT INTO emails_fts (rowid, subject, body) VALUES (777003, 's', 'b')")
    assert [row[1:] for row in changelog(emails)] == [
        ("emails", 777001, "I"), ("emails", 777001, "U"), ("emails", 777001, "D"), ("emails", 777002, "U"),
        ("emails", 777002, "D")]
    with connect(auth, isolation_level=None) as conn:
        conn.execute("UPDATE sessions SET ip = '198.51.100.1' WHERE id = 'hostile-ip-ipv6'")
        conn.execute("DELETE FROM accounts WHERE id = 3000000000")
    assert [row[1:] for row in changelog(auth)] == [
        ("sessions", "hostile-ip-ipv6", "U"), ("accounts", 3000000000, "D")]
    # keys only: the changelog has no column that could hold a copy of a row
    with connect(emails) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(mailmig_changelog)")]
        triggers = [r[0] for r in conn.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")]
    assert columns == ["seq", "source_table", "source_key", "op", "at"]
    assert set(triggers) == {"emails"}  # nothing on emails_fts or its shadow tables


def test_install_and_uninstall_while_the_app_writes(files):
    emails, auth = files
    before = {p: master(p) for p in files}
    writer = start_writer(emails, auth, "--emails-per-s", "200", "--updates-per-s", "100", "--logins-per-s", "50",
                          "--accounts-per-s", "20", "--deletes-per-s", "20")
    try:
        time.sleep(0.5)
        results = [capture.install(emails, EMAILS_TABLES), capture.install(auth, AUTH_TABLES)]
        again = [capture.install(emails, EMAILS_TABLES), capture.install(auth, AUTH_TABLES)]
        assert [r.already for r in again] == [True, True]
        assert [r.install_id for r in again] == [r.install_id for r in results]
        time.sleep(1.0)
    finally:
        counts = stop_writer(writer)
    assert counts["email_inserts"] > 100 and counts["account_logins"] > 10
    # once capture was on, no insert went unlogged: the ids are AUTOINCREMENT, so every id
    # above the first logged one was inserted after the install and must be in the log
    with connect(emails) as conn:
        logged = {r[0] for r in conn.execute("SELECT source_key FROM mailmig_changelog WHERE op = 'I'")}
        assert logged, "the writer inserted nothing while capture was installed"
        later = {r[0] for r in conn.execute("SELECT id FROM emails WHERE id >= ?", (min(logged),))}
        # the generated file's largest id is 3,000,000,000: above it, the writer's rows
        earlier = conn.execute("SELECT count(*) FROM emails WHERE id > 3000000000 AND id < ?",
                               (min(logged),)).fetchone()[0]
    assert later <= logged
    assert earlier > 0  # the writer was writing before the install too
    with connect(auth) as conn:
        assert conn.execute("SELECT count(*) FROM mailmig_changelog WHERE source_table = 'sessions'").fetchone()[0] > 0

    writer = start_writer(emails, auth, "--emails-per-s", "200", "--updates-per-s", "100", "--logins-per-s", "50")
    try:
        time.sleep(0.3)
        removed = [capture.uninstall(emails, EMAILS_TABLES), capture.uninstall(auth, AUTH_TABLES)]
        assert [capture.uninstall(p, t).removed for p, t in ((emails, EMAILS_TABLES), (auth, AUTH_TABLES))] == [[], []]
        time.sleep(0.3)
    finally:
        stop_writer(writer)
    assert [len(r.removed) for r in removed] == [6, 9]
    assert {p: master(p) for p in files} == before  # exactly as found, rootpages included
    for path in files:
        with connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'mailmig%'").fetchone() == (0,)


def test_an_incomplete_capture_is_replaced_under_a_new_install_id(files):
    emails, _ = files
    first = capture.install(emails, EMAILS_TABLES)
    with connect(emails, isolation_level=None) as conn:
        conn.execute("DROP TRIGGER mailmig_capture_emails_delete")
    with connect(emails) as conn:
        state = capture.read_state(conn, emails, EMAILS_TABLES)
    assert state.partial and state.missing == ["mailmig_capture_emails_delete"]
    assert "INCOMPLETE" in state.describe()
    second = capture.install(emails, EMAILS_TABLES)
    assert second.replaced is not None and second.install_id != first.install_id
    with connect(emails) as conn:
        assert capture.read_state(conn, emails, EMAILS_TABLES).installed


def test_a_virtual_table_in_place_of_a_mapped_one_is_refused(tmp_path):
    path = tmp_path / "emails.db"
    with connect(path) as conn:
        conn.execute("CREATE VIRTUAL TABLE emails USING fts5(id, message_id)")
        conn.commit()
    before = master(path)
    with pytest.raises(capture.CaptureError, match=r"emails\.db: emails is a virtual table"):
        capture.install(path, EMAILS_TABLES)
    assert master(path) == before


def test_install_waits_for_the_write_lock_and_names_the_file_when_it_cannot_get_it(files):
    emails, _ = files
    holder = sqlite3.connect(emails, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    released.start()
    started = time.monotonic()
    capture.install(emails, EMAILS_TABLES, busy_timeout_ms=5000)  # waits for the holder
    assert time.monotonic() - started >= 0.25
    released.join()
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(capture.CaptureError, match=r"emails\.db: could not take the write lock within 200 ms"):
            capture.uninstall(emails, EMAILS_TABLES, busy_timeout_ms=200)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_changelog_seq_never_goes_back_after_pruning(files):
    """Without AUTOINCREMENT SQLite reuses the largest rowid after a delete: the sync
    prunes every applied row, and a reused seq would look already applied."""
    emails, _ = files
    capture.install(emails, EMAILS_TABLES)
    with connect(emails, isolation_level=None) as conn:
        conn.execute("UPDATE emails SET is_read = 1 WHERE id IN (SELECT id FROM emails LIMIT 3)")
        conn.execute("DELETE FROM mailmig_changelog")
        conn.execute("UPDATE emails SET is_read = 0 WHERE id IN (SELECT id FROM emails LIMIT 1)")
        assert conn.execute("SELECT seq FROM mailmig_changelog").fetchall() == [(4,)]


def test_sessions_are_keyed_on_their_id_across_rowid_reuse_and_vacuum(files):
    _, auth = files
    capture.install(auth, AUTH_TABLES)
    with connect(auth, isolation_level=None) as conn:
        last_rowid, last_id = conn.execute("SELECT rowid, id FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()
        account = conn.execute("SELECT id FROM accounts LIMIT 1").fetchone()[0]
        conn.execute("DELETE FROM sessions WHERE id = ?", (last_id,))
        conn.execute("INSERT INTO sessions (id, account_id) VALUES ('reused-rowid', ?)", (account,))
        assert conn.execute("SELECT rowid FROM sessions WHERE id = 'reused-rowid'").fetchone()[0] == last_rowid
        conn.execute("DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions ORDER BY rowid LIMIT 20)")
        # VACUUM may renumber the rowids of a table without an INTEGER PRIMARY KEY (SQLite
        # 3.40 keeps them in practice): whatever it does, the log holds declared ids
        conn.execute("VACUUM")
        some = conn.execute("SELECT id FROM sessions ORDER BY rowid DESC LIMIT 1 OFFSET 5").fetchone()[0]
        conn.execute("UPDATE sessions SET ip = '203.0.113.9' WHERE id = ?", (some,))
    keys = [row[2] for row in changelog(auth) if row[1] == "sessions"]
    assert keys[:2] == [last_id, "reused-rowid"]
    assert keys[-1] == some and isinstance(keys[-1], str)


def test_a_writer_can_keep_its_own_transaction_out_of_the_changelog(files):
    emails, _ = files
    capture.install(emails, EMAILS_TABLES)
    writer = sqlite3.connect(emails, isolation_level=None)
    other = sqlite3.connect(emails, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    with capture.suppressed(writer, "rollback"):
        writer.execute("UPDATE emails SET starred = 1 WHERE id IN (SELECT id FROM emails LIMIT 5)")
        # uncommitted: another connection does not see the marker
        assert other.execute("SELECT count(*) FROM mailmig_capture_pause").fetchone() == (0,)
    writer.execute("COMMIT")
    other.execute("UPDATE emails SET is_read = 1 WHERE id = (SELECT min(id) FROM emails)")
    assert [row[3] for row in changelog(emails)] == ["U"]  # only the other writer's change
    with pytest.raises(capture.CaptureError, match="open write transaction"):
        with capture.suppressed(writer):
            pass
    # a marker committed by mistake switches capture off for everybody: the state says so
    writer.execute("INSERT INTO mailmig_capture_pause VALUES ('forgotten')")
    state = capture.read_state(other, emails, EMAILS_TABLES)
    assert state.paused_rows == 1
    writer.close()
    other.close()


def test_capture_commands(files, capsys, monkeypatch, tmp_path):
    emails, auth = files
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POSTGRES_DSN", "host=/nonexistent dbname=none connect_timeout=1")
    args = ["--emails-db", str(emails), "--auth-db", str(auth)]
    assert cli.main(["capture", "install", *args]) == 0
    out = capsys.readouterr().out
    assert "capture installed on emails" in out and "capture installed on accounts, sessions" in out
    assert cli.main(["capture", "install", *args]) == 0
    assert "already installed" in capsys.readouterr().out
    with connect(emails, isolation_level=None) as conn:
        conn.execute("UPDATE emails SET starred = 1 WHERE id IN (SELECT id FROM emails LIMIT 4)")
    cli.main(["capture", "status", *args])
    out = capsys.readouterr().out
    assert "capture installed, install" in out and "changelog: 4 rows" in out
    assert "PostgreSQL not reachable" in out
    assert cli.main(["capture", "uninstall", *args]) == 0
    assert "4 changelog rows dropped" in capsys.readouterr().out
    assert cli.main(["capture", "status", *args]) == 0
    assert "capture not installed" in capsys.readouterr().out
