"""config/mapping.yaml is the one source of the migrated columns: a column added to a copy
of it (and to mail.emails, as a person adds a migration) is followed by every layer:
staging has it, the merge fills it on both of its paths, validate compares it and names a
changed value in it."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import yaml

from mailmig.demo_data import generate
from mailmig.load import run_load
from mailmig.mapping import DEFAULT_MAPPING, MappingError, load_mapping
from mailmig.sqlrunner import apply_sql
from mailmig.validate import run_validate


@pytest.fixture
def mapping_with_priority(tmp_path):
    """The default mapping plus emails.prio (int), going to mail.emails.priority."""
    mapping = yaml.safe_load(DEFAULT_MAPPING.read_text())
    mapping["sources"]["emails_db"]["emails"]["columns"]["prio"] = {"kind": "int", "target": "priority"}
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


@pytest.fixture
def legacy_with_priority(tmp_path):
    """Legacy files whose emails carry a prio column: a number for most rows, NULL for
    some, and text the rules repair ('big') for one."""
    out = tmp_path / "legacy"
    generate(out, emails=4500, accounts=300, seed=7)  # several merge ranges: most go set-based
    with sqlite3.connect(out / "emails.db") as conn:
        conn.execute("ALTER TABLE emails ADD COLUMN prio INTEGER")
        conn.execute("UPDATE emails SET prio = CASE WHEN id % 10 = 0 THEN NULL ELSE id % 7 END")
        big = conn.execute("SELECT min(id) FROM emails WHERE id % 10 = 3").fetchone()[0]
        conn.execute("UPDATE emails SET prio = 'big' WHERE id = ?", (big,))
        source = dict(conn.execute("SELECT id, prio FROM emails"))
    return out, source, big


def test_a_column_added_to_the_mapping_reaches_every_layer(dsn, tmp_path, mapping_with_priority,
                                                           legacy_with_priority):
    legacy, source, big = legacy_with_priority
    assert "prio" in dict(next(t for t in load_mapping(mapping_with_priority) if t.name == "emails").columns)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE mail.emails ADD COLUMN priority bigint")  # the person's migration
    apply_sql(dsn, mapping_path=mapping_with_priority)  # `schema apply` writes the mapping into column_map

    runs = tmp_path / "runs"
    result = run_load(dsn, legacy / "emails.db", legacy / "auth.db", runs,
                      mapping_path=mapping_with_priority, progress=None)
    assert result.ok, result.report.get("error")
    assert result.report["merge"]["emails"]["fast"] > 0, result.report["merge"]

    with psycopg.connect(dsn) as conn:
        staging_columns = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'staging.emails'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]
        loaded = dict(conn.execute("SELECT id, priority FROM mail.emails"))
        repair = conn.execute(
            "SELECT rule, original, repaired FROM migration.repairs "
            "WHERE source_table = 'emails' AND source_key = %s AND column_name = 'prio'", (str(big),)).fetchone()
    assert staging_columns[-1] == "prio" and "priority" not in staging_columns
    # every loaded row holds its source value (the repaired one NULL); rejected rows are absent
    assert len(loaded) >= 4000
    assert {i: p for i, p in loaded.items() if i != big} == {
        i: source[i] for i in loaded if i != big}
    assert sum(1 for p in loaded.values() if p is not None) > 100 and None in loaded.values()
    assert loaded[big] is None
    assert repair == ("number_unreadable_null", {"t": "text", "v": "big"}, None)

    clean = run_validate(dsn, runs, mapping_path=mapping_with_priority)
    assert clean.ok, clean.report["report_path"]
    # the default mapping no longer says what the database holds: validate stops, naming it
    with pytest.raises(MappingError, match="emails"):
        run_validate(dsn, runs)

    changed = next(i for i, p in loaded.items() if p is not None and i != big)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE mail.emails SET priority = priority + 1 WHERE id = %s", (changed,))
    result = run_validate(dsn, runs, mapping_path=mapping_with_priority)
    assert not result.ok
    found = [d for d in result.report["differences"] if d["kind"] == "changed"]
    assert found == [{"table": "emails", "kind": "changed", "key": str(changed), "columns": [
        {"column": "prio", "source": str(source[changed]), "postgresql": str(source[changed] + 1)}]}]
