"""`mailmig validate`: the command line and the summary it prints."""

from __future__ import annotations

import json
import sys

from mailmig import console
from mailmig.validate.run import run_validate


def summary_lines(report: dict, max_diffs: int = 20) -> list[str]:
    """The summary of a validation: its counts per table, the months whose counts differ,
    the first `max_diffs` differences."""
    lines = [console.table(
        ["table", "source", "pg", "rejected", "repaired", "missing", "extra", "changed", "problems", "ok"],
        [[name, t["source"], t["pg"], t["rejected"], t["repaired_rows"], t["missing"], t["extra"],
          t["changed"], sum(t["problems"].values()), t["ok"]] for name, t in report["tables"].items()])]
    months = [[name, m["month"], m["source"], m["pg"]]
              for name, t in report["tables"].items() for m in t.get("months", []) if not m["ok"]]
    if months:
        lines += ["", console.table(["table", "month", "source", "postgresql"], months,
                                    title="months whose counts differ")]
    flight = report.get("in_flight")
    if flight and flight["counts"]:
        rows = sum(sum(c.values()) for c in flight["counts"].values())
        lines += ["", f"in flight: {rows:,} rows differ because they changed after the sync position "
                      f"(sync point {flight['sync_point']}; {flight['keys_changed_since']:,} keys changed since it "
                      "began). They are not differences: the sync applies them, a cut-over checks them again.",
                  console.table(["table", "kind", "rows"],
                                [[t, k, n] for t, kinds in flight["counts"].items() for k, n in kinds.items()])]
        lines += [f"  {d['table']} {d['key']}: {d['kind']} (in flight)" for d in flight["rows"][:max_diffs]]
    shown = report["differences"][:max_diffs]
    if shown:
        lines.append("")
        lines.append("differences" + (f" (first {len(shown)})" if len(report["differences"]) > len(shown) else "") + ":")
    for d in shown:
        head = f"  {d['table']} {d['key']}: {d['kind']}"
        if d["kind"] == "changed":
            lines.append(head)
            for c in d["columns"]:
                lines.append(f"      {c['column']}: source {c['source']!r}  postgresql {c['postgresql']!r}")
        else:
            extra = {k: v for k, v in d.items() if k not in ("table", "kind", "key", "row")}
            lines.append(head + (f" {json.dumps(extra, ensure_ascii=False, default=str)}" if extra else ""))
    return lines


def cmd_validate_changed(args, cfg) -> int:
    """Only the keys the sync applied after a sync point, in the live files."""
    import psycopg

    from mailmig import queries
    from mailmig.validate.keys import validate_keys

    files = cfg.source_files(args.emails_db, args.auth_db)
    emails_db, auth_db = files.emails_db, files.auth_db
    with psycopg.connect(cfg.conninfo(), autocommit=True) as conn:
        rows = conn.execute(queries.load("switch_keys_since"), {"point": args.changed_since}).fetchall()
    keys: dict[str, list] = {}
    for table, key in rows:
        keys.setdefault(table, []).append(key)
    report = validate_keys(cfg.conninfo(), emails_db, auth_db, keys)
    print(console.table(["table", "keys", "missing", "extra", "changed", "problems", "ok"],
                        [[name, t["keys"], t["missing"], t["extra"], t["changed"], sum(t["problems"].values()),
                          t["ok"]] for name, t in report["tables"].items()]))
    for d in report["differences"][:args.max_diffs]:
        print(f"  {d['table']} {d['key']}: {d['kind']}"
              + "".join(f"\n      {c['column']}: source {c['source']!r}  postgresql {c['postgresql']!r}"
                        for c in d.get("columns", [])))
    status = "OK" if report["ok"] else "FAILED: differences found"
    print(f"\nvalidate (keys changed since sync point {args.changed_since}) {status}: {report['keys']:,} keys, "
          f"{report['seconds']} s; {emails_db}, {auth_db}")
    return 0 if report["ok"] else 1


def cmd_validate(args, cfg) -> int:
    if args.changed_since is not None:
        return cmd_validate_changed(args, cfg)
    live = (cfg.sources.emails_db, cfg.sources.auth_db)
    result = run_validate(
        cfg.conninfo(), cfg.runs_dir, source=args.source, emails_db=args.emails_db, auth_db=args.auth_db,
        progress=console.Say(sys.stderr), live_paths=live,
    )
    for line in summary_lines(result.report, args.max_diffs):
        print(line)
    status = "OK: every row and every column is accounted for" if result.ok else "FAILED: differences found"
    if result.ok and (result.report.get("in_flight") or {}).get("counts"):
        status = "OK: every row and every column is accounted for, but for the rows in flight above"
    print(f"\nvalidate {status} ({result.report['seconds']['total']} s); report: {result.report['report_path']}")
    return 0 if result.ok else 1


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="compare every row and column of PostgreSQL with the SQLite source",
        description="Compare every row and every column of mail.* with the snapshot of the last load "
        "(or the live files): counts per table and month, digests per bucket, then each differing "
        "row and column by name. Exit 0 only when everything is accounted for and equal.",
    )
    parser.add_argument("--source", choices=("snapshot", "live"), default="snapshot",
                        help="the last load's snapshot (default) or the live files, opened read-only")
    parser.add_argument("--emails-db", help="emails.db to compare with instead")
    parser.add_argument("--auth-db", help="auth.db to compare with instead")
    parser.add_argument("--max-diffs", type=int, default=20, help="differences to print (all are in validate.json)")
    parser.add_argument("--changed-since", type=int, metavar="SYNC_POINT",
                        help="only the rows of the keys the sync applied after this sync point (a validate.json's "
                        "sync_point), in the live files: what the cut-over checks in its pause, in milliseconds")
    parser.set_defaults(func=cmd_validate)
