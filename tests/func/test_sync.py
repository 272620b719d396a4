"""`mailmig sync` on real SQLite files and a real PostgreSQL: changes captured by the
triggers reach mail.*, through the load's rules, exactly once in effect.

One load (capture installed first) is made per module into a database that each test
clones, with a copy of the files as they were loaded (the same capture install id), so
that every test starts from "loaded, sync position recorded".
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig import capture, sync
from mailmig.demo_data import generate
from mailmig.legacy_app import LegacyApp
from mailmig.load import run_load
from mailmig.mapping import load_mapping
from mailmig.runlock import RunLockBusy, exclusive_run
from mailmig.validate import run_validate

END = date(2026, 11, 1)
TABLES = load_mapping()
EMAILS_TABLES = capture.tables_of(TABLES, "emails_db")
AUTH_TABLES = capture.tables_of(TABLES, "auth_db")
BASE_DB = "mailmig_sync_base"
SETTINGS = {"batch_rows": 5000, "poll_seconds": 0.05, "prune_rows": 1000, "busy_timeout_ms": 5000,
            "keep_history": "7 days", "progress_seconds": 0.5}
PROJECT = Path(__file__).resolve().parents[2]


def connect(path: Path, **kw):
    """A SQLite connection closed at the end of the block (sqlite3's `with` only commits)."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None, **kw))


@dataclass
class Setup:
    dsn: str
    emails: Path
    auth: Path
    runs: Path
    pg: object

    def sync(self, **settings):
        return sync.run_sync(self.dsn, self.emails, self.auth, self.runs, {**SETTINGS, **settings}, progress=None)

    def validate(self):
        return run_validate(self.dsn, self.runs, source="live", emails_db=self.emails, auth_db=self.auth,
                            progress=None)

    def query(self, text, params=None):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(text, params).fetchall()

    def app(self) -> LegacyApp:
        return LegacyApp(self.emails, self.auth, seed=int.from_bytes(os.urandom(4), "big"))

    def changelog_rows(self, path: Path, past: int = 0) -> int:
        with connect(path) as conn:
            return conn.execute("SELECT count(*) FROM mailmig_changelog WHERE seq > ?", (past,)).fetchone()[0]

    def position(self, source: str) -> int:
        return self.query("SELECT seq FROM migration.sync_position WHERE source = %s", (source,))[0][0]


def load_with_capture(dsn: str, emails: Path, auth: Path, runs: Path) -> dict:
    """Install capture, then load: the load records where the sync starts."""
    capture.install(emails, EMAILS_TABLES)
    capture.install(auth, AUTH_TABLES)
    result = run_load(dsn, emails, auth, runs, loader="copy", progress=None)
    assert result.ok, result.report.get("error")
    return result.report["sync_start"]


@pytest.fixture(scope="module")
def base(pg, template_db, tmp_path_factory):
    """Files with capture installed, loaded into BASE_DB, the sync position recorded."""
    out = tmp_path_factory.mktemp("sync-base")
    generate(out, emails=300, accounts=200, seed=13, end=END)
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=BASE_DB,
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    dsn = pg.conninfo(BASE_DB)
    started = load_with_capture(dsn, out / "emails.db", out / "auth.db", out / "runs")
    assert {s["outcome"] for s in started.values()} == {"started"}
    yield out
    janitor.drop()


@pytest.fixture
def setup(pg, base, tmp_path) -> Setup:
    for name in ("emails.db", "auth.db"):
        shutil.copyfile(base / name, tmp_path / name)
    dbname = f"mailmig_sync_{tmp_path.name}"[:60]
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=BASE_DB)
    janitor.drop()
    janitor.init()
    yield Setup(pg.conninfo(dbname), tmp_path / "emails.db", tmp_path / "auth.db", tmp_path / "runs", pg)
    janitor.drop()


# -- the changes arrive ------------------------------------------------------------------


def test_inserts_updates_deletes_arrive_and_validate_live_passes(setup):
    app = setup.app()
    for i in range(120):
        app.insert_email()
        if i % 3 == 0:
            app.flag_update()
        if i % 10 == 0:
            app.retention(2)
            app.login()
            app.new_account()
        if i % 30 == 0:
            app.expire_account()
    app.close()
    result = setup.sync()
    assert result.ok
    totals = result.report["totals"]
    assert totals["changes"] > 200 and totals["deleted"] > 0 and totals["loaded"] > 100
    assert setup.validate().ok
    # every applied change was pruned but the last one (the anchor of the position), and
    # the position is the file's high-water mark
    for path, source in ((setup.emails, "emails_db"), (setup.auth, "auth_db")):
        with connect(path) as conn:
            high = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'mailmig_changelog'").fetchone()[0]
            assert conn.execute("SELECT seq FROM mailmig_changelog").fetchall() == [(high,)]
        assert setup.position(source) == high
    status = {r[0]: r for r in setup.query("SELECT source, backlog, lag_seconds FROM migration.sync_status()")}
    assert status["emails_db"][1:] == (0, 0) and status["auth_db"][1:] == (0, 0)
    # nothing new: a second sync applies nothing and changes nothing
    again = setup.sync()
    assert again.ok and again.report["totals"]["changes"] == 0
    # capture status, with PostgreSQL reachable: the position and what is past it
    with connect(setup.emails) as conn:
        conn.execute("UPDATE emails SET is_read = 1 WHERE id = (SELECT min(id) FROM emails)")
    status_cli = subprocess.run([sys.executable, "-m", "mailmig.cli", "capture", "status", "--emails-db",
                                 str(setup.emails), "--auth-db", str(setup.auth)], capture_output=True, text=True,
                                env={**os.environ, "POSTGRES_DSN": setup.dsn}, cwd=PROJECT, timeout=60)
    assert status_cli.returncode == 0, status_cli.stdout + status_cli.stderr
    assert f"sync position: seq {setup.position('emails_db'):,}" in status_cli.stdout
    assert "backlog 1 changes" in status_cli.stdout
    assert re.search(r"\(set by \d{8}T\d{6}Z-sync-[0-9a-f]{6}\)", status_cli.stdout)  # the run that set it


def test_an_email_whose_created_at_changed_moves_month(setup):
    with connect(setup.emails) as conn:
        key = conn.execute("SELECT id FROM emails WHERE created_at LIKE '2026-10-%' LIMIT 1").fetchone()[0]
        conn.execute("UPDATE emails SET created_at = '2026-09-03 10:00:00' WHERE id = ?", (key,))
    assert setup.sync().ok
    assert setup.query("SELECT tableoid::regclass::text FROM mail.emails WHERE id = %s", (key,)) \
        == [("mail.emails_p202609",)]
    assert setup.validate().ok


def test_an_account_update_keeps_its_sessions_and_a_gone_account_takes_them_along(setup):
    with connect(setup.auth) as conn:
        kept, dropped = [r[0] for r in conn.execute(
            "SELECT account_id FROM sessions WHERE account_id < 9000000 GROUP BY account_id LIMIT 2")]
        conn.execute("UPDATE accounts SET last_login_at = '2026-11-20 08:00:00', email = upper(email) "
                     "WHERE id = ?", (kept,))
        # the app deleted the account without its sessions (foreign keys off): SQLite keeps
        # them, PostgreSQL cannot, so they end rejected like the load rejects such sessions
        conn.execute("DELETE FROM accounts WHERE id = ?", (dropped,))
        orphans = [r[0] for r in conn.execute("SELECT id FROM sessions WHERE account_id = ?", (dropped,))]
    before = setup.query("SELECT count(*) FROM mail.sessions WHERE account_id = %s", (kept,))[0][0]
    result = setup.sync()
    assert result.ok and result.report["totals"]["pulled"] >= len(orphans)
    assert before > 0
    assert setup.query("SELECT count(*) FROM mail.sessions WHERE account_id = %s", (kept,))[0][0] == before
    assert setup.query("SELECT source_key, sqlstate FROM migration.rejects WHERE source_table = 'sessions' "
                       "AND source_key = ANY(%s)", (orphans,)) == [(o, "23503") for o in sorted(orphans)]
    assert setup.validate().ok


# -- the traps of SQLite (issue 12, item 4) ------------------------------------------------


def test_insert_or_replace_deleting_a_row_on_another_unique_column_is_reconciled(setup):
    with connect(setup.emails) as conn:
        victim, message_id = conn.execute("SELECT id, message_id FROM emails WHERE id < 9000000 "
                                          "ORDER BY id LIMIT 1 OFFSET 7").fetchone()
        # REPLACE removes the row holding that message_id; no DELETE trigger fires for it
        conn.execute("INSERT OR REPLACE INTO emails (message_id, from_address, to_address, created_at) "
                     "VALUES (?, 'new@x.test', 'to@x.test', '2026-10-20 10:00:00')", (message_id,))
        logged = [r[0] for r in conn.execute("SELECT source_key FROM mailmig_changelog")]
    assert victim not in logged  # the trap: the deletion never reached the changelog
    with connect(setup.auth) as conn:
        acc_victim, email = conn.execute("SELECT id, email FROM accounts WHERE id < 9000000 LIMIT 1").fetchone()
        conn.execute("INSERT OR REPLACE INTO accounts (email, token) VALUES (?, 'fresh-token')", (email.upper(),))
        tok_victim, token = conn.execute("SELECT id, token FROM accounts WHERE token IS NOT NULL "
                                         "AND id < 9000000 ORDER BY id DESC LIMIT 1").fetchone()
        conn.execute("INSERT OR REPLACE INTO accounts (email, token) VALUES ('other@x.test', ?)", (token,))
    # a row the load rejected (not in mail.*, only in migration.rejects) replaced the same way
    rejected = setup.query("SELECT source_key, original->'message_id'->>'v' FROM migration.rejects "
                           "WHERE source_table = 'emails' AND original->'message_id' ? 'v' "
                           "AND sqlstate = '22007' ORDER BY source_key LIMIT 1")[0]
    with connect(setup.emails) as conn:
        conn.execute("INSERT OR REPLACE INTO emails (message_id, from_address, to_address, created_at) "
                     "VALUES (?, 'new@x.test', 'to@x.test', '2026-10-21 10:00:00')", (rejected[1],))
    result = setup.sync()
    assert result.ok and result.report["totals"]["pulled"] >= 4
    assert setup.query("SELECT count(*) FROM mail.emails WHERE id = %s", (victim,)) == [(0,)]
    assert setup.query("SELECT count(*) FROM migration.rejects WHERE source_table = 'emails' AND source_key = %s",
                       (rejected[0],)) == [(0,)]
    assert setup.query("SELECT count(*) FROM mail.accounts WHERE id IN (%s, %s)", (acc_victim, tok_victim)) == [(0,)]
    assert setup.validate().ok


def test_a_deleted_and_reinserted_id_ends_as_the_new_row(setup):
    with connect(setup.emails) as conn:
        key = conn.execute("SELECT id FROM emails WHERE id < 9000000 LIMIT 1 OFFSET 3").fetchone()[0]
        conn.execute("DELETE FROM emails WHERE id = ?", (key,))
        conn.execute("INSERT INTO emails (id, message_id, from_address, to_address, subject, created_at) "
                     "VALUES (?, '<reborn@x>', 'a@x.test', 'b@x.test', 'second life', '2026-10-30 09:00:00')",
                     (key,))
    assert setup.sync().ok
    assert setup.query("SELECT subject, message_id FROM mail.emails WHERE id = %s", (key,)) \
        == [("second life", "<reborn@x>")]
    # and across two syncs: deleted (applied), then the id inserted again
    with connect(setup.emails) as conn:
        conn.execute("DELETE FROM emails WHERE id = ?", (key,))
    assert setup.sync().ok
    with connect(setup.emails) as conn:
        conn.execute("INSERT INTO emails (id, message_id, from_address, to_address, subject, created_at) "
                     "VALUES (?, '<third@x>', 'a@x.test', 'b@x.test', 'third life', '2026-10-31 09:00:00')", (key,))
    assert setup.sync().ok
    assert setup.query("SELECT subject FROM mail.emails WHERE id = %s", (key,)) == [("third life",)]
    assert setup.validate().ok


def test_rowid_reuse_and_vacuum_of_a_table_without_integer_primary_key(setup):
    with connect(setup.auth) as conn:
        rowid, old = conn.execute("SELECT rowid, id FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()
        account = conn.execute("SELECT account_id FROM sessions WHERE id = ?", (old,)).fetchone()[0]
        conn.execute("DELETE FROM sessions WHERE id = ?", (old,))
        conn.execute("INSERT INTO sessions (id, account_id, user_agent) VALUES ('new-session', ?, 'ua')", (account,))
        assert conn.execute("SELECT rowid FROM sessions WHERE id = 'new-session'").fetchone()[0] == rowid
        conn.execute("DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions ORDER BY rowid LIMIT 10)")
        conn.execute("VACUUM")
        conn.execute("UPDATE sessions SET ip = '203.0.113.5' WHERE id = 'new-session'")
    assert setup.sync().ok
    assert setup.query("SELECT count(*) FROM mail.sessions WHERE id = %s", (old,)) == [(0,)]
    assert setup.query("SELECT ip FROM mail.sessions WHERE id = 'new-session'") == [("203.0.113.5",)]
    assert setup.validate().ok


def test_a_retention_burst_of_30000_deletes_in_one_transaction(setup):
    with connect(setup.emails) as conn:
        conn.execute("BEGIN")
        conn.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
                        INSERT INTO emails (id, message_id, from_address, to_address, subject, body, created_at)
                        SELECT 5000000 + i, '<burst' || i || '@x>', 'a@x.test', 'b@x.test', 's', 'b',
                               '2026-10-15 12:00:00' FROM n""")
        conn.execute("COMMIT")
    inserted = setup.sync()
    assert inserted.ok and inserted.report["totals"]["loaded"] == 30000
    with connect(setup.emails) as conn:
        conn.execute("DELETE FROM emails WHERE id > 5000000 AND id <= 5030000")  # one transaction
    deleted = setup.sync()
    assert deleted.ok
    assert deleted.report["totals"]["deleted"] == 30000 and deleted.report["totals"]["batches"] == 6
    assert setup.query("SELECT count(*) FROM mail.emails WHERE id > 5000000 AND id <= 5030000") == [(0,)]
    assert setup.validate().ok


def test_a_changelog_row_whose_key_no_longer_exists(setup):
    with connect(setup.emails) as conn:
        conn.execute("INSERT INTO emails (id, message_id, from_address, to_address, created_at) "
                     "VALUES (6000001, '<brief@x>', 'a@x', 'b@x', '2026-10-01 00:00:00')")
        conn.execute("DELETE FROM emails WHERE id = 6000001")
        # and a key no row ever had
        conn.execute("INSERT INTO mailmig_changelog (source_table, source_key, op, at) "
                     "VALUES ('emails', 6000002, 'U', 0)")
    result = setup.sync()
    assert result.ok and result.report["totals"]["deleted"] == 2
    assert setup.query("SELECT outcome FROM migration.sync_applied_keys WHERE source_key IN ('6000001', '6000002')") \
        == [("deleted",), ("deleted",)]
    assert setup.validate().ok


def test_a_row_the_rules_reject_is_recorded_and_the_sync_goes_on(setup):
    with connect(setup.emails) as conn:
        bad = conn.execute("SELECT id FROM emails WHERE id < 9000000 LIMIT 1 OFFSET 11").fetchone()[0]
        good = conn.execute("SELECT id FROM emails WHERE id < 9000000 LIMIT 1 OFFSET 12").fetchone()[0]
        conn.execute("UPDATE emails SET created_at = 'yesterday' WHERE id = ?", (bad,))
        conn.execute("UPDATE emails SET starred = 'maybe' WHERE id = ?", (good,))
    result = setup.sync()
    assert result.ok and result.report["totals"]["rejected"] == 1 and result.report["totals"]["repaired"] == 1
    assert setup.query("SELECT sqlstate FROM migration.rejects WHERE source_table = 'emails' AND source_key = %s",
                       (str(bad),)) == [("22007",)]
    assert setup.query("SELECT count(*) FROM mail.emails WHERE id = %s", (bad,)) == [(0,)]
    assert setup.query("SELECT rule FROM migration.repairs WHERE source_key = %s", (str(good),)) \
        == [("flag_unreadable_null",)]
    assert setup.validate().ok
    with connect(setup.emails) as conn:  # repaired in the source: loaded again, the reject gone
        conn.execute("UPDATE emails SET created_at = '2026-10-02 10:00:00' WHERE id = ?", (bad,))
    assert setup.sync().ok
    assert setup.query("SELECT count(*) FROM migration.rejects WHERE source_key = %s", (str(bad),)) == [(0,)]
    assert setup.validate().ok


@pytest.mark.parametrize("how", ["uninstalled", "reinstalled", "trigger dropped", "pause marker committed",
                                 "file restored"])
def test_a_changelog_that_cannot_be_trusted_is_refused(setup, how):
    with connect(setup.emails) as conn:
        conn.execute("UPDATE emails SET is_read = 1 WHERE id = (SELECT min(id) FROM emails)")
    backup = setup.emails.with_suffix(".backup")
    with connect(setup.emails) as conn, connect(backup) as copy:
        conn.backup(copy)  # a copy of the file at seq 1
    with connect(setup.emails) as conn:
        conn.execute("UPDATE emails SET is_read = 0 WHERE id = (SELECT min(id) FROM emails)")
    assert setup.sync().ok
    position = setup.position("emails_db")
    assert position == 2
    expected = {
        "uninstalled": r"change capture is not installed",
        "reinstalled": r"reinstalled behind the sync's back \(install \w+, the sync position belongs to install",
        "trigger dropped": r"change capture is INCOMPLETE \(missing mailmig_capture_emails_update\)",
        "pause marker committed": r"mailmig_capture_pause holds 1 committed row",
        "file restored": r"the changelog no longer holds the last applied change \(seq 2 of .*another change "
                         r"has its seq\): the file was replaced or restored",
    }[how]
    if how == "uninstalled":
        capture.uninstall(setup.emails, EMAILS_TABLES)
    elif how == "reinstalled":
        capture.uninstall(setup.emails, EMAILS_TABLES)
        capture.install(setup.emails, EMAILS_TABLES)
    elif how == "trigger dropped":
        with connect(setup.emails) as conn:
            conn.execute("DROP TRIGGER mailmig_capture_emails_update")
    elif how == "pause marker committed":
        with connect(setup.emails) as conn:
            conn.execute("INSERT INTO mailmig_capture_pause VALUES ('forgot to clear')")
    else:  # the file restored from the older copy: same install; the next change takes seq 2
        with connect(backup) as copy, connect(setup.emails) as conn:
            copy.backup(conn)
    with connect(setup.emails) as conn:
        conn.execute("DELETE FROM emails WHERE id = (SELECT max(id) FROM emails WHERE id < 9000000)")
    with pytest.raises(sync.SyncError, match=expected):
        setup.sync()
    assert setup.position("emails_db") == position  # nothing applied


def test_a_writer_suppressing_capture_is_not_echoed_back(setup):
    """The reverse direction of a rollback writes PostgreSQL's changes into the files
    inside capture.suppressed(): the sync must not send them back."""
    with connect(setup.emails) as conn:
        key = conn.execute("SELECT id FROM emails WHERE id < 9000000 LIMIT 1").fetchone()[0]
        conn.execute("BEGIN IMMEDIATE")
        with capture.suppressed(conn, "rollback"):
            conn.execute("UPDATE emails SET subject = 'written back from PostgreSQL' WHERE id = ?", (key,))
        conn.execute("COMMIT")
    result = setup.sync()
    assert result.ok and result.report["totals"]["changes"] == 0
    assert setup.query("SELECT subject <> 'written back from PostgreSQL' FROM mail.emails WHERE id = %s",
                       (key,)) == [(True,)]


def test_only_one_sync_or_load_at_a_time(setup):
    with exclusive_run(setup.dsn, "load", "a-load-in-progress"):
        with pytest.raises(RunLockBusy, match="mailmig load a-load-in-progress"):
            setup.sync()


def test_applied_keys_since_a_point_and_the_status_from_sql(setup):
    point = setup.query("SELECT migration.sync_point()")[0][0]
    with connect(setup.emails) as conn:
        keys = [r[0] for r in conn.execute("SELECT id FROM emails WHERE id < 9000000 LIMIT 3")]
        conn.execute("UPDATE emails SET is_read = 1 - is_read WHERE id IN (?, ?)", keys[:2])
        conn.execute("DELETE FROM emails WHERE id = ?", keys[2:])
    assert setup.sync().ok
    since = setup.query("SELECT source_table, source_key, outcome FROM migration.sync_keys_since(%s) "
                        "ORDER BY 2", (point,))
    assert since == sorted([("emails", str(keys[0]), "loaded"), ("emails", str(keys[1]), "loaded"),
                            ("emails", str(keys[2]), "deleted")], key=lambda r: r[1])
    assert setup.query("SELECT migration.sync_caught_up('emails_db', %s)", (setup.position("emails_db"),)) == [(True,)]
    # history pruned past the point: refused, never answered in part
    setup.query("SELECT migration.sync_prune_history('0 seconds', now() + interval '1 second')")
    with pytest.raises(psycopg.errors.RaiseException, match="pruned"):
        setup.query("SELECT * FROM migration.sync_keys_since(%s)", (point,))


# -- killed anywhere, re-run, the same state ---------------------------------------------


def _cli(setup: Setup, *extra: str, faults: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "POSTGRES_DSN": setup.dsn, "MAILMIG_RUNS_DIR": str(setup.runs)}
    env.pop("MAILMIG_FAULTS", None)
    if faults:
        env["MAILMIG_FAULTS"] = faults
    return subprocess.Popen([sys.executable, "-m", "mailmig.cli", "sync", "--emails-db", str(setup.emails),
                             "--auth-db", str(setup.auth), "--batch-rows", "50", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT)


def _wait_for(proc: subprocess.Popen, marker: str) -> str:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never printed:\n{''.join(seen)}")


def _some_changes(setup: Setup) -> None:
    app = setup.app()
    for i in range(60):
        app.insert_email()
        app.flag_update()
        if i % 6 == 0:
            app.retention(1)
            app.login()
    app.close()


@pytest.mark.parametrize("point", sync.FAULT_POINTS)
def test_driver_killed_then_rerun_reaches_the_source_state(setup, point):
    _some_changes(setup)
    changes = setup.changelog_rows(setup.emails)
    proc = _cli(setup, faults=f"{point}=kill")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL and f"fault {point}: kill" in out, out
    # where the kill landed: before the commit nothing moved; after it, the position moved
    # but the applied changelog rows are still in the file (not pruned yet)
    assert setup.changelog_rows(setup.emails) == changes
    assert setup.position("emails_db") == (50 if point == "sync_batch_committed" else 0)
    rerun = _cli(setup)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    assert setup.changelog_rows(setup.emails, past=setup.position("emails_db")) == 0
    assert setup.changelog_rows(setup.emails) == 1  # only the anchor is left
    assert setup.validate().ok


def test_postgresql_restart_inside_a_batch_then_rerun_reaches_the_source_state(setup):
    _some_changes(setup)
    # inside the first batch's transaction, before its commit
    proc = _cli(setup, faults="sync_batch_applied=sleep:2")
    _wait_for(proc, "fault sync_batch_applied: sleep")
    setup.pg.cluster.stop()  # fast shutdown: the sync's session is cut
    setup.pg.cluster.start()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert setup.position("emails_db") == 0  # the batch did not commit
    rerun = _cli(setup)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    assert setup.validate().ok


# -- --follow with a writer, the drain of a cut-over ----------------------------------------


def test_follow_applies_while_a_writer_writes_and_drain_waits_for_it(setup):
    follower = _cli(setup, "--follow")
    _wait_for(follower, "following")
    writer = subprocess.Popen([sys.executable, "-m", "mailmig.legacy_app", "--emails-db", str(setup.emails),
                               "--auth-db", str(setup.auth), "--emails-per-s", "40", "--updates-per-s", "20",
                               "--logins-per-s", "5", "--deletes-per-s", "3", "--seconds", "2.5"],
                              stdout=subprocess.PIPE, text=True)
    writer.communicate(timeout=60)
    assert writer.returncode == 0
    # the cut-over's drain: the follower holds the lock, so drain waits for its position
    targets = sync.drain(setup.dsn, setup.emails, setup.auth, setup.runs, SETTINGS, timeout=30)
    assert targets["emails_db"] > 0
    status = setup.query("SELECT source, following, heartbeat_age_seconds < 5 FROM migration.sync_status()")
    assert status == [("auth_db", True, True), ("emails_db", True, True)]
    # PostgreSQL restarted under it: the follower reconnects and goes on from its position
    setup.pg.cluster.stop()
    setup.pg.cluster.start()
    with connect(setup.emails) as conn:
        conn.execute("UPDATE emails SET starred = 1 - starred WHERE id = (SELECT max(id) FROM emails)")
        seq = conn.execute("SELECT max(seq) FROM mailmig_changelog").fetchone()[0]
    deadline = time.monotonic() + 60
    while not setup.query("SELECT migration.sync_caught_up('emails_db', %s)", (seq,))[0][0]:
        assert time.monotonic() < deadline, "the follower did not come back after the restart"
        time.sleep(0.2)
    assert setup.query("SELECT pid, following FROM migration.sync_status() WHERE source = 'emails_db'") \
        == [(follower.pid, True)]  # the follower applied it, not someone else
    follower.send_signal(signal.SIGTERM)
    out, _ = follower.communicate(timeout=60)
    assert follower.returncode == 0, out
    assert "PostgreSQL connection lost" in out and "reconnecting" in out
    assert "rows/s" in out and "lag" in out
    assert setup.validate().ok


def test_a_writer_throughout_capture_install_load_and_sync(pg, template_db, tmp_path):
    """Issue 12's "Done when": a real writer inserts, updates and deletes while capture is
    installed, the load runs and the sync runs; afterwards, with the writer stopped,
    validate against the quiet live source finds 0 differences."""
    generate(tmp_path, emails=300, accounts=200, seed=17, end=END)
    emails, auth, runs = tmp_path / "emails.db", tmp_path / "auth.db", tmp_path / "runs"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname="mailmig_sync_writer",
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    dsn = pg.conninfo("mailmig_sync_writer")
    writer = subprocess.Popen([sys.executable, "-m", "mailmig.legacy_app", "--emails-db", str(emails),
                               "--auth-db", str(auth), "--emails-per-s", "30", "--updates-per-s", "15",
                               "--deletes-per-s", "3", "--replaces-per-s", "1", "--moves-per-s", "1",
                               "--accounts-per-s", "2", "--logins-per-s", "3", "--expiries-per-s", "1"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert "legacy-app: writing" in writer.stdout.readline()
        time.sleep(0.5)
        started = load_with_capture(dsn, emails, auth, runs)
        assert {s["outcome"] for s in started.values()} == {"started"}
        during = sync.run_sync(dsn, emails, auth, runs, SETTINGS, progress=None)
        assert during.ok and during.report["totals"]["changes"] > 0
        time.sleep(0.5)
    finally:
        writer.terminate()
        out, _ = writer.communicate(timeout=30)
    assert writer.returncode == 0, out
    assert sync.run_sync(dsn, emails, auth, runs, SETTINGS, progress=None).ok
    result = run_validate(dsn, runs, source="live", emails_db=emails, auth_db=auth, progress=None)
    assert result.ok, result.report.get("difference_counts")
    janitor.drop()


def test_the_load_records_where_the_sync_starts_or_says_it_cannot(pg, base, template_db, tmp_path):
    for name in ("emails.db", "auth.db"):
        shutil.copyfile(base / name, tmp_path / name)
    emails, auth, runs = tmp_path / "emails.db", tmp_path / "auth.db", tmp_path / "runs"
    capture.uninstall(emails, EMAILS_TABLES)
    capture.uninstall(auth, AUTH_TABLES)
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname="mailmig_sync_start",
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    dsn = pg.conninfo("mailmig_sync_start")
    lines = []
    # 1. no capture: a later sync is impossible from this run, and the load says so
    first = run_load(dsn, emails, auth, runs, loader="copy", progress=lines.append)
    assert first.ok
    assert {s["outcome"] for s in first.report["sync_start"].values()} == {"no-capture"}
    assert any("a later sync is impossible from this load" in line for line in lines)
    # 2. capture installed now, but mail.* already holds the first load's rows, which the
    # changes made before the install may contradict: still no start
    capture.install(emails, EMAILS_TABLES)
    capture.install(auth, AUTH_TABLES)
    second = run_load(dsn, emails, auth, runs, loader="copy", progress=None)
    assert {s["outcome"] for s in second.report["sync_start"].values()} == {"impossible"}
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM migration.sync_position").fetchone() == (0,)
    janitor.drop()
    janitor.init()
    # 3. into an empty database: the start is the changelog position inside the snapshot;
    # a change made after the snapshot is in the changelog past it
    with connect(emails) as conn:
        conn.execute("UPDATE emails SET starred = 1 WHERE id = (SELECT min(id) FROM emails)")
    third = run_load(dsn, emails, auth, runs, loader="copy", progress=None)
    assert third.report["sync_start"]["emails_db"]["outcome"] == "started"
    assert third.report["sync_start"]["emails_db"]["seq"] == 1
    with connect(emails) as conn:
        conn.execute("UPDATE emails SET is_read = 1 WHERE id = (SELECT min(id) FROM emails)")
    # 4. a later load of the same capture install (it calls the same function): the position
    # stays where it is, and the changes after it are applied again, harmlessly
    with psycopg.connect(dsn) as conn:
        install = third.report["sync_start"]["emails_db"]["install_id"]
        assert conn.execute("SELECT migration.sync_start('emails_db', %s, 2, NULL, 'x', 'a-later-load', false)",
                            (install,)).fetchone() == ("kept",)
    result = sync.run_sync(dsn, emails, auth, runs, SETTINGS, progress=None)
    assert result.ok and result.report["totals"]["changes"] == 1
    assert run_validate(dsn, runs, source="live", emails_db=emails, auth_db=auth, progress=None).ok
    janitor.drop()


# -- validate --source live follows the sync (issue 12, item 5) ----------------------------


def _validate_cli(setup: Setup) -> tuple[int, str, dict]:
    import json

    env = {**os.environ, "POSTGRES_DSN": setup.dsn, "MAILMIG_RUNS_DIR": str(setup.runs),
           "EMAILS_DB": str(setup.emails), "AUTH_DB": str(setup.auth)}
    done = subprocess.run([sys.executable, "-m", "mailmig.cli", "validate", "--source", "live"],
                          capture_output=True, text=True, env=env, cwd=PROJECT, timeout=120)
    report = json.loads((setup.runs / "latest-validate" / "validate.json").read_text())
    return done.returncode, done.stdout, report


def test_validate_live_after_a_sync_of_a_quiet_source_exits_0(setup):
    _some_changes(setup)
    assert setup.sync().ok
    code, out, report = _validate_cli(setup)
    assert code == 0, out
    assert report["sync_point"] == setup.query("SELECT migration.sync_point()")[0][0] > 0
    assert report["in_flight"]["counts"] == {} and report["differences"] == []


def test_validate_live_reports_rows_newer_than_the_sync_position_apart(setup):
    assert setup.sync().ok
    # a real difference, made behind everybody's back in PostgreSQL: a row no source has
    # (the writer only touches rows of the file, so this one is never in flight)
    tampered = 7777777
    setup.query("INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at) "
                "VALUES (%s, '<extra@x>', 'a@x', 'b@x', '2026-10-10 10:00:00+00') RETURNING id", (tampered,))
    # and changes the sync has not applied yet, made by a writer process while validate runs
    writer = subprocess.Popen([sys.executable, "-m", "mailmig.legacy_app", "--emails-db", str(setup.emails),
                               "--auth-db", str(setup.auth), "--emails-per-s", "40", "--updates-per-s", "40",
                               "--deletes-per-s", "5", "--logins-per-s", "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert "legacy-app: writing" in writer.stdout.readline()
        time.sleep(0.5)
        code, out, report = _validate_cli(setup)
    finally:
        writer.terminate()
        writer.communicate(timeout=30)
    assert code == 1, out
    # the one real difference, and nothing else, among the differences
    assert [(d["table"], str(d["key"]), d["kind"]) for d in report["differences"]] == [("emails", str(tampered), "extra")]
    # the rows in flight are reported apart, and each one's key is past the sync position
    flight = report["in_flight"]
    assert sum(sum(c.values()) for c in flight["counts"].values()) > 10
    with connect(setup.emails) as e, connect(setup.auth) as a:
        waiting = {("emails", str(k)) for (k,) in e.execute("SELECT source_key FROM mailmig_changelog WHERE seq > 0")}
        waiting |= {(t, str(k)) for t, k in a.execute("SELECT source_table, source_key FROM mailmig_changelog")}
    assert {(d["table"], str(d["key"])) for d in flight["rows"]} <= waiting
    assert "in flight:" in out and "not differences" in out
    # once the sync has applied them, only the tampered row is left
    assert setup.sync().ok
    code, out, report = _validate_cli(setup)
    assert code == 1 and report["in_flight"]["counts"] == {}
    assert [str(d["key"]) for d in report["differences"]] == [str(tampered)]


def test_drain_without_a_follower_applies_everything_itself(setup):
    _some_changes(setup)
    with connect(setup.emails) as e, connect(setup.auth) as a:
        last = {"emails_db": e.execute("SELECT max(seq) FROM mailmig_changelog").fetchone()[0],
                "auth_db": a.execute("SELECT max(seq) FROM mailmig_changelog").fetchone()[0]}
    assert sync.drain(setup.dsn, setup.emails, setup.auth, setup.runs, SETTINGS, timeout=30) == last
    assert {s: setup.position(s) for s in last} == last
    started = time.monotonic()  # nothing left: it returns at once, running nothing
    assert sync.drain(setup.dsn, setup.emails, setup.auth, setup.runs, SETTINGS, timeout=30) == last
    assert time.monotonic() - started < 1.0
    assert setup.validate().ok


def test_session_keys_of_a_foreign_class_through_inserts_updates_and_pulls(setup):
    """sessions.id is a TEXT PRIMARY KEY that SQLite lets hold text that is not UTF-8, a
    blob, or text that looks like a prefixed key name: each is its own source key
    (docs/contracts.md, "Source keys"), also when its account's change pulls it in."""
    with connect(setup.auth) as conn:
        account = conn.execute("SELECT id FROM accounts WHERE id < 9000000 ORDER BY id LIMIT 1").fetchone()[0]
        for key in ("CAST(x'ff6b6579' AS TEXT)", "x'626c6f626b6579'", "'hex:notreally'"):
            conn.execute(f"INSERT INTO sessions (id, account_id, user_agent) VALUES ({key}, ?, 'ua')", (account,))
    assert setup.sync().ok
    assert setup.validate().ok
    with connect(setup.auth) as conn:
        conn.execute("UPDATE sessions SET ip = '198.51.100.9' WHERE account_id = ? AND typeof(id) <> 'null'",
                     (account,))
    assert setup.sync().ok
    assert setup.validate().ok
    with connect(setup.auth) as conn:  # the account changes: its sessions are pulled in by their keys in mail.*
        conn.execute("UPDATE accounts SET last_login_at = '2026-11-29 10:00:00' WHERE id = ?", (account,))
    result = setup.sync()
    assert result.ok and result.report["totals"]["pulled"] >= 3
    assert setup.validate().ok
