"""The ordered SQL runner against a real server: order, ledger, no double apply,
refusal of changed files."""

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig.sqlrunner import LedgerError, apply_sql, status


@pytest.fixture
def blank_dsn(pg):
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname="runner_blank")
    janitor.drop()
    janitor.init()
    yield pg.conninfo("runner_blank")
    janitor.drop()


def write(sql_dir, name, text):
    (sql_dir / name).write_text(text)


def test_applies_in_order_once_and_records_each_file(blank_dsn, tmp_path):
    write(tmp_path, "0002_fill.sql", "INSERT INTO t VALUES (2);")
    write(tmp_path, "0001_table.sql", "CREATE TABLE t (v int);")
    assert apply_sql(blank_dsn, tmp_path) == ["0001_table.sql", "0002_fill.sql"]
    assert apply_sql(blank_dsn, tmp_path) == []
    with psycopg.connect(blank_dsn) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(2,)]
        names = [r[0] for r in conn.execute("SELECT name FROM migration.sql_ledger ORDER BY applied_at")]
    assert names == ["0001_table.sql", "0002_fill.sql"]
    write(tmp_path, "0003_more.sql", "INSERT INTO t VALUES (3);")
    assert status(blank_dsn, tmp_path)[-1] == ("0003_more.sql", "pending")
    assert apply_sql(blank_dsn, tmp_path) == ["0003_more.sql"]


def test_refuses_a_changed_applied_file(blank_dsn, tmp_path):
    write(tmp_path, "0001_table.sql", "CREATE TABLE t (v int);")
    apply_sql(blank_dsn, tmp_path)
    write(tmp_path, "0001_table.sql", "CREATE TABLE t (v bigint);")
    with pytest.raises(LedgerError, match="0001_table.sql"):
        apply_sql(blank_dsn, tmp_path)
    assert status(blank_dsn, tmp_path) == [("0001_table.sql", "CHANGED since applied")]


def test_a_failing_file_is_not_recorded_and_names_itself(blank_dsn, tmp_path):
    write(tmp_path, "0001_table.sql", "CREATE TABLE t (v int);")
    write(tmp_path, "0002_broken.sql", "INSERT INTO t VALUES (1); SELECT * FROM missing_table;")
    with pytest.raises(LedgerError, match="0002_broken.sql.*missing_table"):
        apply_sql(blank_dsn, tmp_path)
    with psycopg.connect(blank_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM migration.sql_ledger").fetchone()[0] == 1


def test_refuses_badly_named_files(blank_dsn, tmp_path):
    write(tmp_path, "table.sql", "SELECT 1;")
    with pytest.raises(LedgerError, match="table.sql"):
        apply_sql(blank_dsn, tmp_path)
