"""The merge of staging into mail.*: migration.merge_chunk by block ranges on several
connections, then the hostile rows through migration.merge_hostile. The database does
the converting, repairing and rejecting; this module only hands out the ranges."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from mailmig import console, queries

CHUNK_ROWS = 2000  # rows per merge transaction: small enough that a fallback is cheap
PARTITIONED_TABLES = {"emails"}  # their merge waits for the partitions of the staged months


def merge_table(conninfo: str, run_id: str, table: str, jobs: int, progress) -> dict:
    """staging.<table> through migration.merge_chunk in block ranges on `jobs` connections."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        blocks, rows = conn.execute(queries.load("staging_extent"), (table,)).fetchone()
    totals = {"fast": 0, "loaded": 0, "repaired": 0, "rejected": 0, "present": 0, "fallback_chunks": 0}
    if rows == 0:
        return totals
    per_block = max(rows / max(blocks, 1), 1.0)
    step = max(1, int(CHUNK_ROWS / per_block))
    ranges = [(lo, lo + step) for lo in range(0, blocks + 1, step)]
    lock = threading.Lock()
    done = {"chunks": 0}
    bar = console.bar(progress, f"merge {table}", rows)
    local = threading.local()
    connections = []

    def work(bounds):
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(conninfo, autocommit=True)
            local.conn.execute(queries.load("merge_session_settings"))
            with lock:
                connections.append(local.conn)
        counts = local.conn.execute(queries.load("merge_chunk"), (run_id, table, *bounds)).fetchone()
        with lock:
            for key, value in zip(("fast", "loaded", "repaired", "rejected", "present"), counts[:5]):
                totals[key] += value
            totals["fallback_chunks"] += int(counts[5])
            done["chunks"] += 1
            bar.update(totals["loaded"] + totals["rejected"] + totals["present"],
                       f"({done['chunks']}/{len(ranges)} chunks)")

    try:
        with bar, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(work, ranges))
    finally:
        for c in connections:
            c.close()
    return totals


def merge_hostile(conninfo: str, run_id: str, table: str) -> dict:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        counts = conn.execute(queries.load("merge_hostile"), (run_id, table)).fetchone()
    return dict(zip(("loaded", "repaired", "rejected", "present"), counts))
