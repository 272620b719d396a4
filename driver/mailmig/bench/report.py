"""The bench's tables: printed on the terminal (the project's table printer) and written as
markdown for README, from the same rows."""

from __future__ import annotations

from mailmig.console import table


def _adv(s, p, lower_is_better=True):
    """PostgreSQL's advantage: > 1 means PostgreSQL did better by that factor."""
    if s is None or p is None:
        return None
    if lower_is_better:
        return round(s / p, 2) if p else None
    return round(p / s, 2) if s else None


def _ms(v):
    return None if v is None else round(v, 2)


HEADERS = ["figure", "SQLite", "PostgreSQL", "PG advantage (x)"]


def _lat_rows(label, s, p, keys=("p50_ms", "p95_ms", "p99_ms")):
    return [[f"{label} {k[:3]} ms", _ms(s[k]), _ms(p[k]), _adv(s[k], p[k])] for k in keys]


def sections(r: dict) -> list[tuple[str, list[str], list[list], str]]:
    """(title, headers, rows, what the figures include) for every item."""
    out = []
    one = r["single_writer"]
    s, p = one["sqlite"], one["postgres"]
    rows = _lat_rows("insert", s["latency"], p["latency"], ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
    rows.append(["emails/s (one writer)", s["throughput_per_s"], p["throughput_per_s"],
                 _adv(s["throughput_per_s"], p["throughput_per_s"], False)])
    out.append((f"1. one writer, {s['latency']['n']:,} emails (save_email)", HEADERS, rows,
                "each call's wall time, commit and log flush included; warm-up writes excluded on both"))

    rows = []
    large, typical = r["inbox"]["large"], r["inbox"]["typical"]
    rows += _lat_rows(f"large inbox ({r['dataset']['big_inbox']:,} emails)", large["sqlite"], large["postgres"])
    rows += _lat_rows(f"typical inbox (median {r['inbox']['typical_sizes']['median_emails']} emails)",
                      typical["sqlite"], typical["postgres"])
    out.append(("2. an inbox's newest 100 (inbox(address, 100))", HEADERS, rows,
                "whole emails (bodies, headers, raw); typical = a different real inbox per call"))

    rows = []
    for volume in r["search"]:
        for q in volume["queries"]:
            label = f"{volume['volume']:,} · {q['name']} {q['query']}" + (" in the large inbox" if q["address"] else "")
            label += f" ({q['matches']:,} matches)"
            for k in ("p50_ms", "p95_ms"):
                rows.append([f"{label} {k[:3]} ms", _ms(q["sqlite"][k]), _ms(q["postgres"][k]),
                             _adv(q["sqlite"][k], q["postgres"][k])])
    rk = r["ranking"]
    rows.append([f"ranking: nDCG@10 for '{rk['sqlite']['query']}' (1 = ideal)", rk["sqlite"]["ndcg_at_10"],
                 rk["postgres"]["ndcg_at_10"], _adv(rk["sqlite"]["ndcg_at_10"], rk["postgres"]["ndcg_at_10"], False)])
    out.append(("3. full-text search (search(query, address, 50))", HEADERS, rows,
                f"the best 50 by each engine's rank; FTS5 bm25 vs GIN + ts_rank. Ranks better: {rk['better']} "
                f"({rk['method']}; top-10 grades SQLite {rk['sqlite']['top10_grades']}, "
                f"PostgreSQL {rk['postgres']['top10_grades']})"))

    rows = []
    for row in r["writers"]:
        w, s, p = row["writers"], row["sqlite"], row["postgres"]
        rows.append([f"{w} writers: emails/s", s["throughput_per_s"], p["throughput_per_s"],
                     _adv(s["throughput_per_s"], p["throughput_per_s"], False)])
        rows.append([f"{w} writers: p50 ms", _ms(s["latency"]["p50_ms"]), _ms(p["latency"]["p50_ms"]),
                     _adv(s["latency"]["p50_ms"], p["latency"]["p50_ms"])])
        rows.append([f"{w} writers: p99 ms", _ms(s["latency"]["p99_ms"]), _ms(p["latency"]["p99_ms"]),
                     _adv(s["latency"]["p99_ms"], p["latency"]["p99_ms"])])
        rows.append([f"{w} writers: errors (locked)", f"{s['errors']} ({s['locked_errors']})",
                     f"{p['errors']} ({p['locked_errors']})", None])
        pool = p.get("pool") or {}
        rows.append([f"{w} writers: pool peak / average of {pool.get('max_size')}", "-",
                     f"{pool.get('peak_in_use')} / {pool.get('average_in_use')} "
                     f"({pool.get('peak_pct')}% / {pool.get('average_pct')}%)", None])
        group = p.get("group_commit")
        if group:
            rows.append([f"{w} writers: saves alone / in groups (average, largest)", "-",
                         f"{group['saves_alone']:,} / {group['saves_in_groups']:,} ({group['average_group']}, "
                         f"{group['largest_group']})", None])
        rows.append([f"{w} writers: client CPU, busiest process", f"{s['client_cpu_pct_of_one_core_max']}%",
                     f"{p['client_cpu_pct_of_one_core_max']}% (server {p.get('server_cpu_pct_total')}%)", None])
    first = r["writers"][0]["postgres"] if r["writers"] else {}
    out.append((f"4. concurrent writers, {r['plan']['writer_seconds']} s each (closed loop)", HEADERS, rows,
                f"writers spread over up to {r['plan']['writer_processes']} processes; latency of successful writes; "
                "client CPU = CPU seconds / wall seconds of the busiest writer process (100% = one core: its GIL "
                "would be the limit), SQLite's engine included; server = all postgres processes (200% = both cores)"
                + (f"; pool: {first.get('pool', {}).get('max_size')} connections shared" if first else "")
                + ("; PostgreSQL's concurrent saves of one process share a transaction (group commit: at most "
                   f"{r['configuration']['postgres_pool'].get('group_commit_writers')} statements at a time, so its "
                   "writers run in that many processes, one statement at a time each; SQLite: one transaction per "
                   "save, as the legacy service)"
                   if r.get("configuration", {}).get("postgres_pool", {}).get("group_commit_writers") else "")))

    rows, notes = [], []
    for key, title in (("retention", "retention"), ("long_read", "long read"), ("maintenance", "VACUUM/ANALYZE")):
        item = r[key]
        s, p = item["sqlite"], item["postgres"]
        rows.append([f"{title}: longest stall ms", _ms(s["longest_stall_ms"]), _ms(p["longest_stall_ms"]),
                     _adv(s["longest_stall_ms"], p["longest_stall_ms"])])
        rows.append([f"{title}: p99 ms", _ms(s["latency"]["p99_ms"]), _ms(p["latency"]["p99_ms"]),
                     _adv(s["latency"]["p99_ms"], p["latency"]["p99_ms"])])
        rows.append([f"{title}: errors (locked)", f"{s['errors']} ({s['locked_errors']})",
                     f"{p['errors']} ({p['locked_errors']})", None])
        sb, pb = s["background"], p["background"]
        failed = [f"{name}: {bg['error'].splitlines()[0]}" for name, bg in (("SQLite", sb), ("PostgreSQL", pb))
                  if bg.get("error")]
        if failed:
            rows.append([f"{title}: FAILED under ingest", "yes" if sb.get("error") else "no",
                         "yes" if pb.get("error") else "no", None])
            notes.extend(f"{title} failed on {f}" for f in failed)
            continue
        if key == "retention":
            rows.append(["retention: rows removed / seconds", f"{sb['rows_removed']:,} / {sb['seconds']}",
                         f"{pb['rows_removed']:,} / {pb['seconds']}", _adv(sb["seconds"], pb["seconds"])])
        elif key == "long_read":
            rows.append([f"long read: export of {sb['emails_per_export']:,} emails p50 ms",
                         _ms(sb["export"]["p50_ms"]), _ms(pb["export"]["p50_ms"]),
                         _adv(sb["export"]["p50_ms"], pb["export"]["p50_ms"])])
        else:
            rows.append(["VACUUM/ANALYZE seconds", sb["seconds"], pb["seconds"], _adv(sb["seconds"], pb["seconds"])])
    rate = r["retention"]["sqlite"]["target_rate_per_s"]
    out.append((f"5-6. ingest at {r['plan']['rate_multiplier']:g}x the seed's rate ({rate}/s) during retention, "
                "a long read, maintenance", HEADERS, rows,
                "latency from each write's due time (a write queued behind a lock counts its wait); retention: "
                f"SQLite DELETE of the month before {r['retention']['cutoff'][:10]} (FTS5 in step) vs "
                "mail.drop_expired_partitions" + "".join(f"; {n}" for n in notes)))

    s, p = r["single_writer"]["sqlite"], r["single_writer"]["postgres"]
    rows = [["write_bytes per email (storage layer)", s["write_bytes_per_email"], p["write_bytes_per_email"],
             _adv(s["write_bytes_per_email"], p["write_bytes_per_email"])],
            ["wchar per email (bytes passed to write calls)", s["wchar_per_email"], p["wchar_per_email"],
             _adv(s["wchar_per_email"], p["wchar_per_email"])],
            ["PostgreSQL WAL alone per email (pg_current_wal_lsn)", None, p["wal_bytes_per_email"], None]]
    out.append(("7. disk writes per email (the one-writer run)", HEADERS, rows,
                f"SQLite: {s['bytes_source']}; PostgreSQL: {p['bytes_source']}. Both checkpointed before and after, "
                "so log and table/index files are counted. write_bytes counts a page-cache folio when the process "
                "dirties it: with large folios (this kernel's ext4) a small write counts a whole folio, so it "
                "overstates small synchronous writes; wchar is what the store handed the kernel"))

    rows = [[m["metric"], m["judged_by"], m["target"], m["sqlite"], m["postgres"], m["sqlite_verdict"],
             m["postgres_verdict"]] for m in r["key_metrics"]]
    out.append(("8. the seed's key metrics", ["metric", "judged by", "target", "SQLite", "PostgreSQL", "SQLite",
                                              "PostgreSQL"], rows, ""))
    rows = [[t["target"], t["measured"], t["verdict"]] for t in r["issue_targets"]]
    out.append(("   the issue's targets", ["target", "measured", "verdict"], rows, ""))
    return out


def terminal(r: dict) -> str:
    parts = []
    for title, headers, rows, note in sections(r):
        parts.append(title)
        parts.append(table(headers, rows))
        if note:
            parts.append(f"   ({note})")
        parts.append("")
    c = r["claim"]
    parts.append(f"claim \"{c['claim']}\": {c['statement']}")
    parts += [f"   {d}" for d in c["details"]]
    return "\n".join(parts)


def _md_cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v).replace("|", "\\|")


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"### mailmig bench, SCALE={r['plan']['scale']}, run {r['run_id']}", "",
             f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['os']}; PostgreSQL "
             f"{m['postgres']}, SQLite {m['sqlite']}, Python {m['python']}; load average at the start "
             f"{', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}. Dataset: {r['dataset']['sqlite_rows']:,} "
             f"emails in SQLite, {r['dataset']['postgres_rows']:,} in PostgreSQL. Command: `{r['command']}`.", ""]
    for title, headers, rows, note in sections(r):
        lines.append(f"**{title.strip()}**")
        lines.append("")
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "---|" * len(headers))
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
        if note:
            lines += ["", f"_{note}_"]
        lines.append("")
    c = r["claim"]
    lines.append(f"**Claim \"{c['claim']}\": {c['statement']}.**")
    lines += [f"- {d}" for d in c["details"]]
    lines.append("")
    lines.append("Plots: " + ", ".join(f"`{p}`" for p in r.get("plots", [])))
    return "\n".join(lines) + "\n"
