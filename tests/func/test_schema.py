"""mail.emails and its message_id guard, full-text search, accounts: against a real
PostgreSQL with every sql/ file applied."""

from __future__ import annotations

import random
import string

import psycopg
import pytest
from psycopg import errors

INSERT = (
    "INSERT INTO mail.emails (message_id, from_address, to_address, subject, body, created_at)"
    " VALUES (%s, 'from@example.org', %s, %s, %s, %s) RETURNING id"
)


@pytest.fixture
def months(conn):
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2024-01-01', '2024-02-01', '2024-03-01']::date[])")
    return conn


def insert(conn, message_id, created_at, to="to@example.org", subject="s", body="b"):
    return conn.execute(INSERT, (message_id, to, subject, body, created_at)).fetchone()[0]


def guard(conn):
    return dict(conn.execute("SELECT message_id, email_id FROM mail.message_id_guard").fetchall())


@pytest.mark.parametrize("first,second", [("2024-01-10", "2024-02-10"), ("2024-02-10", "2024-01-10")])
def test_same_message_id_in_two_months_is_refused(months, first, second):
    conn = months
    email_id = insert(conn, "<m1@x>", first)
    with pytest.raises(errors.UniqueViolation, match="<m1@x>") as info:
        insert(conn, "<m1@x>", second)
    assert info.value.diag.sqlstate == "23505"
    assert guard(conn) == {"<m1@x>": email_id}
    assert conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0] == 1


def test_duplicates_within_one_insert_select_are_refused(months):
    conn = months
    with pytest.raises(errors.UniqueViolation, match="<dup@x>"):
        conn.execute(
            "INSERT INTO mail.emails (message_id, from_address, to_address, created_at)"
            " VALUES ('<ok@x>', 'f', 't', '2024-01-05'), ('<dup@x>', 'f', 't', '2024-01-05'),"
            "        ('<dup@x>', 'f', 't', '2024-03-05')"
        )
    assert guard(conn) == {}
    # the same id and message_id in two months (two rows the primary key allows)
    with pytest.raises(errors.UniqueViolation, match="<same@x>"):
        conn.execute(
            "INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at)"
            " SELECT 7, '<same@x>', 'f', 't', m FROM unnest(ARRAY['2024-01-05', '2024-02-05']::timestamptz[]) m"
        )
    insert(conn, "<same@x>", "2024-01-05")
    with pytest.raises(errors.UniqueViolation):
        conn.execute(
            "INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at)"
            " SELECT id, message_id, from_address, to_address, created_at + interval '1 month' FROM mail.emails"
        )


def test_copy_and_direct_partition_writes_are_guarded(months):
    conn = months
    insert(conn, "<c1@x>", "2024-01-10")
    with pytest.raises(errors.UniqueViolation, match="<c1@x>"):
        with conn.cursor().copy(
            "COPY mail.emails (message_id, from_address, to_address, created_at) FROM STDIN"
        ) as copy:
            copy.write_row(("<c2@x>", "f", "t", "2024-02-01 10:00:00+00"))
            copy.write_row(("<c1@x>", "f", "t", "2024-02-01 11:00:00+00"))
    with conn.cursor().copy("COPY mail.emails (message_id, from_address, to_address, created_at) FROM STDIN") as copy:
        copy.write_row(("<c2@x>", "f", "t", "2024-02-01 10:00:00+00"))
    assert set(guard(conn)) == {"<c1@x>", "<c2@x>"}
    with pytest.raises(errors.UniqueViolation, match="<c2@x>"):
        conn.execute(
            "INSERT INTO mail.emails_p202403 (message_id, from_address, to_address, created_at)"
            " VALUES ('<c2@x>', 'f', 't', '2024-03-02')"
        )


def test_delete_and_update_keep_the_guard_right(months):
    conn = months
    a = insert(conn, "<a@x>", "2024-01-10")
    b = insert(conn, "<b@x>", "2024-02-10")
    conn.execute("UPDATE mail.emails SET is_read = true")
    assert guard(conn) == {"<a@x>": a, "<b@x>": b}
    conn.execute("UPDATE mail.emails SET message_id = '<a2@x>' WHERE id = %s", (a,))
    assert guard(conn) == {"<a2@x>": a, "<b@x>": b}
    insert(conn, "<a@x>", "2024-03-10")  # the old message_id is free again
    with pytest.raises(errors.UniqueViolation, match="<b@x>"):
        conn.execute("UPDATE mail.emails SET message_id = '<b@x>' WHERE id = %s", (a,))
    # moving a row to another month keeps its entry
    conn.execute("UPDATE mail.emails SET created_at = '2024-03-20' WHERE id = %s", (b,))
    assert guard(conn)["<b@x>"] == b
    # a swap in one statement
    conn.execute(
        "UPDATE mail.emails SET message_id = CASE message_id WHEN '<a2@x>' THEN '<b@x>' ELSE '<a2@x>' END"
        " WHERE message_id IN ('<a2@x>', '<b@x>')"
    )
    assert guard(conn)["<b@x>"] == a and guard(conn)["<a2@x>"] == b
    conn.execute("DELETE FROM mail.emails WHERE id = %s", (a,))
    assert "<b@x>" not in guard(conn)
    insert(conn, "<b@x>", "2024-01-01")
    conn.execute("TRUNCATE mail.emails")
    assert guard(conn) == {}


def test_insert_email_returns_the_id_then_null_for_a_duplicate(conn):
    args = ("<app@x>", "f@x", "t@x", "subject", "body", None, '{"X-A": "1"}', "raw", 3)
    email_id = conn.execute("SELECT mail.insert_email(%s, %s, %s, %s, %s, %s, %s, %s, %s)", args).fetchone()[0]
    assert email_id is not None
    again = conn.execute("SELECT mail.insert_email(%s, %s, %s, %s, %s, %s, %s, %s, %s)", args).fetchone()[0]
    assert again is None
    row = conn.execute(
        "SELECT id, headers, size, starred, is_read, spam_score FROM mail.emails WHERE message_id = '<app@x>'"
    ).fetchall()
    assert row == [(email_id, {"X-A": "1"}, 3, False, False, 0.0)]
    assert guard(conn) == {"<app@x>": email_id}
    # a plain INSERT of the same message_id is refused too
    with pytest.raises(errors.UniqueViolation):
        insert(conn, "<app@x>", "2024-01-01")


def test_insert_email_concurrent_callers_get_one_id_and_one_null(dsn):
    with psycopg.connect(dsn) as first, psycopg.connect(dsn, autocommit=True) as second:
        call = "SELECT mail.insert_email('<race@x>', 'f', 't', 's', 'b', NULL, NULL, NULL, 1)"
        first_id = first.execute(call).fetchone()[0]  # uncommitted
        import threading

        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("id", second.execute(call).fetchone()[0]))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waits for the first caller's transaction
        first.commit()
        thread.join(10)
        assert first_id is not None and result == {"id": None}


def test_bulk_insert_select_claims_every_guard_entry(months):
    conn = months
    conn.execute(
        "INSERT INTO mail.emails (message_id, from_address, to_address, subject, body, created_at)"
        " SELECT '<bulk-' || g || '@x>', 'f', 't' || g % 50, 'subject ' || g, 'body ' || g,"
        "        '2024-01-01'::timestamptz + g * interval '1 minute'"
        " FROM generate_series(1, 20000) g"
    )
    assert conn.execute(
        "SELECT count(*), count(DISTINCT e.id) FROM mail.emails e"
        " JOIN mail.message_id_guard g ON g.message_id = e.message_id AND g.email_id = e.id"
    ).fetchone() == (20000, 20000)


def random_words(rng, count):
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 12))) for _ in range(count))


def test_a_3mb_body_inserts_whole_and_is_found(conn):
    rng = random.Random(3)
    body = "findme " + random_words(rng, 400_000)
    assert len(body) > 3_000_000
    email_id = conn.execute(
        "SELECT mail.insert_email('<big@x>', 'f', 'big@x', 'a large one', %s, NULL, NULL, NULL, %s)",
        (body, len(body)),
    ).fetchone()[0]
    assert conn.execute("SELECT length(body) FROM mail.emails WHERE id = %s", (email_id,)).fetchone()[0] == len(body)
    found = conn.execute("SELECT id, subject FROM mail.search_emails('findme')").fetchall()
    assert found == [(email_id, "a large one")]
    # a word past the indexed leading part is stored but not indexed
    tail = body.split()[-1]
    assert body.endswith(tail) and conn.execute(
        "SELECT count(*) FROM mail.search_emails(%s) WHERE id = %s", (f'"{tail} zzznotthere"', email_id)
    ).fetchone()[0] == 0


def test_search_ranks_subject_above_body_newest_first_and_filters_by_address(months):
    conn = months
    in_body = insert(conn, "<s1@x>", "2024-01-10", to="a@x", subject="weekly report", body="the invoice is attached")
    in_subject = insert(conn, "<s2@x>", "2024-01-05", to="b@x", subject="Invoice 42", body="see attachment")
    newer_tie = insert(conn, "<s3@x>", "2024-02-05", to="b@x", subject="invoice 43", body="see attachment")
    rows = conn.execute("SELECT id, rank FROM mail.search_emails('invoice')").fetchall()
    assert [r[0] for r in rows] == [newer_tie, in_subject, in_body]
    assert rows[0][1] == rows[1][1] > rows[2][1]
    assert [r[0] for r in conn.execute("SELECT id FROM mail.search_emails('invoice', 'a@x')")] == [in_body]
    assert [r[0] for r in conn.execute("SELECT id FROM mail.search_emails('invoice -attachment')")] == [in_body]
    assert conn.execute("SELECT count(*) FROM mail.search_emails('invoice', NULL, 1)").fetchone()[0] == 1
    # 'simple' does not stem: a word in another language is matched as written
    insert(conn, "<s4@x>", "2024-01-11", subject="Rechnungen", body="über")
    assert conn.execute("SELECT count(*) FROM mail.search_emails('rechnung')").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM mail.search_emails('ÜBER')").fetchone()[0] == 1


def test_account_addresses_are_unique_under_ascii_folding_only(conn):
    add = "INSERT INTO mail.accounts (email) VALUES (%s)"
    conn.execute(add, ("Box@Example.org",))
    with pytest.raises(errors.UniqueViolation):
        conn.execute(add, ("box@example.ORG",))
    # SQLite NOCASE does not fold non-ASCII: these two are distinct legacy addresses
    conn.execute(add, ("émile@example.org",))
    conn.execute(add, ("Émile@example.org",))
    assert conn.execute("SELECT mail.ascii_lower('ÄBC-Xyz')").fetchone()[0] == "Äbc-xyz"


def test_big_text_columns_use_lz4_in_every_partition(months):
    rows = months.execute(
        "SELECT a.attrelid::regclass::text, a.attcompression FROM pg_attribute a"
        " JOIN pg_inherits i ON i.inhrelid = a.attrelid"
        " WHERE i.inhparent = 'mail.emails'::regclass AND a.attname IN ('body', 'raw_email', 'html')"
    ).fetchall()
    assert len(rows) >= 3 * 4 and {c for _, c in rows} == {"l"}


def test_table_shapes_match_the_contract(conn):
    types = dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'mail.emails'::regclass AND attnum > 0 AND NOT attisdropped"
    ).fetchall())
    assert types == {
        "id": "bigint", "message_id": "text", "from_address": "text", "to_address": "text",
        "subject": "text", "body": "text", "html": "text", "headers": "jsonb", "raw_email": "text",
        "size": "bigint", "starred": "boolean", "is_read": "boolean", "spam_score": "double precision",
        "created_at": "timestamp with time zone", "search_vector": "tsvector",
    }
    assert conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'mail.emails'::regclass AND contype = 'p'"
    ).fetchone()[0] == "PRIMARY KEY (id, created_at)"
    assert conn.execute(
        "SELECT seqtypid::regtype::text FROM pg_sequence WHERE seqrelid = 'mail.accounts_id_seq'::regclass"
    ).fetchone()[0] == "bigint"


def test_the_same_id_in_two_months_is_refused(conn):
    """PRIMARY KEY (id, created_at) would allow it; the guard's unique email_id does not."""
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2026-01-01', '2026-02-01']::date[])")
    conn.execute("INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at) "
                 "VALUES (77, '<a@x>', 'f@x', 't@x', '2026-01-15')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO mail.emails (id, message_id, from_address, to_address, created_at) "
                     "VALUES (77, '<b@x>', 'f@x', 't@x', '2026-02-15')")
    assert conn.execute("SELECT count(*) FROM mail.emails WHERE id = 77").fetchone()[0] == 1
