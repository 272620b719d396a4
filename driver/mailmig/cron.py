"""`mailmig cron install|list|uninstall`: the pg_cron maintenance jobs of cron/.

Each file of cron/ is one job: a header (`-- job:`, `-- schedule:` naming the config
key of its schedule, `-- database:` target or cron) and one SQL statement whose
`{key}` placeholders take values of the config section `maintenance`, rendered as
SQL literals by psycopg. Jobs are scheduled by name, so installing twice leaves one
job per name (pg_cron 1.4 replaces a job of the same name and user).

pg_cron lives in one database per cluster (`cron.database_name`); each job runs in
its own database over libpq to `cron.host` (the socket directory: FIELD-NOTES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from mailmig import console, queries

CRON_DIR = Path(__file__).resolve().parents[2] / "cron"
JOB_PREFIX = "mailmig-"
HEADER = re.compile(r"^--\s*(job|schedule|database):\s*(\S+)\s*$")


class CronError(RuntimeError):
    """A job file is malformed, or pg_cron is not available where it must be."""


@dataclass(frozen=True)
class JobFile:
    path: Path
    name: str
    schedule_key: str  # e.g. "maintenance.premake_schedule"
    database: str  # "target" or "cron"
    template: str  # one SQL statement with {key} placeholders

    @classmethod
    def read(cls, path: Path) -> "JobFile":
        header: dict[str, str] = {}
        body = []
        for line in path.read_text().splitlines():
            match = HEADER.match(line)
            if match:
                header[match.group(1)] = match.group(2)
            elif line.strip() and not line.lstrip().startswith("--"):
                body.append(line.rstrip())
        missing = {"job", "schedule", "database"} - set(header)
        if missing:
            raise CronError(f"{path}: header lacks {', '.join(sorted(missing))}")
        if not header["job"].startswith(JOB_PREFIX):
            raise CronError(f"{path}: job name must start with {JOB_PREFIX!r}")
        if header["database"] not in ("target", "cron"):
            raise CronError(f"{path}: database must be 'target' or 'cron'")
        if not header["schedule"].startswith("maintenance."):
            raise CronError(f"{path}: schedule must name a key of the maintenance section")
        if not body:
            raise CronError(f"{path}: no SQL statement")
        return cls(path, header["job"], header["schedule"], header["database"], "\n".join(body))

    def schedule(self, maintenance: dict[str, Any]) -> str:
        key = self.schedule_key.split(".", 1)[1]
        if key not in maintenance:
            raise CronError(f"{self.path}: unknown config key {self.schedule_key}")
        return str(maintenance[key])

    def command(self, maintenance: dict[str, Any], conn: psycopg.Connection) -> str:
        """The statement with each {key} replaced by the config value as an SQL literal."""
        keys = set(re.findall(r"\{(\w+)\}", self.template))
        unknown = keys - set(maintenance)
        if unknown:
            raise CronError(f"{self.path}: unknown placeholder(s) {', '.join(sorted(unknown))}")
        values = {key: sql.Literal(maintenance[key]) for key in keys}
        return sql.SQL(self.template).format(**values).as_string(conn)


def job_files(cron_dir: Path = CRON_DIR) -> list[JobFile]:
    jobs = [JobFile.read(path) for path in sorted(Path(cron_dir).glob("*.sql"))]
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise CronError(f"{cron_dir}: two files name the same job")
    return jobs


def install(cron_conninfo: str, target_db: str, maintenance: dict[str, Any],
            cron_dir: Path = CRON_DIR) -> list[dict[str, Any]]:
    """Create pg_cron in its database and schedule every job of cron_dir by name.

    Jobs of `database: target` run in target_db, `database: cron` ones in the cron
    database. Returns one dict per job: name, schedule, database, jobid, command."""
    jobs = job_files(cron_dir)
    installed = []
    with psycopg.connect(cron_conninfo, autocommit=True) as conn:
        conn.execute(queries.load("cron_create_extension"))
        cron_db, in_database = conn.execute(queries.load("cron_database")).fetchone()
        for job in jobs:
            database = target_db if job.database == "target" else cron_db
            params = {
                "name": job.name,
                "schedule": job.schedule(maintenance),
                "command": job.command(maintenance, conn),
                "database": database,
            }
            if in_database:
                jobid = conn.execute(queries.load("cron_schedule_in_database"), params).fetchone()[0]
            elif database == cron_db:
                jobid = conn.execute(queries.load("cron_schedule"), params).fetchone()[0]
            else:
                raise CronError(
                    f"pg_cron here has no cron.schedule_in_database (before 1.4): job {job.name} "
                    f"cannot run in {database}; install pg_cron 1.4 or newer"
                )
            installed.append({**params, "jobid": jobid})
    return installed


def list_jobs(cron_conninfo: str, prefix: str = JOB_PREFIX) -> list[tuple]:
    """(name, schedule, database, active, last start, status, return message) per job."""
    with psycopg.connect(cron_conninfo) as conn:
        if not conn.execute(queries.load("cron_installed")).fetchone()[0]:
            return []  # pg_cron not created here yet: no job
        return conn.execute(queries.load("cron_jobs"), {"pattern": _like_prefix(prefix)}).fetchall()


def uninstall(cron_conninfo: str, prefix: str = JOB_PREFIX) -> list[str]:
    """Unschedule the project's jobs; returns their names."""
    with psycopg.connect(cron_conninfo, autocommit=True) as conn:
        exists = conn.execute(queries.load("cron_installed")).fetchone()[0]
        if not exists:
            return []
        return [row[0] for row in conn.execute(queries.load("cron_unschedule"), {"pattern": _like_prefix(prefix)})]


def _like_prefix(prefix: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", prefix) + "%"


# -- command line --------------------------------------------------------------------
def cron_conninfo_of(cfg) -> tuple[str, str]:
    """(conninfo of pg_cron's database, name of the target database) for a Config."""
    with psycopg.connect(cfg.conninfo()) as conn:
        target_db, cron_db = conn.execute(queries.load("cron_target")).fetchone()
    if not cron_db:
        raise CronError(
            "pg_cron is not loaded on the target server (cron.database_name is unset): "
            "it needs shared_preload_libraries='pg_cron' (the local cluster has it)"
        )
    return cfg.conninfo(cron_db), target_db


def cron_install(args, cfg) -> int:
    cron_conninfo, target_db = cron_conninfo_of(cfg)
    for job in install(cron_conninfo, target_db, cfg.raw["maintenance"]):
        print(f"scheduled {job['name']} (job {job['jobid']}) '{job['schedule']}' in {job['database']}: "
              f"{job['command']}")
    return 0


def cron_list(args, cfg) -> int:
    cron_conninfo, _ = cron_conninfo_of(cfg)
    rows = list_jobs(cron_conninfo)
    if not rows:
        print("no mailmig jobs installed (`mailmig cron install`)")
        return 0
    table = [
        [name, schedule, database, "yes" if active else "no",
         start.strftime("%Y-%m-%d %H:%M:%S%z") if start else "never", status or "-",
         (message or "-").replace("\n", " ")[:60]]
        for name, schedule, database, active, start, status, message in rows
    ]
    print(console.table(["job", "schedule", "database", "active", "last run", "status", "message"], table))
    return 0


def cron_uninstall(args, cfg) -> int:
    cron_conninfo, _ = cron_conninfo_of(cfg)
    names = uninstall(cron_conninfo)
    print(f"unscheduled {len(names)} job(s)" + (": " + ", ".join(names) if names else ""))
    return 0


def add_commands(subparsers) -> None:
    cron = subparsers.add_parser(
        "cron",
        help="the pg_cron maintenance jobs of cron/ (partitions, retention, expiry, analyze, history)",
        description="Schedules (GMT) and intervals come from the config section `maintenance`. "
        "Not installed by `make load`: maintenance must not change data while a migration is validated.",
    )
    sub = cron.add_subparsers(dest="cron_command", metavar="ACTION", required=True)
    sub.add_parser("install", help="create pg_cron and schedule every job (again: replaced by name)").set_defaults(
        func=cron_install
    )
    sub.add_parser("list", help="the jobs with their last run and status").set_defaults(func=cron_list)
    sub.add_parser("uninstall", help="unschedule the mailmig jobs").set_defaults(func=cron_uninstall)
