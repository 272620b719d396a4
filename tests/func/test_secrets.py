"""Secrets stay secret: the local role's password never travels or lands in plaintext.

A project-local cluster of the test's own logs every statement (log_statement = all) and
tracks statements in pg_stat_statements. A canary password set the naive way (a plaintext
ALTER ROLE) must show up in both: that proves the checks below can fail. Then `mailmig db up`
sets POSTGRES_PASSWORD, and a real load (pgloader) runs over TCP with it, while the
arguments of every process on the machine are read over and over. The password must be in
none of: the server log, pg_stat_statements, runs/, the rendered load files, any process's
command line.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import psycopg
import pytest

from mailmig.cluster import Cluster
from mailmig.demo_data import generate
from tests.conftest import free_port


def mailmig(*args, env, cwd, timeout=300):
    return subprocess.run([str(Path(sys.executable).parent / "mailmig"), *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path))
    return found


def command_lines_holding(needle: bytes) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # the process ended meanwhile
        if needle in cmdline:
            shown = cmdline.replace(b"\0", b" ")[:200]
            found.append(f"{proc.name}: {shown!r}")
    return found


def pg_stat_statements_holding(conninfo: str, needle: str) -> list[str]:
    # compared here, not in a WHERE clause: the query would carry the needle to the log itself
    with psycopg.connect(conninfo) as conn:
        return [q for q, in conn.execute("SELECT query FROM pg_stat_statements") if needle in q]


@pytest.fixture
def project(tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    port = free_port()
    (work / "mailmig.yaml").write_text(
        f"local_cluster:\n  dir: {work / '.pgdata'}\n  port: {port}\npaths:\n  runs_dir: {work / 'runs'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG"))}
    env["MAILMIG_CONFIG"] = str(work / "mailmig.yaml")
    up = mailmig("db", "up", env=env, cwd=work)
    assert up.returncode == 0, up.stderr
    cluster = Cluster(work / ".pgdata", port)
    try:
        yield work, env, cluster
    finally:
        mailmig("db", "down", env=env, cwd=work)


def test_the_password_is_in_no_log_statistics_file_or_command_line(project, tmp_path):
    work, env, cluster = project
    legacy = tmp_path / "legacy"
    generate(legacy, emails=60, accounts=40, seed=3, end=date(2026, 11, 1))
    password = "pw-" + secrets.token_hex(12)
    canary = "canary-" + secrets.token_hex(12)
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:  # the socket: trust
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    # the reload reaches the postmaster asynchronously: wait until a new session sees it
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(cluster.conninfo()) as conn:
            if conn.execute("SHOW log_statement").fetchone()[0] == "all":
                break
        assert time.monotonic() < deadline, "log_statement = all never took effect"
        time.sleep(0.05)

    # the control: a plaintext password set the naive way is caught by each check
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE canary_role LOGIN PASSWORD '{canary}'")
    log = cluster.log_file
    assert canary.encode() in log.read_bytes(), "log_statement = all did not log the control"
    assert pg_stat_statements_holding(cluster.conninfo(), canary), "pg_stat_statements missed the control"

    # the password set by `mailmig db up`
    with_password = {**env, "POSTGRES_PASSWORD": password}
    up = mailmig("db", "up", env=with_password, cwd=work)
    assert up.returncode == 0, up.stderr
    assert password not in up.stdout + up.stderr
    assert b"SCRAM-SHA-256$" in log.read_bytes()  # the ALTER ROLE was logged: with the verifier

    # schema and a pgloader load over TCP with it; every command line read while it runs
    tcp = {**with_password, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(cluster.port),
           "POSTGRES_USER": "postgres", "POSTGRES_DB": "mailmig"}
    schema = mailmig("schema", "apply", env=tcp, cwd=work)
    assert schema.returncode == 0, schema.stderr
    load = subprocess.Popen(
        [str(Path(sys.executable).parent / "mailmig"), "load", "--loader", "pgloader",
         "--emails-db", str(legacy / "emails.db"), "--auth-db", str(legacy / "auth.db")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=tcp, cwd=work)
    in_arguments, saw_pgloader = [], False
    while load.poll() is None:
        in_arguments += command_lines_holding(password.encode())
        saw_pgloader = saw_pgloader or bool(command_lines_holding(b"pgloader\0--dynamic-space-size")
                                            and command_lines_holding(str(work / "runs").encode()))
        time.sleep(0.02)
    output = load.stdout.read().decode()
    load.stdout.close()
    assert load.returncode == 0, output
    assert saw_pgloader, "pgloader was never seen running: its arguments were not checked"
    assert in_arguments == []
    assert password not in output

    assert password.encode() not in log.read_bytes()
    assert pg_stat_statements_holding(cluster.conninfo(), password) == []
    load_files = list((work / "runs").rglob("*.load"))
    assert load_files, "no rendered load file to check"
    assert files_holding(work / "runs", password.encode()) == []
    assert files_holding(work / ".pgdata", password.encode()) == []
    # and the password works: a TCP login with it
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="mailmig",
                         password=password) as conn:
        assert conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0] > 0
