"""SMTP: aiosmtpd accepts mail for any address; the reply to DATA is the commit point.

- 250 only after the store committed every row of the message (one per recipient, in
  one transaction); a message_id already stored is a duplicate the store ignores, and
  still a 250 (the legacy semantics: it is stored).
- 451 when the store cannot commit (the client keeps the message and retries).
- 552 above service.max_message_bytes (aiosmtpd's SIZE and DATA checks).
- 452 for a recipient beyond service.max_recipients (RFC 5321's minimum is 100).
- 421 only while the service shuts down, to a write that arrives after the drain.
- During a pause the reply is held until the resume (or the pause's hard limit).
Command lines keep RFC 5321's limits (a 10 KB address gets 500); message lines may be
up to service.max_line_bytes long (real mail has longer lines than RFC 5321's 1000).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from aiosmtpd.smtp import SMTP

from mailmig.service.gate import GateClosed, WriteGate
from mailmig.service.message import parse_message
from mailmig.store import Store, utc_now

log = logging.getLogger("mailmig.service.smtp")


class MailSMTP(SMTP):
    """aiosmtpd's SMTP with a configurable message line limit."""

    def __init__(self, handler, *, max_line_bytes: int, **kwargs):
        self.line_length_limit = max(1001, int(max_line_bytes))
        super().__init__(handler, **kwargs)


class MailHandler:
    def __init__(self, store: Store, gate: WriteGate, executor: Executor, *, hostname: str, max_recipients: int):
        self.store = store
        self.gate = gate
        self.executor = executor
        self.hostname = hostname
        self.max_recipients = max_recipients
        self.replies: dict[str, int] = {}

    def _count(self, code: str) -> None:
        self.replies[code] = self.replies.get(code, 0) + 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.max_recipients:
            self._count("452")
            return f"452 4.5.3 Too many recipients (at most {self.max_recipients} per message)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        raw = envelope.original_content or b""
        try:
            rows = await loop.run_in_executor(self.executor, lambda: parse_message(
                raw, envelope.mail_from, list(envelope.rcpt_tos), hostname=self.hostname, now=utc_now()))
        except Exception:  # a bug of ours must not bounce the mail: the client retries
            self._count("451")
            log.exception("message from %s could not be read into rows, answered 451", envelope.mail_from)
            return "451 4.3.0 Message not stored: it could not be read; try again later"
        try:
            await self.gate.enter_async()
        except GateClosed:
            self._count("421")
            return "421 4.3.2 Service shutting down, message not stored; try again later"
        try:
            ids = await loop.run_in_executor(self.executor, self.store.save_emails, rows)
        except Exception as exc:
            self._count("451")
            log.error("message %s from %s for %d recipient(s) not stored, answered 451: %s",
                      rows[0].message_id if rows else "?", envelope.mail_from, len(rows),
                      " ".join(f"{type(exc).__name__}: {exc}".split())[:500])
            return "451 4.3.0 Message not stored: the store could not commit; try again later"
        finally:
            self.gate.leave()
        self._count("250")
        stored = [str(i) for i in ids if i is not None]
        if not stored:
            return "250 2.0.0 OK: already stored"
        return f"250 2.0.0 OK: stored as {','.join(stored)}"
