"""The driver's named queries (driver/mailmig/queries): each file opens with a `--`
comment, every name the driver loads has its file, and no file is left that nothing
names (a query moved into a SQL function leaves no copy behind)."""

from __future__ import annotations

import re
from pathlib import Path

from mailmig import queries

DRIVER = Path(queries.__file__).resolve().parents[1]
FILES = sorted(queries.QUERY_DIR.glob("*.sql"))
SOURCE = "\n".join(p.read_text() for p in DRIVER.rglob("*.py"))


def test_every_query_file_opens_with_a_comment():
    assert FILES
    bad = [p.name for p in FILES if not p.read_text().startswith("-- ")]
    assert not bad


def test_every_loaded_name_has_its_file():
    named = set(re.findall(r'queries\.load\("([a-z0-9_]+)"\)', SOURCE))
    assert len(named) > 30
    assert sorted(n for n in named if not (queries.QUERY_DIR / f"{n}.sql").exists()) == []


# names the driver composes (reverse_sync: f"reverse_sqlite_fts_{op}")
COMPOSED = {"reverse_sqlite_fts_delete", "reverse_sqlite_fts_insert"}


def test_every_query_file_is_named_by_the_driver():
    unnamed = [p.stem for p in FILES if f'"{p.stem}"' not in SOURCE and p.stem not in COMPOSED]
    assert unnamed == []
