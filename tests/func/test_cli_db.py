"""`mailmig db up|down|status|url` as a user runs them, on a cluster of their own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port



def mailmig(*args, env, cwd):
    return subprocess.run(
        [str(Path(sys.executable).parent / "mailmig"), *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
    )


def postgres_processes_under(path):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(path) in line and "postgres" in line]


def test_up_twice_url_works_with_psql_and_down_leaves_no_process(tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    (work / "mailmig.yaml").write_text(f"local_cluster:\n  dir: {work / '.pgdata'}\n  port: {free_port()}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    env["MAILMIG_CONFIG"] = str(work / "mailmig.yaml")
    try:
        first = mailmig("db", "up", env=env, cwd=work)
        assert first.returncode == 0, first.stderr
        assert "created and started" in first.stdout
        second = mailmig("db", "up", env=env, cwd=work)
        assert second.returncode == 0 and "already running" in second.stdout
        url = mailmig("db", "url", env=env, cwd=work).stdout.strip()
        assert url.startswith("postgresql://")
        psql = subprocess.run(["psql", url, "-Atc", "SELECT current_database()"], capture_output=True, text=True)
        assert psql.returncode == 0, psql.stderr
        assert psql.stdout.strip() == "mailmig"
        status = mailmig("db", "status", env=env, cwd=work)
        assert status.returncode == 0 and "running: True" in status.stdout
    finally:
        down = mailmig("db", "down", env=env, cwd=work)
    assert down.returncode == 0, down.stderr
    assert postgres_processes_under(work / ".pgdata") == []
    assert mailmig("db", "status", env=env, cwd=work).returncode == 3
    assert "was not running" in mailmig("db", "down", env=env, cwd=work).stdout


def test_a_configured_server_is_never_started_or_stopped(tmp_path):
    env = {**os.environ, "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1"}
    up = mailmig("db", "up", env=env, cwd=tmp_path)
    assert up.returncode == 0 and "nothing to start" in up.stdout
    down = mailmig("db", "down", env=env, cwd=tmp_path)
    assert down.returncode != 0 and "never starts or stops" in down.stderr
