"""Retention of mailings: one that ended before its cut-off goes with its recipients and
replies; one that ended later, a draft and one still sending stay, whatever their age."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk import mailings
from smsdesk.domain.mailings import MailingSpec
from smsdesk.lifecycle.retention import DAY
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.mailing_tables import mailing_recipients, mailing_replies
from smsdesk.store.mailing_tables import mailings as mailing_rows
from smsdesk.testing import FakeClock
from tests.conftest import database_url

NOW = 1_800_000_000.0


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> Iterator[Service]:
    config = AppConfig(data_dir=tmp_path, database_url=database_url(engine), worker_id="a")
    svc = Service(config, clock=FakeClock(NOW))
    try:
        yield svc
    finally:
        svc.close()


def a_mailing(service: Service, name: str, status: str, ended_days_ago: float | None) -> str:
    """A mailing with 1,200 recipients (more than one purge batch) and a reply, in `status`."""
    made = mailings.create_mailing(
        service, MailingSpec(name=name, text="Hello", override_consent=True)
    )
    numbers = "\n".join(f"+316200{n:05d}" for n in range(1200))
    mailings.add_pasted(service, made.id, numbers)
    finished = NOW - ended_days_ago * DAY if ended_days_ago is not None else None
    with service.engine.begin() as conn:
        conn.execute(
            mailing_rows.update()
            .where(mailing_rows.c.id == made.id)
            .values(status=status, finished_at=finished, updated_at=finished or NOW)
        )
        first = conn.execute(
            sa.select(sa.func.min(mailing_recipients.c.id)).where(
                mailing_recipients.c.mailing_id == made.id
            )
        ).scalar_one()
        conn.execute(
            mailing_replies.insert().values(
                mailing_id=made.id,
                recipient_id=first,
                inbound_id=f"in-{name}",
                opt_out=False,
                received_at=NOW - 400 * DAY,
            )
        )
    return made.id


def left(engine: Engine) -> dict[str, tuple[int, int]]:
    """Each mailing's name -> (recipients, replies) still stored."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(mailing_rows.c.id, mailing_rows.c.name)).all()
        return {
            name: (
                conn.execute(
                    sa.select(sa.func.count()).where(mailing_recipients.c.mailing_id == mid)
                ).scalar_one(),
                conn.execute(
                    sa.select(sa.func.count()).where(mailing_replies.c.mailing_id == mid)
                ).scalar_one(),
            )
            for mid, name in rows
        }


def test_finished_mailings_go_after_their_days_and_nothing_else(service: Service) -> None:
    a_mailing(service, "old done", "done", 366)
    a_mailing(service, "old cancelled", "cancelled", 400)
    a_mailing(service, "young done", "done", 364)
    a_mailing(service, "old draft", "draft", None)
    a_mailing(service, "sending", "sending", None)
    forecast = dict(service.retention.preview())
    assert [n for p, n in forecast.items() if p.kind == "mailings"] == [2]
    result = service.retention.run()
    assert result.purged["mailings"] == 2
    assert left(service.engine) == {
        "young done": (1200, 1),
        "old draft": (1200, 1),
        "sending": (1200, 1),
    }


def test_zero_days_keeps_finished_mailings_forever(service: Service) -> None:
    a_mailing(service, "ancient", "done", 5000)
    config = service.settings.load()
    service.settings.save(
        config.model_copy(
            update={"retention": config.retention.model_copy(update={"mailings_days": 0})}
        )
    )
    result = service.retention.run()
    assert result.purged.get("mailings", 0) == 0
    assert left(service.engine) == {"ancient": (1200, 1)}
