"""The migrated tables as validate compares them, taken from the mapping
(config/mapping.yaml): columns with their kinds, the key first, which SQLite file holds
them, and how keys fall into buckets. The PostgreSQL side's canonical rows come from
the same mapping, as the database holds it (migration.column_map): the SQL functions
migration.validate_digest and migration.validate_rows generate their queries from it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mailmig.mapping import DEFAULT_MAPPING, Table, load_mapping
from mailmig.validate.rules import CANONICALIZERS


@dataclass(frozen=True)
class TableSpec:
    name: str
    database: str  # "emails" or "auth": which SQLite file
    columns: tuple  # ((source column, kind), ...), the key first, then the mapping's order
    int_key: bool

    @property
    def column_names(self):
        return [name for name, _ in self.columns]

    @cached_property
    def canonicalizers(self) -> tuple:
        """The canonicalizer of each column, in order (looked up once per spec, not per row)."""
        return tuple(CANONICALIZERS[kind] for _, kind in self.columns)


def table_specs(tables: list[Table]) -> tuple[TableSpec, ...]:
    """validate's view of the mapped tables: the key first (as migration.canonical_query
    orders the PostgreSQL side), then the mapping's order."""
    specs = []
    for table in tables:
        columns = ((table.key, table.columns[table.key]),) + tuple(
            (column, kind) for column, kind in table.columns.items() if column != table.key)
        specs.append(TableSpec(table.name, table.source.removesuffix("_db"), columns,
                               table.columns[table.key] == "int"))
    return tuple(specs)


def specs_of(mapping_path: Path = DEFAULT_MAPPING) -> tuple[TableSpec, ...]:
    return table_specs(load_mapping(mapping_path))


TABLES = specs_of()  # the default mapping's
BUCKET_SHIFT = 10  # 1024 ids per bucket (migration.canonical_query: key >> 10)


def bucket_of(spec: TableSpec, key: bytes | None) -> int:
    if spec.int_key:
        return int(key) >> BUCKET_SHIFT
    return int(hashlib.md5(key or b"").hexdigest()[:3], 16)
