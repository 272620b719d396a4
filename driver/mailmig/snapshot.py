"""The snapshot: a consistent, checked, checksummed copy of each legacy SQLite file.

SQLite's online backup API copies a live database correctly while the app writes to it
(a `cp` of a WAL database can be torn). The source is opened read-only and never
changed. The copy is integrity-checked, hashed into manifest.json, and archived into
snapshot.tar.gz (the seed plan's backup), the archive in the background.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tarfile
import threading
import time
from pathlib import Path

from mailmig.sqlite_source import connect_readonly, quote_identifier


class SnapshotError(RuntimeError):
    """A source cannot be snapshotted; the message names the file."""


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of `source` through the online backup API (one step, one read snapshot)."""
    if not source.exists():
        raise SnapshotError(f"{source}: no such file")
    if not source.is_file() or not _is_sqlite(source):
        raise SnapshotError(f"{source}: not a SQLite database")
    if target.exists():
        target.unlink()
    try:
        src = connect_readonly(source)
        try:
            # pages read through a memory map rather than one pread each (2.4 GB: half the
            # system time of the copy); SQLite caps the size at its build's maximum (2 GB)
            src.execute(f"PRAGMA mmap_size = {1 << 40}")
            dst = sqlite3.connect(target)
            try:
                # the copy is new and nobody else's until it is complete: no rollback
                # journal, no sync per spilled page (2.4 GB: 3.7 s instead of 9.9 s). The
                # kernel writes it back while the load works; the archiver fsyncs the
                # copies and the archive before the run reports success.
                dst.execute("PRAGMA journal_mode = OFF")
                dst.execute("PRAGMA synchronous = OFF")
                src.backup(dst)  # pages=-1: the whole file under one read transaction
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise SnapshotError(f"{source}: cannot be copied: {exc}") from exc


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def integrity_check(path: Path, name: str) -> None:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{name}: integrity check failed: {exc}") from exc
    finally:
        conn.close()
    if rows != ["ok"]:
        raise SnapshotError(f"{name}: integrity check failed: " + "; ".join(rows[:5]))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def table_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        counts = {}
        for name in names:
            try:
                counts[name] = conn.execute(f"SELECT count(*) FROM {quote_identifier(name)}").fetchone()[0]
            except sqlite3.Error:
                counts[name] = None  # e.g. an FTS5 table whose module is unavailable
        return counts
    finally:
        conn.close()


def lower_priority(idle: bool = False) -> None:
    """Nice the calling thread (Linux priorities are per thread): background work of the
    load yields the CPU to pgloader and the merge. `idle`: run only on CPU time nobody
    else wants (SCHED_IDLE), for work nothing waits for."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
        if idle:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class Archiver(threading.Thread):
    """Hashes the copies into the manifest and writes snapshot.tar.gz of them, in the
    background (gzip level 1: it is a backup, not a distribution, and the CPU is better
    spent on the load)."""

    def __init__(self, files: list[Path], archive: Path, manifest: dict):
        super().__init__(name="snapshot-archiver", daemon=True)
        self.files, self.archive, self.manifest = files, archive, manifest
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        lower_priority(idle=True)
        started = time.monotonic()
        tmp = self.archive.with_suffix(".tmp")
        try:
            for path in self.files:  # hashlib releases the GIL: this runs beside the load
                self.manifest["files"][path.name]["sha256"] = sha256_file(path)
            with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
                for path in self.files:
                    tar.add(path, arcname=path.name)
            tmp.replace(self.archive)
            for path in [*self.files, self.archive, self.archive.parent]:
                _fsync(path)  # the backup is on disk before the run says it is done
        except BaseException as exc:  # reported by the load, which waits for it
            self.error = exc
        self.seconds = time.monotonic() - started


def take_snapshot(sources: dict[str, Path], snap_dir: Path, check=True) -> tuple[dict, Archiver]:
    """Copy each source ({"emails.db": path, ...}); returns the manifest and the archiver
    that hashes and archives the copies. The integrity check is left to the caller (`check_snapshot`)
    so that it can run beside the load of staging."""
    snap_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"files": {}}
    for name, source in sources.items():
        target = snap_dir / name
        started = time.monotonic()
        copy_database(Path(source), target)
        manifest["files"][name] = {
            "source": str(Path(source).resolve()),
            "size": target.stat().st_size,
            "sha256": None,  # filled in by the archiver, in the background
            "tables": table_counts(target),
            "copy_seconds": round(time.monotonic() - started, 3),
        }
    archiver = Archiver([snap_dir / name for name in sources], snap_dir / "snapshot.tar.gz", manifest)
    return manifest, archiver  # not started: the caller decides when the CPU is free for it


def check_snapshot(snap_dir: Path, labels: dict[str, str]) -> dict[str, float]:
    """PRAGMA integrity_check on each copy ({file name: label naming its source});
    raises SnapshotError naming the failing one. Returns the seconds of each."""
    seconds = {}
    for name, label in labels.items():
        started = time.monotonic()
        integrity_check(snap_dir / name, label)
        seconds[name] = round(time.monotonic() - started, 3)
    return seconds
