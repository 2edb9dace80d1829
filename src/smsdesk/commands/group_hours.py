"""`smsdesk groups hours`: a group's opening hours, holidays and out-of-hours answer."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out
from smsdesk.conversations import business_hours, groups
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError

Day = Annotated[str | None, typer.Option(help="Intervals, e.g. '09:00-12:00, 13:00-17:30'.")]


def hours(
    group: Annotated[str, typer.Argument(help="The group's id or name.")],
    mon: Day = None,
    tue: Day = None,
    wed: Day = None,
    thu: Day = None,
    fri: Day = None,
    sat: Day = None,
    sun: Day = None,
    holiday: Annotated[
        list[str] | None,
        typer.Option(help="A date closed all day (2026-12-25); repeat it; replaces the list."),
    ] = None,
    no_holidays: Annotated[bool, typer.Option(help="Remove every holiday.")] = False,
    always_open: Annotated[
        bool, typer.Option(help="Remove the hours of every day: open around the clock.")
    ] = False,
    time_zone: Annotated[
        str | None, typer.Option(help="The clock the hours follow, e.g. Europe/Amsterdam.")
    ] = None,
    reply: Annotated[
        str | None,
        typer.Option(help="The SMS sent once per closed stretch; '' sends none."),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show or change a group's opening hours. Days not given keep their hours ('' closes a day
    all day); no day with hours means open around the clock."""
    service = open_service(data_dir, database_url)
    given = dict(zip(business_hours.WEEKDAYS, (mon, tue, wed, thu, fri, sat, sun), strict=True))
    days = {name: text for name, text in given.items() if text is not None}
    changing = days or holiday or no_holidays or always_open or time_zone or reply is not None
    try:
        current = business_hours.hours_of_group(service, group)
        if changing:
            week = {
                name: "" if always_open else current.hours.day_text(index)
                for index, name in enumerate(business_hours.WEEKDAYS)
            }
            current = business_hours.set_hours(
                service,
                Actor.cli(),
                current.group.id,
                time_zone=time_zone,
                week={**week, **days},
                holidays=[] if no_holidays else holiday,
                reply=reply,
            )
    except (DomainError, groups.GroupNotFound) as exc:
        fail(escape(getattr(exc, "message", str(exc))))
        return
    _print(current)


def _print(found: business_hours.GroupHours) -> None:
    opening = found.hours
    out.print(f"{found.group.name}  ({opening.time_zone})", markup=False)
    if opening.around_the_clock:
        out.print("open around the clock", markup=False)
    else:
        for index, name in enumerate(business_hours.WEEKDAYS):
            out.print(f"{name}  {opening.day_text(index) or 'closed'}", markup=False)
    out.print(f"holidays  {opening.holidays_text() or 'none'}", markup=False)
    out.print(f"answer  {found.reply or '(none)'}", markup=False)
