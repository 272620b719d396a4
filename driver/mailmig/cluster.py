"""The embedded default target: a project-local PostgreSQL cluster.

The server refuses to run as root, so when the driver runs as root every server
program runs as the unprivileged `postgres` user (FIELD-NOTES: "PostgreSQL as root").
Connections from the driver go through a socket directory of the cluster's own
(trust, the directory is reachable only by postgres and root); TCP on 127.0.0.1
takes scram-sha-256 passwords only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

SERVER_USER = "postgres"

# The seed plan's tuning, plus what the project needs preloaded.
SEED_TUNING = {
    "max_connections": "200",
    "shared_buffers": "256MB",
    "effective_cache_size": "1GB",
    "maintenance_work_mem": "64MB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
    "default_statistics_target": "100",
}
# The project's own additions: a 2 GB bulk load would otherwise checkpoint every
# few seconds (max_wal_size defaults to 1GB).
PROJECT_SETTINGS = {
    "max_wal_size": "4GB",
    "password_encryption": "scram-sha-256",
}


class ClusterError(RuntimeError):
    """The local cluster could not be set up, started or stopped."""


def pg_bindir() -> Path:
    """The bin directory of the newest installed PostgreSQL server."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise ClusterError("no PostgreSQL server found under /usr/lib/postgresql: run `make setup`")
    return candidates[-1]


def running_as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Cluster:
    """A PostgreSQL cluster living in `base` (data/, run/ socket dir, postgres.log)."""

    base: Path
    port: int
    dbname: str = "mailmig"
    superuser: str = "postgres"
    extra_settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base = Path(self.base).absolute()

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log_file(self) -> Path:
        return self.base / "postgres.log"

    # -- running server programs -------------------------------------------------
    def _server_cmd(self, program: str, *args: str) -> list[str]:
        cmd = [str(pg_bindir() / program), *args]
        if running_as_root():
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        return cmd

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            self._server_cmd(program, *args), capture_output=True, text=True, cwd="/"
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"{program} {' '.join(args[:2])} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}"
                + (f"\nsee {self.log_file}" if self.log_file.exists() else "")
            )
        return proc

    def _make_reachable(self) -> list[Path]:
        """Let the postgres user traverse every directory above the cluster.

        A fresh clone under `mktemp -d` sits in a 0700 directory; postgres then cannot
        reach its data directory. Adds only the search (x) bit, never read."""
        changed = []
        if not running_as_root():
            return changed
        for parent in reversed(self.base.parents):
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
                changed.append(parent)
        return changed

    def _chown_to_server_user(self, *paths: Path) -> None:
        if not running_as_root():
            return
        pw = pwd.getpwnam(SERVER_USER)
        for path in paths:
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # -- life cycle -------------------------------------------------------------
    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        """initdb once; returns True when it created the cluster."""
        if self.is_initialized():
            return False
        for path in self._make_reachable():
            print(f"note: added search permission (o+x) to {path} so that the postgres user can reach the cluster")
        self.base.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.base.chmod(0o711)
        self.socket_dir.chmod(0o700)
        self._chown_to_server_user(self.base, self.socket_dir)
        if self.data_dir.exists() and not any(self.data_dir.iterdir()):
            self.data_dir.rmdir()
        self._run(
            "initdb",
            "-D", str(self.data_dir),
            "-U", self.superuser,
            "-E", "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        )
        self._write_settings()
        return True

    def settings(self) -> dict[str, str]:
        values = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "shared_preload_libraries": "pg_cron,pg_stat_statements",
            "cron.database_name": self.dbname,
            # pg_cron connects with libpq; over the socket, not TCP with a password.
            "cron.host": str(self.socket_dir),
            **SEED_TUNING,
            **PROJECT_SETTINGS,
            **self.extra_settings,
        }
        return values

    def _write_settings(self) -> None:
        lines = ["# written by mailmig (driver/mailmig/cluster.py); changes are overwritten"]
        for key, value in self.settings().items():
            escaped = value.replace("'", "''")
            lines.append(f"{key} = '{escaped}'")
        conf = self.data_dir / "mailmig.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._chown_to_server_user(conf)
        main_conf = self.data_dir / "postgresql.conf"
        text = main_conf.read_text()
        if "include_if_exists = 'mailmig.conf'" not in text:
            main_conf.write_text(text + "\ninclude_if_exists = 'mailmig.conf'\n")
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# written by mailmig: the socket directory is reachable only by postgres and root\n"
            "local   all   all                  trust\n"
            "host    all   all   127.0.0.1/32   scram-sha-256\n"
        )
        self._chown_to_server_user(hba)

    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self) -> bool:
        """Start the server; returns False when it was already running."""
        self.init()
        if self.is_running():
            return False
        self._write_settings()
        self.socket_dir.mkdir(exist_ok=True)
        self._chown_to_server_user(self.socket_dir)
        if not self.log_file.exists():
            self.log_file.touch()
            self._chown_to_server_user(self.log_file)
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start")
        self.ensure_database(self.dbname)
        return True

    def stop(self) -> bool:
        """Stop the server (fast shutdown); returns False when it was not running."""
        if not self.is_running():
            return False
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", "fast", "stop")
        deadline = time.monotonic() + 30
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.is_running():
            raise ClusterError(f"the server of {self.data_dir} did not stop")
        return True

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- connecting -------------------------------------------------------------
    def conninfo(self, dbname: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir), port=self.port, user=self.superuser, dbname=dbname or self.dbname
        )

    def url(self, dbname: str | None = None) -> str:
        return (
            f"postgresql://{quote(self.superuser)}@/{quote(dbname or self.dbname)}"
            f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        )

    def ensure_database(self, dbname: str) -> bool:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            return True

    def status(self) -> dict:
        info = {
            "data_dir": str(self.data_dir),
            "initialized": self.is_initialized(),
            "running": self.is_running(),
            "pid": self.pid(),
            "port": self.port,
            "socket_dir": str(self.socket_dir),
            "log": str(self.log_file),
        }
        if info["running"]:
            with psycopg.connect(self.conninfo("postgres"), connect_timeout=5) as conn:
                info["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
                info["databases"] = [
                    r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
                ]
        return info
