"""pg_cron jobs of cron/: rendering, install by name, list, uninstall, and one job
really run by pg_cron (slow: waits for the next minute)."""

from __future__ import annotations

import time

import psycopg
import pytest

from mailmig import cron
from mailmig.config import SCHEMA

DEFAULTS = {key: default for key, (_, default, _) in SCHEMA["maintenance"].items()}
JOB_NAMES = ["mailmig-analyze", "mailmig-expiry", "mailmig-premake", "mailmig-purge-history", "mailmig-retention"]


@pytest.fixture
def cron_db(cron_dsn):
    cron.uninstall(cron_dsn)
    yield cron_dsn
    cron.uninstall(cron_dsn)


def jobs(conninfo):
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT jobname, schedule, database, command FROM cron.job WHERE jobname LIKE 'mailmig-%' ORDER BY 1"
        ).fetchall()


def test_every_job_file_names_its_job_schedule_key_and_database():
    files = cron.job_files()
    assert sorted(f.name for f in files) == JOB_NAMES
    for f in files:
        assert f.schedule_key.split(".", 1)[1] in DEFAULTS
        assert "VACUUM" not in f.template.upper()


def test_config_values_become_sql_literals(cron_dsn, tmp_path):
    (tmp_path / "x.sql").write_text(
        "-- job: mailmig-x\n-- schedule: maintenance.retention_schedule\n-- database: target\n"
        "SELECT {retention}::interval, {premake_months}\n"
    )
    [job] = cron.job_files(tmp_path)
    with psycopg.connect(cron_dsn) as conn:
        command = job.command({"retention": "90 days'); DROP TABLE x; --", "premake_months": 3}, conn)
        assert command == "SELECT '90 days''); DROP TABLE x; --'::interval, 3"
        with pytest.raises(cron.CronError, match="unknown placeholder"):
            job.command({"retention": "1 day"}, conn)


def test_install_twice_leaves_one_job_per_name_and_uninstall_removes_them(cron_db, dsn):
    target = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    # no schedule fires while the test runs (the target database is dropped after it)
    maintenance = dict(DEFAULTS, retention="30 days", premake_schedule="5 1 * * *", expiry_schedule="0 0 1 1 *")
    first = cron.install(cron_db, target, maintenance)
    second = cron.install(cron_db, target, maintenance)
    assert [j["jobid"] for j in first] == [j["jobid"] for j in second]
    installed = jobs(cron_db)
    assert [r[0] for r in installed] == JOB_NAMES
    by_name = {name: (schedule, database, command) for name, schedule, database, command in installed}
    assert by_name["mailmig-premake"][:2] == ("5 1 * * *", target)
    assert by_name["mailmig-retention"][2] == "CALL mail.drop_expired_partitions('30 days'::interval)"
    assert by_name["mailmig-purge-history"][1] == "mailmig_cron"  # cron.job_run_details lives there
    assert by_name["mailmig-expiry"][0] == "0 0 1 1 *"
    assert by_name["mailmig-analyze"][0] == DEFAULTS["analyze_schedule"]
    listed = cron.list_jobs(cron_db)
    assert [(r[0], r[3], r[4], r[5]) for r in listed] == [(name, True, None, None) for name in JOB_NAMES]
    assert cron.uninstall(cron_db) == JOB_NAMES
    assert jobs(cron_db) == []


def test_every_job_command_runs(cron_dsn):
    """Each rendered command, run by hand in its database, succeeds."""
    with psycopg.connect(cron_dsn, autocommit=True) as conn:
        for job in cron.job_files():
            conn.execute(job.command(DEFAULTS, conn))


def test_slow_a_job_run_by_pg_cron_succeeds(cron_db):
    """SLOW (up to ~75 s, `-k 'not slow'` skips it): pg_cron runs whole minutes only. premake is scheduled every
    minute; the partition it must create is dropped first."""
    with psycopg.connect(cron_db, autocommit=True) as conn:
        far = conn.execute(
            "SELECT 'mail.emails_p' || to_char(now() AT TIME ZONE 'UTC' + interval '3 months', 'YYYYMM')"
        ).fetchone()[0]
        conn.execute("SELECT mail.ensure_partitions(3)")
        conn.execute(f"DROP TABLE {far}")  # a name built above from digits only
        [premake] = [j for j in cron.install(cron_db, "mailmig_cron", dict(DEFAULTS, premake_schedule="* * * * *"))
                     if j["name"] == "mailmig-premake"]
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s"
                " AND status IN ('succeeded', 'failed') ORDER BY start_time DESC LIMIT 1",
                (premake["jobid"],),
            ).fetchone()
            if row:
                status = row
                break
            time.sleep(1)
        assert status is not None, "pg_cron did not run the job within 90 s"
        assert status[0] == "succeeded", status
        assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (far,)).fetchone()[0]
        listed = {r[0]: r for r in cron.list_jobs(cron_db)}
        assert listed["mailmig-premake"][5] == "succeeded"
