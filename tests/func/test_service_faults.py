"""The service with PostgreSQL stopped under it, on a cluster of the test's own (the
session's shared cluster must stay up for every other test)."""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from mailmig.cluster import Cluster
from mailmig.sqlrunner import apply_sql
from mailmig.store import create_legacy_files
from tests.conftest import free_port
from tests.func.service_process import MAILMIG, ServiceProcess, message


@pytest.fixture(scope="module")
def own_cluster():
    # not under pytest's tmp_path: a concurrent pytest run rotates /tmp/pytest-of-<user>
    base = Path(tempfile.mkdtemp(prefix="mailmig-test-fault-pg-"))
    cluster = Cluster(base, free_port(), dbname="mailmig", extra_settings={"fsync": "off"})
    try:
        cluster.start()
        apply_sql(cluster.conninfo())
        yield cluster
    finally:
        cluster.destroy()


def test_a_pool_stuck_in_its_reconnect_backoff_is_renewed(own_cluster):
    """After an outage psycopg_pool retries at 1, 3, 7, 15 ... s; a server back at 8 s
    would wait until 15 s. The store replaces such a pool at the first request instead."""
    from mailmig.store import PoolSettings, PostgresBackend, StoreUnavailable

    backend = PostgresBackend(own_cluster.conninfo(), PoolSettings(min_size=1, max_size=2, timeout=0.5,
                                                                   reconnect_timeout=60))
    try:
        backend.ping()
        own_cluster.stop()
        assert postgres_is_down(own_cluster)
        with pytest.raises(StoreUnavailable):
            backend.ping()
        # the pool retries after delays of 1, 2, 4, 8 s, each +-10 % (psycopg_pool's jitter): attempts
        # at 0.9-1.1, 2.7-3.3, 6.3-7.7 s fail; the next is not before 13.5 s. Starting the server at
        # 9 s puts it in that gap whatever the jitter (7 s did not: an attempt at 7.5 s succeeded)
        time.sleep(9)
        own_cluster.start()
        assert backend.pool.get_stats().get("pool_available", 0) == 0  # the pool holds no connection
        started = time.monotonic()
        backend.ping()
        assert time.monotonic() - started < 3
        assert backend.pool_usage()["renewals"] == 1
    finally:
        backend.close()
        own_cluster.start()


@pytest.fixture
def workdir(tmp_path):
    create_legacy_files(tmp_path / "emails.db", tmp_path / "auth.db")
    return tmp_path


def postgres_is_down(cluster: Cluster) -> bool:
    try:
        psycopg.connect(cluster.conninfo(), connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def stored_message_ids(cluster: Cluster) -> set[str]:
    with psycopg.connect(cluster.conninfo()) as conn:
        return {r[0] for r in conn.execute("SELECT message_id FROM mail.emails")}


def test_postgres_mode_answers_451_while_postgres_is_down_and_never_250_for_a_lost_message(own_cluster, workdir):
    with psycopg.connect(own_cluster.conninfo(), autocommit=True) as conn:
        conn.execute("TRUNCATE mail.emails, mail.accounts, mail.sessions CASCADE")
    service = ServiceProcess(workdir, "postgres", dsn=own_cluster.conninfo(), app={"pool_timeout": 0.5})
    service.start()
    replies: dict[str, int] = {}
    try:
        for n in range(3):
            mid = f"<before-{n}@fault>"
            replies[mid] = service.send("fault@tempmail.test", message(f"before {n}", message_id=mid))[0]
        own_cluster.stop()
        assert postgres_is_down(own_cluster)  # the fault is where the test says
        for n in range(3):
            mid = f"<down-{n}@fault>"
            replies[mid] = service.send("fault@tempmail.test", message(f"down {n}", message_id=mid))[0]
        status, health = service.get("/health")
        assert status == 503 and health["status"] == "unavailable"
        assert health["counters"]["write_failures_postgres"] == 3
        assert service.post("/api/email/generate")[0] == 503  # the API says so too, never a false success
        own_cluster.start()
        for n in range(2):
            mid = f"<after-{n}@fault>"
            replies[mid] = service.send("fault@tempmail.test", message(f"after {n}", message_id=mid))[0]
        assert service.stop() == 0
    finally:
        service.kill()
        own_cluster.start()
    assert {m: c for m, c in replies.items() if m.startswith("<down")} == {f"<down-{n}@fault>": 451 for n in range(3)}
    accepted = {m for m, c in replies.items() if c == 250}
    assert accepted == {f"<before-{n}@fault>" for n in range(3)} | {f"<after-{n}@fault>" for n in range(2)}
    # exactly the messages answered 250 are stored: none lost, none stored behind a 451
    assert stored_message_ids(own_cluster) == accepted
    assert "answered 451" in service.log_text


class Traffic:
    """A real SMTP client sending messages one after another on its own thread, each
    reply recorded by Message-ID."""

    def __init__(self, service: ServiceProcess, prefix: str, count: int, gap: float = 0.02):
        import threading

        self.replies: dict[str, int] = {}
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(service, prefix, count, gap))
        self._thread.start()

    def _run(self, service, prefix, count, gap):
        for n in range(count):
            mid = f"<{prefix}-{n}@traffic>"
            try:
                self.replies[mid] = service.send("traffic@tempmail.test", message(f"{prefix} {n}", message_id=mid))[0]
            except Exception as exc:  # reported by the test
                self.errors.append(f"{mid}: {exc}")
            time.sleep(gap)

    @property
    def sent(self) -> int:
        return len(self.replies) + len(self.errors)

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)


def mailmig(service: ServiceProcess, *args: str) -> subprocess.CompletedProcess:
    """A mailmig command on the service's configuration (files, database)."""
    return subprocess.run(MAILMIG + list(args), cwd=service.workdir, env=service.env, capture_output=True,
                          text=True, timeout=300)


def test_dual_mode_answers_250_while_postgres_is_down_mid_traffic_and_the_sync_levels_it(own_cluster, workdir):
    with psycopg.connect(own_cluster.conninfo(), autocommit=True) as conn:
        conn.execute("TRUNCATE mail.emails, mail.accounts, mail.sessions CASCADE")
        conn.execute("TRUNCATE migration.sync_position")
    service = ServiceProcess(workdir, "dual", dsn=own_cluster.conninfo(),
                             app={"pool_timeout": 0.5, "pg_down_backoff": 0.3})
    # the live-migration path: change capture on the files, then a load that records
    # where the sync starts; the SQLite changelog is dual mode's retry queue
    for step in (["capture", "install"], ["load", "--loader", "copy"]):
        done = mailmig(service, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    service.start()
    traffic = Traffic(service, "dual", 60)
    try:
        while traffic.sent < 10:
            time.sleep(0.02)
        own_cluster.stop()
        assert postgres_is_down(own_cluster)  # the fault is where the test says: mid-traffic
        down_from = traffic.sent
        while traffic.sent < down_from + 15:
            time.sleep(0.02)
        status, health = service.get("/health")
        assert status == 200 and health["status"] == "degraded" and "postgres" in health["problem"]
        failures = health["counters"]["dual_postgres_write_failures"]
        assert failures >= 1
        own_cluster.start()
        traffic.join()
        status, health = service.get("/health")
        assert status == 200 and health["status"] == "ok"
        assert service.stop() == 0
    finally:
        traffic.join()
        service.kill()
        own_cluster.start()
    assert traffic.errors == [] and len(traffic.replies) == 60
    assert set(traffic.replies.values()) == {250}  # every message answered 250, none 4xx
    with sqlite3.connect(workdir / "emails.db") as conn:
        in_sqlite = {r[0] for r in conn.execute("SELECT message_id FROM emails")}
    assert in_sqlite == set(traffic.replies)  # nothing lost: SQLite, the source of truth, has all
    in_postgres = stored_message_ids(own_cluster)
    missing = in_sqlite - in_postgres
    assert missing and len(missing) <= len(in_sqlite) - 10  # written while down: left for the sync
    assert f"<dual-59@traffic>" in in_postgres  # PostgreSQL written again once it was back
    # the sync replays the changelog: PostgreSQL level with SQLite, every row and column
    done = mailmig(service, "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert stored_message_ids(own_cluster) == in_sqlite
    done = mailmig(service, "validate", "--source", "live")
    assert done.returncode == 0, done.stdout + done.stderr
