"""The mapping (config/mapping.yaml): which legacy tables and columns are migrated, and how."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from mailmig.config import PROJECT_ROOT

DEFAULT_MAPPING = PROJECT_ROOT / "config" / "mapping.yaml"
KINDS = {"int", "text", "flag", "float", "json", "timestamp", "timestamp_required"}
SOURCE_FILES = {"emails_db": "emails.db", "auth_db": "auth.db"}


class MappingError(ValueError):
    """The mapping and a source file (or the database) disagree; the message names them."""


@dataclass(frozen=True)
class Table:
    name: str
    source: str  # emails_db | auth_db
    key: str
    columns: dict[str, str]  # column -> kind, in source order
    indexed: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return SOURCE_FILES[self.source]


def load_mapping(path: Path = DEFAULT_MAPPING) -> list[Table]:
    raw = yaml.safe_load(Path(path).read_text())
    tables = []
    for source, source_tables in (raw.get("sources") or {}).items():
        if source not in SOURCE_FILES:
            raise MappingError(f"{path}: sources.{source}: not one of {', '.join(SOURCE_FILES)}")
        for name, spec in source_tables.items():
            columns = dict(spec["columns"])
            for column, kind in columns.items():
                if kind not in KINDS:
                    raise MappingError(f"{path}: sources.{source}.{name}.columns.{column}: "
                                       f"unknown kind {kind!r} (one of {', '.join(sorted(KINDS))})")
            tables.append(Table(name, source, spec["key"], columns, tuple(spec.get("indexed", ()))))
    return tables


def check_against_database(tables: list[Table], column_map: list[tuple[str, str, str]]) -> None:
    """The YAML and migration.column_map must say the same thing."""
    in_db: dict[str, dict[str, str]] = {}
    for table, column, kind in column_map:
        in_db.setdefault(table, {})[column] = kind
    for table in tables:
        if in_db.get(table.name) != table.columns:
            raise MappingError(
                f"mapping of table {table.name} differs from migration.column_map in the database: "
                f"yaml {table.columns} vs database {in_db.get(table.name)}")
