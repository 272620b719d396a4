"""`mailmig validate` against a real load: a clean load validates; each single change
made in PostgreSQL afterwards fails it and is named by row and column."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from mailmig import cli, demo_data, load
from mailmig.validate import jsonb_text, run_validate

LOADED_DB = "mailmig_validate_loaded"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate-data")
    demo_data.generate(out, emails=400, accounts=300, seed=42)
    return out


@pytest.fixture(scope="module")
def loaded(pg, template_db, dataset, tmp_path_factory):
    """A database loaded once from the dataset (copy loader), used as a template."""
    runs_dir = tmp_path_factory.mktemp("validate-runs")
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=LOADED_DB,
                              template_dbname=template_db)
    janitor.drop()
    janitor.init()
    result = load.run_load(pg.conninfo(LOADED_DB), dataset / "emails.db", dataset / "auth.db", runs_dir,
                           loader="copy", progress=None)
    assert result.ok, result.report
    yield runs_dir
    janitor.drop()


@pytest.fixture
def loaded_dsn(pg, loaded, tmp_path):
    """A fresh clone of the loaded database, and a runs dir holding the load's snapshot."""
    dbname = f"validate_{tmp_path.name[-40:].lower().replace('-', '_')}"
    janitor = DatabaseJanitor(user=pg.user, host=pg.host, port=pg.port, dbname=dbname,
                              template_dbname=LOADED_DB)
    janitor.drop()
    janitor.init()
    runs_dir = tmp_path / "runs"
    shutil.copytree(loaded, runs_dir, symlinks=True)
    yield pg.conninfo(dbname), runs_dir
    janitor.drop()


def differences(result, kind=None, table=None):
    return [d for d in result.report["differences"]
            if (kind is None or d["kind"] == kind) and (table is None or d["table"] == table)]


def test_a_clean_load_validates(loaded_dsn, dataset):
    dsn, runs_dir = loaded_dsn
    result = run_validate(dsn, runs_dir)
    assert result.ok, json.dumps(result.report["differences"][:20], indent=1)
    report = json.loads((result.run.dir / "validate.json").read_text())
    assert report["ok"] is True
    assert report["source"]["load_run"] == load_run_id(runs_dir)
    catalogue = json.loads((dataset / "catalogue.json").read_text())
    for table in ("emails", "accounts", "sessions"):
        t = report["tables"][table]
        assert t["source"] == t["pg"] + t["rejected"]
        assert t["missing"] == t["extra"] == t["changed"] == 0 and not t["problems"]
        expected_rejects = sum(1 for e in catalogue if e["table"] == table and e["expected"].startswith("rejected"))
        assert t["rejected"] == expected_rejects
        assert t["repaired_rows"] >= 1
    assert all(m["ok"] for m in report["tables"]["emails"]["months"])
    assert len(report["tables"]["emails"]["months"]) >= 3


def load_run_id(runs_dir):
    return (runs_dir / "latest-load").resolve().name


# Each injection: SQL run in PostgreSQL after the load (returning the key it touched),
# and what validate must report: (table, kind, column or None).
INJECTIONS = {
    "deleted_row": (
        "DELETE FROM mail.emails WHERE id = (SELECT min(id) FROM mail.emails) RETURNING id::text",
        ("emails", "missing", None)),
    "extra_row": (
        "INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at)"
        " SELECT 77777, 'extra@example.test', 'a@example.test', 'b@example.test', max(created_at)"
        " FROM mail.emails RETURNING id::text",
        ("emails", "extra", None)),
    "body_one_char": (
        "UPDATE mail.emails SET body = overlay(body PLACING"
        " CASE WHEN substr(body, 5, 1) = 'X' THEN 'Y' ELSE 'X' END FROM 5 FOR 1)"
        " WHERE id = (SELECT min(id) FROM mail.emails WHERE length(body) > 10) RETURNING id::text",
        ("emails", "changed", "body")),
    "raw_email_one_byte": (
        "UPDATE mail.emails SET raw_email = overlay(raw_email PLACING"
        " CASE WHEN substr(raw_email, 40, 1) = 'q' THEN 'Q' ELSE 'q' END FROM 40 FOR 1)"
        " WHERE id = (SELECT max(id) FROM mail.emails WHERE length(raw_email) > 100 AND id < 1000)"
        " RETURNING id::text",
        ("emails", "changed", "raw_email")),
    "flag_flipped": (
        "UPDATE mail.emails SET starred = NOT starred"
        " WHERE id = (SELECT min(id) + 3 FROM mail.emails) RETURNING id::text",
        ("emails", "changed", "starred")),
    "timestamp_one_second": (
        "UPDATE mail.emails SET created_at = created_at + interval '1 second'"
        " WHERE id = (SELECT min(id) FROM mail.emails WHERE date_trunc('month', (created_at + interval"
        " '1 second') AT TIME ZONE 'UTC') = date_trunc('month', created_at AT TIME ZONE 'UTC'))"
        " RETURNING id::text",
        ("emails", "changed", "created_at")),
    "json_value_changed": (
        "UPDATE mail.emails SET headers = headers || jsonb_build_object("
        "(SELECT k FROM jsonb_object_keys(headers) AS k ORDER BY k LIMIT 1), 'changed by a test')"
        " WHERE id = (SELECT min(id) FROM mail.emails WHERE jsonb_typeof(headers) = 'object')"
        " RETURNING id::text",
        ("emails", "changed", "headers")),
    "null_to_empty": (
        "UPDATE mail.emails SET html = '' WHERE id = (SELECT min(id) FROM mail.emails WHERE html IS NULL)"
        " RETURNING id::text",
        ("emails", "changed", "html")),
    "moved_to_another_month": (
        "UPDATE mail.emails SET created_at = created_at - interval '1 month'"
        " WHERE id = (SELECT max(id) FROM mail.emails WHERE id < 1000) RETURNING id::text",
        ("emails", "changed", "created_at")),
    "account_email_case": (
        "UPDATE mail.accounts SET email = upper(email)"
        " WHERE id = (SELECT min(id) FROM mail.accounts WHERE email <> upper(email)) RETURNING id::text",
        ("accounts", "changed", "email")),
    "session_user_agent": (
        "UPDATE mail.sessions SET user_agent = user_agent || ' '"
        " WHERE id = (SELECT min(id) FROM mail.sessions WHERE user_agent IS NOT NULL) RETURNING id",
        ("sessions", "changed", "user_agent")),
    "session_deleted": (
        "DELETE FROM mail.sessions WHERE id = (SELECT max(id) FROM mail.sessions) RETURNING id",
        ("sessions", "missing", None)),
    "repaired_value_changed": (
        "UPDATE mail.emails SET subject = subject || '!' WHERE id = (SELECT source_key::bigint"
        " FROM migration.repairs WHERE source_table = 'emails' AND column_name = 'subject' LIMIT 1)"
        " RETURNING id::text",
        ("emails", "changed", "subject")),
    "repair_original_tampered": (
        "UPDATE migration.repairs SET original = '{\"t\": \"text\", \"v\": \"tampered\"}'"
        " WHERE (source_table, source_key, column_name) = (SELECT source_table, source_key, column_name"
        " FROM migration.repairs WHERE source_table = 'accounts' ORDER BY 2, 3 LIMIT 1)"
        " RETURNING source_key",
        ("accounts", "repair_original_differs", None)),
    "reject_original_tampered": (
        "UPDATE migration.rejects SET original = jsonb_set(original, '{message_id}',"
        " '{\"t\": \"text\", \"v\": \"tampered\"}')"
        " WHERE source_key = (SELECT min(source_key) FROM migration.rejects WHERE source_table = 'emails')"
        " AND source_table = 'emails' RETURNING source_key",
        ("emails", "reject_original_differs", "message_id")),
}


@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_a_change_in_postgresql_fails_validate_and_is_named(loaded_dsn, name):
    dsn, runs_dir = loaded_dsn
    statement, (table, kind, column) = INJECTIONS[name]
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(statement).fetchall()
    assert len(rows) == 1, f"the injection {name} touched {len(rows)} rows"
    key = rows[0][0]
    result = run_validate(dsn, runs_dir)
    assert not result.ok
    found = [d for d in differences(result, kind, table) if d["key"] == key]
    assert found, json.dumps(result.report["differences"][:10], indent=1)
    if column:
        named = [c["column"] for d in found for c in d.get("columns", [])] + [d.get("column") for d in found]
        assert column in named
    if kind == "changed":
        # only that column of only that row
        assert [d for d in result.report["differences"] if d["kind"] != "changed" or d["key"] != key] == [] or \
            name == "moved_to_another_month"
        assert [c["column"] for c in found[0]["columns"]] == [column]
    report = json.loads((result.run.dir / "validate.json").read_text())
    assert report["ok"] is False and report["tables"][table]["ok"] is False
    if name == "moved_to_another_month":
        assert not report["tables"]["emails"]["months_ok"]
        changed = [m for m in report["tables"]["emails"]["months"] if not m["ok"]]
        assert len(changed) == 2 and sum(m["pg"] - m["source"] for m in changed) == 0


def test_a_rejected_row_present_in_postgresql_is_named(loaded_dsn):
    dsn, runs_dir = loaded_dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        key = conn.execute(
            "SELECT source_key FROM migration.rejects WHERE source_table = 'sessions' AND sqlstate = '23503' "
            "LIMIT 1").fetchone()[0]  # a key of its own class: the id it would have in mail.sessions
        conn.execute("INSERT INTO mail.sessions (id, account_id) SELECT %s, min(id) FROM mail.accounts", (key,))
    result = run_validate(dsn, runs_dir)
    assert not result.ok
    assert [d["key"] for d in differences(result, "rejected_but_in_postgresql", "sessions")] == [key]


def test_the_command_exits_0_when_equal_and_1_on_a_difference(loaded_dsn, monkeypatch, capsys):
    dsn, runs_dir = loaded_dsn
    monkeypatch.setenv("POSTGRES_DSN", dsn)
    monkeypatch.setenv("MAILMIG_RUNS_DIR", str(runs_dir))
    assert cli.main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "emails" in out and "OK" in out
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE mail.accounts SET is_active = NOT is_active WHERE id = (SELECT min(id) FROM mail.accounts)")
    assert cli.main(["validate", "--max-diffs", "5"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "is_active" in out


def test_live_source_reads_the_given_files(loaded_dsn, dataset):
    dsn, runs_dir = loaded_dsn
    result = run_validate(dsn, runs_dir, source="live", emails_db=dataset / "emails.db",
                          auth_db=dataset / "auth.db")
    assert result.ok
    assert result.report["source"]["kind"] == "live"


# Tricky JSON texts: the Python renderer must print exactly what text::jsonb::text prints,
# and refuse exactly what jsonb refuses.
JSON_CASES = [
    '{"b": 1, "a": 2}', '{"a": 1, "a": 2}', '{"aa": 1, "b": 2, "c": {"z": [], "y": {}}}',
    '{"é": 1, "e": 2, "ee": 3}', '{"😀": 1, "\\u00e9": 2}', '[1, 1.0, 1.50, -0, -0.0, 0e5, 1e2, 1E-2, 12e-1]',
    '[1.0e1, 123456789012345678901234567890, 0.000000000000000000001, -1.5e+3]',
    '"\\u0041\\n\\t\\b\\f\\r\\"\\\\\\/"', '"\\u001f\\u007f\\u0080"', '"\\ud83d\\ude00"',
    '"\\u0000"', '"\\ud800"', '"\\udc00x"', ' {"a" : [ true , false , null ] } ', 'NaN', 'Infinity',
    '[1e400]', '[1e-400]', '[1e1000]', '{"a": 1,}', "{'a': 1}", '01', '1.', '.5', '"tab\there"',
    '', '   ', 'null', 'true', '"x"', '{"a": "\u2028"}', '[[[[[]]]]]', '{"": 0, " ": 1}',
]


def test_jsonb_renderer_matches_postgresql(conn):
    for text in JSON_CASES:
        expected = jsonb_text(text)
        try:
            with conn.transaction():
                actual = conn.execute("SELECT %s::jsonb::text", (text,)).fetchone()[0]
        except psycopg.Error:
            actual = None
        assert expected == actual, f"{text!r}: python {expected!r}, postgresql {actual!r}"


def test_the_rules_agree_with_the_catalogue_of_hostile_rows(dataset):
    """validate's own reading of each catalogued hostile value gives the outcome the
    generator expects (the cross-check is independent of the merge)."""
    from mailmig.sqlite_source import connect_readonly
    from mailmig.validate import CANONICALIZERS, TABLES, Reject, Repair

    kinds = {spec.name: dict(spec.columns) for spec in TABLES}
    files = {"emails": "emails.db", "accounts": "auth.db", "sessions": "auth.db"}
    checked = 0
    for entry in json.loads((dataset / "catalogue.json").read_text()):
        table, column, expected = entry["table"], entry["column"], entry["expected"]
        with connect_readonly(dataset / files[table]) as src:
            # by rowid: a session key may be NULL or a BLOB
            value = src.execute(f'SELECT "{column}" FROM "{table}" WHERE rowid = ?', (entry["rowid"],)).fetchone()[0]
        out = CANONICALIZERS[kinds[table][column]](value)
        if expected.startswith("repaired:"):
            assert isinstance(out, Repair) and expected.split(":")[1] in out.options, entry
        elif expected == "rejected:23502" and not isinstance(out, Reject):
            # the rules give NULL where mail.* says NOT NULL (a NULL session id, an account_id
            # repaired to NULL): the database's constraint rejects the row
            assert out is None or (isinstance(out, Repair) and None in out.options.values()), entry
        elif expected in ("rejected:22007", "rejected:23502"):
            assert isinstance(out, Reject) and out.sqlstate == expected.split(":")[1], entry
        elif expected == "loaded":
            assert isinstance(out, bytes) or out is None, entry
        else:
            continue  # rejected for what the database says (unique, foreign key, index size)
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("table", ["emails", "accounts", "sessions"])
def test_the_rows_of_keys_are_the_rows_of_their_buckets(loaded_dsn, table):
    """migration.validate_rows by keys (validate_keys) and by buckets (the drill-down) give
    the same canonical rows: one generated select list, two WHERE clauses."""
    dsn, _ = loaded_dsn
    with psycopg.connect(dsn) as conn:
        every = conn.execute("SELECT bucket, vals FROM migration.validate_rows(%s)", (table,)).fetchall()
        some = sorted(every, key=lambda r: r[1][0])[::5]
        by_key = conn.execute("SELECT bucket, vals FROM migration.validate_rows(%s, p_keys => %s)",
                              (table, [vals[0] for _, vals in some])).fetchall()
        buckets = sorted({bucket for bucket, _ in some})
        in_buckets = conn.execute("SELECT bucket, vals FROM migration.validate_rows(%s, %s::bigint[])",
                                  (table, buckets)).fetchall()
    assert len(some) >= 20
    assert sorted(by_key) == sorted(some)
    assert sorted(in_buckets) == sorted(r for r in every if r[0] in set(buckets))
