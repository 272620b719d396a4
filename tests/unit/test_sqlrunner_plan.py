"""The runner's planning, no server."""

import pytest

from mailmig.sqlrunner import BASELINE, LEGACY_FILES, SQL_DIR, LedgerError, SqlFile, plan, sql_files


def m(name, checksum="a"):
    return SqlFile(f"migrations/{name}", None, checksum, "migration")


def fn(name, checksum="a", requires=()):
    return SqlFile(f"functions/{name}", None, checksum, "function", tuple(requires))


def test_plan_keeps_the_order_and_skips_applied():
    files = [m("0001_a.sql"), m("0002_b.sql"), m("0003_c.sql")]
    work = plan(files, [], {"migrations/0001_a.sql": ("migration", "a")})
    assert [x.name for x in work.migrations] == ["migrations/0002_b.sql", "migrations/0003_c.sql"]


def test_plan_refuses_changed_and_vanished_migrations():
    with pytest.raises(LedgerError, match="0001_a.sql"):
        plan([m("0001_a.sql", "b")], [], {"migrations/0001_a.sql": ("migration", "a")})
    with pytest.raises(LedgerError, match="0009_gone.sql"):
        plan([m("0001_a.sql")], [], {"migrations/0001_a.sql": ("migration", "a"),
                                     "migrations/0009_gone.sql": ("migration", "x")})


def test_plan_reapplies_new_and_changed_definitions_only():
    funcs = [fn("s/same.sql"), fn("s/changed.sql", "b"), fn("s/new.sql")]
    applied = {"functions/s/same.sql": ("function", "a"), "functions/s/changed.sql": ("function", "a")}
    assert [f.name for f in plan([], funcs, applied).functions] == ["functions/s/changed.sql",
                                                                    "functions/s/new.sql"]


def test_plan_adopts_the_old_runners_last_state_as_the_baseline():
    applied = {name: ("migration", "old") for name in LEGACY_FILES}
    files = [m(name.split("/")[1]) for name in BASELINE] + [m("0010_after.sql")]
    work = plan(files, [fn("s/x.sql")], applied)
    assert work.adopt_legacy
    assert [f.name for f in work.migrations] == ["migrations/0010_after.sql"]
    assert [f.name for f in work.functions] == ["functions/s/x.sql"]


def test_the_project_sql_files_are_well_placed_unique_and_ordered():
    migrations, functions = sql_files(SQL_DIR)
    names = [f.name for f in migrations]
    assert names == sorted(set(names))
    assert set(BASELINE) <= set(names)
    position = {f.name: i for i, f in enumerate(functions)}
    for f in functions:
        for needed in f.requires:
            assert position[needed] < position[f.name]


def test_no_function_is_defined_twice_in_sql():
    import re
    defined: dict[str, str] = {}
    for path in SQL_DIR.rglob("*.sql"):
        for match in re.finditer(r"CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE|VIEW) ([\w.]+)",
                                 path.read_text()):
            assert match.group(1) not in defined, f"{match.group(1)}: {defined.get(match.group(1))} and {path}"
            defined[match.group(1)] = str(path)
