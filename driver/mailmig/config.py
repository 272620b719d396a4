"""Configuration: a YAML file, the seed plan's environment variables and a .env file.

Precedence, lowest first: built-in defaults, the YAML file (config/mailmig.yaml, or
--config / MAILMIG_CONFIG), the .env file of the working directory, the process
environment. Unknown keys and bad values fail with a message naming the key. The
password is read only from the environment, .env or a pgpass file, never from YAML,
and no method of Config returns it in anything meant to be printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "mailmig.yaml"
DB_MODES = ("sqlite", "dual", "postgres")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _interval(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"\d+\s*(second|minute|hour|day|week|month|year)s?", text):
        raise ValueError("an interval such as '90 days' or '7 days'")
    return text


def _int(value: Any, expected: str) -> int:
    if isinstance(value, bool):
        raise ValueError(expected)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(expected) from None


def _port(value: Any) -> int:
    port = _int(value, "a port number 1-65535")
    if not 1 <= port <= 65535:
        raise ValueError("a port number 1-65535")
    return port


def _positive_int(value: Any) -> int:
    number = _int(value, "a non-negative integer")
    if number < 0:
        raise ValueError("a non-negative integer")
    return number


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number of seconds >= 0")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("a number of seconds >= 0") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError("a number of seconds >= 0")
    return number


def _fraction(value: Any) -> float:
    number = _seconds(value) if not isinstance(value, bool) else -1
    if not 0 <= number <= 1:
        raise ValueError("a fraction between 0 and 1")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _address(value: Any) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("a host name or IP address")
    return text


def _at_least_one(value: Any) -> int:
    number = _int(value, "an integer of at least 1")
    if number < 1:
        raise ValueError("an integer of at least 1")
    return number


def _cron_schedule(value: Any) -> str:
    text = str(value).strip()
    if len(text.split()) != 5:
        raise ValueError("a five-field cron schedule such as '15 3 * * *' (pg_cron 1.4 has no seconds)")
    return text


def _choice(*choices: str):
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return check


def _optional(kind):
    def check(value: Any):
        return None if value is None or value == "" else kind(value)

    return check


# section -> key -> (parser, default, environment variable or None)
SCHEMA: dict[str, dict[str, tuple]] = {
    "database": {
        "host": (_optional(str), None, "POSTGRES_HOST"),
        "port": (_port, 5432, "POSTGRES_PORT"),
        "name": (str, "mailmig", "POSTGRES_DB"),
        "user": (str, "postgres", "POSTGRES_USER"),
        "dsn": (_optional(str), None, "POSTGRES_DSN"),
        "connect_timeout": (_positive_int, 10, None),
    },
    "local_cluster": {
        "dir": (str, ".pgdata", None),
        "port": (_port, 54329, "MAILMIG_LOCAL_PORT"),
    },
    "sources": {
        "emails_db": (str, "data/emails.db", "EMAILS_DB"),
        "auth_db": (str, "data/auth.db", "AUTH_DB"),
    },
    "app": {
        "db_mode": (_choice(*DB_MODES), "sqlite", "DB_MODE"),
        # the seed's node-postgres pool: max 20, idle 30 s, connection wait 2 s (FIELD-NOTES)
        "pool_min_size": (_positive_int, 1, None),
        "pool_max_size": (_positive_int, 20, None),
        "pool_max_idle": (_seconds, 30.0, None),
        "pool_timeout": (_seconds, 2.0, None),
        "pool_connect_timeout": (_positive_int, 2, None),
        "pool_check": (_bool, True, None),
        "pool_reconnect_timeout": (_seconds, 5.0, None),
        "prepared_statements": (_bool, True, None),
        # concurrent saves of one process share a transaction (mailmig.store.group_commit)
        "group_commit_writers": (_positive_int, 2, None),
        "group_commit_max": (_positive_int, 25, None),
        "sqlite_busy_timeout_ms": (_positive_int, 5000, None),
        "shadow_read_rate": (_fraction, 0.05, None),
        "pg_down_backoff": (_seconds, 2.0, None),
    },
    "service": {
        "smtp_host": (_address, "127.0.0.1", "SMTP_HOST"),
        "smtp_port": (_port, 2525, "SMTP_PORT"),
        "http_host": (_address, "127.0.0.1", "HTTP_HOST"),
        "http_port": (_port, 4000, "HTTP_PORT"),
        "hostname": (str, "mailmig.local", None),
        "mail_domain": (str, "tempmail.test", "MAIL_DOMAIN"),
        "account_ttl": (_seconds, 86400.0, None),
        "max_message_bytes": (_positive_int, 10 * 1024 * 1024, None),
        "max_line_bytes": (_positive_int, 1024 * 1024, None),
        "max_recipients": (_positive_int, 100, None),
        "inbox_limit": (_positive_int, 50, None),
        "workers": (_positive_int, 32, None),
        "pause_limit": (_seconds, 5.0, None),
        "drain_timeout": (_seconds, 10.0, None),
        "control_remote": (_bool, False, None),
        "state_file": (str, "state/service.json", "MAILMIG_STATE_FILE"),
    },
    "paths": {
        "runs_dir": (str, "runs", "MAILMIG_RUNS_DIR"),
    },
    "load": {
        "loader": (_choice("pgloader", "copy"), "pgloader", "MAILMIG_LOADER"),
        "pgloader_workers": (_positive_int, 4, None),
        "pgloader_concurrency": (_positive_int, 2, None),
        "pgloader_prefetch_rows": (_positive_int, 500, None),
        "pgloader_batch_rows": (_positive_int, 200, None),
        "pgloader_dynamic_space_size": (_positive_int, 4096, None),
        "merge_jobs": (_positive_int, 2, None),
        "merge_chunk_rows": (_at_least_one, 2000, None),
    },
    "cutover": {
        "control": (_choice("service", "hooks"), "service", None),
        "hard_limit": (_seconds, 5.0, None),
        "max_sync_lag": (_seconds, 1.5, None),
        "max_heartbeat_age": (_seconds, 5.0, None),
        "catch_up_timeout": (_seconds, 120.0, None),
        "rollback_to": (_choice("sqlite", "dual"), "sqlite", None),
        "pause_command": (_optional(str), None, None),
        "resume_command": (_optional(str), None, None),
        "switch_command": (_optional(str), None, None),
    },
    "sync": {
        "batch_rows": (_positive_int, 5000, None),
        "poll_seconds": (_seconds, 0.2, None),
        "prune_rows": (_positive_int, 1000, None),
        "busy_timeout_ms": (_positive_int, 5000, None),
        "keep_history": (_interval, "7 days", None),
        "progress_seconds": (_seconds, 5.0, None),
    },
    "maintenance": {
        "retention": (_interval, "90 days", None),
        "premake_months": (_positive_int, 3, None),
        "account_grace": (_interval, "7 days", None),
        "job_history_keep": (_interval, "7 days", None),
        "premake_schedule": (_cron_schedule, "15 0 * * *", None),
        "retention_schedule": (_cron_schedule, "30 3 * * *", None),
        "expiry_schedule": (_cron_schedule, "*/15 * * * *", None),
        "analyze_schedule": (_cron_schedule, "45 4 * * *", None),
        "purge_history_schedule": (_cron_schedule, "0 5 * * *", None),
    },
}
SECRET_ENV = "POSTGRES_PASSWORD"
CONTROL_TOKEN_ENV = "MAILMIG_CONTROL_TOKEN"


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; # comments; optional quotes. No shell expansion."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


@dataclass
class Sources:
    emails_db: Path
    auth_db: Path


class Config:
    """The effective configuration. `raw` holds every section with defaults filled in."""

    def __init__(self, raw: dict[str, dict[str, Any]], env: dict[str, str], path: Path | None):
        self.raw = raw
        self._env = env
        self.path = path

    # -- derived values -----------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path.cwd()

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    @property
    def runs_dir(self) -> Path:
        return self._path(self.raw["paths"]["runs_dir"])

    @property
    def sources(self) -> Sources:
        return Sources(self._path(self.raw["sources"]["emails_db"]), self._path(self.raw["sources"]["auth_db"]))

    def source_files(self, emails_db: str | Path | None = None, auth_db: str | Path | None = None) -> Sources:
        """The legacy files: the ones given (a command's --emails-db / --auth-db), else
        the configured sources."""
        sources = self.sources
        return Sources(Path(emails_db) if emails_db else sources.emails_db,
                       Path(auth_db) if auth_db else sources.auth_db)

    @property
    def db_mode(self) -> str:
        return self.raw["app"]["db_mode"]

    @property
    def is_local(self) -> bool:
        """True when no server is configured: the target is the project-local cluster."""
        db = self.raw["database"]
        return not db["host"] and not db["dsn"]

    @property
    def password(self) -> str | None:
        """The password, for handing to libpq or pgloader through the environment only."""
        return self._env.get(SECRET_ENV) or None

    def cluster(self):
        from mailmig.cluster import Cluster

        local = self.raw["local_cluster"]
        return Cluster(self._path(local["dir"]), local["port"], dbname=self.raw["database"]["name"])

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq conninfo of the target database (may contain the password: never print it)."""
        db = self.raw["database"]
        if self.is_local:
            return self.cluster().conninfo(dbname)
        params: dict[str, Any] = {"connect_timeout": db["connect_timeout"]}
        if dbname:
            params["dbname"] = dbname
        if self.password:
            params["password"] = self.password
        if db["dsn"]:
            return psycopg.conninfo.make_conninfo(db["dsn"], **params)
        return psycopg.conninfo.make_conninfo(
            host=db["host"], port=db["port"], user=db["user"], **{"dbname": db["name"], **params}
        )

    def display_url(self, dbname: str | None = None) -> str:
        """The libpq URI of the target, without any password (psql takes it from
        PGPASSWORD or ~/.pgpass)."""
        if self.is_local:
            return self.cluster().url(dbname)
        params = psycopg.conninfo.conninfo_to_dict(self.conninfo(dbname))
        params.pop("password", None)
        from urllib.parse import quote

        host = params.pop("host", "")
        port = params.pop("port", "")
        user = params.pop("user", "")
        name = params.pop("dbname", "")
        netloc = (quote(user) + "@" if user else "") + (host if "/" not in host else "")
        if port and "/" not in host:
            netloc += f":{port}"
        query = {k: str(v) for k, v in params.items()}
        if "/" in host:
            query["host"] = host
            if port:
                query["port"] = str(port)
        tail = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
        return f"postgresql://{netloc}/{quote(name)}" + (f"?{tail}" if tail else "")

    @property
    def control_token(self) -> str | None:
        """The service's control-call token (environment or .env only; never printed)."""
        return self._env.get(CONTROL_TOKEN_ENV) or None

    @property
    def state_file(self) -> Path:
        return self._path(self.raw["service"]["state_file"])

    def libpq_env(self) -> dict[str, str]:
        """Environment for child processes (pgloader, psql): the password travels here only."""
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ if environ is None else environ)
    explicit = path or environ.get("MAILMIG_CONFIG")
    config_path = Path(explicit) if explicit else DEFAULT_CONFIG
    document: dict = {}
    if config_path.exists():
        try:
            document = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping of sections")
    elif explicit:
        raise ConfigError(f"{config_path}: configuration file not found")

    env = {**read_dotenv(Path.cwd() / ".env"), **environ}
    raw: dict[str, dict[str, Any]] = {}
    for section, value in document.items():
        if section not in SCHEMA:
            raise ConfigError(f"{config_path}: unknown section '{section}' (known: {', '.join(SCHEMA)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{config_path}: '{section}' must be a mapping of keys")
        for key in value:
            if key in ("password", "control_token"):
                where = (f"set {SECRET_ENV} in the environment or .env, or use a pgpass file" if key == "password"
                         else f"set {CONTROL_TOKEN_ENV} in the environment or .env")
                raise ConfigError(
                    f"{config_path}: '{section}.{key}': a secret is never read from the config file; {where}"
                )
            if key not in SCHEMA[section]:
                raise ConfigError(
                    f"{config_path}: unknown key '{section}.{key}' (known: {', '.join(SCHEMA[section])})"
                )
    for section, keys in SCHEMA.items():
        raw[section] = {}
        for key, (parse, default, env_name) in keys.items():
            value = document.get(section, {}).get(key, default)
            origin = f"{config_path}: '{section}.{key}'"
            if env_name and env.get(env_name) not in (None, ""):
                value = env[env_name]
                origin = f"environment variable {env_name} ('{section}.{key}')"
            try:
                raw[section][key] = parse(value) if value is not None else None
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{origin}: bad value {value!r}: expected {exc}") from None
    return Config(raw, env, config_path if config_path.exists() else None)
