"""SMPP: an SMPP 3.4 client (ESME) that keeps a bound session to an SMSC.

PDU/session library: smpp34 (Rust core, asyncio API). Of the three on PyPI, smpplib is
synchronous (a thread per session, one read loop we would have to drive) and aiosmpplib is
asyncio but pure Python and keeps its own queue/broker model we would fight with. smpp34 gives a
bound `Smsc` whose `submit_sm` is awaitable with sequence windowing, enquire_link and response
timers in its core, `next()` for deliver_sm, TLS, and a server side the tests use as the peer.

The parts: `settings` (the module's settings), `codec` (submit_sm and deliver_sm as plain
values), `statuses` (command_status to provider errors), `session` (binding, rebinding, reading),
`receipts` (matching part receipts to messages) and `provider` (the Provider that joins them).
"""

from __future__ import annotations

from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.smpp.provider import SmppProvider
from smsdesk.providers.smpp.settings import BindMode, LongMessages, SmppSettings

__all__ = ["MODULE", "BindMode", "LongMessages", "SmppProvider", "SmppSettings"]

MODULE = ModuleInfo(
    "smpp",
    "SMPP",
    "SMPP 3.4 connection to an SMSC or gateway.",
    SmppSettings,
    SmppProvider,
)
