"""*Send test e-mail* on the SMS configuration screen: one e-mail through the e-mail section's
settings as entered, saved or not, to the address typed (the administrator's own by default).
The outcome is shown in the e-mail section, the mail server's own words quoted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.email_settings import is_email_address
from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.notify.mailer import MailFailed, send_email
from smsdesk.sms_configuration import masked, validate_configuration
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.i18n import translations
from smsdesk.web.ui.session import admin_session, form_with_csrf, page_language
from smsdesk.web.ui.settings_form import submitted_configuration, typed_secrets, typed_view
from smsdesk.web.ui.sms_settings import PATH, _errors_by_field, _page

router = APIRouter(include_in_schema=False)


def trial_email(language: str) -> tuple[str, str]:
    """The subject and body of the test e-mail, in the administrator's language."""
    _ = translations(language).gettext
    return (
        _("smsdesk test e-mail"),
        _("This e-mail shows that smsdesk can send notifications through this mail server."),
    )


@router.post(f"{PATH}/email-test")
async def send_test_email(
    request: Request, session: WebSession = Depends(admin_session)
) -> Response:
    fields = await form_with_csrf(request, session)
    body = submitted_configuration(fields)
    to = fields.get("email_test_to", "").strip()
    service = service_of(request)
    language = page_language(request, session)
    _ = translations(language).gettext
    stored = await run_in_threadpool(service.settings.load)
    errors: dict[str, list[str]] | None = None
    result: dict[str, Any]
    try:
        config = validate_configuration(body, stored) if body else stored
    except ConfigurationInvalid as exc:
        errors = _errors_by_field(exc, _)
        result = {"outcome": "invalid_settings"}
    else:
        if not is_email_address(to):
            errors = {"email_test_to": [_("Enter an e-mail address such as anna@example.org.")]}
            result = {"outcome": "invalid_input"}
        elif not config.email.configured:
            result = {"outcome": "refused", "error": _("Enter the SMTP server first.")}
        else:
            subject, text = trial_email(language)
            try:
                await send_email(config.email, to, subject, text)
            except MailFailed as exc:
                result = {"outcome": "refused", "error": str(exc)}
            else:
                result = {"outcome": "sent", "to": to}
    return _page(
        request,
        session,
        typed_view(body, masked(stored)),
        errors=errors,
        retype=typed_secrets(body),
        email_test=result,
        email_test_to=to,
    )
