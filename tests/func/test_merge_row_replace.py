"""migration.merge_row with p_replace (the sync's upsert), on a real PostgreSQL.

A changed source row whose key is already loaded must replace its loaded version and its
bookkeeping: an email whose created_at changed moves to its new month, an account is
updated in place (a delete would cascade to its sessions), a row the rules now reject
leaves mail.* with its reject recorded, and a rejected row that became valid is loaded.
"""

from __future__ import annotations

import pytest
from psycopg.types.json import Jsonb

RUN = "test-replace"


def email_row(key: int, created_at, starred=0, subject="hello", message_id=None) -> dict:
    text = lambda v: {"t": "null"} if v is None else {"t": "text", "v": v}  # noqa: E731
    return {
        "id": {"t": "integer", "v": key}, "message_id": text(message_id or f"<m{key}@x>"),
        "from_address": text("a@x.test"), "to_address": text("b@x.test"), "subject": subject,
        "body": text("body"), "html": text(None), "headers": text('{"a": 1}'), "raw_email": text("raw"),
        "size": {"t": "integer", "v": 3}, "starred": starred if isinstance(starred, dict) else {"t": "integer", "v": starred},
        "is_read": {"t": "integer", "v": 0}, "spam_score": {"t": "real", "v": 0.5},
        "created_at": created_at if isinstance(created_at, dict) else text(created_at),
    }


def account_row(key: int, email: str, last_login=None) -> dict:
    return {"id": {"t": "integer", "v": key}, "email": {"t": "text", "v": email},
            "password_hash": {"t": "null"}, "token": {"t": "text", "v": f"tok{key}"},
            "created_at": {"t": "text", "v": "2026-10-01 00:00:00"}, "expires_at": {"t": "null"},
            "last_login_at": {"t": "null"} if last_login is None else {"t": "text", "v": last_login},
            "is_active": {"t": "integer", "v": 1}}


def session_row(key: str, account: int) -> dict:
    return {"id": {"t": "text", "v": key}, "account_id": {"t": "integer", "v": account},
            "created_at": {"t": "null"}, "expires_at": {"t": "null"}, "ip": {"t": "null"},
            "user_agent": {"t": "text", "v": "ua"}}


def merge(conn, table, key, row, replace=False) -> str:
    return conn.execute("SELECT migration.merge_row(%s, %s, %s, %s, %s)",
                        (RUN, table, str(key), Jsonb(row), replace)).fetchone()[0]


@pytest.fixture
def months(conn):
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2026-09-01', '2026-10-01']::date[])")
    return conn


def test_without_replace_a_loaded_row_is_left_as_it_is(months):
    conn = months
    assert merge(conn, "emails", 1, email_row(1, "2026-10-05 10:00:00")) == "loaded"
    assert merge(conn, "emails", 1, email_row(1, "2026-10-05 10:00:00", starred=1)) == "present"
    assert conn.execute("SELECT starred FROM mail.emails WHERE id = 1").fetchone()[0] is False


def test_a_changed_email_is_replaced_and_moves_month(months):
    conn = months
    merge(conn, "emails", 1, email_row(1, "2026-10-05 10:00:00"))
    assert merge(conn, "emails", 1, email_row(1, "2026-09-20 10:00:00", starred=1), replace=True) == "loaded"
    rows = conn.execute("SELECT tableoid::regclass::text, starred FROM mail.emails WHERE id = 1").fetchall()
    assert rows == [("mail.emails_p202609", True)]
    assert conn.execute("SELECT email_id FROM mail.message_id_guard WHERE message_id = '<m1@x>'").fetchone() == (1,)


def test_an_account_is_updated_in_place_and_keeps_its_sessions(months):
    conn = months
    merge(conn, "accounts", 7, account_row(7, "seven@x.test"))
    merge(conn, "sessions", "s7", session_row("s7", 7))
    assert merge(conn, "accounts", 7, account_row(7, "Seven.New@x.test", "2026-10-09 08:00:00"),
                 replace=True) == "loaded"
    assert conn.execute("SELECT email, last_login_at IS NOT NULL FROM mail.accounts WHERE id = 7").fetchone() \
        == ("Seven.New@x.test", True)
    assert conn.execute("SELECT count(*) FROM mail.sessions WHERE account_id = 7").fetchone()[0] == 1


def test_a_replaced_row_the_rules_now_reject_leaves_mail(months):
    conn = months
    merge(conn, "emails", 2, email_row(2, "2026-10-05 10:00:00"))
    assert merge(conn, "emails", 2, email_row(2, "yesterday"), replace=True) == "rejected"
    assert conn.execute("SELECT count(*) FROM mail.emails WHERE id = 2").fetchone()[0] == 0
    assert conn.execute("SELECT sqlstate FROM migration.rejects WHERE source_key = '2'").fetchone() == ("22007",)
    # and back: valid again, loaded, the reject gone
    assert merge(conn, "emails", 2, email_row(2, "2026-10-06 10:00:00"), replace=True) == "loaded"
    assert conn.execute("SELECT count(*) FROM migration.rejects WHERE source_key = '2'").fetchone()[0] == 0


def test_an_account_rejected_on_replace_is_removed_with_its_sessions(months):
    conn = months
    merge(conn, "accounts", 8, account_row(8, "eight@x.test"))
    merge(conn, "accounts", 9, account_row(9, "nine@x.test"))
    merge(conn, "sessions", "s8", session_row("s8", 8))
    # 8 now takes 9's address (under ASCII case folding): a duplicate, rejected like the load
    assert merge(conn, "accounts", 8, account_row(8, "NINE@x.test"), replace=True) == "rejected"
    assert conn.execute("SELECT count(*) FROM mail.accounts WHERE id = 8").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM mail.sessions WHERE id = 's8'").fetchone()[0] == 0
    assert conn.execute("SELECT sqlstate FROM migration.rejects WHERE source_key = '8'").fetchone() == ("23505",)


def test_repairs_are_replaced_not_accumulated(months):
    conn = months
    merge(conn, "emails", 3, email_row(3, "2026-10-05 10:00:00", starred={"t": "text", "v": "maybe"}))
    assert conn.execute("SELECT rule FROM migration.repairs WHERE source_key = '3'").fetchall() \
        == [("flag_unreadable_null",)]
    assert merge(conn, "emails", 3, email_row(3, "2026-10-05 10:00:00", starred=1), replace=True) == "loaded"
    assert conn.execute("SELECT count(*) FROM migration.repairs WHERE source_key = '3'").fetchone()[0] == 0


def test_delete_row_by_source_key(months):
    conn = months
    merge(conn, "emails", 4, email_row(4, "2026-10-05 10:00:00"))
    assert conn.execute("SELECT migration.delete_row('emails', '4')").fetchone()[0] is True
    assert conn.execute("SELECT migration.delete_row('emails', '4')").fetchone()[0] is False
    assert conn.execute("SELECT migration.delete_row('emails', 'not-a-number')").fetchone()[0] is False
    assert conn.execute("SELECT migration.delete_row('emails', '99999999999999999999')").fetchone()[0] is False
