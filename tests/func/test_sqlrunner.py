"""The SQL runner against a real server: migrations once and in order, definitions
re-applied when they change, refusal of changed migrations, and the in-place upgrade
of a database built by the old runner."""

import hashlib
import subprocess
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig.cluster import pg_bindir
from mailmig.sqlrunner import LedgerError, apply_sql, status

LEGACY_SQL = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-sql-79f647a"


@pytest.fixture
def blank(pg):
    """A factory of empty databases (dropped at the end)."""
    janitors = []

    def make(name: str) -> str:
        janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=name)
        janitor.drop()
        janitor.init()
        janitors.append(janitor)
        return pg.conninfo(name)

    yield make
    for janitor in janitors:
        janitor.drop()


@pytest.fixture
def blank_dsn(blank):
    return blank("runner_blank")


def write(sql_dir: Path, name: str, text: str) -> None:
    path = sql_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_applies_migrations_in_order_once_and_records_each_file(blank_dsn, tmp_path):
    write(tmp_path, "migrations/0002_fill.sql", "INSERT INTO t VALUES (2);")
    write(tmp_path, "migrations/0001_table.sql", "CREATE TABLE t (v int);")
    assert apply_sql(blank_dsn, tmp_path, mapping_path=None) == ["migrations/0001_table.sql",
                                                                  "migrations/0002_fill.sql"]
    assert apply_sql(blank_dsn, tmp_path, mapping_path=None) == []
    with psycopg.connect(blank_dsn) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(2,)]
        rows = conn.execute("SELECT name, kind FROM migration.sql_ledger ORDER BY applied_at").fetchall()
    assert rows == [("migrations/0001_table.sql", "migration"), ("migrations/0002_fill.sql", "migration")]
    write(tmp_path, "migrations/0003_more.sql", "INSERT INTO t VALUES (3);")
    assert status(blank_dsn, tmp_path)[-1] == ("migration", "migrations/0003_more.sql", "pending")
    assert apply_sql(blank_dsn, tmp_path, mapping_path=None) == ["migrations/0003_more.sql"]


def test_refuses_a_changed_applied_migration(blank_dsn, tmp_path):
    write(tmp_path, "migrations/0001_table.sql", "CREATE TABLE t (v int);")
    apply_sql(blank_dsn, tmp_path, mapping_path=None)
    write(tmp_path, "migrations/0001_table.sql", "CREATE TABLE t (v bigint);")
    with pytest.raises(LedgerError, match="immutable.*0001_table.sql"):
        apply_sql(blank_dsn, tmp_path, mapping_path=None)
    assert status(blank_dsn, tmp_path) == [("migration", "migrations/0001_table.sql", "CHANGED since applied")]


def test_a_changed_definition_is_applied_again_and_recorded_with_its_checksum(blank_dsn, tmp_path):
    write(tmp_path, "migrations/0001_schema.sql", "CREATE SCHEMA s;")
    write(tmp_path, "functions/s/answer.sql",
          "CREATE OR REPLACE FUNCTION s.answer() RETURNS int LANGUAGE sql AS $$ SELECT 41 $$;")
    assert apply_sql(blank_dsn, tmp_path, mapping_path=None) == ["migrations/0001_schema.sql",
                                                                  "functions/s/answer.sql"]
    assert apply_sql(blank_dsn, tmp_path, mapping_path=None) == []  # unchanged: not applied again
    text = "CREATE OR REPLACE FUNCTION s.answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$;"
    write(tmp_path, "functions/s/answer.sql", text)
    assert status(blank_dsn, tmp_path)[-1] == ("function", "functions/s/answer.sql", "changed")
    assert apply_sql(blank_dsn, tmp_path, mapping_path=None) == ["functions/s/answer.sql"]
    with psycopg.connect(blank_dsn) as conn:
        assert conn.execute("SELECT s.answer()").fetchone()[0] == 42
        checksum, = conn.execute("SELECT checksum FROM migration.sql_ledger "
                                 "WHERE name = 'functions/s/answer.sql'").fetchone()
    assert checksum == hashlib.sha256(text.encode()).hexdigest()
    assert status(blank_dsn, tmp_path)[-1] == ("function", "functions/s/answer.sql", "applied")


def test_definitions_refer_to_each_other_in_any_order_and_requires_orders_what_runs(blank_dsn, tmp_path):
    write(tmp_path, "migrations/0001_schema.sql", "CREATE SCHEMA s; CREATE TABLE s.t (v int);")
    # a_caller's body calls z_callee, defined by a file that sorts after it: definitions
    # are created with check_function_bodies off, so the order does not matter ...
    write(tmp_path, "functions/s/a_caller.sql",
          "CREATE OR REPLACE FUNCTION s.a_caller() RETURNS int LANGUAGE sql AS $$ SELECT s.z_callee() $$;")
    write(tmp_path, "functions/s/z_callee.sql",
          "CREATE OR REPLACE FUNCTION s.z_callee() RETURNS int LANGUAGE sql AS $$ SELECT 7 $$;")
    # ... but a file that runs a function names the files it needs
    write(tmp_path, "functions/s/b_fill.sql",
          "-- requires: functions/s/a_caller.sql\n-- requires: functions/s/z_callee.sql\n"
          "CREATE OR REPLACE FUNCTION s.b_fill() RETURNS void LANGUAGE sql AS $$ INSERT INTO s.t VALUES (1) $$;\n"
          "INSERT INTO s.t SELECT s.a_caller();")
    applied = apply_sql(blank_dsn, tmp_path, mapping_path=None)
    assert applied.index("functions/s/z_callee.sql") < applied.index("functions/s/b_fill.sql")
    with psycopg.connect(blank_dsn) as conn:
        assert conn.execute("SELECT v FROM s.t").fetchall() == [(7,)]


def test_unknown_or_circular_requires_are_refused(blank_dsn, tmp_path):
    write(tmp_path, "functions/s/a.sql", "-- requires: functions/s/b.sql\nSELECT 1;")
    write(tmp_path, "functions/s/b.sql", "-- requires: functions/s/a.sql\nSELECT 1;")
    with pytest.raises(LedgerError, match="circular"):
        apply_sql(blank_dsn, tmp_path, mapping_path=None)
    write(tmp_path, "functions/s/b.sql", "-- requires: functions/s/nowhere.sql\nSELECT 1;")
    with pytest.raises(LedgerError, match="nowhere.sql"):
        apply_sql(blank_dsn, tmp_path, mapping_path=None)


def test_a_failing_file_is_not_recorded_and_names_itself(blank_dsn, tmp_path):
    write(tmp_path, "migrations/0001_table.sql", "CREATE TABLE t (v int);")
    write(tmp_path, "migrations/0002_broken.sql", "INSERT INTO t VALUES (1); SELECT * FROM missing_table;")
    with pytest.raises(LedgerError, match="0002_broken.sql.*missing_table"):
        apply_sql(blank_dsn, tmp_path, mapping_path=None)
    with psycopg.connect(blank_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM migration.sql_ledger").fetchone()[0] == 1


def test_refuses_badly_placed_files(blank_dsn, tmp_path):
    write(tmp_path, "table.sql", "SELECT 1;")
    with pytest.raises(LedgerError, match="table.sql"):
        apply_sql(blank_dsn, tmp_path, mapping_path=None)


def test_refuses_a_migration_numbered_before_one_already_applied(blank_dsn, tmp_path):
    write(tmp_path, "migrations/0005_table.sql", "CREATE TABLE t (v int);")
    apply_sql(blank_dsn, tmp_path, mapping_path=None)
    write(tmp_path, "migrations/0003_late.sql", "CREATE TABLE u (v int);")
    with pytest.raises(LedgerError, match="0003_late.sql"):
        apply_sql(blank_dsn, tmp_path, mapping_path=None)


# --- the upgrade of a database built by the old runner --------------------------------------

OLD_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS migration;
CREATE TABLE IF NOT EXISTS migration.sql_ledger (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms numeric NOT NULL
);
"""


def build_with_the_old_runner(dsn: str) -> None:
    """What the runner of commit 79f647a did with its sql/ (kept verbatim in tests/fixtures)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(OLD_BOOTSTRAP)
        for path in sorted(LEGACY_SQL.glob("*.sql")):
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute("RESET ROLE")
                conn.execute("INSERT INTO migration.sql_ledger (name, checksum, duration_ms) VALUES (%s, %s, 0)",
                             (path.name, hashlib.sha256(path.read_bytes()).hexdigest()))


def schema_dump(pg, dbname: str) -> str:
    out = subprocess.run(
        [str(pg_bindir() / "pg_dump"), "--schema-only", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, dbname],
        capture_output=True, text=True, check=True).stdout
    # pg_dump 15.14+ protects its output with a random \restrict key per dump
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def test_a_database_of_the_old_runner_upgrades_in_place_to_what_a_fresh_one_is(pg, blank):
    old, fresh = blank("runner_upgraded"), blank("runner_fresh")
    build_with_the_old_runner(old)
    assert [s for _, _, s in status(old)].count("legacy") == 7

    upgraded = apply_sql(old)
    apply_sql(fresh)
    # no baseline migration (0001-0007, adopted from the old runner) ran again; later ones do
    assert all(name.startswith("functions/") or int(name.split("/")[1][:4]) > 7 for name in upgraded)
    dump = schema_dump(pg, "runner_fresh")
    assert "CREATE FUNCTION migration.merge_chunk" in dump and "CREATE TABLE mail.emails" in dump
    assert schema_dump(pg, "runner_upgraded") == dump
    ledger = "SELECT name, kind, checksum FROM migration.sql_ledger ORDER BY name"
    column_map = "SELECT * FROM migration.column_map ORDER BY source_table, position"
    with psycopg.connect(old) as a, psycopg.connect(fresh) as b:
        assert a.execute(ledger).fetchall() == b.execute(ledger).fetchall()
        assert a.execute(column_map).fetchall() == b.execute(column_map).fetchall()
        notes = a.execute("SELECT count(*) FROM migration.sql_ledger WHERE note LIKE 'adopted%'").fetchone()[0]
        merge_chunk_after = a.execute(
            "SELECT md5(prosrc) FROM pg_proc WHERE oid = 'migration.merge_chunk'::regproc").fetchone()[0]
        merge_chunk_fresh = b.execute(
            "SELECT md5(prosrc) FROM pg_proc WHERE oid = 'migration.merge_chunk'::regproc").fetchone()[0]
    assert notes == 7
    # the definition of sql/functions is the one the upgraded database runs (it was the
    # folded 3300 + 3310 when the layout landed; the mapping generates its statements since)
    assert merge_chunk_after == merge_chunk_fresh
    assert {s for _, _, s in status(old)} == {"applied"}
    assert apply_sql(old) == []


def test_a_partial_database_of_the_old_runner_is_refused(pg, blank):
    old = blank("runner_partial")
    with psycopg.connect(old, autocommit=True) as conn:
        conn.execute(OLD_BOOTSTRAP)
        conn.execute("INSERT INTO migration.sql_ledger (name, checksum, duration_ms) "
                     "VALUES ('1000_schemas_roles.sql', 'x', 0)")
    with pytest.raises(LedgerError, match="not at its last state.*3320_sequence_past_max.sql"):
        apply_sql(old)
