"""The test cluster is started by mailmig.cluster: check what it promises."""

import psycopg


def test_cluster_preloads_pg_cron_and_applies_the_seed_tuning(pg):
    with psycopg.connect(pg.conninfo("postgres")) as conn:
        show = lambda name: conn.execute(f"SHOW {name}").fetchone()[0]  # noqa: E731
        assert show("shared_preload_libraries") == "pg_cron,pg_stat_statements"
        assert show("cron.database_name") == pg.cron_dbname
        assert show("cron.host") == pg.host
        assert show("max_connections") == "200"
        assert show("shared_buffers") == "256MB"
        assert show("server_encoding") == "UTF8"
        assert show("listen_addresses") == "127.0.0.1"


def test_tcp_requires_a_password(pg):
    with psycopg.connect(pg.conninfo("postgres")) as conn:
        rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules ORDER BY line_number").fetchall()
    assert ("host", "scram-sha-256") in rules
    assert all(method != "trust" for kind, method in rules if kind == "host")
