"""The `smsdesk` command. Every option can also be set with an SMSDESK_* environment variable.

The commands live in `smsdesk.commands`, one module per group; this module only puts them
together in the order `smsdesk --help` lists them.
"""

from __future__ import annotations

import sys

import typer

from smsdesk.commands import (
    apikeys,
    audit,
    backup,
    cluster,
    connections,
    customers,
    db,
    groups,
    inbox,
    mailings,
    messages,
    optouts,
    requests,
    retention,
    routes,
    secrets,
    send,
    serve,
    settings,
    templates,
    users,
    webhooks,
)
from smsdesk.store.db import DatabaseUnavailable

app = typer.Typer(
    help="smsdesk: self-hosted SMS for customer-service teams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

serve.register(app)
send.register(app)
backup.register(app)
for name, group in (
    ("settings", settings.app),
    ("connections", connections.app),
    ("routes", routes.app),
    ("messages", messages.app),
    ("db", db.app),
    ("apikey", apikeys.app),
    ("webhooks", webhooks.app),
    ("customers", customers.app),
    ("optouts", optouts.app),
    ("requests", requests.app),
    ("groups", groups.app),
    ("templates", templates.app),
    ("mailings", mailings.app),
    ("inbox", inbox.app),
    ("users", users.app),
    ("secrets", secrets.app),
    ("audit", audit.app),
    ("retention", retention.app),
    ("cluster", cluster.app),
):
    app.add_typer(group, name=name)


def main() -> None:
    """Entry point of the `smsdesk` console script.

    A command that opens the database without `commands.common.start_service` still ends
    with one plain line, not a traceback, when the database cannot be used."""
    try:
        app()
    except DatabaseUnavailable as exc:
        sys.exit(f"error: {exc}")
