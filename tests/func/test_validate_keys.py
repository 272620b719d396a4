"""validate_keys: the rows of a set of keys compared (the cut-over's quick check), with the
same rules and bookkeeping checks as the full validation, and nothing outside the set."""

from __future__ import annotations

import shutil
import sqlite3

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig import demo_data, load
from mailmig.validate import validate_keys

LOADED_DB = "mailmig_keys_loaded"
ODD_SESSION_KEYS = {"blob:deadbeef": b"\xde\xad\xbe\xef", "blob:": b""}  # name -> the BLOB id


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("keys-data")
    demo_data.generate(out, emails=200, accounts=150, seed=5)
    with sqlite3.connect(out / "auth.db") as conn:  # session keys of other storage classes
        account = conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 1").fetchone()[0]
        for key in ODD_SESSION_KEYS.values():
            conn.execute("INSERT INTO sessions (id, account_id, created_at, expires_at, user_agent) "
                         "VALUES (?, ?, '2026-11-30 10:00:00', '2026-12-30 10:00:00', 'odd')", (key, account))
        conn.execute("INSERT INTO sessions (id, account_id, created_at, expires_at, user_agent) "
                     "VALUES (CAST(X'C3' AS TEXT), ?, '2026-11-30 10:00:00', '2026-12-30 10:00:00', 'odd')",
                     (account,))
    return out


@pytest.fixture(scope="module")
def loaded(pg, template_db, dataset, tmp_path_factory):
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=LOADED_DB,
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    result = load.run_load(pg.conninfo(LOADED_DB), dataset / "emails.db", dataset / "auth.db",
                           tmp_path_factory.mktemp("keys-runs"), loader="copy", progress=None)
    assert result.ok
    yield
    janitor.drop()


@pytest.fixture
def db(pg, loaded, dataset, tmp_path):
    dbname = f"keys_{tmp_path.name[-40:].lower().replace('-', '_')}"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname, template_dbname=LOADED_DB)
    janitor.drop()
    janitor.init()
    for name in ("emails.db", "auth.db"):
        shutil.copy(dataset / name, tmp_path / name)
    with psycopg.connect(pg.conninfo(dbname), autocommit=True) as conn:
        yield conn, tmp_path / "emails.db", tmp_path / "auth.db"
    janitor.drop()


def keys_of(conn, query):
    return [str(r[0]) for r in conn.execute(query).fetchall()]


def test_equal_rows_pass_and_each_difference_in_the_set_is_named(db):
    conn, emails_db, auth_db = db
    emails = keys_of(conn, "SELECT id FROM mail.emails ORDER BY id")
    accounts = keys_of(conn, "SELECT id FROM mail.accounts ORDER BY id")
    # PostgreSQL's ids are the source names of every row but the odd-keyed ones (next test)
    sessions = keys_of(conn, "SELECT id FROM mail.sessions WHERE user_agent IS DISTINCT FROM 'odd' ORDER BY id")
    rejected = keys_of(conn, "SELECT source_key FROM migration.rejects WHERE source_table = 'emails'")
    repaired = keys_of(conn, "SELECT DISTINCT source_key FROM migration.repairs WHERE source_table = 'emails'")
    assert rejected and repaired
    everything = {"emails": emails + rejected, "accounts": accounts, "sessions": sessions}
    report = validate_keys(conn.info.dsn, emails_db, auth_db, everything)
    assert report["ok"], report["differences"][:5]
    assert report["keys"] == len(emails) + len(rejected) + len(accounts) + len(sessions)

    changed, gone, outside = emails[3], emails[4], emails[5]
    conn.execute("UPDATE mail.emails SET is_read = NOT coalesce(is_read, false) WHERE id = ANY(%s)",
                 ([int(changed), int(outside)],))
    conn.execute("DELETE FROM mail.emails WHERE id = %s", (int(gone),))
    conn.execute("UPDATE mail.accounts SET email = 'changed@x' WHERE id = %s", (int(accounts[0]),))
    report = validate_keys(conn.info.dsn, emails_db, auth_db,
                           {"emails": [changed, gone] + repaired[:3] + rejected[:2], "accounts": accounts[:1]})
    assert not report["ok"]
    assert report["tables"]["emails"] == {"keys": 2 + len(repaired[:3]) + len(rejected[:2]), "missing": 1,
                                          "extra": 0, "changed": 1, "problems": {}, "ok": False}
    by_kind = {(d["table"], d["kind"], d["key"]) for d in report["differences"]}
    assert by_kind == {("emails", "changed", changed), ("emails", "missing", gone),
                       ("accounts", "changed", accounts[0])}
    changed_columns = [d["columns"] for d in report["differences"] if d["key"] == changed][0]
    assert [c["column"] for c in changed_columns] == ["is_read"]
    # the row changed outside the set is not looked at
    assert validate_keys(conn.info.dsn, emails_db, auth_db, {"emails": [outside]})["tables"]["emails"]["changed"] == 1
    assert validate_keys(conn.info.dsn, emails_db, auth_db, {"emails": emails[10:20]})["ok"]


def test_a_rejected_key_found_in_postgresql_is_a_problem(db):
    conn, emails_db, auth_db = db
    key = keys_of(conn, "SELECT source_key FROM migration.rejects WHERE source_table = 'emails' "
                        "AND sqlstate = '54000'")[0]
    conn.execute("INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at) "
                 "VALUES (%s, 'sneaked-in@x', 'a@x', 'b@x', now())", (int(key),))
    report = validate_keys(conn.info.dsn, emails_db, auth_db, {"emails": [key]})
    assert not report["ok"]
    assert [d["kind"] for d in report["differences"]] == ["rejected_but_in_postgresql"]


def test_keys_of_other_storage_classes_are_found_on_both_sides(db):
    """What the cut-over passes for rows the sync applied: source key names. A BLOB session
    id, an empty BLOB and a TEXT id that is not UTF-8 are named `blob:...` / `hex:...`;
    they are looked up as the values they name in SQLite and as the keys the rules gave
    them in PostgreSQL (before, each was a `repair_without_source_row` and aborted the
    cut-over)."""
    conn, emails_db, auth_db = db
    names = [*ODD_SESSION_KEYS, "hex:c3"]
    repaired = {r[0] for r in conn.execute("SELECT source_key FROM migration.repairs WHERE source_table = 'sessions'")}
    assert set(names) <= repaired  # loaded under a repaired key: the name is not the PostgreSQL key
    report = validate_keys(conn.info.dsn, emails_db, auth_db, {"sessions": names})
    assert report["ok"], report["differences"][:5]
    assert report["tables"]["sessions"]["keys"] == 3

    conn.execute("UPDATE mail.sessions SET user_agent = 'changed' WHERE id = "
                 "(SELECT migration.key_target('sessions', 'blob:deadbeef'))")
    report = validate_keys(conn.info.dsn, emails_db, auth_db, {"sessions": names})
    assert not report["ok"] and report["tables"]["sessions"]["changed"] == 1
    assert [c["column"] for c in report["differences"][0]["columns"]] == ["user_agent"]
