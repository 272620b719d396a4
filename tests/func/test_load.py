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
            loaded = conn.execute(f"SELECT count(*) FROM mail.{table} WHERE {key_sql}", (key,)).fetchone()[0]
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


def _cli(dsn: str, legacy: Path, runs: Path, loader: str) -> subprocess.Popen:
    env = dict(os.environ, POSTGRES_DSN=dsn, MAILMIG_RUNS_DIR=str(runs))
    return subprocess.Popen(
        [sys.executable, "-m", "mailmig.cli", "load", "--emails-db", str(legacy / "emails.db"),
         "--auth-db", str(legacy / "auth.db"), "--loader", loader, "--merge-jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=PROJECT, text=True)


def _kill_at(proc: subprocess.Popen, marker: str, delay: float = 0.0) -> str:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    return "".join(seen)


@pytest.fixture(scope="module")
def uninterrupted(pg, template_db, legacy, tmp_path_factory):
    """The state an uninterrupted load reaches, in its own database."""
    from pytest_postgresql.janitor import DatabaseJanitor
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname="mailmig_test_reference",
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    dsn = pg.conninfo("mailmig_test_reference")
    assert run_load(dsn, legacy / "emails.db", legacy / "auth.db",
                    tmp_path_factory.mktemp("runs"), loader="copy", progress=None).ok
    yield state(dsn)
    janitor.drop()


@pytest.mark.parametrize("marker,delay", [
    ("== audit", 0.0),            # the driver killed after the snapshot
    ("== merge emails", 0.3),     # killed while merging: some chunks committed
    ("== merge sessions", 0.0),   # killed between tables
])
def test_driver_killed_then_rerun_reaches_the_same_state(dsn, legacy, tmp_path, uninterrupted, marker, delay):
    output = _kill_at(_cli(dsn, legacy, tmp_path / "runs", "copy"), marker, delay)
    assert marker in output
    rerun = _cli(dsn, legacy, tmp_path / "runs", "copy")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert state(dsn) == uninterrupted


def test_pgloader_killed_fails_loudly_then_rerun_reaches_the_same_state(dsn, legacy, tmp_path, uninterrupted):
    proc = _cli(dsn, legacy, tmp_path / "runs", "pgloader")
    killed = False
    for line in proc.stdout:
        if "== staging" in line:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not killed:
                found = subprocess.run(["pgrep", "-f", f"pgloader.*{tmp_path}"], capture_output=True, text=True)
                for pid in found.stdout.split():
                    os.kill(int(pid), signal.SIGKILL)
                    killed = True
                time.sleep(0.05)
    proc.wait(timeout=120)
    proc.stdout.close()
    assert killed
    assert proc.returncode != 0  # a short staging is a failure, whatever pgloader said
    rerun = _cli(dsn, legacy, tmp_path / "runs", "pgloader")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert state(dsn) == uninterrupted


def test_postgres_restart_during_merge_then_rerun_reaches_the_same_state(pg, dsn, legacy, tmp_path, uninterrupted):
    proc = _cli(dsn, legacy, tmp_path / "runs", "copy")
    for line in proc.stdout:
        if "== merge emails" in line:
            pg.cluster.stop()  # fast shutdown: every session is cut
            pg.cluster.start()
            break
    proc.communicate(timeout=120)
    rerun = _cli(dsn, legacy, tmp_path / "runs", "copy")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert state(dsn) == uninterrupted


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
