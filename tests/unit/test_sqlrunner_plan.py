"""The runner's planning, no server."""

import pytest

from mailmig.sqlrunner import SQL_DIR, LedgerError, SqlFile, plan, sql_files


def f(name, checksum="a"):
    return SqlFile(name, None, checksum)


def test_plan_keeps_the_order_and_skips_applied():
    files = [f("0001_a.sql"), f("0002_b.sql"), f("0003_c.sql")]
    assert [x.name for x in plan(files, {"0001_a.sql": "a"})] == ["0002_b.sql", "0003_c.sql"]


def test_plan_refuses_changed_and_vanished_files():
    with pytest.raises(LedgerError, match="0001_a.sql"):
        plan([f("0001_a.sql", "b")], {"0001_a.sql": "a"})
    with pytest.raises(LedgerError, match="0009_gone.sql"):
        plan([f("0001_a.sql")], {"0001_a.sql": "a", "0009_gone.sql": "x"})


def test_the_project_sql_files_are_well_named_and_unique():
    names = [x.name for x in sql_files(SQL_DIR)]
    assert names == sorted(set(names))
    assert len({n[:4] for n in names}) == len(names), "two files share a number"
