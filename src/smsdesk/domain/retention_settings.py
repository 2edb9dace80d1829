"""The SMS configuration's `retention` section: how many days each kind of data is kept.

A nightly job (`lifecycle/retention.py`) deletes what is older; 0 keeps a kind forever. Messages
and inbound SMS of a request that still exists stay with it until the request is purged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

# The kinds of data retention purges, in the order they are shown and purged.
KINDS = (
    "requests",
    "outbound",
    "inbound",
    "timelines",
    "webhook_deliveries",
    "unmatched_reports",
    "mailings",
    "audit",
)
_MAX_DAYS = 36_500


def _days(default: int, title: str, description: str) -> Any:
    return Field(default, ge=0, le=_MAX_DAYS, title=title, description=description)


class RetentionSettings(BaseModel):
    """Days to keep each kind of data (0 keeps it forever) and the hour the purge runs."""

    model_config = {"extra": "forbid"}

    requests_days: int = _days(
        0,
        "Closed requests (days)",
        "A closed request and its conversation are purged this long after their last "
        "activity; 0 keeps them forever.",
    )
    outbound_days: int = _days(
        365,
        "Sent messages (days)",
        "Messages with a final status are purged this long after they were accepted, unless "
        "their request still exists; 0 keeps them forever.",
    )
    inbound_days: int = _days(
        365,
        "Inbound SMS (days)",
        "Processed inbound SMS are purged this long after they arrived, unless their request "
        "still exists; 0 keeps them forever.",
    )
    timelines_days: int = _days(
        90,
        "Message timelines (days)",
        "The status history of a finished message is purged after this long; the message "
        "keeps its final status. 0 keeps it forever.",
    )
    webhook_deliveries_days: int = _days(
        30,
        "Webhook deliveries (days)",
        "Delivered and given-up webhook deliveries are purged after this long; pending ones "
        "never. 0 keeps them forever.",
    )
    unmatched_reports_days: int = _days(
        30,
        "Unmatched delivery reports (days)",
        "Delivery reports that matched no message are purged after this long; 0 keeps them "
        "forever.",
    )
    mailings_days: int = _days(
        365,
        "Finished mailings (days)",
        "A mailing that is done or cancelled is purged with its recipients and replies this "
        "long after it ended; drafts and mailings still sending are kept. 0 keeps them forever.",
    )
    audit_days: int = _days(
        730,
        "Audit entries (days)",
        "Audit entries are purged after this long (the chain stays verifiable); 0 keeps them "
        "forever.",
    )
    hour: int = Field(
        3,
        ge=0,
        le=23,
        title="Purge hour (UTC)",
        description="Hour of the day, in UTC, at which the nightly purge runs.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        """JSON true is not 1 day: a boolean where a number belongs is a mistake."""
        if isinstance(value, bool):
            raise ValueError("Enter a whole number, not true or false.")
        return value

    def days(self, kind: str) -> int:
        """Days to keep `kind` (one of KINDS); 0 is forever."""
        days: int = getattr(self, f"{kind}_days")
        return days
