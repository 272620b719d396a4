"""`mailmig db ...` (the target server) and `mailmig schema ...` (the ordered SQL runner)."""

from __future__ import annotations

import os
import sys

from mailmig import console, sqlrunner
from mailmig.config import Config


def _local_only(cfg: Config, what: str) -> None:
    if not cfg.is_local:
        raise RuntimeError(
            f"`db {what}` manages the project-local cluster, but a server is configured "
            "(POSTGRES_HOST or POSTGRES_DSN); the driver never starts or stops that one"
        )


def db_up(args, cfg: Config) -> int:
    if not cfg.is_local:
        print(f"target is the configured server {cfg.display_url()}: nothing to start")
        return 0
    cluster = cfg.cluster()
    created = cluster.init()
    started = cluster.start()
    state = "created and started" if created else ("started" if started else "already running")
    print(f"local cluster {state}: {cluster.data_dir} (port {cluster.port}, pid {cluster.pid()})")
    if cfg.password:
        _set_local_password(cfg)
    return 0


def _set_local_password(cfg: Config) -> None:
    """Give the superuser POSTGRES_PASSWORD so TCP (scram-sha-256) logins work.

    The password is hashed here, by libpq (PQencryptPasswordConn, SCRAM-SHA-256 with a
    fresh salt), and only the verifier travels: no plaintext password can reach the
    server log (log_statement), pg_stat_statements or the activity view."""
    import psycopg
    from psycopg import sql

    cluster = cfg.cluster()
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        verifier = conn.pgconn.encrypt_password(
            cfg.password.encode(), cluster.superuser.encode(), b"scram-sha-256").decode("ascii")
        # ALTER ROLE takes no bind parameters; the quoted literal is the verifier, not the password
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(cluster.superuser), sql.Literal(verifier))
        )
    print("password of the local superuser set from POSTGRES_PASSWORD, sent as a SCRAM-SHA-256 verifier "
          "(TCP logins on 127.0.0.1)")


def db_down(args, cfg: Config) -> int:
    _local_only(cfg, "down")
    cluster = cfg.cluster()
    stopped = cluster.stop()
    print(f"local cluster {'stopped' if stopped else 'was not running'}: {cluster.data_dir}")
    return 0


def db_status(args, cfg: Config) -> int:
    if not cfg.is_local:
        import psycopg

        with psycopg.connect(cfg.conninfo()) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        print(f"configured server: {cfg.display_url()} (PostgreSQL {version})")
        return 0
    info = cfg.cluster().status()
    for key, value in info.items():
        print(f"{key:>14}: {', '.join(value) if isinstance(value, list) else value}")
    return 0 if info["running"] else 3


def db_url(args, cfg: Config) -> int:
    print(cfg.display_url())
    return 0


def db_psql(args, cfg: Config) -> int:
    env = cfg.libpq_env()
    argv = ["psql", cfg.display_url(), *args.psql_args]
    sys.stdout.flush()
    os.execvpe("psql", argv, env)
    return 1  # not reached


def schema_apply(args, cfg: Config) -> int:
    applied = sqlrunner.apply_sql(cfg.conninfo(), progress=lambda name: print(f"applied {name}"))
    migrations, functions = sqlrunner.sql_files()
    print(f"schema: {len(applied)} file(s) applied now; sql/ holds {len(migrations)} migrations and "
          f"{len(functions)} definitions, all recorded in migration.sql_ledger")
    return 0


def schema_status(args, cfg: Config) -> int:
    rows = sqlrunner.status(cfg.conninfo())
    print(console.table(["kind", "file", "state"], [list(r) for r in rows]))
    counts: dict[str, int] = {}
    for _, _, state in rows:
        counts[state] = counts.get(state, 0) + 1
    print("; ".join(f"{state}: {n}" for state, n in sorted(counts.items())))
    return 1 if any(state.startswith("CHANGED") or state == "vanished" for _, _, state in rows) else 0


def add_commands(subparsers) -> None:
    db = subparsers.add_parser(
        "db",
        help="the target server: the project-local cluster (up/down/status) and how to reach it (url/psql)",
        description="With no POSTGRES_HOST or POSTGRES_DSN configured, the target is a project-local "
        "cluster in .pgdata/ (port 54329 by default) with pg_cron and pg_stat_statements preloaded.",
    )
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("up", help="create (initdb) and start the local cluster; harmless when running").set_defaults(
        func=db_up
    )
    db_sub.add_parser("down", help="stop the local cluster (fast shutdown)").set_defaults(func=db_down)
    db_sub.add_parser("status", help="state of the target server").set_defaults(func=db_status)
    db_sub.add_parser("url", help="print the libpq URI of the target database (no password)").set_defaults(
        func=db_url
    )
    psql = db_sub.add_parser("psql", help="open psql on the target database (extra arguments go to psql)")
    psql.add_argument("psql_args", nargs="*", help="arguments for psql, after --")
    psql.set_defaults(func=db_psql)

    schema = subparsers.add_parser(
        "schema", help="apply sql/: versioned migrations once, then new or changed definitions",
        description="sql/migrations/NNNN_*.sql (tables, indexes, types: what holds data) are applied once, "
        "in order, and may never change; sql/functions/<schema>/<name>.sql (one function or view each) are "
        "re-applied whenever their checksum changes. Both are recorded in migration.sql_ledger. A database "
        "built by the old runner (sql/1000-3320) is adopted in place.")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    schema_sub.add_parser("apply", help="apply pending migrations, then new or changed definitions; refuse changed migrations").set_defaults(
        func=schema_apply
    )
    schema_sub.add_parser("status", help="each file of sql/ with its state: applied, pending, changed (definitions), CHANGED (migrations, refused), vanished; exit 1 on the refused ones").set_defaults(
        func=schema_status
    )
