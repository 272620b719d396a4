"""The three roles: mail_owner owns, mail_app writes data but runs no DDL,
mail_readonly reads everything but the secrets and writes nothing."""

from __future__ import annotations

import pytest
from psycopg import errors


@pytest.fixture
def data(conn):
    conn.execute("INSERT INTO mail.accounts (id, email, password_hash, token) VALUES (100, 'a@x', '$2b$hash', 'tok-1')")
    conn.execute("INSERT INTO mail.sessions (id, account_id) VALUES ('sess-1', 100)")
    conn.execute("SELECT mail.insert_email('<r@x>', 'f@x', 'a@x', 'hello', 'body', NULL, NULL, NULL, 4)")
    return conn


def as_role(conn, role):
    conn.execute("RESET ROLE")
    conn.execute(f"SET ROLE {role}")  # a fixed name of this module
    return conn


def test_roles_exist_without_login_and_own_the_objects(conn):
    roles = dict(conn.execute(
        "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('mail_owner', 'mail_app', 'mail_readonly')"
    ).fetchall())
    assert roles == {"mail_owner": False, "mail_app": False, "mail_readonly": False}
    not_owned = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'mail' AND c.relowner <> 'mail_owner'::regrole"
        " UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.pronamespace = 'mail'::regnamespace AND p.proowner <> 'mail_owner'::regrole"
        " UNION ALL SELECT nspname FROM pg_namespace"
        " WHERE nspname IN ('mail', 'staging', 'migration') AND nspowner <> 'mail_owner'::regrole"
    ).fetchall()
    assert not_owned == []


def test_app_writes_data_but_runs_no_ddl(data):
    conn = as_role(data, "mail_app")
    assert conn.execute("SELECT token, password_hash FROM mail.accounts").fetchall() == [("tok-1", "$2b$hash")]
    assert conn.execute("SELECT id FROM mail.sessions").fetchall() == [("sess-1",)]
    assert conn.execute("SELECT mail.insert_email('<r2@x>', 'f', 't', 's', 'b', NULL, NULL, NULL, 1)").fetchone()[0]
    conn.execute("INSERT INTO mail.emails (message_id, from_address, to_address, created_at) VALUES ('<r3@x>', 'f', 't', now())")
    conn.execute("UPDATE mail.emails SET is_read = true, message_id = '<r4@x>' WHERE message_id = '<r3@x>'")
    conn.execute("DELETE FROM mail.emails WHERE message_id = '<r4@x>'")
    conn.execute("INSERT INTO mail.accounts (email) VALUES ('new@x')")
    assert conn.execute("SELECT count(*) FROM mail.search_emails('hello')").fetchone()[0] == 1
    with pytest.raises(errors.UniqueViolation):
        conn.execute("INSERT INTO mail.emails (message_id, from_address, to_address, created_at) VALUES ('<r@x>', 'f', 't', now())")
    for statement in (
        "CREATE TABLE mail.evil (v int)",
        "DROP TABLE mail.emails",
        "ALTER TABLE mail.accounts ADD COLUMN x int",
        "TRUNCATE mail.sessions",
        "CREATE INDEX ON mail.emails (subject)",
        "DELETE FROM mail.message_id_guard",
        "INSERT INTO mail.message_id_guard VALUES ('<forged@x>', 1)",
        "SELECT mail.ensure_partitions(12)",
        "CALL mail.drop_expired_partitions('1 day')",
        "INSERT INTO mail.emails_default (message_id, from_address, to_address, created_at) VALUES ('x', 'f', 't', '1990-01-01')",
        "CREATE TABLE staging.evil (v int)",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def test_readonly_reads_all_but_secrets_and_writes_nothing(data):
    conn = as_role(data, "mail_readonly")
    assert conn.execute("SELECT message_id, subject FROM mail.emails").fetchall() == [("<r@x>", "hello")]
    assert conn.execute("SELECT id, email, is_active FROM mail.accounts").fetchall() == [(100, "a@x", True)]
    assert conn.execute("SELECT account_id FROM mail.sessions").fetchall() == [(100,)]
    assert conn.execute("SELECT count(*) FROM mail.search_emails('hello')").fetchone()[0] == 1
    for statement in (
        "SELECT token FROM mail.accounts",
        "SELECT password_hash FROM mail.accounts",
        "SELECT * FROM mail.accounts",
        "SELECT id FROM mail.sessions",
        "INSERT INTO mail.emails (message_id, from_address, to_address, created_at) VALUES ('<w@x>', 'f', 't', now())",
        "SELECT mail.insert_email('<w@x>', 'f', 't', 's', 'b', NULL, NULL, NULL, 1)",
        "UPDATE mail.emails SET is_read = true",
        "DELETE FROM mail.accounts",
        "CREATE TABLE mail.evil (v int)",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
