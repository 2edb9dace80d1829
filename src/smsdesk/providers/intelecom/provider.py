"""The Intelecom (Puzzel) and Original Intelecom modules: batched REST sends and callbacks.

Original Intelecom with *Use web service* off sends each SMS by e-mail instead, through the
E-mail to SMS module's SMTP settings.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from smsdesk.domain.sms import InboundSms, OutboundSms, StatusReport
from smsdesk.providers.base import (
    AuthenticationError,
    CallbackAnswer,
    CallbackRequest,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    Transport,
)
from smsdesk.providers.email_gateway import (
    Email,
    EmailGatewaySettings,
    address_values,
    missing_smtp,
    render,
    send_emails,
)
from smsdesk.providers.http import api_base, request
from smsdesk.providers.intelecom.settings import (
    IntelecomSettings,
    OriginalIntelecomSettings,
)
from smsdesk.providers.intelecom.wire import (
    DEFAULT_BASE_URL,
    MAX_PARTS,
    SEND_PATH,
    GatewayAccount,
    by_sequence,
    callback_items,
    check_account,
    inbound,
    message_entry,
    message_result,
    reply_statuses,
    report,
)

WEB_SERVICE_OFF = (
    "Use web service is off: configure the e-mail module's SMTP server and Intelecom gateway "
    "address, or turn Use web service on."
)


class _GatewayProvider(Provider):
    """Sending and callbacks shared by the *Intelecom* and *Original Intelecom* modules."""

    transport = Transport.HTTP
    max_batch: ClassVar[int] = 100  # no documented cap; bounds the body (~100 KB) and a retry

    @abc.abstractmethod
    def account(self) -> GatewayAccount:
        """The account and options of this module's settings."""

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        account = self.account()
        check_account(account)
        results: dict[str, SendResult] = {}
        outgoing: list[tuple[OutboundSms, dict[str, Any]]] = []
        for sms in batch:
            try:
                outgoing.append((sms, message_entry(sms, account)))
            except PermanentError as exc:
                results[sms.message_id] = SendResult(sms.message_id, error=exc, raw_code=exc.code)
        if outgoing:
            results.update(await self._post(account, outgoing))
        return [results[sms.message_id] for sms in batch]

    async def _post(
        self,
        account: GatewayAccount,
        outgoing: list[tuple[OutboundSms, dict[str, Any]]],
    ) -> dict[str, SendResult]:
        body = {
            "serviceId": int(account.service_id),
            "username": account.username,
            "password": account.password,
            "batchReference": uuid.uuid4().hex,
            "message": [message for _, message in outgoing],
        }
        url = api_base(account.base_url, DEFAULT_BASE_URL) + SEND_PATH
        try:
            response = await request(
                self.http,
                "POST",
                url,
                timeout=account.timeout,
                json=body,
                headers={"Accept": "application/json"},
            )
            statuses = reply_statuses(response.status_code, response.text)
        except ProviderError as exc:
            return {
                sms.message_id: SendResult(sms.message_id, error=exc, raw_code=exc.code)
                for sms, _ in outgoing
            }
        by_reference = {str(s.get("clientReference") or ""): s for s in statuses}
        results = {}
        for position, (sms, _) in enumerate(outgoing):
            status = by_reference.get(sms.message_id) or by_sequence(statuses, position)
            results[sms.message_id] = message_result(sms, status, account)
        return results

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return [report(item) for item in callback_items(request, "dr")]

    def parse_inbound(self, request: CallbackRequest) -> list[InboundSms]:
        return [inbound(item) for item in callback_items(request, "mo")]

    def callback_answer(
        self,
        kind: str,
        request: CallbackRequest,
        parsed: Sequence[StatusReport | InboundSms],
    ) -> CallbackAnswer:
        """Puzzel needs HTTP 200 and nothing else; any other answer makes it send again."""
        return CallbackAnswer(200, "", "text/plain")


class IntelecomProvider(_GatewayProvider):
    """The *Intelecom (Puzzel)* module."""

    # The gateway answers status 25 (duplicate) to a clientReference it already has; the
    # original module may send by e-mail instead, which does not, so only this one says so.
    dedupes_reference: ClassVar[bool] = True

    settings: IntelecomSettings

    def account(self) -> GatewayAccount:
        s = self.settings
        return GatewayAccount.of(s, new_session=s.sms_session, differentiator=s.differentiator)


class OriginalIntelecomProvider(_GatewayProvider):
    """The *Original Intelecom* module: the same gateway, configured as the original was."""

    settings: OriginalIntelecomSettings
    uses_email_module: ClassVar[bool] = True
    without_fake = (
        "Its web service is the intelecom module's code, which that module's fake covers; by "
        "e-mail it is tested against aiosmtpd (tests/providers/test_email_intelecom.py)."
    )

    def account(self) -> GatewayAccount:
        return GatewayAccount.of(self.settings)

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        if not self.settings.use_web_service:
            return await self._send_by_email(batch)
        return await super().send(batch)

    async def _send_by_email(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        """Each SMS as an e-mail to the gateway, over the installation's SMTP server."""
        email = self.context.email_settings
        # Settings problems, not the messages': AuthenticationError keeps them queued.
        if (
            not isinstance(email, EmailGatewaySettings)
            or missing_smtp(email)
            or not email.intelecom_address
        ):
            return _all_failed(batch, AuthenticationError(WEB_SERVICE_OFF, code="web-service-off"))
        if not self.settings.service_id:
            error = AuthenticationError(
                "Sending by e-mail needs the Service ID (it is part of the gateway address): "
                "enter it in the module settings.",
                code="settings",
            )
            return _all_failed(batch, error)
        results: dict[str, SendResult] = {}
        emails = []
        for sms in batch:
            if sms.segments > MAX_PARTS:
                too_long = PermanentError(
                    f"The text needs {sms.segments} SMS parts; Intelecom sends at most "
                    f"{MAX_PARTS} (918 GSM characters, or 402 for Unicode text). Shorten the text.",
                    code="too-long",
                )
                results[sms.message_id] = SendResult(
                    sms.message_id, error=too_long, raw_code=too_long.code
                )
                continue
            values = {**address_values(sms), "service_id": self.settings.service_id}
            emails.append(
                Email(
                    sms.message_id,
                    render(email.intelecom_address, values),
                    "",
                    sms.text,
                )
            )
        for result in await send_emails(email, emails):
            results[result.message_id] = result
        return [results[sms.message_id] for sms in batch]


def _all_failed(batch: Sequence[OutboundSms], error: ProviderError) -> list[SendResult]:
    return [SendResult(sms.message_id, error=error, raw_code=error.code) for sms in batch]


MODULE = ModuleInfo(
    "intelecom",
    "Intelecom (Puzzel)",
    "Puzzel (formerly Intelecom) SMS gateway, REST API. Give Puzzel support the delivery-report "
    "and inbound URLs of this module.",
    IntelecomSettings,
    IntelecomProvider,
)


ORIGINAL_MODULE = ModuleInfo(
    "original_intelecom",
    "Original Intelecom",
    "Intelecom SMS gateway, by web service or by e-mail (on-site installations).",
    OriginalIntelecomSettings,
    OriginalIntelecomProvider,
)
