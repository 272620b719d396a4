"""The conversion rules are written twice on purpose: in SQL (migration.convert_value, what
the merge does) and in Python (mailmig.validate's canonicalizers, what validate expects).
A property test: for any value a SQLite column can hold and every kind of column, both must
reach the same outcome (loaded with the same canonical value, the same repair and repaired
value, the same reject), and neither may raise.
"""

from __future__ import annotations

import os

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from mailmig.sqlite_source import encode_value
from mailmig.validate import CANONICALIZERS, Reject, Repair
from mailmig.validate.rules import UNKNOWN
from tests.hostile_values import ANY_VALUE

KINDS = sorted(CANONICALIZERS)

SQL_OUTCOMES = """
SELECT v.i - 1, k.kind, c.rule, c.sqlstate,
       CASE WHEN c.value IS NULL THEN NULL
            WHEN k.kind = 'json' THEN c.value::text
            WHEN k.kind IN ('timestamp', 'timestamp_required')
              THEN to_char((c.value #>> '{}')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            WHEN k.kind = 'float' THEN encode(float8send((c.value #>> '{}')::float8), 'hex')
            WHEN k.kind = 'flag' THEN CASE WHEN (c.value #>> '{}')::boolean THEN 't' ELSE 'f' END
            ELSE c.value #>> '{}'
       END
FROM jsonb_array_elements(%(values)s) WITH ORDINALITY AS v(value, i)
CROSS JOIN unnest(%(kinds)s::text[]) AS k(kind)
CROSS JOIN LATERAL migration.convert_value(k.kind, v.value) c
"""


def python_outcome(kind: str, value):
    out = CANONICALIZERS[kind](value)
    if out is None:
        return ("null",)
    if isinstance(out, Reject):
        return ("rejected", out.sqlstate)
    if isinstance(out, Repair):
        return ("repaired", out.options)
    return ("loaded", bytes(out).decode("utf-8"))


def sql_outcome(rule, sqlstate, canonical):
    if sqlstate is not None:
        return ("rejected", sqlstate)
    if rule is not None:
        return ("repaired", rule, canonical)
    return ("null",) if canonical is None else ("loaded", canonical)


def agree(py, sql) -> bool:
    if py[0] != sql[0]:
        return False
    if py[0] == "repaired":
        _, rule, canonical = sql
        if rule not in py[1]:
            return False
        predicted = py[1][rule]
        if predicted is UNKNOWN:
            return True  # the rules do not predict the repaired value
        return (None if predicted is None else bytes(predicted).decode()) == canonical
    return py == sql


EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or 150


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("FUZZ_EXAMPLES"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(values=st.lists(ANY_VALUE, min_size=1, max_size=40))
def test_sql_and_python_rules_reach_the_same_outcome(conn, values):
    encoded = [encode_value(v) for v in values]
    rows = conn.execute(SQL_OUTCOMES, {"values": Jsonb(encoded), "kinds": KINDS}).fetchall()
    assert len(rows) == len(values) * len(KINDS)
    wrong = []
    for index, kind, rule, sqlstate, canonical in rows:
        py = python_outcome(kind, values[index])
        sql = sql_outcome(rule, sqlstate, canonical)
        if not agree(py, sql):
            wrong.append(f"{kind} {values[index]!r} ({encoded[index]}): python {py}, sql {sql}")
    assert not wrong, "\n".join(wrong[:20])
