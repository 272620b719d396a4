"""The workloads of `mailmig bench`, each run on both stores through mailmig.store, one
store after the other, with the same data, the same operations and the same warm-up.

Each returns {"sqlite": {...}, "postgres": {...}} plus what both share; latencies are
summarized by mailmig.bench.stats (ms). What every figure includes is said in the
docstring of the function that measures it and printed beside it by report.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable

import psycopg

from mailmig.bench import relevance
from mailmig.bench.mail import BIG_INBOX, EmailSource
from mailmig.bench.stats import summarize
from mailmig.bench.sysio import ServerProcesses, io_counters
from mailmig.bench.writers import LOCKED, OK, OUTCOMES, WriterSpec, run_writers

STORES = ("sqlite", "postgres")
COMMON_WORD = "account"     # in about 88% of the generated bodies: the most expensive word to rank
PHRASE = '"invoice payment"'  # the seed plan's search


@dataclass
class Plan:
    """The sizes of one run (see command.PLANS)."""

    scale: str
    emails: int
    accounts: int
    big_inbox: int
    search_volumes: list[tuple[int, int, int]]   # (emails, accounts, big inbox) of read-only volumes
    single_writes: int
    warmup: int
    inbox_reads: int
    search_reads: int
    search_budget_s: float                       # per query and store, after which fewer reads are kept
    writer_counts: list[int]
    writer_seconds: float
    writer_processes: int
    paced_writers: int
    seed_rate_per_hour: float
    rate_multiplier: float
    baseline_s: float
    tail_s: float
    long_read_s: float


@dataclass
class Bench:
    """What every workload needs: the plan, the two backends on the working copies, the
    server's processes, the emails to write, and where to print progress."""

    plan: Plan
    sqlite: object
    postgres: object
    spec: Callable[[str, str], WriterSpec]
    server: ServerProcesses
    admin_conninfo: str
    work_conninfo: str
    emails_db: Path
    templates: list
    inboxes: list[str]
    progress: Callable[[str], None]
    notes: dict = field(default_factory=dict)

    def backend(self, store: str):
        return self.sqlite if store == "sqlite" else self.postgres


def _errors(records) -> dict:
    out: dict[str, int] = {}
    for _, _, code in records:
        if code != OK:
            out[OUTCOMES[code]] = out.get(OUTCOMES[code], 0) + 1
    return out


def writer_summary(run, window: float | None = None) -> dict:
    """Throughput, latency of the successful writes, errors by kind, client CPU, pool use."""
    window = window or run.window_seconds
    ok = [lat for _, lat, code in run.records if code == OK]
    errors = _errors(run.records)
    cpu = [p["cpu_seconds"] / p["wall_seconds"] if p["wall_seconds"] else 0.0 for p in run.processes]
    out = {
        "writes": len(run.records), "ok": len(ok), "errors": sum(errors.values()), "errors_by_kind": errors,
        "locked_errors": sum(1 for *_, c in run.records if c == LOCKED),
        "throughput_per_s": round(len(ok) / window, 1) if window else None,
        "latency": summarize(ok),
        "window_s": round(window, 2),
        "client_processes": len(run.processes),
        "client_cpu_pct_of_one_core_max": round(100 * max(cpu), 1) if cpu else None,
        "client_cpu_pct_total": round(100 * sum(p["cpu_seconds"] for p in run.processes) / window, 1),
        "error_samples": sorted({s for p in run.processes for s in p["samples"].values()})[:3],
    }
    pools = [p["pool"] for p in run.processes if p.get("pool")]
    if pools:
        max_size = sum(p["max_size"] for p in pools)
        average = sum(p["average_in_use"] for p in pools)
        peak = sum(p["peak_in_use"] for p in pools)
        out["pool"] = {"max_size": max_size, "peak_in_use": peak, "average_in_use": round(average, 2),
                       "peak_pct": round(100 * peak / max_size, 1), "average_pct": round(100 * average / max_size, 1),
                       "wait_timeouts": sum(p["wait_timeouts"] for p in pools),
                       "wait_max_ms": max(p["wait_max_ms"] for p in pools),
                       "peak_is_sum_of_process_peaks": len(pools) > 1}
    groups = [p["group_commit"] for p in run.processes if p.get("group_commit")]
    if groups:
        written = sum(g["groups"] for g in groups)
        out["group_commit"] = {"saves_alone": sum(g["alone"] for g in groups), "groups": written,
                               "saves_in_groups": sum(g["grouped_items"] for g in groups),
                               "average_group": round(sum(g["grouped_items"] for g in groups) / written, 1)
                               if written else 0.0,
                               "largest_group": max(g["largest_group"] for g in groups),
                               "written_again_alone": sum(g["regrouped_alone"] for g in groups)}
    if run.server:
        out["server_cpu_pct_total"] = round(100 * run.server["cpu_seconds"] / window, 1)
    return out


# -- 1 + 7: one writer, latency and bytes written per email ------------------------------

def _checkpoint(bench: Bench, store: str) -> None:
    if store == "sqlite":
        with sqlite3.connect(bench.emails_db, timeout=30) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with psycopg.connect(bench.admin_conninfo, autocommit=True) as conn:
            conn.execute("CHECKPOINT")


def _wal_lsn(bench: Bench) -> str:
    with psycopg.connect(bench.admin_conninfo, autocommit=True) as conn:
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def _wal_bytes(bench: Bench, start: str, end: str) -> int:
    with psycopg.connect(bench.admin_conninfo, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (end, start)).fetchone()[0])


def single_writer(bench: Bench) -> dict:
    """Item 1 and 7. One writer, one store call per email (`save_email`), `warmup` writes
    first (not measured), then `single_writes` timed: the call's wall time as the app
    sees it, commit included (SQLite: BEGIN IMMEDIATE, INSERT, FTS5 insert, COMMIT with
    WAL fsync; PostgreSQL: a pooled connection, mail.insert_email, commit, WAL flush).

    Bytes written: each store is checkpointed before and after the timed writes (SQLite
    PRAGMA wal_checkpoint(TRUNCATE), PostgreSQL CHECKPOINT), so the figures include both
    the log (SQLite's -wal, PostgreSQL's WAL) and the table and index files. SQLite: the
    /proc/<pid>/io counters of the writing process (the engine runs inside it);
    PostgreSQL: the same counters summed over the postmaster and every process it runs
    (backends, WAL writer, checkpointer, background writer), read while the pool's
    connections are open. Both `write_bytes` and `wchar` (see sysio.py), and PostgreSQL's
    WAL alone from pg_current_wal_lsn()."""
    plan = bench.plan
    out = {}
    for store in STORES:
        backend = bench.backend(store)
        source = EmailSource(bench.templates, bench.inboxes, f"single.{store}")
        for _ in range(plan.warmup):
            backend.save_email(source.next())
        _checkpoint(bench, store)
        client0 = io_counters()
        server0 = bench.server.snapshot() if bench.server.measurable else None
        lsn0 = _wal_lsn(bench) if store == "postgres" else None
        latencies, errors = [], 0
        started = time.monotonic()
        for n in range(plan.single_writes):
            t = time.monotonic()
            try:
                backend.save_email(source.next())
                latencies.append(time.monotonic() - t)
            except Exception:  # noqa: BLE001 - counted
                errors += 1
            if n and n % 1000 == 0:
                bench.progress(f"   {store}: {n:,}/{plan.single_writes:,} writes")
        seconds = time.monotonic() - started
        lsn1 = _wal_lsn(bench) if store == "postgres" else None
        _checkpoint(bench, store)
        client1 = io_counters()
        result = {"latency": summarize(latencies), "errors": errors, "seconds": round(seconds, 2),
                  "throughput_per_s": round(len(latencies) / seconds, 1)}
        written, wchar = client1[0] - client0[0], client1[1] - client0[1]
        if store == "sqlite":
            result["bytes_source"] = "/proc/<bench pid>/io (the SQLite engine runs in the writing process)"
        else:
            result["wal_bytes_per_email"] = round(_wal_bytes(bench, lsn0, lsn1) / plan.single_writes)
            if server0 is not None:
                server = ServerProcesses.delta(server0, bench.server.snapshot())
                result["client_write_bytes"], result["client_wchar"] = written, wchar
                result["server_written_by"] = server["by_process"]
                written += server["write_bytes"]
                wchar += server["wchar"]
                result["bytes_source"] = (f"/proc/<pid>/io of the postmaster's {server['processes'] - 1} "
                                          "processes (not its own: it holds its exited children's), plus "
                                          "the client's")
            else:
                written = wchar = None
                result["bytes_source"] = "the server is not local: only its WAL (pg_current_wal_lsn) is known"
        result["write_bytes_per_email"] = None if written is None else round(written / plan.single_writes)
        result["wchar_per_email"] = None if wchar is None else round(wchar / plan.single_writes)
        result["bytes_per_email"] = result["write_bytes_per_email"]
        out[store] = result
        bench.progress(f"   {store}: p50 {result['latency']['p50_ms']} ms, p99 {result['latency']['p99_ms']} ms, "
                       f"written per email: {result['write_bytes_per_email']} (write_bytes), "
                       f"{result['wchar_per_email']} (wchar)")
    return out


# -- 2: an inbox's newest 100 -------------------------------------------------------------

def _timed_reads(call: Callable[[int], object], reps: int, warmup: int, budget_s: float | None = None):
    for n in range(warmup):
        call(n)
    latencies = []
    deadline = time.monotonic() + budget_s if budget_s else None
    for n in range(reps):
        t = time.monotonic()
        result = call(n)
        latencies.append(time.monotonic() - t)
        if deadline and time.monotonic() > deadline and n >= 4:
            break
    return latencies, result


def inbox_reads(bench: Bench, typical: list[str]) -> dict:
    """Item 2. `inbox(address, 100)`, the emails whole (body, html, headers, raw):
    the large inbox (BIG_INBOX) read again and again; typical inboxes each read in turn
    (a different address per call, as real traffic). Warm-up reads are not measured."""
    out = {"large": {}, "typical": {}}
    for store in STORES:
        backend = bench.backend(store)
        lat, rows = _timed_reads(lambda n: backend.inbox(BIG_INBOX, 100), bench.plan.inbox_reads, bench.plan.warmup)
        out["large"][store] = {**summarize(lat), "emails_returned": len(rows)}
        lat, _ = _timed_reads(lambda n: backend.inbox(typical[n % len(typical)], 100), bench.plan.inbox_reads,
                              bench.plan.warmup)
        out["typical"][store] = summarize(lat)
    return out


# -- 3: full-text search -------------------------------------------------------------------

def rare_word(emails_db: Path) -> str:
    """A six-digit code from one of the first subjects of the large inbox: the large inbox is
    generated the same way in every dataset, so every volume searches the same rare word,
    which matches one to a few emails."""
    with sqlite3.connect(f"file:{emails_db}?mode=ro", uri=True) as conn:
        for (subject,) in conn.execute("SELECT subject FROM emails WHERE to_address = ? ORDER BY id LIMIT 200",
                                       (BIG_INBOX,)):
            found = re.search(r"\b\d{6}\b", subject or "")
            if found:
                return found.group(0)
    return "ulwaorve"


def search_queries(emails_db: Path) -> list[dict]:
    return [
        {"name": "common word", "query": COMMON_WORD, "address": None},
        {"name": "rare word", "query": rare_word(emails_db), "address": None},
        {"name": "phrase", "query": PHRASE, "address": None},
        {"name": "inbox-scoped", "query": COMMON_WORD, "address": BIG_INBOX},
    ]


def _fts_matches(emails_db: Path, query: str, address: str | None) -> int:
    from mailmig.store.fts_query import to_fts5

    with sqlite3.connect(f"file:{emails_db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM emails_fts JOIN emails e ON e.id = emails_fts.rowid"
                            " WHERE emails_fts MATCH ? AND (? IS NULL OR e.to_address = ?)",
                            (to_fts5(query), address, address)).fetchone()[0]


def search(bench: Bench, backends: dict, emails_db: Path, volume: int) -> dict:
    """Item 3 at one volume. `search(query, address, limit=50)`: the best 50 by each
    engine's rank (FTS5 bm25 joined to the rows; PostgreSQL mail.search_emails over the
    GIN index, ts_rank), the hits' columns, not the bodies. Warm-up calls not measured;
    a query slower than its time budget keeps the reads it made (at least 5)."""
    out = {"volume": volume, "queries": []}
    for q in search_queries(emails_db):
        entry = {**q, "matches": _fts_matches(emails_db, q["query"], q["address"])}
        for store in STORES:
            backend = backends[store]
            lat, hits = _timed_reads(lambda n: backend.search(q["query"], q["address"], 50),
                                     bench.plan.search_reads, min(2, bench.plan.warmup), bench.plan.search_budget_s)
            entry[store] = {**summarize(lat), "hits": len(hits)}
        bench.progress(f"   {volume:,} emails, {q['name']} ({q['query']}): SQLite p95 {entry['sqlite']['p95_ms']} ms, "
                       f"PostgreSQL p95 {entry['postgres']['p95_ms']} ms, {entry['matches']:,} matches")
        out["queries"].append(entry)
    return out


def plant_judged_set(bench: Bench) -> dict[str, int]:
    planted = relevance.judged_emails(bench.templates)
    for store in STORES:
        bench.backend(store).save_emails([e for e, _ in planted])
    return {e.message_id: grade for e, grade in planted}


def ranking(bench: Bench, grades: dict[str, int]) -> dict:
    out = {store: relevance.judge(bench.backend(store), grades) for store in STORES}
    s, p = out["sqlite"]["ndcg_at_10"], out["postgres"]["ndcg_at_10"]
    out["better"] = "sqlite" if s > p else "postgres" if p > s else "neither"
    out["method"] = (f"{len(grades)} planted emails graded 0-3 before measuring (relevance.py); nDCG@10 of each "
                     f"engine's top 10 for '{relevance.QUERY}' (1.0 = the ideal order)")
    return out


# -- 4: W concurrent writers ---------------------------------------------------------------

def concurrent_writers(bench: Bench) -> dict:
    """Item 4. W writers (closed loop: each writes its next email as soon as the last
    one returned) for `writer_seconds`, through one backend per writer process: SQLite
    with a connection per writer (WAL, busy_timeout), PostgreSQL through the pool of
    `pool_max_size` connections shared by all writers. Latency of the successful
    writes; errors counted by kind ("database is locked" = SQLITE_BUSY after busy_timeout).
    With group commit, PostgreSQL's writers run in at most as many processes as its
    statements at a time (app.group_commit_writers), one each: the service is one
    process, and more processes would each write groups of their own, more statements
    at a time than it is configured for."""
    out = []
    group_writers = bench.spec("postgres", "").pool.get("group_writers") or 0
    for writers in bench.plan.writer_counts:
        row = {"writers": writers}
        for store in STORES:
            processes = min(writers, bench.plan.writer_processes)
            if store == "postgres" and group_writers:
                processes = min(processes, group_writers)
            bench.progress(f"   {writers} writers on {store} for {bench.plan.writer_seconds:g} s "
                           f"({processes} processes) ...")
            run = run_writers(bench.spec(store, f"w{writers}"), writers, processes,
                              duration=bench.plan.writer_seconds, server=bench.server if store == "postgres" else None)
            row[store] = writer_summary(run)
            summary = row[store]
            bench.progress(f"   {writers} writers, {store}: {summary['throughput_per_s']}/s, "
                           f"p99 {summary['latency']['p99_ms']} ms, {summary['errors']} errors, client CPU "
                           f"{summary['client_cpu_pct_of_one_core_max']}% of a core at most per process")
        out.append(row)
    return out


# -- 5 + 6: paced ingest while something else runs ------------------------------------------

def _paced(bench: Bench, store: str, tag: str, background: Callable[[], dict]) -> dict:
    plan = bench.plan
    rate = plan.seed_rate_per_hour * plan.rate_multiplier / 3600

    def during(t0: float) -> dict:
        time.sleep(plan.baseline_s)
        started = time.monotonic() - t0
        try:
            info = background()
        except Exception as exc:  # noqa: BLE001 - a failed retention/VACUUM is a result, reported
            info = {"error": f"{type(exc).__name__}: {exc}"[:400]}
            bench.progress(f"   {store}: {tag} FAILED under ingest: {info['error'].splitlines()[0]}")
        ended = time.monotonic() - t0
        info.setdefault("seconds", round(ended - started, 3))
        time.sleep(plan.tail_s)
        return {**info, "start_s": round(started, 3), "end_s": round(ended, 3)}

    bench.progress(f"   {store}: {plan.paced_writers} writers at {rate:.1f} emails/s; {tag} after "
                   f"{plan.baseline_s:g} s ...")
    run = run_writers(bench.spec(store, tag), plan.paced_writers, 1, rate_per_writer=rate / plan.paced_writers,
                      during=during, server=bench.server if store == "postgres" else None)
    summary = writer_summary(run)
    summary["target_rate_per_s"] = round(rate, 2)
    summary["longest_stall_ms"] = summary["latency"]["max_ms"]
    summary["background"] = run.during
    inside = [lat for t, lat, code in run.records
              if code == OK and run.during["start_s"] <= t + lat and t <= run.during["end_s"]]
    summary["during_background"] = summarize(inside)
    summary["timeline"] = [[round(t, 3), round(lat * 1000, 2), code] for t, lat, code in run.records]
    return summary


def retention(bench: Bench, now, cutoff) -> dict:
    """Item 5. Paced writers at `rate_multiplier` x the seed's rate (latency counted from
    each write's due time, so a queued write counts its wait) while retention removes the
    oldest month: SQLite one DELETE (with the FTS5 entries) in one transaction, as the
    legacy service runs it; PostgreSQL mail.drop_expired_partitions (whatever its current
    body). Both through the store's expire_emails."""
    out = {"cutoff": cutoff.isoformat(), "now": now.isoformat()}
    for store in STORES:
        def run_retention(store=store):
            t = time.monotonic()
            rows = bench.backend(store).expire_emails(timedelta(days=90), now)
            return {"rows_removed": rows, "seconds": round(time.monotonic() - t, 3)}

        out[store] = _paced(bench, store, "retention", run_retention)
        s = out[store]
        bench.progress(f"   {store}: retention removed {s['background'].get('rows_removed', 0):,} rows in "
                       f"{s['background']['seconds']} s; longest stall {s['longest_stall_ms']} ms, {s['errors']} errors")
    return out


def long_read(bench: Bench) -> dict:
    """Item 6a. Paced writers while exports of the large inbox run back to back for
    `long_read_s`: each export is one `inbox(BIG_INBOX, all)` call (one statement, one
    read transaction) written out as JSON lines."""
    out = {}
    for store in STORES:
        backend = bench.backend(store)

        def export(backend=backend):
            durations, emails = [], 0
            deadline = time.monotonic() + bench.plan.long_read_s
            with tempfile.TemporaryFile("w") as sink:
                while time.monotonic() < deadline or not durations:
                    t = time.monotonic()
                    rows = backend.inbox(BIG_INBOX, 10_000_000)
                    for email in rows:
                        sink.write(json.dumps(email.as_json(), default=str) + "\n")
                    durations.append(time.monotonic() - t)
                    emails = len(rows)
            return {"exports": len(durations), "emails_per_export": emails, "export": summarize(durations)}

        out[store] = _paced(bench, store, "long-read", export)
        bench.progress(f"   {store}: {out[store]['background'].get('exports', 0)} exports; writers' longest stall "
                       f"{out[store]['longest_stall_ms']} ms, {out[store]['errors']} errors")
    return out


def maintenance(bench: Bench) -> dict:
    """Item 6b. Paced writers while each store's maintenance runs: SQLite `VACUUM` then
    `ANALYZE` on the emails file (its only VACUUM rebuilds the file under the write
    lock); PostgreSQL `VACUUM (ANALYZE) mail.emails` (no lock that blocks inserts; the
    project never runs VACUUM FULL, see README)."""
    out = {}
    for store in STORES:
        def run_maintenance(store=store):
            t = time.monotonic()
            if store == "sqlite":
                conn = sqlite3.connect(bench.emails_db, timeout=5, isolation_level=None)
                try:
                    conn.execute("VACUUM")
                    t_vacuum = time.monotonic() - t
                    conn.execute("ANALYZE")
                finally:
                    conn.close()
            else:
                with psycopg.connect(bench.work_conninfo, autocommit=True) as conn:
                    conn.execute("VACUUM mail.emails")
                    t_vacuum = time.monotonic() - t
                    conn.execute("ANALYZE mail.emails")
            return {"vacuum_seconds": round(t_vacuum, 3), "seconds": round(time.monotonic() - t, 3)}

        out[store] = _paced(bench, store, "maintenance", run_maintenance)
        bench.progress(f"   {store}: VACUUM + ANALYZE {out[store]['background']['seconds']} s; writers' longest "
                       f"stall {out[store]['longest_stall_ms']} ms, {out[store]['errors']} errors")
    return out


def typical_inboxes(emails_db: Path, count: int = 200) -> tuple[list[str], dict]:
    """Real inbox addresses of the data (the large one excluded), and how many emails an
    inbox holds: the 'typical' inbox reads go through these."""
    with sqlite3.connect(f"file:{emails_db}?mode=ro", uri=True) as conn:
        conn.text_factory = lambda b: b.decode("utf-8", "replace")
        # a fixed pseudo-random order (min id scrambled), so every run reads the same inboxes
        rows = conn.execute("SELECT to_address, count(*) FROM emails WHERE to_address <> ? AND length(to_address) < 200"
                            " GROUP BY to_address ORDER BY (min(id) * 2654435761) % 4294967291 LIMIT ?",
                            (BIG_INBOX, count * 2)).fetchall()
    rows = [(a, n) for a, n in rows if a.isascii() and "@" in a][:count]
    sizes = sorted(n for _, n in rows)
    return [a for a, _ in rows], {"sampled": len(rows), "median_emails": sizes[len(sizes) // 2] if sizes else 0,
                                  "max_emails": sizes[-1] if sizes else 0}

