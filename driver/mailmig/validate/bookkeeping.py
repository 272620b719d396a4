"""The bookkeeping checks: migration.repairs and migration.rejects against the source.

A column recorded in migration.repairs is compared through the repair (the source value
must encode exactly to `original`, PostgreSQL must hold `repaired`, and the rule must be
the one the rules call for); a row in migration.rejects is accounted for when its
`original` equals the source row column by column. A value the rules would repair or
reject, without a record, is a difference too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from mailmig import queries
from mailmig.sqlite_source import encode_value, source_key
from mailmig.validate.differences import Differences, display, display_original
from mailmig.validate.rules import CANONICALIZERS, UNKNOWN, Reject, Repair, canon_repaired
from mailmig.validate.tables import TableSpec, bucket_of


def same_original(recorded, encoded: dict) -> bool:
    """Is a recorded typed-JSON original (as jsonb gave it back) the source value's? jsonb
    keeps a real's shortest decimal as numeric and prints it without exponent
    (9.223372036854776e18 comes back as 9223372036854776000): a real is compared as the
    double its decimal denotes."""
    if recorded == encoded:
        return True
    if (isinstance(recorded, dict) and recorded.get("t") == "real" == encoded.get("t")
            and isinstance(recorded.get("v"), (int, float)) and isinstance(encoded.get("v"), float)):
        return float(recorded["v"]) == encoded["v"] and set(recorded) == set(encoded)
    return False


@dataclass
class Bookkeeping:
    """migration.repairs and migration.rejects, by (table, source key)."""

    repairs: dict = field(default_factory=dict)  # (table, key) -> {column: row dict}
    rejects: dict = field(default_factory=dict)  # (table, key) -> row dict
    run_ids: set = field(default_factory=set)

    def repaired_rows(self, table: str) -> int:
        return sum(1 for t, _ in self.repairs if t == table)

    def repaired_columns(self, table: str) -> int:
        return sum(len(cols) for (t, _), cols in self.repairs.items() if t == table)

    def rejected_rows(self, table: str) -> int:
        return sum(1 for t, _ in self.rejects if t == table)


_OUTCOMES = (Repair, Reject)
def expected_row(spec: TableSpec, row, book: Bookkeeping, diffs: Differences | None):
    """(source key, canonical values PostgreSQL must hold, rejected?) of one source row.

    `row` is the source row as select_source reads it: the columns, then the rowid (which
    names a row whose key is NULL). Records in `diffs` what is wrong with its reject or
    repairs (when diffs is given)."""
    *row, rowid = row
    key = source_key(row[0], spec.columns[0][1], rowid)
    reject = book.rejects.get((spec.name, key))
    if reject is not None:
        if diffs is not None:
            original = reject["original"] or {}
            for (name, _), value in zip(spec.columns, row):
                if not same_original(original.get(name), encode_value(value)):
                    diffs.add(spec.name, "reject_original_differs", key, column=name,
                              source=display_original(encode_value(value)),
                              recorded=display_original(original.get(name)) if name in original else None)
        canon = CANONICALIZERS[spec.columns[0][1]](row[0])
        return key, [canon if isinstance(canon, bytes) else None], True
    repairs = book.repairs.get((spec.name, key))
    if repairs is None:  # the common case, kept fast
        values = [canon(value) for canon, value in zip(spec.canonicalizers, row)]
        if not any(type(out) in _OUTCOMES for out in values):
            return key, values, False
    values = []
    for (name, kind), value in zip(spec.columns, row):
        out = CANONICALIZERS[kind](value)
        repair = repairs.get(name) if repairs else None
        if repair is not None:
            expected = canon_repaired(kind, repair["repaired"])
            if diffs is not None:
                encoded = encode_value(value)
                if not same_original(repair["original"], encoded):
                    diffs.add(spec.name, "repair_original_differs", key, column=name,
                              source=display_original(encoded), recorded=display_original(repair["original"]))
                if isinstance(out, Repair):
                    if repair["rule"] not in out.options:
                        diffs.add(spec.name, "repair_not_by_the_rules", key, column=name,
                                  rule=repair["rule"], rules_say=sorted(out.options))
                    else:
                        predicted = out.options[repair["rule"]]
                        if predicted is not UNKNOWN and predicted != expected:
                            diffs.add(spec.name, "repair_value_not_by_the_rules", key, column=name,
                                      rule=repair["rule"], recorded=display(expected, kind),
                                      rules_say=display(predicted, kind))
                else:
                    diffs.add(spec.name, "repair_not_by_the_rules", key, column=name, rule=repair["rule"],
                              rules_say="reject" if isinstance(out, Reject) else "load as-is",
                              source=display_original(encoded))
            values.append(expected)
        elif isinstance(out, Repair):
            if diffs is not None:
                diffs.add(spec.name, "repair_expected", key, column=name, rules_say=sorted(out.options),
                          source=display_original(encode_value(value)))
            predicted = next(iter(out.options.values()))
            values.append(None if predicted is UNKNOWN else predicted)
        elif isinstance(out, Reject):
            if diffs is not None:
                diffs.add(spec.name, "reject_expected", key, column=name, sqlstate=out.sqlstate,
                          reason=out.reason, source=display_original(encode_value(value)))
            values.append(None)
        else:
            values.append(out)
    return key, values, False




def expected_rows(spec: TableSpec, rows, book: Bookkeeping, diffs: Differences | None,
                  buckets: set[int] | None = None) -> tuple[dict, set, set]:
    """Source rows as PostgreSQL must hold them: (PostgreSQL key -> canonical values, keys
    of the rejected rows, source keys read); with `buckets`, only the rows in those."""
    expected: dict[str, list] = {}
    rejected: set[str] = set()
    seen: set[str] = set()
    for row in rows:
        key, values, is_rejected = expected_row(spec, row, book, diffs)
        seen.add(key)
        if values[0] is None or (buckets is not None and bucket_of(spec, values[0]) not in buckets):
            continue
        pg_key = values[0].decode("utf-8", "replace")
        if is_rejected:
            rejected.add(pg_key)
        else:
            expected[pg_key] = values
    return expected, rejected, seen


def read_bookkeeping(conn) -> Bookkeeping:
    book = Bookkeeping()
    has_repairs, has_rejects = conn.execute(queries.load("validate_bookkeeping_tables")).fetchone()
    if has_repairs:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        for r in cur.execute(queries.load("validate_repairs")):
            book.repairs.setdefault((r["source_table"], r["source_key"]), {})[r["column_name"]] = r
            book.run_ids.add(r["run_id"])
    if has_rejects:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        for r in cur.execute(queries.load("validate_rejects")):
            book.rejects[(r["source_table"], r["source_key"])] = r
            book.run_ids.add(r["run_id"])
    return book

