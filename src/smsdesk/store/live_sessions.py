"""Which of the sessions holding live streams open are still logged in, in one query.

A stream outlives the request that opened it: the live feed asks here every second or so, and
ends the streams of sessions that logged out, were revoked (their row deleted) or expired
(idle or too old, by the same limits as `store.users`).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store.tables import web_sessions
from smsdesk.store.users import SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS, _token_hash


def live_tokens(conn: Connection, tokens: Iterable[str], now: float) -> set[str]:
    """The cookie tokens among `tokens` whose session is still live at `now`."""
    by_hash = {_token_hash(token): token for token in tokens}
    if not by_hash:
        return set()
    query = sa.select(web_sessions.c.token_hash).where(
        web_sessions.c.token_hash.in_(list(by_hash)),
        web_sessions.c.last_seen_at >= now - SESSION_IDLE_SECONDS,
        web_sessions.c.created_at >= now - SESSION_MAX_SECONDS,
    )
    return {by_hash[found] for found in conn.execute(query).scalars()}
