"""`mailmig load` on the command line."""

from __future__ import annotations

from mailmig import console
from mailmig.load.run import run_load


def cmd_load(args, cfg) -> int:
    files = cfg.source_files(args.emails_db, args.auth_db)
    emails_db, auth_db = files.emails_db, files.auth_db
    load_cfg = cfg.raw["load"]
    settings = {k[len("pgloader_"):]: v for k, v in load_cfg.items() if k.startswith("pgloader_")}
    result = run_load(cfg.conninfo(), emails_db, auth_db, cfg.runs_dir,
                      loader=args.loader or load_cfg["loader"],
                      merge_jobs=args.merge_jobs or load_cfg["merge_jobs"],
                      pgloader_settings=settings, keep_work=args.keep_work, progress=console.Say(),
                      merge_chunk_rows=load_cfg["merge_chunk_rows"])
    return 0 if result.ok else 1


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "load", help="migrate emails.db and auth.db into PostgreSQL (snapshot, audit, staging, merge)",
        description="Snapshot the SQLite files (online backup API, integrity check, sha256, tar.gz), "
                    "audit what PostgreSQL will not take as it is, load staging with pgloader (rows it "
                    "would lose are stored whole beside it) or COPY, merge into mail.* with the "
                    "documented conversions and repairs, and account for every row: exit 1 unless "
                    "source = loaded + rejected for every table. Re-running adds nothing. "
                    "The report is printed and written to runs/<run id>/report.json.")
    p.add_argument("--emails-db", help="the legacy emails.db (default: sources.emails_db, EMAILS_DB)")
    p.add_argument("--auth-db", help="the legacy auth.db (default: sources.auth_db, AUTH_DB)")
    p.add_argument("--loader", choices=["pgloader", "copy"], help="what fills staging (default: load.loader)")
    p.add_argument("--merge-jobs", type=int, help="connections merging at once (default: load.merge_jobs)")
    p.add_argument("--keep-work", action="store_true", help="keep the work copies pgloader read")
    p.set_defaults(func=cmd_load)
