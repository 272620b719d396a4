"""The mapping (config/mapping.yaml): which legacy tables and columns are migrated, and how.

It is the one source of the migrated tables: `mailmig schema apply` writes it into
migration.column_map, from which the database makes the staging tables, the merge its
column lists and conversions, and validate its canonical queries; the load and validate
read the same file for the source side (and stop when it and the database disagree).
"""

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
    name: str  # the legacy table, and its staging.<name> and mail.<name>
    source: str  # emails_db | auth_db
    key: str
    columns: dict[str, str]  # source column -> kind, in source order
    indexed: tuple[str, ...]
    targets: dict[str, str] | None = None  # source column -> its column of mail.<name> (default: the same)

    @property
    def file_name(self) -> str:
        return SOURCE_FILES[self.source]

    def target(self, column: str) -> str:
        return (self.targets or {}).get(column, column)

    def column_map_rows(self) -> list[tuple]:
        """(source_table, position, column_name, kind, target_column, is_key) per column:
        this table's rows of migration.column_map."""
        return [(self.name, position, column, kind, self.target(column), column == self.key)
                for position, (column, kind) in enumerate(self.columns.items(), 1)]


def _column(path, where: str, spec) -> tuple[str, str | None]:
    """A column's kind and target: `name: kind` or `name: {kind: ..., target: ...}`."""
    if isinstance(spec, str):
        kind, target = spec, None
    elif isinstance(spec, dict) and set(spec) <= {"kind", "target"} and "kind" in spec:
        kind, target = spec["kind"], spec.get("target")
    else:
        raise MappingError(f"{path}: {where}: a kind, or {{kind: ..., target: ...}}, not {spec!r}")
    if kind not in KINDS:
        raise MappingError(f"{path}: {where}: unknown kind {kind!r} (one of {', '.join(sorted(KINDS))})")
    if target is not None and not (isinstance(target, str) and target):
        raise MappingError(f"{path}: {where}.target: a column name, not {target!r}")
    return kind, target


def load_mapping(path: Path = DEFAULT_MAPPING) -> list[Table]:
    raw = yaml.safe_load(Path(path).read_text())
    tables = []
    for source, source_tables in (raw.get("sources") or {}).items():
        if source not in SOURCE_FILES:
            raise MappingError(f"{path}: sources.{source}: not one of {', '.join(SOURCE_FILES)}")
        for name, spec in source_tables.items():
            where = f"sources.{source}.{name}"
            columns, targets = {}, {}
            for column, column_spec in dict(spec["columns"]).items():
                columns[column], target = _column(path, f"{where}.columns.{column}", column_spec)
                if target is not None and target != column:
                    targets[column] = target
            if spec.get("key") not in columns:
                raise MappingError(f"{path}: {where}.key: {spec.get('key')!r} is not one of its columns")
            if columns[spec["key"]] not in ("int", "text"):  # source keys are named for these two
                raise MappingError(f"{path}: {where}.key: the key's kind must be int or text")
            table = Table(name, source, spec["key"], columns, tuple(spec.get("indexed", ())), targets or None)
            named = [table.target(c) for c in columns]
            doubled = sorted({t for t in named if named.count(t) > 1})
            if doubled:
                raise MappingError(f"{path}: {where}: two columns go to mail.{name}.{doubled[0]}")
            tables.append(table)
    return tables


def check_against_database(tables: list[Table], column_map: list[tuple]) -> None:
    """The YAML and migration.column_map must say the same thing (column_map rows as
    Table.column_map_rows gives them)."""
    in_db: dict[str, list[tuple]] = {}
    for row in column_map:
        in_db.setdefault(row[0], []).append(tuple(row))
    for table in tables:
        yaml_rows = table.column_map_rows()
        if sorted(in_db.get(table.name, [])) != sorted(yaml_rows):
            raise MappingError(
                f"mapping of table {table.name} differs from migration.column_map in the database "
                f"(`mailmig schema apply` writes the mapping into it): "
                f"yaml {[r[2:5] for r in yaml_rows]} vs database {[r[2:5] for r in in_db.get(table.name, [])]}")
