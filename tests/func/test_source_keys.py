"""Keys are values too: `sessions.id` is a TEXT PRIMARY KEY, which SQLite lets be NULL (in
several rows), a BLOB, or text that is not UTF-8; a blob and a text of the same bytes are two
rows. Each such row ends loaded, repaired or rejected under a name of its own (contracts:
source keys), the accounting stays exact, validate agrees, and a re-run changes nothing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from mailmig.load import run_load
from mailmig.validate import run_validate

LEGACY = Path(__file__).resolve().parents[2] / "config" / "legacy"

# (what the row's id holds, how it is bound, its source-key name, expected outcome, id in mail.sessions)
SESSIONS = [
    ("a text id", "plain-session", "plain-session", "loaded", "plain-session"),
    ("NULL", None, "null:{rowid}", "rejected:23502", None),
    ("NULL again", None, "null:{rowid}", "rejected:23502", None),
    ("text of a twin", "twin", "twin", "loaded", "twin"),
    ("a BLOB of the twin's bytes", b"twin", "blob:7477696e", "rejected:23505", None),
    ("a BLOB, not UTF-8", b"blob-\xff", "blob:626c6f622dff", "repaired:blob_as_text", "blob-\ufffd"),
    ("text that is not UTF-8", ("text", b"inv-\xfe"), "hex:696e762dfe", "repaired:text_bytes_replaced", "inv-\ufffd"),
    ("an empty BLOB", b"", "blob:", "repaired:blob_as_text", ""),
    ("text shaped like a key name", "blob:6869", "text:blob:6869", "loaded", "blob:6869"),
    ("a BLOB and ...", b"a\xff", "blob:61ff", "rejected:23505", None),
    ("... an invalid text reaching the same id, no text of it", ("text", b"a\xfe"), "hex:61fe", "rejected:23505", None),
]


@pytest.fixture
def files(tmp_path):
    emails, auth = tmp_path / "emails.db", tmp_path / "auth.db"
    with sqlite3.connect(emails) as conn:
        conn.executescript((LEGACY / "emails.sql").read_text())
        conn.execute("INSERT INTO emails (id, message_id, from_address, to_address, created_at) "
                     "VALUES (1, '<one@x>', 'f@x', 't@x', '2026-10-01 12:00:00')")
    names = []
    with sqlite3.connect(auth) as conn:
        conn.executescript((LEGACY / "auth.sql").read_text())
        conn.execute("INSERT INTO accounts (id, email) VALUES (7, 'owner@tempmail.test')")
        for _, value, name, _, _ in SESSIONS:
            if isinstance(value, tuple):  # the exact bytes, stored as TEXT
                rowid = conn.execute("INSERT INTO sessions (id, account_id) VALUES (CAST(? AS TEXT), 7)",
                                     (value[1],)).lastrowid
            else:
                rowid = conn.execute("INSERT INTO sessions (id, account_id) VALUES (?, 7)", (value,)).lastrowid
            names.append(name.format(rowid=rowid))
        kinds = [r[0] for r in conn.execute("SELECT typeof(id) FROM sessions ORDER BY rowid")]
    assert kinds == ["text", "null", "null", "text", "blob", "blob", "text", "blob", "text", "blob", "text"]
    return emails, auth, names


def outcomes(conn, names):
    ended = []
    for (_, _, _, _, target), name in zip(SESSIONS, names):
        reject = conn.execute("SELECT sqlstate FROM migration.rejects WHERE source_table = 'sessions' "
                              "AND source_key = %s", (name,)).fetchone()
        repair = conn.execute("SELECT rule FROM migration.repairs WHERE source_table = 'sessions' "
                              "AND source_key = %s AND column_name = 'id'", (name,)).fetchone()
        loaded = target is not None and conn.execute("SELECT count(*) FROM mail.sessions WHERE id = %s",
                                                     (target,)).fetchone()[0] == 1
        if reject and not repair:
            ended.append(f"rejected:{reject[0]}")
        elif loaded and not reject:
            ended.append(f"repaired:{repair[0]}" if repair else "loaded")
        else:
            ended.append(f"loaded={loaded} reject={reject} repair={repair}")
    return ended


@pytest.mark.parametrize("loader", ["pgloader", "copy"])
def test_keys_of_any_storage_class_load_account_and_validate(dsn, files, tmp_path, loader):
    emails, auth, names = files
    result = run_load(dsn, emails, auth, tmp_path / "runs", loader=loader, progress=None)
    assert result.ok, result.report.get("error") or result.report["tables"]
    sessions = result.report["tables"]["sessions"]
    assert (sessions["source"], sessions["loaded"], sessions["rejected"]) == (11, 6, 5)
    assert sessions["unaccounted"] == sessions["loaded_and_rejected"] == 0
    with psycopg.connect(dsn) as conn:
        assert outcomes(conn, names) == [expected for _, _, _, expected, _ in SESSIONS]
        assert conn.execute("SELECT count(*) FROM mail.sessions").fetchone()[0] == 6
        before = conn.execute("SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) FROM "
                              "(SELECT * FROM mail.sessions UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, "
                              "source_key FROM migration.rejects) r").fetchone()[0]
    assert run_validate(dsn, tmp_path / "runs").ok
    again = run_load(dsn, emails, auth, tmp_path / "runs", loader=loader, progress=None)  # a re-run
    assert again.ok and again.report["tables"] == result.report["tables"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) FROM "
                            "(SELECT * FROM mail.sessions UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, "
                            "source_key FROM migration.rejects) r").fetchone()[0] == before
    assert run_validate(dsn, tmp_path / "runs").ok
