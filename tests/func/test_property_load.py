"""A property test that throws anything at the load: legacy-shaped files (the legacy DDL)
whose columns hold arbitrary SQLite storage classes and bytes, through the real load
(pgloader) and validate. For every example: the load exits ok, source = loaded + rejected
for every table, validate passes (every value loaded as the rules say, every repair by the
rules, every reject's row kept whole), and every reject is explained by the rules or by a
constraint that the rejected row's converted values really violate.

`make test` runs a few examples with a fixed derandomized seed; `make fuzz` runs
FUZZ_EXAMPLES (default 200) random ones, keeping failures in .hypothesis/ to replay.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig.load import run_load
from mailmig.sqlite_source import SqliteText
from mailmig.validate import run_validate
from tests.hostile_values import (ANY_UNICODE, ANY_VALUE, EPOCH_EDGES, FLAG_TEXT, FLOATS, INT64, INTEGERS,
                                  JSON_TEXT, _text, timestamp_text)

PROJECT = Path(__file__).resolve().parents[2]
FUZZ = int(os.environ.get("FUZZ_EXAMPLES", "0"))
EXAMPLES = FUZZ or 6


def _mostly(plausible, weight: int = 3):
    """Plausible values `weight` times as often as anything at all."""
    return st.one_of(*([plausible] * weight), ANY_VALUE)


TIMESTAMP = _mostly(st.one_of(_text(timestamp_text()), st.sampled_from(EPOCH_EDGES),
                              st.integers(0, 4_200_000_000), st.floats(0, 5e12)))
FLAG = _mostly(st.one_of(st.sampled_from([0, 1, 0, 1, None]), _text(FLAG_TEXT)))
INT = _mostly(st.one_of(INTEGERS, st.none()))
FLOAT = _mostly(st.one_of(FLOATS, st.none()))
TEXT = _mostly(st.one_of(_text(ANY_UNICODE), st.none()))
NOT_NULL_TEXT = _mostly(_text(ANY_UNICODE.filter(bool)), 4).filter(lambda v: v is not None)
JSON = _mostly(st.one_of(_text(JSON_TEXT), st.none()))

EMAIL = st.fixed_dictionaries({
    "message_id": NOT_NULL_TEXT, "from_address": NOT_NULL_TEXT, "to_address": NOT_NULL_TEXT,
    "subject": TEXT, "body": TEXT, "html": TEXT, "headers": JSON, "raw_email": TEXT, "size": INT,
    "starred": FLAG, "is_read": FLAG, "spam_score": FLOAT, "created_at": TIMESTAMP})
ACCOUNT = st.fixed_dictionaries({
    "email": NOT_NULL_TEXT, "password_hash": TEXT, "token": TEXT, "created_at": TIMESTAMP,
    "expires_at": TIMESTAMP, "last_login_at": TIMESTAMP, "is_active": FLAG})
SESSION = st.fixed_dictionaries({
    "id": _mostly(_text(ANY_UNICODE.filter(bool)), 2), "account_id": INT, "created_at": TIMESTAMP,
    "expires_at": TIMESTAMP, "ip": TEXT, "user_agent": TEXT})


@st.composite
def legacy_files(draw):
    emails = draw(st.lists(EMAIL, min_size=5, max_size=40))
    email_ids = draw(st.lists(st.one_of(INT64, st.integers(1, 10_000)), min_size=len(emails),
                              max_size=len(emails), unique=True))
    accounts = draw(st.lists(ACCOUNT, min_size=3, max_size=30))
    account_ids = draw(st.lists(st.one_of(INT64, st.integers(1, 10_000)), min_size=len(accounts),
                                max_size=len(accounts), unique=True))
    sessions = draw(st.lists(SESSION, min_size=3, max_size=30))
    for session in sessions:  # most sessions belong to an account of the file
        if account_ids and draw(st.integers(0, 3)):
            session["account_id"] = draw(st.sampled_from(account_ids))
    chunk_rows = draw(st.sampled_from([1, 3, 7, 2000]))
    return ([{"id": i, **e} for i, e in zip(email_ids, emails)],
            [{"id": i, **a} for i, a in zip(account_ids, accounts)], sessions, chunk_rows)


def _bind(value):
    """A generated value as a parameter, plus the SQL that stores it with that class."""
    if isinstance(value, SqliteText):
        return "CAST(? AS TEXT)", bytes(value)  # the exact bytes, as TEXT (invalid UTF-8 too)
    return "?", value


def write_legacy(path: Path, ddl: str, table: str, rows: list[dict]) -> int:
    """The rows SQLite takes (a NOT NULL or UNIQUE it enforces drops the others)."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(ddl)
        written = 0
        for row in rows:
            marks, values = zip(*(_bind(v) for v in row.values()))
            try:
                conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(marks)})", values)
                written += 1
            except sqlite3.IntegrityError:
                pass
        conn.commit()
        return written
    finally:
        conn.close()


# Rejects the rules or the database's constraints explain, per table: the converted values
# of the rejected row (typed originals through migration.convert_value) really violate it.
UNEXPLAINED_REJECTS = """
WITH r AS (
  SELECT r.source_table, r.source_key, r.sqlstate, r.reason,
         (SELECT jsonb_object_agg(m.column_name,
                   jsonb_build_object('value', c.value, 'state', c.sqlstate))
          FROM migration.column_map m
          CROSS JOIN LATERAL migration.convert_value(m.kind, r.original -> m.column_name) c
          WHERE m.source_table = r.source_table) AS conv
  FROM migration.rejects r
)
SELECT source_table, source_key, sqlstate, reason FROM r
WHERE NOT CASE
  WHEN sqlstate IN ('22007', '23502') AND source_table = 'emails'
    THEN conv->'created_at'->>'state' = sqlstate
         OR (sqlstate = '23502' AND EXISTS (SELECT 1 FROM unnest(ARRAY['message_id', 'from_address', 'to_address'])
                                            c WHERE conv->c->>'value' IS NULL))
  WHEN sqlstate = '23502' AND source_table = 'accounts' THEN conv->'email'->>'value' IS NULL
  WHEN sqlstate = '23502' AND source_table = 'sessions'
    THEN conv->'id'->>'value' IS NULL OR conv->'account_id'->>'value' IS NULL
  WHEN sqlstate = '23503' AND source_table = 'sessions'
    THEN NOT EXISTS (SELECT 1 FROM mail.accounts a WHERE a.id = (conv->'account_id'->>'value')::bigint)
  WHEN sqlstate = '23505' AND source_table = 'emails'
    THEN EXISTS (SELECT 1 FROM mail.emails e WHERE e.message_id = conv->'message_id'->>'value')
  WHEN sqlstate = '23505' AND source_table = 'accounts'
    THEN EXISTS (SELECT 1 FROM mail.accounts a
                 WHERE mail.ascii_lower(a.email) = mail.ascii_lower(conv->'email'->>'value')
                    OR a.token = conv->'token'->>'value')
  WHEN sqlstate = '23505' AND source_table = 'sessions'
    THEN EXISTS (SELECT 1 FROM mail.sessions s WHERE s.id = migration.key_target('sessions', source_key))
         OR migration.key_rival('sessions', source_key, migration.key_target('sessions', source_key)) IS NOT NULL
  WHEN sqlstate = '54000'  -- an indexed value over a btree entry's limit
    THEN EXISTS (SELECT 1 FROM unnest(ARRAY['message_id', 'from_address', 'to_address', 'email', 'token', 'id']) c
                 WHERE octet_length(conv->c->>'value') > 2000)
  ELSE false
END
"""

_databases = itertools.count(1)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not FUZZ,
          database=DirectoryBasedExampleDatabase(str(PROJECT / ".hypothesis" / "examples")) if FUZZ else None,
          suppress_health_check=list(HealthCheck))
@given(files=legacy_files())
def test_anything_a_sqlite_column_holds_loads_accounts_and_validates(pg, template_db, tmp_path_factory, files):
    emails, accounts, sessions, chunk_rows = files
    work = tmp_path_factory.mktemp("property")
    legacy = PROJECT / "config" / "legacy"
    written = {
        "emails": write_legacy(work / "emails.db", (legacy / "emails.sql").read_text(), "emails", emails),
        "accounts": write_legacy(work / "auth.db", (legacy / "auth.sql").read_text(), "accounts", accounts),
    }
    written["sessions"] = write_legacy(work / "auth.db", "", "sessions", sessions)
    dbname = f"mailmig_property_{next(_databases)}"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=template_db)
    janitor.drop()
    janitor.init()
    try:
        dsn = pg.conninfo(dbname)
        result = run_load(dsn, work / "emails.db", work / "auth.db", work / "runs", loader="pgloader",
                          progress=None, merge_chunk_rows=chunk_rows)
        assert result.ok, result.report.get("error") or result.report.get("tables")
        for table, counts in result.report["tables"].items():
            assert counts["source"] == written[table] == counts["loaded"] + counts["rejected"], (table, counts)
            assert counts["unaccounted"] == counts["loaded_and_rejected"] == 0, (table, counts)
        validated = run_validate(dsn, work / "runs")
        assert validated.ok, validated.report["differences"][:10]
        with psycopg.connect(dsn) as conn:
            states = [r[0] for r in conn.execute("SELECT DISTINCT sqlstate FROM migration.rejects")]
            assert all(s[:2] in ("22", "23", "54") for s in states), states
            unexplained = conn.execute(UNEXPLAINED_REJECTS).fetchall()
        assert not unexplained, unexplained
    finally:
        janitor.drop()
