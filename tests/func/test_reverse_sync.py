"""Reverse capture in PostgreSQL and `mailmig sync --reverse` into real SQLite files.

A demo dataset is loaded once (copy loader) into a template database; each test gets a
clone of it and its own copy of the SQLite files, changes PostgreSQL as the service
would after a cut-over, carries the changes back, and checks the files with validate
(live), FTS5's own integrity check and searches.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig import demo_data, load
from mailmig.reverse_sync import ReverseConflict, ReverseSync, ReverseSyncError, capture_install, \
    capture_status, capture_uninstall, start
from mailmig.validate import run_validate

LOADED_DB = "mailmig_reverse_loaded"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("reverse-data")
    demo_data.generate(out, emails=300, accounts=200, seed=11)
    return out


@pytest.fixture(scope="module")
def loaded(pg, template_db, dataset, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("reverse-runs")
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=LOADED_DB,
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    result = load.run_load(pg.conninfo(LOADED_DB), dataset / "emails.db", dataset / "auth.db", runs_dir,
                           loader="copy", progress=None)
    assert result.ok, result.report
    yield runs_dir
    janitor.drop()


def copy_sqlite(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


class Env:
    def __init__(self, dsn: str, emails_db: Path, auth_db: Path, runs_dir: Path):
        self.dsn, self.emails_db, self.auth_db, self.runs_dir = dsn, emails_db, auth_db, runs_dir

    def sql(self, query, params=None):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def sqlite(self, path: Path, query: str, params=()):
        with sqlite3.connect(path) as conn:
            rows = conn.execute(query, params).fetchall()
        conn.close()
        return rows

    def validate(self):
        return run_validate(self.dsn, self.runs_dir, source="live", emails_db=self.emails_db, auth_db=self.auth_db)

    def fts_ok(self):
        with sqlite3.connect(self.emails_db) as conn:
            conn.execute("INSERT INTO emails_fts (emails_fts) VALUES ('integrity-check')")
        conn.close()


@pytest.fixture
def env(pg, loaded, dataset, tmp_path):
    dbname = f"reverse_{tmp_path.name[-40:].lower().replace('-', '_')}"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=LOADED_DB)
    janitor.drop()
    janitor.init()
    files = tmp_path / "files"
    files.mkdir()
    copy_sqlite(dataset / "emails.db", files / "emails.db")
    copy_sqlite(dataset / "auth.db", files / "auth.db")
    runs_dir = tmp_path / "runs"
    import shutil
    shutil.copytree(loaded, runs_dir, symlinks=True)
    yield Env(pg.conninfo(dbname), files / "emails.db", files / "auth.db", runs_dir)
    janitor.drop()


def new_email(env: Env, message_id: str, subject: str, to: str = "inbox@example.test",
              created_at: str | None = None) -> int:
    return env.sql(
        "SELECT mail.insert_email(%s, 'sender@example.test', %s, %s, 'body words zebracorn', NULL, "
        "'{\"X-Test\": \"1\"}', 'raw', 42, coalesce(%s::timestamptz, date_trunc('second', now())))",
        (message_id, to, subject, created_at))[0][0]


def test_install_status_uninstall_cover_every_partition(env):
    first = capture_install(env.dsn)
    assert not first["already"] and first["created"] == ["mail.emails", "mail.accounts", "mail.sessions"]
    again = capture_install(env.dsn)
    assert again["already"] and again["install_id"] == first["install_id"]
    # a partition made after the install gets the trigger (a clone of the parent's)
    env.sql("SELECT mail.ensure_partitions_for_months(ARRAY['2031-05-01'::date])")
    assert capture_status(env.dsn)["installed"]
    env.sql("INSERT INTO mail.emails (message_id, from_address, to_address, created_at) "
            "VALUES ('future@x', 'a@x', 'b@x', '2031-05-02')")
    assert env.sql("SELECT source_table, op FROM migration.reverse_changelog") == [("emails", "I")]
    # a disabled trigger on one partition is seen, and install repairs it under a new id
    env.sql("ALTER TABLE mail.emails_p203105 DISABLE TRIGGER mailmig_reverse_capture")
    status = capture_status(env.dsn)
    assert not status["installed"] and status["missing"] == ["mail.emails_p203105: trigger disabled"]
    repaired = capture_install(env.dsn)
    assert not repaired["already"] and repaired["install_id"] != first["install_id"]
    assert capture_status(env.dsn)["installed"]
    removed = capture_uninstall(env.dsn)
    assert removed["removed"] == ["mail.emails", "mail.accounts", "mail.sessions"]
    status = capture_status(env.dsn)
    assert not status["installed"] and status["changelog_rows"] == 0
    assert env.sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'mailmig_reverse_capture'") == [(0,)]
    assert capture_uninstall(env.dsn)["removed"] == []


def test_a_transaction_that_commits_late_is_never_skipped(env):
    """Identity values commit out of order: T1 takes its xid first but logs its row after
    T2 (so its seq is larger); while T1 runs, T2's row must not be read either, or a
    reader past T2 would skip T1's row for good."""
    capture_install(env.dsn)
    start(env.dsn)
    with psycopg.connect(env.dsn) as t1, psycopg.connect(env.dsn) as t2:
        t1_xid = t1.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        t2.execute("UPDATE mail.accounts SET is_active = false WHERE id = (SELECT min(id) FROM mail.accounts)")
        t2_xid = t2.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        t2.commit()
        t1.execute("UPDATE mail.accounts SET is_active = false WHERE id = (SELECT max(id) FROM mail.accounts "
                   "WHERE id < 9000000)")
        rows = env.sql("SELECT xid::text, seq FROM migration.reverse_changelog ORDER BY seq")
        assert [r[0] for r in rows] == [t2_xid]  # T1's row is not committed yet
        assert int(t1_xid) < int(t2_xid)
        visible = env.sql("SELECT count(*) FROM migration.reverse_changes('0', 0, 100)")
        assert visible == [(0,)], "T2's row must wait while the older T1 runs"
        t1.commit()
    rows = env.sql("SELECT xid::text, seq FROM migration.reverse_changes('0', 0, 100)")
    assert [r[0] for r in rows] == [t1_xid, t2_xid]
    assert rows[0][1] > rows[1][1], "T1's seq is the larger one: a seq cursor would have skipped it"


def test_a_suppressed_transaction_logs_nothing(env):
    capture_install(env.dsn)
    with psycopg.connect(env.dsn) as conn:
        conn.execute("SELECT migration.suppress_reverse_capture()")
        conn.execute("UPDATE mail.emails SET is_read = true WHERE id IN (SELECT id FROM mail.emails LIMIT 5)")
        conn.commit()
        conn.execute("UPDATE mail.emails SET starred = true WHERE id IN (SELECT id FROM mail.emails LIMIT 2)")
        conn.commit()
    assert env.sql("SELECT count(*) FROM migration.reverse_changelog") == [(2,)]


def test_every_kind_of_change_reaches_sqlite_and_validate_passes(env):
    capture_install(env.dsn)
    start(env.dsn)
    before = env.sql("SELECT count(*) FROM migration.reverse_changelog")[0][0]
    assert before == 0
    # what the service does on PostgreSQL after a cut-over
    new_id = new_email(env, "<after-cutover-1@x>", "Quarterly zebracorn report")
    frac_id = new_email(env, "<after-cutover-2@x>", "fraction")
    # the store keeps whole seconds; a fraction written some other way must survive too
    env.sql("UPDATE mail.emails SET created_at = '2026-11-02 10:00:00.250001+00' WHERE id = %s", (frac_id,))
    moved = env.sql("SELECT min(id) FROM mail.emails WHERE id < 9000000")[0][0]
    env.sql("UPDATE mail.emails SET created_at = created_at - interval '40 days' WHERE id = %s", (moved,))
    gone = env.sql("SELECT max(id) FROM mail.emails WHERE id < 9000000")[0][0]
    env.sql("DELETE FROM mail.emails WHERE id = %s", (gone,))
    flagged = env.sql("SELECT id FROM mail.emails WHERE id < 9000000 ORDER BY id LIMIT 3 OFFSET 5")
    env.sql("UPDATE mail.emails SET is_read = true, starred = NOT coalesce(starred, false) WHERE id = ANY(%s)",
            ([r[0] for r in flagged],))
    # a hostile row whose subject the load repaired (Latin-1 bytes): only its flag changes
    hostile = env.sql("SELECT source_key::bigint FROM migration.repairs WHERE source_table = 'emails' "
                      "AND column_name = 'subject' AND rule = 'text_bytes_replaced'")[0][0]
    env.sql("UPDATE mail.emails SET is_read = true WHERE id = %s", (hostile,))
    # a hostile row whose is_read the load repaired ('maybe'-like): the app changes that column
    repaired_flag = env.sql("SELECT source_key::bigint FROM migration.repairs WHERE source_table = 'emails' "
                            "AND column_name = 'starred' AND rule = 'flag_unreadable_null'")[0][0]
    env.sql("UPDATE mail.emails SET starred = true WHERE id = %s", (repaired_flag,))
    # accounts and sessions: a new inbox with a session; an account deleted with its sessions
    account = env.sql("INSERT INTO mail.accounts (email, token, expires_at) "
                      "VALUES ('fresh@inbox.test', 'tok-fresh', now() + interval '1 day') RETURNING id")[0][0]
    env.sql("INSERT INTO mail.sessions (id, account_id, ip) VALUES ('sess-fresh', %s, '127.0.0.1')", (account,))
    doomed = env.sql("SELECT account_id FROM mail.sessions GROUP BY account_id ORDER BY count(*) DESC LIMIT 1")[0][0]
    doomed_sessions = env.sql("SELECT count(*) FROM mail.sessions WHERE account_id = %s", (doomed,))[0][0]
    env.sql("DELETE FROM mail.accounts WHERE id = %s", (doomed,))

    with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
        totals = sync.drain()
        assert totals["changes"] >= 10
        assert sync.drain()["changes"] == 0  # nothing twice

    # the rows, in the legacy forms
    row = env.sqlite(env.emails_db, "SELECT subject, created_at, is_read, starred, headers FROM emails WHERE id = ?",
                     (new_id,))[0]
    assert row[0] == "Quarterly zebracorn report" and row[2] == 0 and row[3] == 0
    assert len(row[1]) == 19 and row[1][10] == " "  # 'YYYY-MM-DD HH:MM:SS'
    assert json.loads(row[4]) == {"X-Test": "1"}
    assert env.sqlite(env.emails_db, "SELECT created_at FROM emails WHERE id = ?", (frac_id,)) == \
        [("2026-11-02 10:00:00.250001",)]
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE id = ?", (gone,)) == [(0,)]
    assert env.sqlite(env.auth_db, "SELECT count(*) FROM sessions WHERE account_id = ?", (doomed,)) == [(0,)]
    assert doomed_sessions >= 1
    assert env.sqlite(env.auth_db, "SELECT email, is_active FROM accounts WHERE id = ?", (account,)) == \
        [("fresh@inbox.test", 1)]
    # the hostile subject keeps its original bytes (only is_read was written)
    with sqlite3.connect(env.emails_db) as conn:
        conn.text_factory = bytes
        raw = conn.execute("SELECT subject, is_read FROM emails WHERE id = ?", (hostile,)).fetchone()
    conn.close()
    assert b"Caf\xe9 ouvert" in raw[0] and raw[1] == 1
    # the repair of the column the app changed no longer describes the source: gone
    assert env.sql("SELECT count(*) FROM migration.repairs WHERE source_table = 'emails' AND source_key = %s "
                   "AND column_name = 'starred'", (str(repaired_flag),)) == [(0,)]
    # the FTS5 index: intact, finds the new mail, not the deleted one
    env.fts_ok()
    hits = env.sqlite(env.emails_db, "SELECT rowid FROM emails_fts WHERE emails_fts MATCH 'zebracorn'")
    assert (new_id,) in hits and (gone,) not in hits
    result = env.validate()
    assert result.ok, json.dumps(result.report["differences"][:10], indent=1, default=str)


def test_forward_capture_does_not_see_the_reverse_writes(env):
    """The forward capture's suppression marker (mailmig_capture_pause) is set inside the
    reverse sync's transaction: a trigger guarded like the forward capture's logs nothing."""
    with sqlite3.connect(env.emails_db) as conn:
        conn.executescript(
            "CREATE TABLE mailmig_capture_pause (writer TEXT);"
            "CREATE TABLE echo (id INTEGER);"
            "CREATE TRIGGER echo_i AFTER INSERT ON emails WHEN NOT EXISTS (SELECT 1 FROM mailmig_capture_pause) "
            "BEGIN INSERT INTO echo VALUES (NEW.id); END;")
    conn.close()
    capture_install(env.dsn)
    start(env.dsn)
    new_email(env, "<no-echo@x>", "no echo")
    with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
        assert sync.drain()["changes"] == 1
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE message_id = '<no-echo@x>'") == [(1,)]
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM echo") == [(0,)]
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM mailmig_capture_pause") == [(0,)]


def test_a_conflict_with_a_row_whose_delete_is_still_to_come_is_resolved(env):
    """PostgreSQL deleted email A, then gave email B A's message_id; the update is below
    the horizon but A's delete is not yet (its xid is above an older transaction that
    still runs). Writing B conflicts in SQLite with A: A's own current state (absent, its
    delete pending in the changelog) is written first."""
    capture_install(env.dsn)
    b_id = new_email(env, "<placeholder@x>", "b")
    start(env.dsn)
    a_id, a_mid = env.sql("SELECT id, message_id FROM mail.emails WHERE id < 9000000 ORDER BY id LIMIT 1")[0]
    with psycopg.connect(env.dsn) as t_update, psycopg.connect(env.dsn) as holder, \
            psycopg.connect(env.dsn) as t_delete:
        u_xid = int(t_update.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        h_xid = int(holder.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        d_xid = int(t_delete.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        assert u_xid < h_xid < d_xid
        t_delete.execute("DELETE FROM mail.emails WHERE id = %s", (a_id,))
        t_delete.commit()
        t_update.execute("UPDATE mail.emails SET message_id = %s WHERE id = %s", (a_mid, b_id))
        t_update.commit()
        with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
            result = sync.run_pass()
            assert result.changes == 1  # B's update only: A's delete is above the horizon
            assert env.sqlite(env.emails_db, "SELECT id FROM emails WHERE message_id = ?", (a_mid,)) == [(b_id,)]
            assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE id = ?", (a_id,)) == [(0,)]
            holder.rollback()
            assert sync.drain()["changes"] == 1  # A's delete, now readable: nothing left to do
    env.fts_ok()
    assert env.validate().ok


def test_a_row_the_load_rejected_is_never_overwritten(env):
    """A rejected legacy row stays in SQLite (kept whole in migration.rejects too). If
    PostgreSQL later stores an email with its message_id, the reverse sync stops and
    names both rows instead of deleting the rejected one."""
    capture_install(env.dsn)
    start(env.dsn)
    key, mid = env.sql("SELECT source_key, original->'message_id'->>'v' FROM migration.rejects "
                       "WHERE source_table = 'emails' AND original->'message_id' ? 'v' ORDER BY source_key LIMIT 1")[0]
    new_id = new_email(env, mid, "same message_id as a rejected row")
    with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
        with pytest.raises(ReverseConflict, match=f"emails {new_id} conflicts.*emails {key}.*the load rejected it"):
            sync.run_pass()
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE id = ?", (new_id,)) == [(0,)]
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE id = ?", (int(key),)) == [(1,)]


def test_reverse_sync_refuses_without_a_start_or_after_a_reinstall(env):
    capture_install(env.dsn)
    with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
        with pytest.raises(ReverseSyncError, match="has not started"):
            sync.run_pass()
        start(env.dsn)
        sync.run_pass()
        env.sql("ALTER TABLE mail.sessions DISABLE TRIGGER mailmig_reverse_capture")
        with pytest.raises(ReverseSyncError, match="not installed completely.*mail.sessions: trigger disabled"):
            sync.run_pass()
        capture_install(env.dsn)  # a new install id
        with pytest.raises(ReverseSyncError, match="reinstalled"):
            sync.run_pass()


def run_cli(env: Env, *args, faults: str | None = None, timeout=60):
    child_env = dict(os.environ, EMAILS_DB=str(env.emails_db), AUTH_DB=str(env.auth_db), POSTGRES_DSN=env.dsn,
                     MAILMIG_RUNS_DIR=str(env.runs_dir))
    if faults:
        child_env["MAILMIG_FAULTS"] = faults
    return subprocess.run([sys.executable, "-m", "mailmig.cli", *args], cwd=env.runs_dir.parent, env=child_env,
                          capture_output=True, text=True, timeout=timeout)


def sqlite_digest(env: Env) -> list:
    rows = env.sqlite(env.emails_db, "SELECT id, message_id, is_read, starred, created_at FROM emails ORDER BY id")
    rows += env.sqlite(env.auth_db, "SELECT id, email, is_active FROM accounts ORDER BY id")
    rows += env.sqlite(env.auth_db, "SELECT id, account_id FROM sessions ORDER BY id")
    rows += env.sqlite(env.emails_db, "SELECT count(*) FROM emails_fts WHERE emails_fts MATCH 'zebracorn'")
    return rows


def test_killed_after_the_sqlite_commit_then_run_again_reaches_the_same_state(env):
    capture_install(env.dsn)
    start(env.dsn)
    for i in range(5):
        new_email(env, f"<kill-{i}@x>", f"kill test {i} zebracorn")
    env.sql("UPDATE mail.emails SET is_read = true WHERE id IN (SELECT id FROM mail.emails ORDER BY id LIMIT 4)")
    position_before = env.sql("SELECT after_xid::text, after_seq FROM migration.reverse_sync_position")
    killed = run_cli(env, "sync", "--reverse", faults="reverse_after_sqlite_commit=kill")
    assert killed.returncode == -9, killed.stderr
    assert "fault reverse_after_sqlite_commit: kill" in killed.stderr
    # the kill happened between the two commits: SQLite has the rows, the position did not move
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE message_id LIKE '<kill-%'") == [(5,)]
    assert env.sql("SELECT after_xid::text, after_seq FROM migration.reverse_sync_position") == position_before
    after_kill = sqlite_digest(env)
    again = run_cli(env, "sync", "--reverse")
    assert again.returncode == 0, again.stderr
    assert "changes carried" in again.stdout
    assert env.sql("SELECT after_xid::text, after_seq FROM migration.reverse_sync_position") != position_before
    assert sqlite_digest(env) == after_kill  # the second application changed nothing
    env.fts_ok()
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails_fts WHERE emails_fts MATCH 'zebracorn'") \
        == [(5 + env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE body LIKE '%zebracorn%' "
                                           "AND message_id NOT LIKE '<kill-%'")[0][0],)]
    assert env.validate().ok


def test_follow_keeps_up_with_a_writer_and_survives_a_restart_of_its_reader(env):
    capture_install(env.dsn)
    start(env.dsn)
    stop = threading.Event()
    with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
        follower = threading.Thread(target=sync.follow, args=(stop,), kwargs={"interval": 0.05})
        follower.start()
        try:
            for i in range(40):
                new_email(env, f"<follow-{i}@x>", f"follow {i}")
                if i == 20:
                    # the follower's connections are cut (as by a PostgreSQL restart)
                    env.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        finally:
            deadline = datetime.now(timezone.utc).timestamp() + 20
            while datetime.now(timezone.utc).timestamp() < deadline:
                if env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE message_id LIKE '<follow-%'") \
                        == [(40,)]:
                    break
                stop.wait(0.1)
            stop.set()
            follower.join(10)
    assert env.sqlite(env.emails_db, "SELECT count(*) FROM emails WHERE message_id LIKE '<follow-%'") == [(40,)]
    status = capture_status(env.dsn)
    assert status["backlog"] == 0 and status["heartbeat_age_s"] < 10
    assert env.validate().ok


ODD_SESSIONS = {"blob:deadbeef": b"\xde\xad\xbe\xef", "hex:c3": None}  # source name -> BLOB id (None: TEXT X'C3')


@pytest.fixture
def odd_env(pg, template_db, tmp_path):
    """A small dataset whose auth.db holds sessions keyed by a BLOB and by a TEXT that is
    not UTF-8: the load stores them under repaired keys (recorded in migration.repairs)."""
    files = tmp_path / "files"
    demo_data.generate(files, emails=40, accounts=20, seed=13)
    with sqlite3.connect(files / "auth.db") as conn:
        account = conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("INSERT INTO sessions (id, account_id, created_at, expires_at, user_agent) VALUES "
                     "(?, ?, '2026-11-30 10:00:00', '2026-12-30 10:00:00', 'odd')", (b"\xde\xad\xbe\xef", account))
        conn.execute("INSERT INTO sessions (id, account_id, created_at, expires_at, user_agent) VALUES "
                     "(CAST(X'C3' AS TEXT), ?, '2026-11-30 10:00:00', '2026-12-30 10:00:00', 'odd')", (account,))
    conn.close()
    dbname = f"reverse_odd_{tmp_path.name[-30:].lower().replace('-', '_')}"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=template_db)
    janitor.drop()
    janitor.init()
    runs_dir = tmp_path / "runs"
    result = load.run_load(pg.conninfo(dbname), files / "emails.db", files / "auth.db", runs_dir, loader="copy",
                           progress=None)
    assert result.ok, result.report
    yield Env(pg.conninfo(dbname), files / "emails.db", files / "auth.db", runs_dir)
    janitor.drop()


def test_a_session_loaded_under_a_repaired_key_is_found_on_the_way_back(odd_env):
    env = odd_env
    target = {name: env.sql("SELECT migration.key_target('sessions', %s)", (name,))[0][0] for name in ODD_SESSIONS}
    assert all(env.sql("SELECT count(*) FROM mail.sessions WHERE id = %s", (t,))[0][0] == 1 for t in target.values())
    assert all(t != name for name, t in target.items())  # the repaired key is not the source name
    capture_install(env.dsn)
    start(env.dsn)
    env.sql("UPDATE mail.sessions SET user_agent = 'changed in postgres mode' WHERE id = %s", (target["blob:deadbeef"],))
    env.sql("DELETE FROM mail.sessions WHERE id = %s", (target["hex:c3"],))
    with ReverseSync(env.dsn, env.emails_db, env.auth_db) as sync:
        sync.drain()
    with sqlite3.connect(env.auth_db) as conn:
        conn.text_factory = bytes
        odd = conn.execute("SELECT quote(id), user_agent FROM sessions WHERE user_agent LIKE '%odd%' "
                           "OR user_agent LIKE 'changed%' ORDER BY 1").fetchall()
    conn.close()
    # the BLOB-keyed row changed in place (its key as it was), the non-UTF-8 one deleted, no row added
    assert odd == [(b"X'DEADBEEF'", b"changed in postgres mode")], odd
    result = env.validate()
    assert result.ok, json.dumps(result.report["differences"][:10], indent=1, default=str)
