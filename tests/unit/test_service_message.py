"""An SMTP message into rows: whatever the bytes, the rows can be stored by both backends."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from mailmig.service.message import MAX_KEY_BYTES, clean_bytes, clean_text, parse_message
from mailmig.store.model import ascii_lower

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


def parse(raw: bytes, rcpts=("Me@Tempmail.Test",), sender="s@x"):
    return parse_message(raw, sender, list(rcpts), hostname="mx.test", now=NOW)


def test_a_plain_message():
    (row,) = parse(b"From: A <a@x>\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n")
    assert (row.message_id, row.from_address, row.to_address, row.subject, row.body, row.html) == (
        "<1@x>", "a@x", "me@tempmail.test", "hi", "hello\r\n", None)
    assert row.headers == {"From": "A <a@x>", "Subject": "hi", "Message-ID": "<1@x>"}
    assert row.size == len(b"From: A <a@x>\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n")
    assert row.created_at == NOW


def test_multipart_alternative_gives_text_and_html():
    raw = (b"Subject: alt\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Gr=FC=DFe\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Gr\xc3\xbc\xc3\x9fe</p>\r\n--b--\r\n")
    (row,) = parse(raw)
    assert row.body.strip() == "Grüße" and row.html.strip() == "<p>Grüße</p>"


def test_several_recipients_get_one_row_each_with_distinct_message_ids():
    rows = parse(b"Message-ID: <m@x>\r\n\r\nx", rcpts=("a@t", "B@t", "c@t"))
    assert [r.message_id for r in rows] == ["<m@x>", "<m@x> b@t", "<m@x> c@t"]
    assert [r.to_address for r in rows] == ["a@t", "b@t", "c@t"]


def test_no_message_id_gets_one_and_a_long_one_a_stable_digest():
    (row,) = parse(b"Subject: none\r\n\r\nx")
    assert row.message_id.startswith("<") and row.message_id.endswith("@mx.test>")
    long_id = b"<" + b"x" * 5000 + b"@y>"
    first, second = parse(b"Message-ID: " + long_id + b"\r\n\r\n")[0], parse(b"Message-ID: " + long_id + b"\r\n\r\n")[0]
    assert first.message_id == second.message_id and len(first.message_id.encode()) <= MAX_KEY_BYTES


def test_clean_bytes_replaces_each_bad_byte_and_nul():
    assert clean_bytes(b"a\xff\xfeb\x00c\xc3\xa9") == "a\ufffd\ufffdb\ufffdcé"


header_names = st.sampled_from(["Subject", "From", "To", "Message-ID", "Content-Type", "Content-Transfer-Encoding",
                                "MIME-Version", "X-Junk", "subject", "FROM"])
header_values = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"=?utf-8?q?=C3=BC?=", b"=?x-bad?b?!!?=", b"multipart/mixed; boundary=", b"base64",
                     b"text/plain; charset=utf-16", b"<>", b"\"unterminated <a@x>", b"=?utf-8?b?/w==?="]))


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(header_names, header_values), max_size=12),
       body=st.binary(max_size=2000), rcpts=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=3),
       sender=st.one_of(st.none(), st.text(max_size=40)))
def test_any_bytes_give_rows_both_stores_can_hold(headers, body, rcpts, sender):
    raw = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body
    rows = parse_message(raw, sender, rcpts, hostname="mx.test", now=NOW)
    # one row per distinct inbox (ASCII case folded), in RCPT order
    assert [r.to_address for r in rows] == list(dict.fromkeys(ascii_lower(clean_text(r)) for r in rcpts))
    assert len({r.message_id for r in rows}) == len(rows)
    for row in rows:
        row.checked(NOW)  # no NUL, no surrogate in any text: ValueError otherwise
        json.dumps(row.headers, ensure_ascii=False).encode("utf-8")
        assert "\x00" not in json.dumps(row.headers)  # jsonb refuses \u0000
        assert len(row.from_address.encode()) <= MAX_KEY_BYTES
        assert row.raw_email == clean_bytes(raw) and row.size == len(raw)
