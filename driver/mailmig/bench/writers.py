"""Concurrent writers in worker processes, so that the client's GIL is not what is measured.

W writer threads are spread over P processes (each with its own backend: SQLite
connections per thread; for PostgreSQL a pool holding an equal share of the configured
pool's connections, so that all writers together never hold more than it does). Every
writer first writes a few warm-up emails (not measured, the same on both stores), then
all start together at t0 and write one email per store call:

- closed loop (`rate=None`): as fast as each writer can, until t0 + duration;
- paced (`rate` emails/s per writer): each write is due at a fixed time and its latency
  is counted from that time, so a write queued behind a stall counts the stall (no
  coordinated omission); until the parent says stop.

Each write is recorded as (due or start time after t0, latency, outcome). Each process
also reports its CPU seconds (all threads, SQLite's own work included: it runs in the
writer process) and bytes written, so the report can show that no client process was
CPU-bound.
"""

from __future__ import annotations

import math
import multiprocessing
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from mailmig.bench.sysio import ServerProcesses, cpu_seconds, write_bytes

OK, LOCKED, POOL_TIMEOUT, UNAVAILABLE, FAILED = range(5)
OUTCOMES = {OK: "ok", LOCKED: "database is locked / busy", POOL_TIMEOUT: "pool wait timed out",
            UNAVAILABLE: "unavailable (other)", FAILED: "failed (other)"}


@dataclass
class WriterSpec:
    store: str                      # "sqlite" | "postgres"
    tag: str                        # makes message_ids unique per run and workload
    templates: list                 # NewEmail templates (mailmig.bench.mail)
    inboxes: list[str]
    emails_db: str = ""
    auth_db: str = ""
    busy_timeout_ms: int = 5000
    conninfo: str = ""
    pool: dict = field(default_factory=dict)  # PoolSettings keyword arguments
    warmup_writes: int = 2


def classify(exc: BaseException) -> int:
    from mailmig.store import StoreUnavailable

    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return LOCKED
    if isinstance(exc, StoreUnavailable) and "no connection within" in text:
        return POOL_TIMEOUT
    if isinstance(exc, StoreUnavailable):
        return UNAVAILABLE
    return FAILED


def open_backend(spec: WriterSpec, pool_share: int | None = None):
    from mailmig.store import PoolSettings, PostgresBackend, SQLiteBackend

    if spec.store == "sqlite":
        return SQLiteBackend(spec.emails_db, spec.auth_db, busy_timeout_ms=spec.busy_timeout_ms)
    pool = dict(spec.pool)
    if pool_share is not None:
        whole = pool.get("max_size", 20)
        pool["max_size"] = pool_share
        pool["min_size"] = min(pool.get("min_size", 1), pool_share)
        if pool.get("group_writers"):  # group commit's statements at a time, shared out like the pool
            pool["group_writers"] = max(1, pool["group_writers"] * pool_share // whole)
    return PostgresBackend(spec.conninfo, PoolSettings(**pool))


def _writer_process(spec: WriterSpec, threads: int, first_thread: int, rate: float | None, pool_share: int | None,
                    t0_value, t_end_value, go, release, pipe) -> None:
    """One worker process: `threads` writers through one backend; sends back its records."""
    from mailmig.bench.mail import EmailSource

    try:
        backend = open_backend(spec, pool_share)
        records: list[list[tuple[float, float, int]]] = [[] for _ in range(threads)]
        samples: dict[int, str] = {}
        ready = threading.Barrier(threads + 1)

        def writer(i: int) -> None:
            source = EmailSource(spec.templates, spec.inboxes, f"{spec.tag}.{first_thread + i}")
            for _ in range(spec.warmup_writes):
                try:
                    backend.save_email(source.next())
                except Exception:  # noqa: BLE001 - warm-up only: not measured
                    pass
            ready.wait()
            go.wait()
            t0 = t0_value.value
            mine = records[i]
            interval = None if not rate else 1.0 / rate
            # paced writers start spread over one interval, not all at once
            due = t0 + (interval * random.Random(first_thread + i).random() if interval else 0.0)
            while True:
                if interval:
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
                    start = due
                    due += interval
                else:
                    start = time.monotonic()
                if start >= t_end_value.value:
                    break
                code = OK
                try:
                    backend.save_email(source.next())
                except Exception as exc:  # noqa: BLE001 - every failure is counted by kind
                    code = classify(exc)
                    samples.setdefault(code, f"{type(exc).__name__}: {exc}"[:200])
                mine.append((start - t0, time.monotonic() - start, code))

        workers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(threads)]
        for w in workers:
            w.start()
        ready.wait()
        pipe.send(("ready", None))
        go.wait()
        if hasattr(backend, "usage"):
            backend.usage.reset()
        cpu0, io0, wall0 = cpu_seconds(), write_bytes(), time.monotonic()
        for w in workers:
            w.join()
        wall = time.monotonic() - wall0
        result = {
            "records": [r for rs in records for r in rs], "cpu_seconds": round(cpu_seconds() - cpu0, 3),
            "wall_seconds": round(wall, 3), "write_bytes": write_bytes() - io0, "samples": samples,
            "pool": backend.pool_usage() if hasattr(backend, "pool_usage") else None,
            "group_commit": backend.group_commit_stats() if hasattr(backend, "group_commit_stats") else None,
        }
        pipe.send(("done", result))
        release.wait(60)  # the parent reads the server's counters while these connections live
        backend.close()
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        pipe.send(("error", traceback.format_exc()))


@dataclass
class WriterRun:
    """What run_writers measured: every write, and per process its CPU and pool use."""

    records: list[tuple[float, float, int]]
    processes: list[dict]
    window_seconds: float
    server: dict | None
    during: Any = None


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def run_writers(spec: WriterSpec, writers: int, processes: int, *, duration: float | None = None,
                rate_per_writer: float | None = None, during: Callable[[float], Any] | None = None,
                server: ServerProcesses | None = None, pool_max: int = 20) -> WriterRun:
    """Run `writers` writers over `processes` processes. Closed loop for `duration`
    seconds, or paced at `rate_per_writer` while `during(t0)` runs in this process
    (e.g. a retention) and for as long as it takes."""
    processes = max(1, min(processes, writers))
    ctx = multiprocessing.get_context("spawn")
    shares = split(writers, processes)
    pool_shares = split(pool_max, processes) if spec.store == "postgres" else [None] * processes
    if spec.store == "postgres" and min(pool_shares) < 1:
        raise ValueError(f"{processes} processes cannot share a pool of {pool_max}")
    t0_value = ctx.Value("d", 0.0, lock=False)
    t_end_value = ctx.Value("d", math.inf, lock=False)
    go = ctx.Event()
    release = ctx.Event()
    procs, pipes = [], []
    first = 0
    for share, pool_share in zip(shares, pool_shares):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_writer_process, args=(spec, share, first, rate_per_writer, pool_share,
                                                         t0_value, t_end_value, go, release, child_end),
                           daemon=True)
        proc.start()
        child_end.close()
        procs.append(proc)
        pipes.append(parent_end)
        first += share
    try:
        for pipe in pipes:
            kind, detail = pipe.recv()
            if kind == "error":
                raise RuntimeError(f"a writer process failed:\n{detail}")
        t0 = time.monotonic() + 0.05
        t0_value.value = t0
        if duration is not None:
            t_end_value.value = t0 + duration
        before = server.snapshot() if server and server.measurable else None
        go.set()
        outcome = None
        if during is not None:
            time.sleep(max(0.0, t0 - time.monotonic()))
            outcome = during(t0)
            t_end_value.value = time.monotonic()
        elif duration is not None:
            time.sleep(max(0.0, t0 + duration - time.monotonic()))
        window = t_end_value.value - t0
        results = []
        for pipe in pipes:
            kind, detail = pipe.recv()
            if kind == "error":
                raise RuntimeError(f"a writer process failed:\n{detail}")
            results.append(detail)
        server_delta = ServerProcesses.delta(before, server.snapshot()) if before is not None else None
    finally:
        release.set()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    records = sorted(r for res in results for r in res.pop("records"))
    for res, share in zip(results, shares):
        res["writers"] = share
    return WriterRun(records, results, window, server_delta, outcome)
