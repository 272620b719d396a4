"""Filling staging: the hostile rows stored whole, the plain rows by pgloader or by COPY.

pgloader 3.6 loses rows silently and exits 0 on values real legacy files hold
(FIELD-NOTES), so it only ever sees a work copy of the snapshot from which the audit's
hostile rows were deleted, and its result is checked by counting, never trusted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from mailmig import queries
from mailmig.config import PROJECT_ROOT, SCHEMA
from mailmig.mapping import Table
from mailmig.sqlite_source import column_list, connect_readonly, quote_identifier

TEMPLATE = PROJECT_ROOT / "pgloader" / "sqlite-to-staging.load.tmpl"
# The pgloader settings' defaults are the configuration's (config.SCHEMA, load.pgloader_*),
# for callers that pass none: one process per file with 4 workers and 2 COPY writers on
# both cores, and a 4 GB Lisp heap so that its garbage collector runs less often.
PGLOADER_DEFAULTS = {key[len("pgloader_"):]: spec[1] for key, spec in SCHEMA["load"].items()
                     if key.startswith("pgloader_")}
PGLOADER_LOAD_FILE_SETTINGS = ("workers", "concurrency", "prefetch_rows", "batch_rows")


class StagingError(RuntimeError):
    """Staging does not hold what the snapshot holds; the message names the table."""


def prepare_staging(conninfo: str) -> list[tuple[str, int, bool]]:
    """The staging tables made from the mapping (migration.column_map), empty:
    (table, columns, made again?) per table."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(queries.load("staging_prepare")).fetchall()


def store_hostile(conninfo: str, table: Table, rows: list[tuple[str, dict]]) -> int:
    """The rows pgloader must not see, each column typed-JSON encoded (lossless)."""
    with psycopg.connect(conninfo) as conn:
        with conn.cursor().copy(queries.load("staging_hostile_copy")) as copy:
            for key, original in rows:
                copy.write_row((table.name, key, json.dumps(original, ensure_ascii=False)))
    return len(rows)


def copy_work_file(snapshot_file: Path, work_file: Path) -> None:
    """A byte copy of a snapshot file for the loader to read (the snapshot itself stays
    as it was taken). Started as soon as the snapshot exists, beside the audit."""
    work_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snapshot_file, work_file)


def delete_hostile(work_file: Path, hostile: dict[str, list[int]]) -> None:
    """Delete the audit's hostile rows ({table: [rowid, ...]}) from a work copy: what
    pgloader reads holds none. By rowid: a key may be NULL, or equal another row's as
    text (the integer 5 and the text '5'). Every rowid must delete exactly one row."""
    conn = sqlite3.connect(work_file)
    conn.text_factory = bytes
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        for table, rowids in hostile.items():
            deleted = 0
            for chunk_start in range(0, len(rowids), 500):
                chunk = rowids[chunk_start:chunk_start + 500]
                deleted += conn.execute(
                    f"DELETE FROM {quote_identifier(table)} WHERE rowid IN ({','.join('?' * len(chunk))})",
                    chunk).rowcount
            if deleted != len(rowids):
                raise StagingError(f"{work_file}: table {table}: {deleted:,} of {len(rowids):,} hostile rows "
                                   "deleted from the work copy")
        conn.commit()
    finally:
        conn.close()


def staged_count(conninfo: str, table: Table) -> int:
    """The rows staging.<table> holds (counted: a loader's exit code proves nothing)."""
    with psycopg.connect(conninfo) as conn:
        return conn.execute(queries.load("staging_extent"), (table.name,)).fetchone()[1]


# pgloader 3.6 knows these libpq sslmode values; verify-ca/verify-full are 'require' with
# its certificate verification on (which it is, unless --no-ssl-cert-verification)
PGLOADER_SSLMODES = {"disable": "disable", "allow": "allow", "prefer": "prefer", "require": "require",
                     "verify-ca": "require", "verify-full": "require"}


def _is_local_host(host: str) -> bool:
    """The local socket or loopback: the only targets where pgloader may skip certificate
    verification (a certificate there proves nothing a local connection does not)."""
    if host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: whatever it resolves to, it is not ours to trust


def _pgloader_target(conninfo: str) -> tuple[dict, dict, bool]:
    """Template values for the target, the environment that carries the password, and
    whether certificate verification may be switched off (local socket or loopback only)."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    sslmode = params.get("sslmode") or os.environ.get("PGSSLMODE")
    verify_off = _is_local_host(host) and sslmode not in ("verify-ca", "verify-full")
    if host.startswith("/"):
        host = "unix:" + host  # pgloader's spelling of a socket directory
    env = dict(os.environ)
    password = params.get("password") or os.environ.get("PGPASSWORD")
    if password:
        env["PGPASSWORD"] = password
    values = {
        "user": params.get("user") or os.environ.get("PGUSER") or "postgres",
        "host": host,
        "port": str(params.get("port") or os.environ.get("PGPORT") or 5432),
        "dbname": params.get("dbname") or os.environ.get("PGDATABASE") or "postgres",
    }
    for name, value in values.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:/@-]+", value):
            raise StagingError(f"pgloader target {name} {value!r} has characters a load file cannot carry")
    if sslmode and sslmode not in PGLOADER_SSLMODES:
        raise StagingError(f"sslmode {sslmode!r} is not one pgloader knows ({', '.join(PGLOADER_SSLMODES)})")
    values["options"] = f"?sslmode={PGLOADER_SSLMODES[sslmode]}" if sslmode else ""
    return values, env, verify_off


def pgloader_ssl_arguments(conninfo: str) -> list[str]:
    """pgloader's certificate verification stays on for every host but the local socket
    and loopback (and there too when sslmode asks for verification)."""
    return ["--no-ssl-cert-verification"] if _pgloader_target(conninfo)[2] else []


def render_load_file(work_file: Path, table: Table, conninfo: str, settings: dict, out: Path) -> dict:
    """Render pgloader/<template> for one table; the file holds no secret."""
    values, env, _ = _pgloader_target(conninfo)
    values.update({"source_path": str(work_file.resolve()), "table": table.name})
    for name in PGLOADER_LOAD_FILE_SETTINGS:
        values[name] = str(int(settings.get(name, PGLOADER_DEFAULTS[name])))
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise StagingError(f"{TEMPLATE}: unrendered placeholder in {out.name}")
    out.write_text(text)
    return env


class _RssWatcher(threading.Thread):
    """Peak resident memory of a child process, sampled from /proc."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                return
            self.done.wait(0.5)


def run_pgloader(work_file: Path, table: Table, conninfo: str, settings: dict, log_dir: Path,
                 progress=None, label: str | None = None) -> dict:
    """pgloader for one table; returns exit code, seconds, peak RSS. Its rows are counted
    by the caller: the exit code proves nothing (FIELD-NOTES)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    label = label or table.name
    load_file = log_dir / f"{label}.load"
    env = render_load_file(work_file, table, conninfo, settings, load_file)
    started = time.monotonic()
    with open(log_dir / f"{label}.log", "wb") as log:
        proc = subprocess.Popen(
            ["pgloader", "--dynamic-space-size",
             str(int(settings.get("dynamic_space_size", PGLOADER_DEFAULTS["dynamic_space_size"]))),
             *pgloader_ssl_arguments(conninfo), "--root-dir", str(log_dir / f"root-{label}"),
             "--logfile", str(log_dir / f"{label}.pgloader.log"), str(load_file)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        watcher = _RssWatcher(proc.pid)
        watcher.start()
        code = proc.wait()
        watcher.done.set()
        watcher.join()
    return {"table": table.name, "file": label, "exit_code": code, "seconds": round(time.monotonic() - started, 3),
            "peak_rss_mib": round(watcher.peak_kib / 1024, 1), "load_file": str(load_file)}


def copy_plain_rows(work_file: Path, table: Table, conninfo: str, progress=None) -> dict:
    """--loader copy: the same staging contract fed by psycopg COPY from the work copy."""
    started = time.monotonic()
    columns = list(table.columns)
    src = connect_readonly(work_file)
    rows = 0
    try:
        with psycopg.connect(conninfo) as conn:
            query = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier("staging", table.name),
                sql.SQL(", ").join(sql.Identifier(c) for c in columns))
            with conn.cursor().copy(query) as copy:
                select = f"SELECT {column_list(columns)} FROM {quote_identifier(table.name)}"
                for row in src.execute(select):
                    copy.write_row([None if v is None else
                                    (bytes(v).decode("utf-8") if isinstance(v, bytes) else
                                     repr(v) if isinstance(v, float) else str(v))
                                    for v in row])
                    rows += 1
                    if progress and rows % 50000 == 0:
                        progress(f"  copy {table.name}: {rows:,} rows")
    finally:
        src.close()
    return {"table": table.name, "rows": rows, "seconds": round(time.monotonic() - started, 3)}

