"""Replies to a mailing: the inbound pipeline's step that links an SMS to the mailing it
answers.

An SMS answers a mailing when its sender was sent an SMS by that mailing within the last
`REPLY_DAYS` days (the most recent such mailing wins). Every such SMS is recorded as a reply
of the mailing (a STOP as an opt-out, which the pipeline also turns into an opt-out and a
withdrawal of consent), with the request it became, if any.

Where the reply goes depends on the mailing's `replies` setting:

- `request`: an SMS that would otherwise wait in the unrecognised list (no SMS endpoint code,
  not answering a conversation) becomes a request, so customers can simply answer;
- `unrecognised`: the mailing does not make a request of it: it goes where any SMS would
  (without the endpoint code, the unrecognised list).

The step reads once per batch (`store.mailing_replies.answered_mailings`) and writes its
rows with the batch.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.mailings import Replies
from smsdesk.store.mailing_replies import Answered, answered_mailings, record_replies

REPLY_DAYS = 7


class SmsReplies:
    """The mailings one batch's senders answer, and the replies it will record."""

    def __init__(self, conn: Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.answered: dict[str, Answered] = {}  # number -> the recipient row it answers
        self.rows: list[dict[str, Any]] = []

    def load(self, numbers: Collection[str]) -> None:
        """Read which mailing each sender answers (one query for the batch)."""
        if numbers:
            self.answered = answered_mailings(self.conn, numbers, self.now - REPLY_DAYS * 86400)

    def makes_request(self, number: str | None) -> bool:
        """Whether an SMS from `number` becomes a request because it answers a mailing."""
        found = self.answered.get(number) if number else None
        return found is not None and found.replies is Replies.REQUEST

    def note(
        self,
        number: str | None,
        inbound_id: str,
        received_at: float,
        *,
        request_id: str | None,
        opt_out: bool,
    ) -> None:
        """Record the SMS as a reply if its sender answers a mailing."""
        found = self.answered.get(number) if number else None
        if found is None:
            return
        self.rows.append(
            {
                "mailing_id": found.mailing_id,
                "recipient_id": found.recipient_id,
                "inbound_id": inbound_id,
                "request_id": request_id,
                "opt_out": opt_out,
                "received_at": received_at,
            }
        )

    def write(self) -> None:
        record_replies(self.conn, self.rows)
