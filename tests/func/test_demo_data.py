"""`mailmig demo-data` on real SQLite files: the legacy shape, the normal data, the
catalogue of hostile rows, determinism, the command line."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from mailmig import cli
from mailmig.demo_data import generate

REPO = Path(__file__).resolve().parents[2]
# The legacy DDL the tool must accept: config/legacy/*.sql, a verbatim copy of
# ../shared/legacy, the one copy the generator reads too.
LEGACY = REPO / "config" / "legacy"
END = date(2026, 5, 1)
EMAILS, ACCOUNTS = 300, 200


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = generate(out, EMAILS, ACCOUNTS, seed=42, end=END)
    summary["files_right_after"] = sorted(p.name for p in out.iterdir())
    return out, summary


@contextlib.contextmanager
def connect(path: Path, readonly: bool = True):
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro" if readonly else path.as_uri(), uri=True)
    conn.text_factory = bytes  # invalid UTF-8 must not raise
    try:
        yield conn
    finally:
        conn.close()


def schema(conn: sqlite3.Connection) -> set[tuple]:
    return set(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())


def catalogue(out: Path) -> list[dict]:
    return json.loads((out / "catalogue.json").read_text())


def db_digest(path: Path) -> str:
    """sha256 over every row of every table: storage class and exact bytes of each value."""
    digest = hashlib.sha256()
    with connect(path) as conn:
        tables = [r[0].decode() for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            columns = [r[1].decode() for r in conn.execute(f'PRAGMA table_info("{table}")')]
            select = ", ".join(f'typeof("{c}"), hex(CAST("{c}" AS BLOB))' for c in columns)
            order = ", ".join(str(i + 1) for i in range(2 * len(columns)))
            digest.update(table.encode())
            for row in conn.execute(f'SELECT {select} FROM "{table}" ORDER BY {order}'):
                digest.update(repr(row).encode())
    return digest.hexdigest()


# --- shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["emails", "auth"])
def test_shape_is_exactly_the_legacy_ddl(dataset, tmp_path, name):
    reference = sqlite3.connect(tmp_path / f"{name}.db")
    reference.text_factory = bytes
    reference.executescript((LEGACY / f"{name}.sql").read_text())
    expected = schema(reference)
    reference.close()
    out, _ = dataset
    with connect(out / f"{name}.db") as conn:
        got = schema(conn)
    extra = {row for row in got - expected}
    assert expected <= got
    if name == "emails":
        # one table the mapping does not name (and its primary-key index), nothing else
        assert {(r[0], r[1]) for r in extra} == {(b"table", b"app_settings"), (b"index", b"sqlite_autoindex_app_settings_1")}
    else:
        assert extra == set()


def test_fts5_table_present_and_its_index_matches_the_rows(dataset):
    out, summary = dataset
    assert summary["fts_populated"] is True
    with connect(out / "emails.db", readonly=False) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'emails_fts'").fetchone()[0]
        assert b"fts5" in sql and b"content='emails'" in sql
        # raises SQLITE_CORRUPT_VTAB if the index does not match the content table
        conn.execute("INSERT INTO emails_fts(emails_fts) VALUES('integrity-check')")
        subject = conn.execute("SELECT subject FROM emails WHERE id = (SELECT min(id) FROM emails)").fetchone()[0]
        word = re.findall(rb"[A-Za-z]{4,}", subject)[0].decode()
        hits = conn.execute("SELECT rowid FROM emails_fts WHERE emails_fts MATCH ?", (word,)).fetchall()
        assert (conn.execute("SELECT min(id) FROM emails").fetchone()[0],) in hits


def test_files_are_in_wal_mode_with_nothing_to_checkpoint(dataset):
    out, summary = dataset
    assert summary["files_right_after"] == ["auth.db", "catalogue.json", "emails.db"]  # no -wal, no temp
    for name in ("emails.db", "auth.db"):
        with connect(out / name, readonly=False) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == b"wal"
            busy, log_frames, checkpointed = conn.execute("PRAGMA wal_checkpoint").fetchone()
            assert (busy, log_frames) == (0, 0)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == b"ok"


# --- normal data ---------------------------------------------------------------------------


def test_normal_emails_look_like_the_running_system(dataset):
    out, summary = dataset
    base = summary["email_ids"]["hostile_from"]
    with connect(out / "emails.db") as conn, connect(out / "auth.db") as auth:
        accounts = {r[0] for r in auth.execute("SELECT email FROM accounts")}
        rows = conn.execute(
            "SELECT id, to_address, created_at, typeof(created_at), html IS NULL, headers, size, "
            "length(CAST(raw_email AS BLOB)), instr(raw_email, body) > 0, length(CAST(body AS BLOB)), "
            "starred, is_read, spam_score, subject FROM emails WHERE id < ? ORDER BY id", (base,)).fetchall()
    assert len(rows) == EMAILS
    ids = [r[0] for r in rows]
    assert ids[-1] > len(ids)  # gaps
    matched = sum(r[1] in accounts for r in rows)
    assert 0.85 * EMAILS < matched < EMAILS  # mostly an inbox; some mail for no inbox
    plain = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
    older = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?(Z|\+02:00)$")
    assert all(r[3] == b"text" and (plain.match(r[2]) or older.match(r[2])) for r in rows)
    assert sum(bool(plain.match(r[2])) for r in rows) >= 0.95 * EMAILS
    days = sorted(r[2][:10].decode() for r in rows if plain.match(r[2]))
    assert days[0] >= (END - timedelta(days=89)).isoformat() and days[-1] <= END.isoformat()
    assert 0.3 < sum(r[4] for r in rows) / EMAILS < 0.7
    assert all(isinstance(json.loads(r[5]), dict) for r in rows)
    assert all(r[6] == r[7] and r[8] for r in rows)  # size = bytes of raw_email, which holds the body
    assert all(1000 <= r[9] for r in rows)
    assert {r[10] for r in rows} == {0, 1} and {r[11] for r in rows} == {0, 1}
    assert all(isinstance(r[12], float) and 0 <= r[12] <= 10 for r in rows)
    assert any(not r[13].isascii() for r in rows)
    average = sum(r[7] + r[9] for r in rows) / EMAILS
    assert 4000 < average < 9000


def test_accounts_and_sessions(dataset):
    out, summary = dataset
    with connect(out / "auth.db") as conn:
        accounts = conn.execute("SELECT id, email, password_hash, token, created_at, expires_at, is_active "
                                "FROM accounts WHERE id < 9000000").fetchall()
        hostile = [e["rowid"] for e in catalogue(out) if e["table"] == "sessions"]
        sessions = conn.execute("SELECT id, account_id, ip, user_agent FROM sessions "
                                f"WHERE rowid NOT IN ({','.join('?' * len(hostile))})", hostile).fetchall()
    assert len(accounts) == ACCOUNTS
    address = re.compile(rb"^[a-z]+\.[a-z]+\d{4}@tempmail\.test$")
    assert all(address.match(a[1]) for a in accounts)
    hashes = [a[2] for a in accounts if a[2] is not None]
    assert hashes and len(hashes) < ACCOUNTS  # token-only inboxes have none
    assert all(h.startswith(b"$2b$12$") and len(h) == 60 for h in hashes)
    tokens = [a[3] for a in accounts if a[3] is not None]
    assert len(set(tokens)) == len(tokens) and all(re.fullmatch(rb"[0-9a-f]{64}", t) for t in tokens)
    for a in accounts:
        if a[5] is not None:
            created = datetime.fromisoformat(a[4].decode())
            assert datetime.fromisoformat(a[5].decode()) - created == timedelta(days=30)
    assert any(a[5] is None for a in accounts) and {a[6] for a in accounts} == {0, 1}
    assert len(sessions) == ACCOUNTS // 3
    ids = {a[0] for a in accounts}
    assert all(s[1] in ids and s[2] and s[3] for s in sessions)


# --- the hostile catalogue -----------------------------------------------------------------

# kind -> expected outcome, as the task and docs/contracts.md's conversion rules give it
REQUIRED = {
    ("emails", "body_invalid_utf8"): "repaired:text_bytes_replaced",
    ("emails", "subject_invalid_utf8"): "repaired:text_bytes_replaced",
    ("emails", "body_nul"): "repaired:text_bytes_replaced",
    ("emails", "raw_email_nul"): "repaired:text_bytes_replaced",
    ("emails", "body_blob"): "repaired:blob_as_text",
    ("emails", "size_text"): "repaired:number_unreadable_null",
    ("emails", "spam_score_text"): "repaired:number_unreadable_null",
    ("emails", "spam_score_numeric_text"): "loaded",
    ("emails", "starred_text_true"): "loaded",
    ("emails", "is_read_two"): "repaired:flag_nonzero_true",
    ("emails", "created_at_plain"): "loaded",
    ("emails", "created_at_iso_t_z"): "loaded",
    ("emails", "created_at_iso_millis_z"): "loaded",
    ("emails", "created_at_offset_colon"): "loaded",
    ("emails", "created_at_epoch_seconds"): "loaded",
    ("emails", "created_at_epoch_millis"): "loaded",
    ("emails", "created_at_epoch_seconds_text"): "loaded",
    ("emails", "created_at_date_only"): "loaded",
    ("emails", "created_at_null"): "rejected:23502",
    ("emails", "created_at_word"): "rejected:22007",
    ("emails", "created_at_zero"): "rejected:22007",
    ("emails", "created_at_far_past"): "loaded",
    ("emails", "created_at_far_future"): "loaded",
    ("emails", "headers_invalid_json"): "repaired:json_invalid_null",
    ("emails", "headers_duplicate_keys"): "loaded",
    ("emails", "body_3mb"): "loaded",
    ("emails", "id_beyond_int32"): "loaded",
    ("emails", "message_id_case_upper"): "loaded",
    ("emails", "message_id_case_lower"): "loaded",
    ("emails", "to_address_10kb"): "rejected:54000",
    ("emails", "spam_score_infinity"): "loaded",
    ("emails", "subject_emoji_4byte"): "loaded",
    ("accounts", "email_nonascii_case_upper"): "loaded",
    ("accounts", "email_nonascii_case_lower"): "loaded",
    ("accounts", "created_at_garbage"): "repaired:timestamp_unreadable_null",
    ("accounts", "is_active_text_yes"): "loaded",
    ("accounts", "is_active_two"): "repaired:flag_nonzero_true",
    ("accounts", "id_beyond_int32"): "loaded",
    ("sessions", "account_gone"): "rejected:23503",
    ("sessions", "expires_at_epoch"): "loaded",
    ("sessions", "user_agent_invalid_utf8"): "repaired:text_bytes_replaced",
}

# kind -> the storage class its column must hold in the file
TYPEOF = {
    ("emails", "body_invalid_utf8"): "text", ("emails", "subject_invalid_utf8"): "text",
    ("emails", "body_nul"): "text", ("emails", "raw_email_nul"): "text", ("emails", "body_blob"): "blob",
    ("emails", "size_text"): "text", ("emails", "size_real"): "real", ("emails", "spam_score_text"): "text",
    ("emails", "spam_score_numeric_text"): "real", ("emails", "starred_text_true"): "text",
    ("emails", "is_read_two"): "integer", ("emails", "created_at_epoch_seconds"): "integer",
    ("emails", "created_at_epoch_millis"): "integer", ("emails", "created_at_epoch_seconds_text"): "integer",
    ("emails", "created_at_epoch_real"): "real", ("emails", "created_at_date_only"): "text",
    ("emails", "created_at_null"): "null", ("emails", "spam_score_infinity"): "real",
    ("accounts", "created_at_garbage"): "text", ("accounts", "is_active_text_yes"): "text",
    ("accounts", "is_active_two"): "integer", ("sessions", "expires_at_epoch"): "integer",
    ("sessions", "user_agent_invalid_utf8"): "text",
}


def test_catalogue_has_every_required_kind_with_its_expected_outcome(dataset):
    out, summary = dataset
    entries = catalogue(out)
    assert summary["catalogue"] == str(out / "catalogue.json") and summary["catalogue_entries"] == len(entries)
    by_kind = {(e["table"], e["kind"]): e for e in entries}
    assert len(by_kind) == len(entries)  # kinds are unique per table
    for key, expected in REQUIRED.items():
        assert key in by_kind, key
        assert by_kind[key]["expected"] == expected, key
    outcome = re.compile(r"^(loaded|repaired:[a-z_]+|rejected:[0-9A-Z]{5})$")
    for e in entries:
        assert set(e) >= {"kind", "table", "key", "column", "description", "expected"}
        assert outcome.match(e["expected"]) and e["description"], e
    rows = summary["rows"]
    assert rows["emails"]["hostile"] == sum(e["table"] == "emails" for e in entries)
    assert rows["emails"]["rows"] == EMAILS + rows["emails"]["hostile"]


def test_catalogued_rows_exist_with_the_described_storage_class(dataset):
    out, summary = dataset
    entries = catalogue(out)
    with connect(out / "emails.db") as emails, connect(out / "auth.db") as auth:
        for e in entries:
            conn = emails if e["table"] == "emails" else auth
            row = conn.execute(f'SELECT typeof("{e["column"]}") FROM "{e["table"]}" WHERE rowid = ?',
                               (e["rowid"],)).fetchone()
            assert row is not None, e
            assert row[0].decode() == e["typeof"], e
            if (e["table"], e["kind"]) in TYPEOF:
                assert e["typeof"] == TYPEOF[(e["table"], e["kind"])], e

        def email(kind, expr):
            key = next(int(e["key"]) for e in entries if e["table"] == "emails" and e["kind"] == kind)
            return emails.execute(f"SELECT {expr} FROM emails WHERE id = ?", (key,)).fetchone()[0]

        with pytest.raises(UnicodeDecodeError):
            email("body_invalid_utf8", "CAST(body AS BLOB)").decode("utf-8")
        with pytest.raises(UnicodeDecodeError):
            email("subject_invalid_utf8", "CAST(subject AS BLOB)").decode("utf-8")
        assert email("body_nul", "instr(CAST(body AS BLOB), x'00')") > 0
        assert email("raw_email_nul", "instr(CAST(raw_email AS BLOB), x'00')") > 0
        assert email("size_text", "size") == b"big"
        assert email("spam_score_text", "spam_score") == b"high"
        assert email("spam_score_numeric_text", "spam_score") == 0.75
        assert email("starred_text_true", "starred") == b"true"
        assert email("is_read_two", "is_read") == 2
        assert email("created_at_epoch_millis", "created_at") > 1e11
        assert email("created_at_word", "created_at") == b"yesterday"
        assert email("created_at_zero", "created_at") == b"0000-00-00 00:00:00"
        assert math.isinf(email("spam_score_infinity", "spam_score"))
        assert email("body_3mb", "length(body)") >= 3_000_000
        assert email("to_address_10kb", "length(to_address)") >= 10_240
        assert len(email("subject_emoji_4byte", "CAST(subject AS BLOB)").decode()) < len(
            email("subject_emoji_4byte", "CAST(subject AS BLOB)"))
        json.loads(email("headers_duplicate_keys", "headers"))
        with pytest.raises(json.JSONDecodeError):
            json.loads(email("headers_invalid_json", "headers"))
        upper, lower = email("message_id_case_upper", "message_id"), email("message_id_case_lower", "message_id")
        assert upper != lower and upper.lower() == lower
        assert emails.execute("SELECT count(*) FROM emails WHERE id = 3000000000").fetchone()[0] == 1
        # hostile emails are clearly apart from the normal ones
        normal_max = summary["email_ids"]["normal"][1]
        assert all(int(e["key"]) > normal_max for e in entries if e["table"] == "emails")

        a = {e["kind"]: int(e["key"]) for e in entries if e["table"] == "accounts"}
        upper = auth.execute("SELECT email FROM accounts WHERE id = ?", (a["email_nonascii_case_upper"],)).fetchone()[0]
        lower = auth.execute("SELECT email FROM accounts WHERE id = ?", (a["email_nonascii_case_lower"],)).fetchone()[0]
        assert upper.decode().lower() == lower.decode() and upper != lower
        assert auth.execute("SELECT count(*) FROM accounts WHERE id = 3000000000").fetchone()[0] == 1
        orphans = auth.execute("SELECT id FROM sessions WHERE typeof(account_id) = 'integer' "
                               "AND account_id NOT IN (SELECT id FROM accounts)").fetchall()
        assert orphans == [(b"hostile-account-gone",)]
        with pytest.raises(UnicodeDecodeError):
            auth.execute("SELECT CAST(user_agent AS BLOB) FROM sessions WHERE id = 'hostile-user-agent-invalid-utf8'"
                         ).fetchone()[0].decode("utf-8")


# --- determinism and the command -----------------------------------------------------------


def test_same_seed_and_end_give_the_same_rows_another_seed_does_not(dataset, tmp_path):
    out, _ = dataset
    again = generate(tmp_path / "again", EMAILS, ACCOUNTS, seed=42, end=END)
    assert again["rows"] == dataset[1]["rows"]
    for name in ("emails.db", "auth.db"):
        assert db_digest(out / name) == db_digest(tmp_path / "again" / name), name
    assert catalogue(out) == catalogue(tmp_path / "again")
    generate(tmp_path / "other", EMAILS, ACCOUNTS, seed=43, end=END)
    assert db_digest(out / "emails.db") != db_digest(tmp_path / "other" / "emails.db")
    assert db_digest(out / "auth.db") != db_digest(tmp_path / "other" / "auth.db")


def test_cli_writes_and_atomically_replaces_the_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "data"
    argv = ["demo-data", "--emails", "40", "--accounts", "30", "--out", str(out), "--end", "2026-05-01"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "emails.db" in printed and "catalogue" in printed
    first = db_digest(out / "emails.db")
    inode = (out / "emails.db").stat().st_ino
    (out / "emails.db-wal").write_bytes(b"")  # as a reader of the old file leaves them
    (out / "emails.db-shm").write_bytes(b"")
    assert cli.main([*argv[:-1], "2026-04-01"]) == 0
    # no temp file left, and no stale -wal/-shm of the old file next to the new one
    assert sorted(p.name for p in out.iterdir()) == ["auth.db", "catalogue.json", "emails.db"]
    assert (out / "emails.db").stat().st_ino != inode  # a new file renamed into place
    assert db_digest(out / "emails.db") != first
    with connect(out / "emails.db") as conn:
        assert conn.execute("SELECT count(*) FROM emails WHERE id < 9000000").fetchone()[0] == 40
    assert cli.main(["demo-data", "--emails", "1", "--out", str(out), "--end", "May 1"]) == 1
    assert "--end must be YYYY-MM-DD" in capsys.readouterr().err


def test_the_10kb_to_address_cannot_enter_a_btree_index_in_postgresql(dataset, pg):
    """The catalogue's rejected:54000 rests on this: random letters do not compress below 2704 bytes."""
    import psycopg

    out, _ = dataset
    key = next(int(e["key"]) for e in catalogue(out) if e["kind"] == "to_address_10kb")
    with connect(out / "emails.db") as sqlite:
        to_address = sqlite.execute("SELECT to_address FROM emails WHERE id = ?", (key,)).fetchone()[0].decode()
    with psycopg.connect(pg.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE probe (to_address text NOT NULL)")
        conn.execute("CREATE INDEX ON probe (to_address)")
        conn.execute("INSERT INTO probe VALUES (%s)", ("normal.address1234@tempmail.test",))
        with pytest.raises(psycopg.errors.ProgramLimitExceeded) as error:
            conn.execute("INSERT INTO probe VALUES (%s)", (to_address,))
        assert error.value.sqlstate == "54000"
