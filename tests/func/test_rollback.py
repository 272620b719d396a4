"""`mailmig rollback` against the real service under SMTP traffic, and its faults: the
hard limit exceeded (a drain made slow on purpose), a rollback requested twice, a switch
requested while one runs, a hook command failing, the service killed during the pause.

The state a cut-over leaves is built directly: a loaded database, the legacy files,
reverse capture installed and the reverse sync started, the service on postgres.
"""

from __future__ import annotations

import time

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig import demo_data, load
from mailmig.reverse_sync import capture_install, start
from mailmig.validate import validate_keys
from tests.func.service_process import message
from tests.func.switch_env import Sender, SwitchEnv, prepare_files, wait_for

LOADED_DB = "mailmig_rollback_loaded"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("rollback-data")
    demo_data.generate(out, emails=150, accounts=100, seed=3)
    return out


@pytest.fixture(scope="module")
def loaded(pg, template_db, dataset, tmp_path_factory):
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=LOADED_DB,
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    result = load.run_load(pg.conninfo(LOADED_DB), dataset / "emails.db", dataset / "auth.db",
                           tmp_path_factory.mktemp("rollback-runs"), loader="copy", progress=None)
    assert result.ok
    yield
    janitor.drop()


@pytest.fixture
def env_factory(pg, loaded, dataset, tmp_path):
    made = []

    def make(cutover: dict | None = None, service: bool = True) -> SwitchEnv:
        dbname = f"rollback_{tmp_path.name[-30:].lower().replace('-', '_')}_{len(made)}"
        janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname,
                                  template_dbname=LOADED_DB)
        janitor.drop()
        janitor.init()
        workdir = tmp_path / f"w{len(made)}"
        workdir.mkdir()
        prepare_files(dataset, workdir)
        env = SwitchEnv(workdir, pg.conninfo(dbname), "postgres", cutover)
        capture_install(env.dsn)
        start(env.dsn)  # what the cut-over does in its pause
        if service:
            env.service.start()
        made.append((env, janitor))
        return env

    yield make
    for env, janitor in made:
        env.service.kill()
        janitor.drop()


def all_pg_keys(env: SwitchEnv) -> dict:
    return {"emails": [str(r[0]) for r in env.sql("SELECT id FROM mail.emails")],
            "accounts": [str(r[0]) for r in env.sql("SELECT id FROM mail.accounts")],
            "sessions": [r[0] for r in env.sql("SELECT id FROM mail.sessions")]}


def test_rollback_under_traffic_keeps_every_accepted_email(env_factory):
    env = env_factory()
    inbox = env.service.generate()  # an account made on PostgreSQL after the cut-over
    with Sender(env.service, "rb") as sender:
        time.sleep(0.7)
        done = env.mailmig("rollback", faults="rollback_drain=sleep:0.5")  # a pause long enough to hold writes
        time.sleep(0.5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rollback: SWITCHED postgres -> sqlite" in done.stdout
    assert "write pause:" in done.stdout
    report = env.report("rollback")
    assert report["outcome"] == "switched"
    assert report["released"]["held_writes"] >= 1  # SMTP replies really were held
    assert 0.5 <= report["paused_seconds"] < 2.0
    assert 0 < report["write_pause_seconds"] < 2.0
    assert env.service.get("/control/status")[1]["mode"] == "sqlite"
    assert all(code == 250 for code in sender.replies.values()), sender.replies
    # every message the service accepted is in emails.db: before, during and after the pause
    assert env.in_sqlite(sender.accepted) == sender.accepted
    assert len(sender.accepted) >= 15
    # what PostgreSQL holds is in SQLite, equal by validate's rules (the account too)
    assert env.sql("SELECT count(*) FROM mail.accounts WHERE email = %s", (inbox["email"],)) == [(1,)]
    check = validate_keys(env.dsn, env.emails_db, env.auth_db, all_pg_keys(env))
    assert check["ok"], check["differences"][:5]
    env.fts_ok()
    row = env.sql("SELECT outcome, from_mode, to_mode, write_pause_s FROM migration.switches")
    assert row == [("switched", "postgres", "sqlite", report["write_pause_seconds"])]


def test_a_second_rollback_changes_nothing(env_factory):
    env = env_factory()
    assert env.mailmig("rollback").returncode == 0
    pauses = env.service.get("/control/status")[1]["pauses"]
    again = env.mailmig("rollback")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do (already on sqlite)" in again.stdout
    assert "rolled back by" in again.stdout
    assert env.service.get("/control/status")[1]["pauses"] == pauses  # no pause, no switch
    assert env.report("rollback")["outcome"] == "nothing_to_do"


def test_past_the_hard_limit_it_resumes_on_postgresql_and_changes_nothing(env_factory):
    env = env_factory()
    with Sender(env.service, "limit") as sender:
        time.sleep(0.5)
        done = env.mailmig("rollback", "--hard-limit", "1", faults="rollback_drain=sleep:2")
        time.sleep(0.5)
    assert "fault rollback_drain: sleep 2 s" in done.stderr  # the drain really was slow
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ABORTED" in done.stdout and "hard limit of 1 s passed" in done.stdout
    report = env.report("rollback")
    assert report["outcome"] == "aborted" and report["released"]["mode"] == "postgres"
    assert not report["released"]["switched"]
    assert env.service.get("/control/status")[1]["mode"] == "postgres"
    assert all(code == 250 for code in sender.replies.values())
    assert env.in_postgres(sender.accepted) == sender.accepted


def test_a_second_switch_is_refused_while_one_runs(env_factory, tmp_path):
    env = env_factory()
    mark = tmp_path / "locked"
    first = env.mailmig("rollback", faults=f"rollback_locked=mark:{mark}+sleep:4", background=True)
    try:
        wait_for(mark)  # the first one holds the lock now
        second = env.mailmig("rollback")
        cutover = env.mailmig("cutover")
    finally:
        out, err = first.communicate(timeout=60)
    assert second.returncode == 3, second.stdout + second.stderr
    assert "REFUSED" in second.stdout and "a cut-over or rollback is running: mailmig rollback" in second.stdout
    assert cutover.returncode == 3 and "a cut-over or rollback is running" in cutover.stdout
    assert first.returncode == 0, out + err
    outcomes = sorted(r[0] for r in env.sql("SELECT outcome FROM migration.switches"))
    assert outcomes == ["refused", "refused", "switched"]


@pytest.mark.parametrize("failing", ["pause", "switch"])
def test_a_failing_hook_aborts_and_the_writes_are_resumed(env_factory, tmp_path, failing):
    log = tmp_path / "hooks.log"
    hooks = {name: f"echo {name} $MAILMIG_MODE >> {log}" for name in ("pause", "switch", "resume")}
    hooks[failing] = f"echo {failing} >> {log}; echo 'no such container' >&2; exit 7"
    env = env_factory(cutover={"control": "hooks", **{f"{k}_command": v for k, v in hooks.items()}}, service=False)
    done = env.mailmig("rollback")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{failing} hook" in done.stdout and "exit status 7: no such container" in done.stdout
    ran = log.read_text().split("\n")
    assert ran[0].startswith("pause") and ran[-2].startswith("resume")  # resumed after the failure
    assert any(line.startswith("switch") for line in ran) == (failing == "switch")  # no switch after a failed pause
    assert env.report("rollback")["outcome"] == "aborted"


def test_the_service_killed_during_the_pause_restarts_on_postgresql_and_loses_nothing(env_factory, tmp_path):
    env = env_factory()
    mark = tmp_path / "paused"
    with Sender(env.service, "kill", rate=10) as sender:
        time.sleep(0.5)
        rollback = env.mailmig("rollback", faults=f"rollback_paused=mark:{mark}+sleep:1.5", background=True)
        wait_for(mark)
        env.service.kill()  # during the pause: held replies are never sent
        assert env.service.proc.returncode == -9
        out, err = rollback.communicate(timeout=60)
        env.service.start()  # the sender's dropped messages are retried against it
        time.sleep(1.0)
    assert rollback.returncode in (1, 4), out + err
    assert env.report("rollback")["outcome"] in ("aborted", "unknown")
    status = env.service.get("/control/status")[1]
    assert status["mode"] == "postgres"  # the old store: the switch was never applied
    assert all(code == 250 for code in sender.replies.values()), sender.replies
    assert env.in_postgres(sender.accepted) == sender.accepted  # nothing acknowledged is lost
    extra = env.service.send("switch@tempmail.test", message("after", message_id="<after-kill@switch.test>"))
    assert extra[0] == 250
