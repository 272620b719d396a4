"""The load's report: printed as tables, written to runs/<run id>/report.json and kept in
migration.runs.report."""

from __future__ import annotations

import time

import psycopg

from mailmig import queries

from mailmig.console import table


def write_report(conninfo, run, report, stages, started):
    report["stages"] = stages.items
    report["total_seconds"] = round(time.monotonic() - started, 3)
    run.write_json("report.json", report)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(queries.load("load_run_finish"),
                         {"status": "ok" if report.get("ok") else "failed",
                          "report": psycopg.types.json.Jsonb(report), "run_id": run.id})
    except psycopg.Error:
        pass  # the report file is written; the database may be what failed


def print_audit(audits, unmapped, progress):
    rows = []
    for a in audits:
        for column, issues in sorted(a.issues.items()):
            for issue, n in sorted(issues.items()):
                rows.append([a.table, column, issue, n])
    progress("audit: values PostgreSQL will not take as they are (per table and column)")
    if rows:
        progress(table(["table", "column", "issue", "rows"], rows))
    else:
        progress("   none")
    progress("   rows stored whole beside pgloader (hostile): " + ", ".join(
        f"{a.table} {len(a.hostile):,}" for a in audits))
    for name, tables in unmapped.items():
        if tables:
            progress(f"   {name}: tables not in the mapping, left alone: {', '.join(tables)}")


def print_report(report, progress):
    rows = [[name, t["source"], t["loaded"], t["repaired"], t["rejected"], t["unaccounted"], t["ok"]]
            for name, t in report["tables"].items()]
    progress("load report")
    progress(table(["table", "source", "loaded", "repaired", "rejected", "unaccounted", "ok"], rows))
    progress(table(["stage", "from s", "seconds", "rows", "rows/s", "MB/s"],
                    [[s["stage"], s.get("start"), s["seconds"], s["rows"], s["rows_per_s"], s["mb_per_s"]]
                     for s in sorted(report["stages"], key=lambda s: s.get("start") or 0)]))
    progress("   (stages that overlap ran at once: partitions beside the merge of the tables "
             "without partitions)")
    progress(f"total {report['total_seconds']:.1f} s; "
             + ("every source row is loaded or rejected" if report["ok"]
                else "NOT every source row is accounted for"))

