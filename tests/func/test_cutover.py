"""`mailmig cutover` against the real service, the real capture and `mailmig sync --follow`,
under SMTP traffic, and its faults: the service killed during the pause, PostgreSQL
stopped during the drain, the hard limit exceeded (a drain made slow on purpose), and
pre-checks that refuse.

A module fixture builds the state an operator reaches before a cut-over once (capture
installed, loaded, validated, reverse capture installed) as a template database beside
copies of the files; each test clones it, starts the sync and the service on its own.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig import capture, demo_data, load
from mailmig.cluster import Cluster
from mailmig.mapping import load_mapping
from mailmig.reverse_sync import capture_install
from mailmig.sqlrunner import apply_sql
from mailmig.validate import run_validate, validate_keys
from tests.conftest import free_port
from tests.func.switch_env import Sender, SwitchEnv, copy_sqlite, wait_for

READY_DB = "mailmig_cutover_ready"


def make_ready(conninfo: str, dataset, files, runs_dir) -> None:
    """capture install -> load -> validate -> reverse capture install, as the runbook says."""
    tables = load_mapping()
    for source, name in (("emails_db", "emails.db"), ("auth_db", "auth.db")):
        copy_sqlite(dataset / name, files / name)
        capture.install(files / name, capture.tables_of(tables, source))
    result = load.run_load(conninfo, files / "emails.db", files / "auth.db", runs_dir, loader="copy", progress=None)
    assert result.ok
    validated = run_validate(conninfo, runs_dir, source="live", emails_db=files / "emails.db",
                             auth_db=files / "auth.db")
    assert validated.ok, validated.report["differences"][:5]
    capture_install(conninfo)


@pytest.fixture(scope="module")
def ready(pg, template_db, tmp_path_factory):
    dataset = tmp_path_factory.mktemp("cutover-data")
    demo_data.generate(dataset, emails=150, accounts=100, seed=9)
    state = tmp_path_factory.mktemp("cutover-ready")
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=READY_DB, template_dbname=template_db)
    janitor.drop()
    janitor.init()
    make_ready(pg.conninfo(READY_DB), dataset, state, state / "runs")
    yield state
    janitor.drop()


class CutoverEnv(SwitchEnv):
    def start_sync(self) -> subprocess.Popen:
        old = getattr(self, "sync_proc", None)
        if old is not None and old.poll() is not None:
            old.communicate()  # its pipes closed
        self.sync_proc = self.mailmig("sync", "--follow", background=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = self.sql("SELECT following, heartbeat_age_seconds FROM migration.sync_status(clock_timestamp())")
            if len(rows) == 2 and all(r[0] and r[1] is not None and r[1] < 2 for r in rows):
                return self.sync_proc
            assert self.sync_proc.poll() is None, self.sync_proc.communicate()
            time.sleep(0.1)
        raise TimeoutError("sync --follow did not start")

    def stop_sync(self) -> None:
        proc = getattr(self, "sync_proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=30)

    def wait_synced(self, message_ids, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.in_postgres(message_ids) != set(message_ids):
            if time.monotonic() > deadline:
                proc = self.sync_proc
                state = "running" if proc.poll() is None else f"exited {proc.returncode}: {proc.communicate()}"
                raise AssertionError(f"the sync did not bring PostgreSQL level (sync --follow {state})")
            time.sleep(0.2)


def clone(pg, ready, tmp_path, name: str, dsn_of=None) -> tuple[CutoverEnv, DatabaseJanitor]:
    dbname = f"cut_{name}_{tmp_path.name[-20:].lower().replace('-', '_')}"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=READY_DB)
    janitor.drop()
    janitor.init()
    workdir = tmp_path / name
    workdir.mkdir()
    for file in ("emails.db", "auth.db"):
        copy_sqlite(ready / file, workdir / file)
    shutil.copytree(ready / "runs", workdir / "runs", symlinks=True)
    return CutoverEnv(workdir, pg.conninfo(dbname), "sqlite"), janitor


@pytest.fixture
def env(pg, ready, tmp_path):
    env, janitor = clone(pg, ready, tmp_path, "w")
    env.start_sync()
    env.service.start()
    yield env
    env.service.kill()
    env.stop_sync()
    janitor.drop()


def test_cutover_under_traffic_switches_and_every_accepted_email_is_in_postgresql(env):
    with Sender(env.service, "cut") as sender:
        time.sleep(0.5)
        done = env.mailmig("cutover", faults="cutover_drain=sleep:0.3")  # a pause long enough to hold writes
        time.sleep(0.5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cutover: SWITCHED sqlite -> postgres" in done.stdout
    report = env.report("cutover")
    assert report["outcome"] == "switched" and report["released"]["held_writes"] >= 1
    assert 0 < report["write_pause_seconds"] < 2.0 and report["paused_seconds"] < 2.0
    assert [c["ok"] for c in report["checks"]] == [True] * len(report["checks"])
    assert [s["name"] for s in report["steps"]] == [
        "pause writes", "take SQLite's write lock", "drain the sync to the last change",
        "sequences past the largest ids", "validate the keys changed since the last full validation",
        "start the reverse sync here", "switch to postgres (at the resume)", "resume writes"]
    assert env.service.get("/control/status")[1]["mode"] == "postgres"
    assert all(code == 250 for code in sender.replies.values())
    assert env.in_postgres(sender.accepted) == sender.accepted  # before, during and after the pause
    # the sequences are past every id SQLite ever gave
    largest = env.sql("SELECT last_value FROM mail.emails_id_seq")[0][0]
    conn = sqlite3.connect(env.emails_db)
    assert largest >= conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'emails'").fetchone()[0]
    conn.close()
    assert env.sql("SELECT outcome, write_pause_s FROM migration.switches") == [
        ("switched", report["write_pause_seconds"])]
    assert env.sql("SELECT count(*) FROM migration.reverse_sync_position") == [(1,)]
    # the pause's check is a command too: the keys the sync applied since a point
    point = env.sql("SELECT min(batch_id) - 1 FROM migration.sync_batches")[0][0]
    check = env.mailmig("validate", "--changed-since", str(point))
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"(keys changed since sync point {point}) OK" in check.stdout
    env.sql("UPDATE mail.emails SET subject = 'tampered' WHERE message_id = %s", (sorted(sender.accepted)[0],))
    check = env.mailmig("validate", "--changed-since", str(point))
    assert check.returncode == 1 and "subject: source" in check.stdout


def test_a_rollback_after_the_cutover_keeps_every_email_and_validate_passes(env):
    """The round trip under traffic: cut over, mail and a new inbox on PostgreSQL, roll
    back; every email accepted after the cut-over is in emails.db, and once the forward
    sync has carried what SQLite received since, a full validation passes."""
    with Sender(env.service, "trip") as sender:
        time.sleep(0.3)
        cut = env.mailmig("cutover")
        assert cut.returncode == 0, cut.stdout + cut.stderr
        time.sleep(1.0)
        after_cutover = set(sender.accepted)
        inbox = env.service.generate()  # an account made on PostgreSQL
        back = env.mailmig("rollback")
        assert back.returncode == 0, back.stdout + back.stderr
        time.sleep(0.5)
    assert "rollback: SWITCHED postgres -> sqlite" in back.stdout
    assert env.service.get("/control/status")[1]["mode"] == "sqlite"
    assert all(code == 250 for code in sender.replies.values())
    assert env.in_sqlite(sender.accepted) == sender.accepted  # every email, after the cut-over too
    assert len(after_cutover) >= 10
    with sqlite3.connect(env.auth_db) as conn:
        assert conn.execute("SELECT count(*) FROM accounts WHERE email = ?", (inbox["email"],)).fetchone() == (1,)
    conn.close()
    env.fts_ok()
    env.wait_synced(sender.accepted)  # the forward sync carries what SQLite received after the rollback
    validated = env.mailmig("validate", "--source", "live")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "validate OK" in validated.stdout


def test_pre_checks_refuse_and_nothing_is_paused(env):
    env.stop_sync()
    env.sql("ALTER TABLE mail.accounts DISABLE TRIGGER mailmig_reverse_capture")
    time.sleep(0.2)
    done = env.mailmig("cutover", "--hard-limit", "5")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "REFUSED before any pause" in done.stdout
    assert "FAIL reverse capture: not installed" in done.stdout
    assert env.service.get("/control/status")[1]["pauses"] == 0
    assert env.report("cutover")["outcome"] == "refused"
    # a sync that stopped is seen by its heartbeat
    config = yaml.safe_load(env.service.config_file.read_text())
    config["cutover"] = {"max_heartbeat_age": 1}
    env.service.config_file.write_text(yaml.safe_dump(config))
    time.sleep(1.5)
    again = env.mailmig("cutover")
    assert "FAIL sync emails_db:" in again.stdout and again.returncode == 3


def test_a_cutover_requested_while_one_runs_is_refused(env, tmp_path):
    mark = tmp_path / "locked"
    first = env.mailmig("cutover", faults=f"cutover_locked=mark:{mark}+sleep:3", background=True)
    try:
        wait_for(mark)  # the first one holds the one-switch lock now
        second = env.mailmig("cutover")
    finally:
        out, err = first.communicate(timeout=60)
    assert second.returncode == 3, second.stdout + second.stderr
    assert "REFUSED before any pause: a cut-over or rollback is running: mailmig cutover" in second.stdout
    assert first.returncode == 0, out + err
    assert sorted(r[0] for r in env.sql("SELECT outcome FROM migration.switches")) == ["refused", "switched"]
    assert env.service.get("/control/status")[1]["pauses"] == 1  # only the first one paused


def test_past_the_hard_limit_it_resumes_on_sqlite_and_changes_nothing(env):
    with Sender(env.service, "limit") as sender:
        time.sleep(0.5)
        done = env.mailmig("cutover", "--hard-limit", "1", faults="cutover_drain=sleep:2")
        time.sleep(0.5)
    assert "fault cutover_drain: sleep 2 s" in done.stderr  # the drain really was slow
    assert done.returncode == 1, done.stdout + done.stderr
    assert "hard limit of 1 s passed" in done.stdout
    report = env.report("cutover")
    assert report["outcome"] == "aborted" and report["released"]["mode"] == "sqlite"
    assert "start the reverse sync here" not in [s["name"] for s in report["steps"]]
    assert env.service.get("/control/status")[1]["mode"] == "sqlite"
    assert all(code == 250 for code in sender.replies.values())
    assert env.in_sqlite(sender.accepted) == sender.accepted
    env.wait_synced(sender.accepted)  # and the sync carries on


def test_the_service_killed_during_the_pause_restarts_on_sqlite_and_loses_nothing(env, tmp_path):
    mark = tmp_path / "draining"
    with Sender(env.service, "kill", rate=10) as sender:
        time.sleep(0.5)
        cut = env.mailmig("cutover", faults=f"cutover_drain=mark:{mark}+sleep:1", background=True)
        wait_for(mark)  # the cut-over is in its pause, draining
        env.service.kill()
        assert env.service.proc.returncode == -9
        out, err = cut.communicate(timeout=60)
        env.service.start()
        time.sleep(1.0)
    assert cut.returncode in (1, 4), out + err
    assert env.report("cutover")["outcome"] in ("aborted", "unknown")
    assert env.service.get("/control/status")[1]["mode"] == "sqlite"  # the old store: never switched
    assert all(code == 250 for code in sender.replies.values()), sender.replies
    assert env.in_sqlite(sender.accepted) == sender.accepted  # nothing acknowledged is lost
    env.wait_synced(sender.accepted)


@pytest.fixture
def own_cluster():
    # not under pytest's tmp_path: any pytest session that starts (other worktrees run theirs)
    # makes /tmp/pytest-of-<user> private again, and the postgres user could not restart it
    base = Path(tempfile.mkdtemp(prefix="mailmig-test-cutover-pg-"))
    cluster = Cluster(base, free_port(), dbname="mailmig", extra_settings={"fsync": "off"})
    cluster.start()
    apply_sql(cluster.conninfo())
    yield cluster
    cluster.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_postgresql_stopped_during_the_drain_aborts_to_sqlite(own_cluster, ready, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    dataset = tmp_path / "data"
    demo_data.generate(dataset, emails=60, accounts=40, seed=4)
    make_ready(own_cluster.conninfo(), dataset, state, state / "runs")
    workdir = tmp_path / "w"
    workdir.mkdir()
    for file in ("emails.db", "auth.db"):
        copy_sqlite(state / file, workdir / file)
    shutil.copytree(state / "runs", workdir / "runs", symlinks=True)
    env = CutoverEnv(workdir, own_cluster.conninfo(), "sqlite")
    env.start_sync()
    env.service.start()
    mark = tmp_path / "draining"
    try:
        with Sender(env.service, "pgdown", rate=10) as sender:
            time.sleep(0.5)
            cut = env.mailmig("cutover", faults=f"cutover_drain=mark:{mark}+sleep:1", background=True)
            wait_for(mark)
            own_cluster.stop()
            with pytest.raises(psycopg.OperationalError):  # the fault is where the test says
                psycopg.connect(own_cluster.conninfo(), connect_timeout=2).close()
            out, err = cut.communicate(timeout=60)
            time.sleep(0.5)
        assert cut.returncode == 1, out + err
        assert "cutover: ABORTED, writes resumed on sqlite" in out
        assert "not in migration.switches" in out  # PostgreSQL was down: the JSON has it
        assert env.report("cutover")["outcome"] == "aborted"
        assert env.service.get("/control/status")[1]["mode"] == "sqlite"
        assert all(code == 250 for code in sender.replies.values())  # SQLite needs no PostgreSQL
        assert env.in_sqlite(sender.accepted) == sender.accepted
        own_cluster.start()
        if env.sync_proc.poll() is not None:
            env.start_sync()  # a sync that exited on the restart is re-run, as the runbook says
        env.wait_synced(sender.accepted, timeout=60)  # and brings PostgreSQL level
        keys = {"emails": [str(r[0]) for r in env.sql("SELECT id FROM mail.emails")]}
        assert validate_keys(env.dsn, env.emails_db, env.auth_db, keys)["ok"]
    finally:
        env.service.kill()
        env.stop_sync()
        own_cluster.start()
