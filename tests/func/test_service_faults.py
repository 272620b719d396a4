"""The service with PostgreSQL stopped under it, on a cluster of the test's own (the
session's shared cluster must stay up for every other test)."""

from __future__ import annotations

import time

import psycopg
import pytest

from mailmig.cluster import Cluster
from mailmig.sqlrunner import apply_sql
from mailmig.store import create_legacy_files
from tests.conftest import free_port
from tests.func.service_process import ServiceProcess, message


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("fault-pg"), free_port(), dbname="mailmig",
                      extra_settings={"fsync": "off"})
    cluster.start()
    apply_sql(cluster.conninfo())
    yield cluster
    cluster.destroy()


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
