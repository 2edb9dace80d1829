"""Who is acting in a request, for the audit trail: the logged-in user or the API key."""

from __future__ import annotations

from fastapi import Request

from smsdesk.domain.audit import Actor
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.users import WebSession


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def user_actor(request: Request, session: WebSession) -> Actor:
    return Actor.user(session.user.id, session.user.username, client_address(request) or None)


def key_actor(request: Request, key: ApiKey) -> Actor:
    return Actor.api_key(key.id, key.name, client_address(request) or None)
