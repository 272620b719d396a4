"""`mailmig validate`: the command line and the summary it prints."""

from __future__ import annotations

import json
import sys

from mailmig.validate.run import run_validate


def summary_lines(report: dict, max_diffs: int = 20) -> list[str]:
    header = ("table", "source", "pg", "rejected", "repaired", "missing", "extra", "changed", "problems", "ok")
    rows = [header]
    for name, t in report["tables"].items():
        rows.append((name, f"{t['source']:,}", f"{t['pg']:,}", f"{t['rejected']:,}", f"{t['repaired_rows']:,}",
                     str(t["missing"]), str(t["extra"]), str(t["changed"]), str(sum(t["problems"].values())),
                     "yes" if t["ok"] else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    for name, t in report["tables"].items():
        for m in t.get("months", []):
            if not m["ok"]:
                lines.append(f"{name} month {m['month']}: source {m['source']:,}, postgresql {m['pg']:,}")
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


def cmd_validate(args, cfg) -> int:
    live = (cfg.sources.emails_db, cfg.sources.auth_db)
    result = run_validate(
        cfg.conninfo(), cfg.runs_dir, source=args.source, emails_db=args.emails_db, auth_db=args.auth_db,
        progress=lambda message: print(message, file=sys.stderr, flush=True), live_paths=live,
    )
    for line in summary_lines(result.report, args.max_diffs):
        print(line)
    status = "OK: every row and every column is accounted for" if result.ok else "FAILED: differences found"
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
    parser.set_defaults(func=cmd_validate)
