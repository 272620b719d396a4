"""An SMTP message as the rows the store keeps: one per envelope recipient (inbox).

Whatever arrives is stored: the raw message always (each byte that is not valid UTF-8,
and each NUL, becomes U+FFFD: PostgreSQL text holds neither), and of the rest what
parses. Nothing here raises on input: a header or part that cannot be decoded is
taken as its raw text, or left out (None).

- message_id: the Message-ID header, unfolded; a generated one (`<uuid@hostname>`) when
  there is none; when longer than MAX_KEY_BYTES (a btree entry holds 2704 bytes) a
  digest of it, `<sha256hex.long-message-id@hostname>`, so a resend is still a duplicate.
  With several recipients the first keeps it and each other gets `<id> <recipient>`:
  the message_id is unique across the store, and each inbox must get its copy.
- from_address: the From header's first address (as written), else the envelope
  sender; at most MAX_KEY_BYTES (it is indexed), the whole header stays in headers.
- to_address: the envelope recipient, ASCII lower-cased (generated inboxes are).
- subject: decoded (RFC 2047 encoded words), unfolded.
- body / html: the first text/plain and text/html parts (a message that is not
  multipart and not HTML: its whole payload as body).
- headers: a JSON object of every header, decoded; a repeated name holds a list.
- size: bytes of the raw message.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses

from mailmig.store.model import NewEmail, ascii_lower

MAX_KEY_BYTES = 512
_NEEDS_CLEANING = re.compile("[\x00\ud800-\udfff]")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_EACH_BYTE = "mailmig_store_each_byte"  # registered by mailmig.store.sqlite


def clean_bytes(data: bytes) -> str:
    """Bytes as text: valid UTF-8 as it is, each other byte and each NUL as U+FFFD."""
    import mailmig.store.sqlite  # noqa: F401  (registers the error handler)

    text = data.decode("utf-8", _EACH_BYTE)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def clean_text(text: str) -> str:
    """Text from the email package (8-bit bytes surrogate-escaped) as storable text."""
    if not _NEEDS_CLEANING.search(text):
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return clean_bytes(data)


def header_text(value: str) -> str:
    """A raw header value decoded: unfolded, encoded words decoded, storable."""
    text = _FOLD.sub("", clean_text(str(value))).strip()
    if "=?" in text:
        try:
            text = clean_text(str(make_header(decode_header(text))))
        except Exception:  # an unknown charset or bytes that are not in it: keep it raw
            pass
    return text


def cut_utf8(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _part_text(part) -> str | None:
    """A text part's content: decoded from its transfer encoding, then from its charset;
    without one (or us-ascii), 8-bit bytes are read as UTF-8 where they are valid."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        charset = (part.get_content_charset() or "").lower()
        if charset and charset not in ("us-ascii", "ascii"):
            try:
                return clean_text(payload.decode(charset))
            except Exception:  # an unknown charset, or bytes that are not in it
                pass
        return clean_bytes(payload)
    raw = part.get_payload()
    return clean_text(raw) if isinstance(raw, str) else None


def _first_body(message, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except Exception:
        return None
    return None if part is None else _part_text(part)


def _headers(message) -> dict:
    headers: dict = {}
    for name, value in message.raw_items():
        name = clean_text(str(name))
        text = header_text(value)
        if name in headers:
            previous = headers[name]
            headers[name] = (previous if isinstance(previous, list) else [previous]) + [text]
        else:
            headers[name] = text
    return headers


def _first(headers: dict, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def message_key(message_id: str | None, hostname: str) -> str:
    """The message_id column's value for a Message-ID header (or none)."""
    if not message_id:
        return f"<{uuid.uuid4().hex}@{hostname}>"
    if len(message_id.encode("utf-8")) > MAX_KEY_BYTES:
        digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()
        return f"<{digest}.long-message-id@{hostname}>"
    return message_id


def parse_message(raw: bytes, mail_from: str | None, rcpt_tos: list[str], *, hostname: str,
                  now: datetime) -> list[NewEmail]:
    """The rows of one received message, one per recipient, in RCPT order."""
    raw_text = clean_bytes(raw)
    try:
        message = message_from_bytes(raw, policy=policy.default)
        headers = _headers(message)
    except Exception:  # the parser itself failed: only the raw message is stored
        message, headers = None, {}
    message_id = message_key(_first(headers, "message-id"), hostname)
    subject = _first(headers, "subject")
    sender = ""
    from_header = _first(headers, "from")
    if from_header:
        try:
            addresses = [addr for _, addr in getaddresses([from_header]) if addr]
        except Exception:
            addresses = []
        sender = addresses[0] if addresses else from_header
    if not sender:
        sender = clean_text(mail_from or "")
    sender = cut_utf8(sender, MAX_KEY_BYTES)
    body = html = None
    if message is not None:
        body = _first_body(message, "plain")
        html = _first_body(message, "html")
        if body is None and html is None and not message.is_multipart():
            body = _part_text(message)
    rows = []
    inboxes = list(dict.fromkeys(ascii_lower(clean_text(r)) for r in rcpt_tos))  # one copy per inbox
    for n, to_address in enumerate(inboxes):
        key = message_id if n == 0 else cut_utf8(f"{message_id} {to_address}", 2 * MAX_KEY_BYTES)
        rows.append(NewEmail(message_id=key, from_address=sender, to_address=to_address, subject=subject,
                             body=body, html=html, headers=headers, raw_email=raw_text, size=len(raw),
                             created_at=now))
    return rows
