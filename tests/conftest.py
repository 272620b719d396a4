"""Shared fixtures: one real PostgreSQL cluster (pg_cron preloaded) for the session,
the schema applied once into a template database, a fresh clone of it per test.

The cluster is started by the project's own code (mailmig.cluster, which runs the
server programs as `postgres` when the tests run as root: FIELD-NOTES), and
pytest-postgresql's DatabaseJanitor clones the template for each test.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig.cluster import Cluster
from mailmig.sqlrunner import apply_sql

TEMPLATE_DB = "mailmig_template"
CRON_DB = "mailmig_cron"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    cluster: Cluster
    cron_dbname: str

    @property
    def host(self) -> str:
        return str(self.cluster.socket_dir)

    @property
    def port(self) -> int:
        return self.cluster.port

    @property
    def user(self) -> str:
        return self.cluster.superuser

    def conninfo(self, dbname: str) -> str:
        return self.cluster.conninfo(dbname)


@pytest.fixture(scope="session")
def pg():
    """A running PostgreSQL cluster with pg_cron and pg_stat_statements preloaded."""
    base = Path(tempfile.mkdtemp(prefix="mailmig-test-pg-"))
    cluster = Cluster(base, free_port(), dbname=CRON_DB, extra_settings={"fsync": "off"})
    try:
        cluster.start()
        yield Server(cluster, CRON_DB)
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg):
    """A database with every sql/ file applied, used as the template of each test's."""
    janitor = DatabaseJanitor(
        user=pg.user, host=pg.host, port=pg.port, dbname=TEMPLATE_DB, as_template=True
    )
    janitor.drop()
    janitor.init()
    apply_sql(pg.conninfo(TEMPLATE_DB))
    yield TEMPLATE_DB
    janitor.drop()


_db_numbers = itertools.count(1)


@pytest.fixture
def dsn(pg, template_db):
    """The conninfo of a fresh database cloned from the template."""
    dbname = f"mailmig_test_{next(_db_numbers)}"
    janitor = DatabaseJanitor(
        user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=template_db
    )
    janitor.drop()
    janitor.init()
    yield pg.conninfo(dbname)
    janitor.drop()


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def cron_dsn(pg):
    """The one database where pg_cron can live (cron.database_name), schema applied."""
    dsn = pg.conninfo(pg.cron_dbname)
    apply_sql(dsn)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    return dsn
