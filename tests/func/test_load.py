"""The load, end to end on generated legacy files: real SQLite, real pgloader, real PostgreSQL.

Every catalogued hostile row must end where the catalogue says (loaded, repaired by a
named rule, rejected with a SQLSTATE), every source row must be accounted for, a
re-run must change nothing, and a load killed at any point must, re-run, reach the
state of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import psycopg
import pytest

from mailmig.demo_data import generate
from mailmig.load import LoadError, run_load

END = date(2026, 11, 1)
PROJECT = Path(__file__).resolve().parents[2]

# The final state, without the columns that name a run or a time.
STATE_QUERIES = {
    "emails": "SELECT id, message_id, from_address, to_address, subject, body, html, headers, "
              "raw_email, size, starred, is_read, spam_score, created_at, tableoid::regclass "
              "FROM mail.emails ORDER BY id",
    "accounts": "SELECT * FROM mail.accounts ORDER BY id",
    "sessions": "SELECT * FROM mail.sessions ORDER BY id",
    "repairs": "SELECT source_table, source_key, column_name, rule, original, repaired "
               "FROM migration.repairs ORDER BY 1, 2, 3",
    "rejects": "SELECT source_table, source_key, reason, sqlstate, original "
               "FROM migration.rejects ORDER BY 1, 2",
    "sequences": "SELECT last_value FROM mail.emails_id_seq UNION ALL SELECT last_value FROM mail.accounts_id_seq",
}


def state(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return {name: conn.execute(f"SELECT md5(string_agg(q::text, '|')) || ':' || count(*) FROM ({query}) q")
                .fetchone()[0] for name, query in STATE_QUERIES.items()}


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    out = tmp_path_factory.mktemp("legacy")
    generate(out, emails=400, accounts=300, seed=7, end=END)
    return out


@pytest.fixture(scope="module")
def catalogue(legacy):
    return json.loads((legacy / "catalogue.json").read_text())


def load(dsn, legacy, tmp_path, loader="pgloader", **kw):
    return run_load(dsn, legacy / "emails.db", legacy / "auth.db", tmp_path / "runs",
                    loader=loader, progress=None, **kw)


@pytest.mark.parametrize("loader", ["pgloader", "copy"])
def test_every_source_row_is_accounted_for(dsn, legacy, tmp_path, loader):
    result = load(dsn, legacy, tmp_path, loader)
    assert result.ok, result.report.get("error")
    report = json.loads((result.run.dir / "report.json").read_text())
    with sqlite3.connect(legacy / "emails.db") as e, sqlite3.connect(legacy / "auth.db") as a:
        sources = {"emails": e.execute("SELECT count(*) FROM emails").fetchone()[0],
                   "accounts": a.execute("SELECT count(*) FROM accounts").fetchone()[0],
                   "sessions": a.execute("SELECT count(*) FROM sessions").fetchone()[0]}
    with psycopg.connect(dsn) as conn:
        for table, source in sources.items():
            t = report["tables"][table]
            assert t["source"] == source
            assert t["loaded"] + t["rejected"] == source, table
            in_pg = conn.execute(f"SELECT count(*) FROM mail.{table}").fetchone()[0]
            rejected = conn.execute("SELECT count(*) FROM migration.rejects WHERE source_table = %s",
                                    (table,)).fetchone()[0]
            assert (in_pg, rejected) == (t["loaded"], t["rejected"])
            assert in_pg + rejected == source
    # snapshot, manifest, archive and the latest-load pointer
    snap = result.run.dir / "snapshot"
    manifest = json.loads((snap / "manifest.json").read_text())
    assert manifest["files"]["emails.db"]["tables"]["emails"] == sources["emails"]
    assert (snap / "snapshot.tar.gz").stat().st_size > 0
    assert (tmp_path / "runs" / "latest-load").resolve() == result.run.dir
    # the audit names the unmapped tables and counts the hostile values per column
    assert "emails_fts" in report["unmapped_tables"]["emails.db"]
    emails_audit = next(a for a in report["audit"] if a["table"] == "emails")
    assert emails_audit["issues"]["body"]["invalid_utf8"] >= 1


def test_each_hostile_kind_ends_where_the_catalogue_says(dsn, legacy, tmp_path, catalogue):
    assert load(dsn, legacy, tmp_path).ok
    wrong = []
    with psycopg.connect(dsn) as conn:
        for entry in catalogue:
            table, key, column = entry["table"], str(entry["key"]), entry["column"]
            key_sql = "id = %s::bigint" if table != "sessions" else "id = %s"
            # a key of another storage class than its column's has another id in mail.*
            target = entry.get("target", key)
            loaded = conn.execute(f"SELECT count(*) FROM mail.{table} WHERE {key_sql}", (target,)).fetchone()[0]
            reject = conn.execute("SELECT sqlstate FROM migration.rejects WHERE source_table = %s "
                                  "AND source_key = %s", (table, key)).fetchone()
            repair = conn.execute("SELECT rule FROM migration.repairs WHERE source_table = %s "
                                  "AND source_key = %s AND column_name = %s", (table, key, column)).fetchone()
            if loaded and not reject:
                ended = f"repaired:{repair[0]}" if repair else "loaded"
            elif reject and not loaded:
                ended = f"rejected:{reject[0]}"
            else:
                ended = f"loaded={loaded} rejected={reject}"
            if ended != entry["expected"]:
                wrong.append(f"{entry['kind']} ({table} {key}.{column}): expected {entry['expected']}, got {ended}")
    assert not wrong, "\n".join(wrong)


def test_repairs_keep_the_original_bytes(dsn, legacy, tmp_path):
    assert load(dsn, legacy, tmp_path).ok
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT source_key, original FROM migration.repairs "
                            "WHERE source_table = 'emails' AND column_name = 'body'").fetchall()
    assert rows
    src = sqlite3.connect(legacy / "emails.db")
    for key, original in rows:
        raw, kind = src.execute("SELECT CAST(body AS BLOB), typeof(body) FROM emails WHERE id = ?",
                                (int(key),)).fetchone()
        assert original["t"] == kind
        assert bytes.fromhex(original["hex"]) == raw


def test_a_3mb_body_is_stored_whole_and_searchable(dsn, legacy, tmp_path, catalogue):
    assert load(dsn, legacy, tmp_path).ok
    key = next(e["key"] for e in catalogue if e["kind"] == "body_3mb")
    with psycopg.connect(dsn) as conn:
        length, = conn.execute("SELECT length(body) FROM mail.emails WHERE id = %s", (key,)).fetchone()
        first_word = conn.execute("SELECT split_part(body, ' ', 1) FROM mail.emails WHERE id = %s",
                                  (key,)).fetchone()[0]
        found = conn.execute("SELECT id FROM mail.search_emails(%s)", (first_word,)).fetchall()
    src = sqlite3.connect(legacy / "emails.db")
    assert length == src.execute("SELECT length(body) FROM emails WHERE id = ?", (key,)).fetchone()[0]
    assert length >= 3_000_000
    assert (int(key),) in found


def test_rerun_adds_nothing_and_loses_nothing(dsn, legacy, tmp_path):
    first = load(dsn, legacy, tmp_path, "copy")
    assert first.ok
    before = state(dsn)
    second = load(dsn, legacy, tmp_path, "copy")
    assert second.ok
    assert state(dsn) == before
    assert second.report["tables"] == first.report["tables"]


def test_pgloader_and_copy_reach_the_same_state(pg, dsn, legacy, tmp_path):
    assert load(dsn, legacy, tmp_path, "pgloader").ok
    via_pgloader = state(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE mail.emails, mail.accounts, mail.sessions, mail.message_id_guard, "
                     "migration.repairs, migration.rejects CASCADE")
        conn.execute("SELECT setval('mail.emails_id_seq', 1, false), setval('mail.accounts_id_seq', 1, false)")
    assert load(dsn, legacy, tmp_path, "copy").ok
    assert state(dsn) == via_pgloader


SMALL_RANGES = 5  # load.merge_chunk_rows of the kill tests: the emails merge in ~80 ranges


def _cli(dsn: str, legacy: Path, runs: Path, loader: str, chunk_rows: int = SMALL_RANGES,
         **env_extra) -> subprocess.Popen:
    config = runs.parent / f"mailmig-{chunk_rows}.yaml"
    config.write_text(f"load:\n  merge_chunk_rows: {chunk_rows}\n")
    env = dict(os.environ, POSTGRES_DSN=dsn, MAILMIG_RUNS_DIR=str(runs), MAILMIG_CONFIG=str(config),
               **env_extra)
    return subprocess.Popen(
        [sys.executable, "-m", "mailmig.cli", "load", "--emails-db", str(legacy / "emails.db"),
         "--auth-db", str(legacy / "auth.db"), "--loader", loader, "--merge-jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=PROJECT, text=True)


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM mail.{table}").fetchone()[0]


def _wait_for_rows(dsn: str, table: str, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Poll until the merge of `table` has committed some range; its row count then."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(f"SELECT count(*) FROM mail.{table}").fetchone()[0]
            if rows:
                return rows
            assert proc.poll() is None, "the load ended before the merge of " + table + " began"
            time.sleep(0.005)
    raise AssertionError(f"no range of {table} was committed within {timeout} s")


def _sessions_gone(dsn: str, timeout: float = 30) -> None:
    """Wait until no other session is connected to the test's database: a killed driver's
    backends finish (and commit) the statement they were running before they notice."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                           (dbname,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the killed driver's sessions did not end"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(pg, template_db, legacy, tmp_path_factory):
    """The state an uninterrupted load (default range size) reaches, in its own database,
    and its row counts."""
    from pytest_postgresql.janitor import DatabaseJanitor
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname="mailmig_test_reference",
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    dsn = pg.conninfo("mailmig_test_reference")
    assert run_load(dsn, legacy / "emails.db", legacy / "auth.db",
                    tmp_path_factory.mktemp("runs"), loader="copy", progress=None).ok
    counts = {t: _count(dsn, t) for t in ("emails", "accounts", "sessions")}
    with psycopg.connect(dsn) as conn:
        rejects = set(conn.execute("SELECT source_table, source_key, sqlstate FROM migration.rejects").fetchall())
    yield {"state": state(dsn), "counts": counts, "rejects": rejects}
    janitor.drop()


def _rerun_reaches(dsn, legacy, tmp_path, uninterrupted, loader="copy") -> None:
    rerun = _cli(dsn, legacy, tmp_path / "runs", loader)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert state(dsn) == uninterrupted["state"]


def test_driver_killed_after_the_snapshot_then_rerun_reaches_the_same_state(dsn, legacy, tmp_path, uninterrupted):
    proc = _cli(dsn, legacy, tmp_path / "runs", "copy")
    for line in proc.stdout:
        if "== audit" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    _sessions_gone(dsn)
    assert [_count(dsn, t) for t in ("emails", "accounts", "sessions")] == [0, 0, 0]  # before any range
    _rerun_reaches(dsn, legacy, tmp_path, uninterrupted)


@pytest.mark.parametrize("table", ["accounts", "emails"])
def test_driver_killed_mid_merge_then_rerun_reaches_the_same_state(dsn, legacy, tmp_path, uninterrupted, table):
    proc = _cli(dsn, legacy, tmp_path / "runs", "copy")
    _wait_for_rows(dsn, table, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    _sessions_gone(dsn)
    merged, total = _count(dsn, table), uninterrupted["counts"][table]
    assert 0 < merged < total, f"the kill did not land mid-merge: {merged} of {total} {table} merged"
    _rerun_reaches(dsn, legacy, tmp_path, uninterrupted)


def test_pgloader_killed_fails_loudly_then_rerun_reaches_the_same_state(dsn, legacy, tmp_path, uninterrupted):
    proc = _cli(dsn, legacy, tmp_path / "runs", "pgloader")
    killed = []
    for line in proc.stdout:
        if "== staging" in line:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not killed:
                found = subprocess.run(["pgrep", "-f", f"pgloader.*{tmp_path}"], capture_output=True, text=True)
                for pid in found.stdout.split():
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                time.sleep(0.01)
    proc.wait(timeout=120)
    proc.stdout.close()
    assert killed, "no pgloader process was running to kill"
    assert proc.returncode != 0  # a short staging is a failure, whatever pgloader said
    report = json.loads(max((tmp_path / "runs").glob("*-load-*/report.json")).read_text())
    assert "staging is short" in report["error"]  # the kill landed while it loaded
    assert [_count(dsn, t) for t in ("emails", "accounts", "sessions")] == [0, 0, 0]
    _rerun_reaches(dsn, legacy, tmp_path, uninterrupted, "pgloader")


def test_postgres_restart_during_merge_then_rerun_reaches_the_same_state(pg, dsn, legacy, tmp_path, uninterrupted):
    proc = _cli(dsn, legacy, tmp_path / "runs", "copy")
    _wait_for_rows(dsn, "emails", proc)
    pg.cluster.stop()  # fast shutdown: every session is cut
    pg.cluster.start()
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    merged, total = _count(dsn, "emails"), uninterrupted["counts"]["emails"]
    assert 0 < merged < total, f"the restart did not land mid-merge: {merged} of {total} emails merged"
    _rerun_reaches(dsn, legacy, tmp_path, uninterrupted)


class _GuardLocker(threading.Thread):
    """Once the merge of the emails has committed a range, holds a SHARE lock on
    mail.message_id_guard (every insert into mail.emails writes it) until the load ends (at
    most `hold` seconds): a real lock held by another session, which the merge's next
    ranges wait for."""

    def __init__(self, dsn: str, proc: subprocess.Popen, hold: float):
        super().__init__(daemon=True)
        self.dsn, self.proc, self.hold = dsn, proc, hold
        self.merged_before = None
        self.error = None

    def run(self) -> None:
        try:
            self.merged_before = _wait_for_rows(self.dsn, "emails", self.proc)
            with psycopg.connect(self.dsn) as conn:
                conn.execute("LOCK TABLE mail.message_id_guard IN SHARE MODE")
                deadline = time.monotonic() + self.hold
                while self.proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)  # held until the load gave up (or `hold` passed)
                conn.rollback()
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.parametrize("setting,sqlstate", [
    ("lock_timeout=300ms", "55P03"),       # lock_not_available
    ("statement_timeout=3s", "57014"),     # query_canceled
])
def test_a_passing_fault_mid_merge_fails_the_load_records_no_reject_and_rerun_is_clean(
        dsn, legacy, tmp_path, uninterrupted, setting, sqlstate):
    proc = _cli(dsn, legacy, tmp_path / "runs", "copy", PGOPTIONS=f"-c {setting}")
    locker = _GuardLocker(dsn, proc, hold=8.0)
    locker.start()
    out, _ = proc.communicate(timeout=300)
    locker.join(timeout=30)
    assert locker.error is None, locker.error
    assert proc.returncode != 0, out
    # the fault is named, as a passing one, at a block range of the emails
    assert "passing fault" in out and f"SQLSTATE {sqlstate}" in out and "staging.emails" in out, out
    _sessions_gone(dsn)
    merged, total = _count(dsn, "emails"), uninterrupted["counts"]["emails"]
    assert 0 < locker.merged_before <= merged < total, (locker.merged_before, merged, total)
    with psycopg.connect(dsn) as conn:
        rejects = set(conn.execute("SELECT source_table, source_key, sqlstate FROM migration.rejects").fetchall())
    # no reject for the fault: every reject is one the uninterrupted load records too
    assert not {r for r in rejects if r[2] == sqlstate}
    assert rejects <= uninterrupted["rejects"]
    _rerun_reaches(dsn, legacy, tmp_path, uninterrupted)


def test_a_second_load_fails_at_once_naming_the_running_one_which_then_completes(
        dsn, legacy, tmp_path, uninterrupted):
    first = _cli(dsn, legacy, tmp_path / "runs", "copy", chunk_rows=2)  # ranges of 2 rows: a long merge
    first_line = first.stdout.readline()  # "load run <id> (<dir>)"
    run_id = first_line.split()[2]
    _wait_for_rows(dsn, "emails", first)  # mid-merge: staging full, ranges being committed
    started = time.monotonic()
    second = _cli(dsn, legacy, tmp_path / "runs2", "copy")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 1, out
    assert time.monotonic() - started < 30  # at once (the interpreter's start is most of it)
    assert f"another mailmig run is using this database: 'mailmig load {run_id}'" in out, out
    assert first.poll() is None, "the first load ended before the second was refused: not a test of the lock"
    rest, _ = first.communicate(timeout=300)
    assert first.returncode == 0, first_line + rest
    assert state(dsn) == uninterrupted["state"]  # staging was not truncated under it
    assert not (tmp_path / "runs2").exists() or not any((tmp_path / "runs2").glob("*-load-*"))


def test_missing_source_is_named(dsn, legacy, tmp_path):
    with pytest.raises(LoadError, match=r"nowhere/emails\.db: no such file"):
        run_load(dsn, tmp_path / "nowhere" / "emails.db", legacy / "auth.db", tmp_path / "runs", progress=None)


def test_a_file_that_is_not_sqlite_is_named(dsn, legacy, tmp_path):
    bogus = tmp_path / "emails.db"
    bogus.write_text("From: someone\n\nnot a database\n")
    with pytest.raises(LoadError, match=r"emails\.db: not a SQLite database"):
        run_load(dsn, bogus, legacy / "auth.db", tmp_path / "runs", progress=None)


def test_a_mapped_table_with_other_columns_stops_the_run(dsn, legacy, tmp_path):
    changed = tmp_path / "emails.db"
    src = sqlite3.connect(legacy / "emails.db")
    dst = sqlite3.connect(changed)
    src.backup(dst)
    dst.execute("ALTER TABLE emails ADD COLUMN priority INTEGER")
    dst.commit()
    dst.close()
    with pytest.raises(LoadError, match=r"table emails: columns not in the mapping: priority"):
        run_load(dsn, changed, legacy / "auth.db", tmp_path / "runs", progress=None)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0] == 0


def test_a_corrupt_file_fails_the_integrity_check_naming_it(dsn, legacy, tmp_path):
    corrupt = tmp_path / "auth.db"
    src = sqlite3.connect(legacy / "auth.db")
    dst = sqlite3.connect(corrupt)
    src.backup(dst)
    dst.close()
    # damage a page in the middle of the file: the header stays valid, a b-tree does not
    size = corrupt.stat().st_size
    with open(corrupt, "r+b") as f:
        f.seek(size // 2 - (size // 2) % 4096 + 8)
        f.write(b"\xff" * 64)
    with pytest.raises(LoadError, match=r"auth\.db"):
        run_load(dsn, legacy / "emails.db", corrupt, tmp_path / "runs", progress=None)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM mail.accounts").fetchone()[0] == 0


def test_json_null_headers_stay_json_null_on_both_paths(dsn, tmp_path):
    """The text 'null' is valid JSON: the set-based path and the row path (a hostile row)
    must both store jsonb null, not SQL NULL, and validate must agree."""
    from mailmig.validate import run_validate

    legacy_ddl = PROJECT / "config" / "legacy"
    emails, auth = tmp_path / "emails.db", tmp_path / "auth.db"
    with sqlite3.connect(emails) as conn:
        conn.executescript((legacy_ddl / "emails.sql").read_text())
        row = ("INSERT INTO emails (id, message_id, from_address, to_address, subject, headers, "
               "created_at) VALUES (?, ?, 'a@x.test', 'b@x.test', {}, ?, '2026-10-01 12:00:00')")
        conn.execute(row.format("'plain'"), (1, "<plain@x>", "null"))
        conn.execute(row.format("CAST(x'6261640aff' AS TEXT)"), (2, "<hostile@x>", "null"))
        conn.execute(row.format("'no headers'"), (3, "<none@x>", None))
    with sqlite3.connect(auth) as conn:
        conn.executescript((legacy_ddl / "auth.sql").read_text())
    result = run_load(dsn, emails, auth, tmp_path / "runs", loader="copy", progress=None)
    assert result.ok
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, headers IS NULL, headers = 'null'::jsonb FROM mail.emails ORDER BY id").fetchall()
        hostile = conn.execute("SELECT count(*) FROM migration.repairs WHERE source_key = '2'").fetchone()[0]
    assert hostile == 1  # the subject of row 2 was repaired: it went through the row path
    assert rows == [(1, False, True), (2, False, True), (3, True, None)]
    assert run_validate(dsn, tmp_path / "runs", progress=None).ok
