"""E-mail to SMS: each SMS goes as one e-mail over SMTP to an e-mail-to-SMS gateway.

Gateways differ in where they want the number and the text, so the address, subject and body
are templates. The defaults follow what most gateways document: the number in the address, the
text as the plain-text body, and an empty subject (several gateways append the subject to the
SMS, and others ignore it, so an empty one never changes the text). A gateway that wants a
password or a sender in the subject gets it through `subject_template`.

The same settings serve the *Original Intelecom* module when its *Use web service* is off
(`intelecom_address`): the installation's e-mail settings, as in the original product.

An e-mail gateway answers nothing but the SMTP reply, so the module has no delivery reports and
no inbound SMS; a message ends *sent* once the SMTP server took it. SMTP replies map to the
error tree of `smsdesk.providers.base`::

    535 and other AUTH failures, 530, 5xx on MAIL FROM,
    TLS failures, STARTTLS missing                  AuthenticationError (settings are wrong)
    4xx replies, timeouts, refused connections      TemporaryError
    5xx on RCPT TO (550, 553, ...) or on DATA       PermanentError with the server's code and text

How certain a failure is (see `providers.base`): a failure to connect, TLS, the login, and a
refusal of MAIL FROM or RCPT TO come before the gateway had the message (`not_taken`); a
refusal after DATA, a timeout or a dropped connection while an e-mail was being sent are
ambiguous (the gateway may have taken it). The e-mails of a batch not yet started when the
connection failed were not taken.
"""

from __future__ import annotations

import ssl
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import ClassVar, Literal

import aiosmtplib
from pydantic import Field, SecretStr, field_validator

from smsdesk.domain.sms import ModuleSettings, OutboundSms
from smsdesk.providers.base import (
    AuthenticationError,
    ModuleInfo,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    TemporaryError,
    Transport,
)
from smsdesk.providers.fields import number_field, secret_field, text_field
from smsdesk.providers.http import short

ADDRESS_FIELDS = frozenset({"number", "e164", "message_id"})
TEXT_FIELDS = ADDRESS_FIELDS | {"text", "sender"}
INTELECOM_FIELDS = ADDRESS_FIELDS | {"service_id"}
# PuzzelSolutions/SMS sections/interfaces/smtp.md: "<recipient>-<serviceid>@smsmail.intele.com".
INTELECOM_ADDRESS = "{number}-{service_id}@smsmail.intele.com"
_SAMPLE = {
    "number": "4741000000",
    "e164": "+4741000000",
    "message_id": "m1",
    "text": "Hello",
    "sender": "Smsdesk",
    "service_id": "1000",
}


def template_fields(template: str, allowed: frozenset[str]) -> str:
    """`template` if it uses only `allowed` placeholders; ValueError naming what is wrong."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"The template is not valid ({exc}); write a literal brace as {{{{ or }}}}."
        ) from None
    names = ", ".join("{" + name + "}" for name in sorted(allowed))
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(f"Unknown placeholder {{{shown}}}; use only {names}.")
    return template


def _address_template(template: str, allowed: frozenset[str]) -> str:
    template_fields(template.strip(), allowed)
    if template.strip():
        rendered = template.strip().format_map(_SAMPLE)
        local, at, domain = rendered.rpartition("@")
        if not (at and local and "." in domain) or any(c.isspace() for c in rendered):
            raise ValueError(
                f"'{template}' does not make an e-mail address (e.g. {{number}}@gateway.example)."
            )
    return template.strip()


class EmailGatewaySettings(ModuleSettings):
    """The SMTP server to send through and how each SMS becomes an e-mail."""

    plugin_keys: ClassVar[dict[str, str]] = {}

    smtp_host: str = text_field(
        "SMTP server",
        "Host name or IP address of the mail server that relays to the gateway.",
        max_length=255,
        pattern=r"^[^\s/]*$",
    )
    smtp_port: int = number_field(
        587, "SMTP port", "587 for STARTTLS, 465 for TLS, 25 for a plain relay.", ge=1, le=65535
    )
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        title="Security",
        description="starttls: upgrade to TLS after connecting (port 587); tls: TLS from the "
        "start (port 465); none: no encryption (only on a trusted network).",
    )
    smtp_username: str = text_field(
        "SMTP user name",
        "Empty: send without logging in (a relay that trusts this machine).",
        max_length=255,
    )
    smtp_password: SecretStr = secret_field("SMTP password", "The password of the SMTP user.")
    from_address: str = text_field(
        "From address",
        "The sender of the e-mails; gateways often accept only known senders.",
        max_length=255,
        pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$",
    )
    to_template: str = text_field(
        "To address",
        "The gateway address for one SMS. Placeholders: {number} (the number in "
        "international form without '+'), {e164} (with '+'), {message_id}. "
        "Example: {number}@gateway.example",
        max_length=255,
    )
    subject_template: str = text_field(
        "Subject",
        "Usually empty: many gateways ignore the subject or add it to the SMS. "
        "Placeholders: {sender}, {number}, {e164}, {message_id}, {text}.",
        max_length=255,
    )
    body_template: str = text_field(
        "Body",
        "The e-mail text; {text} is the SMS. Other placeholders: {sender}, "
        "{number}, {e164}, {message_id}.",
        max_length=2000,
        default="{text}",
    )
    intelecom_address: str = Field(
        INTELECOM_ADDRESS,
        max_length=255,
        title="Intelecom gateway address",
        description="Where the Original Intelecom module sends each SMS when its Use web "
        "service is off. Placeholders: {number}, {e164}, {service_id}, {message_id}.",
    )
    ca_file: str = text_field(
        "Trusted certificates",
        "Path of a PEM file with the certificate authority of the SMTP server, "
        "when it is not publicly trusted (e.g. an in-house CA). Empty: the system's.",
        max_length=1000,
    )
    timeout: float = number_field(
        15.0,
        "Timeout (seconds)",
        "How long to wait for the SMTP server before trying again later.",
        gt=0,
        le=300,
    )

    @field_validator("to_template")
    @classmethod
    def _to_address(cls, value: str) -> str:
        return _address_template(value, ADDRESS_FIELDS)

    @field_validator("intelecom_address")
    @classmethod
    def _intelecom_address(cls, value: str) -> str:
        return _address_template(value, INTELECOM_FIELDS)

    @field_validator("subject_template", "body_template")
    @classmethod
    def _text(cls, value: str) -> str:
        return template_fields(value, TEXT_FIELDS)


@dataclass(frozen=True, slots=True)
class Email:
    """One SMS as the e-mail that carries it."""

    message_id: str
    to: str
    subject: str
    body: str


def address_values(sms: OutboundSms) -> dict[str, str]:
    """The placeholders every template may use."""
    return {"number": sms.to.removeprefix("+"), "e164": sms.to, "message_id": sms.message_id}


def missing_smtp(settings: EmailGatewaySettings) -> list[str]:
    """Titles of the fields without which no e-mail can be sent."""
    return [
        title
        for title, value in (
            ("SMTP server", settings.smtp_host),
            ("From address", settings.from_address),
        )
        if not value
    ]


def message_id_header(settings: EmailGatewaySettings, message_id: str) -> str:
    """The Message-ID of the e-mail for one SMS: our id at the sender's domain."""
    domain = settings.from_address.rpartition("@")[2] or "smsdesk.invalid"
    return f"<{message_id}@{domain}>"


def _message(settings: EmailGatewaySettings, email: Email) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = email.to
    # Header values must be one line; a text with line breaks stays whole in the body.
    message["Subject"] = " ".join(email.subject.split())
    message["Message-ID"] = message_id_header(settings, email.message_id)
    message.set_content(email.body, charset="utf-8")
    return message


def _tls_context(settings: EmailGatewaySettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=settings.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise AuthenticationError(
            f"Trusted certificates '{settings.ca_file}' cannot be read ({exc}): give the path "
            "of a PEM file, or leave it empty.",
            code="tls",
        ) from None


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def classify(
    exc: Exception, settings: EmailGatewaySettings, *, sending: bool = False
) -> ProviderError:
    """Our error for what the SMTP client raised, with the server's code and text.

    `sending` says an e-mail was on its way when it happened: a timeout or a dropped
    connection is then ambiguous rather than not taken.
    """
    error = _classified(exc, settings)
    if isinstance(error, AuthenticationError | PermanentError):
        return error
    before_data = isinstance(
        exc,
        aiosmtplib.SMTPSenderRefused
        | aiosmtplib.SMTPRecipientRefused
        | aiosmtplib.SMTPRecipientsRefused,
    )
    error.not_taken = before_data or not (sending or isinstance(exc, aiosmtplib.SMTPDataError))
    error.connection_level = not before_data
    return error


def _classified(exc: Exception, settings: EmailGatewaySettings) -> ProviderError:
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    tls = _tls_failure(exc)
    if tls is not None:
        return AuthenticationError(
            f"TLS with the SMTP server {server} failed ({tls.reason or tls}): check Security "
            "(tls for port 465, starttls for 587) and that the server's certificate is trusted "
            "(Trusted certificates).",
            code="tls",
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or (
        isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 530
    ):
        return AuthenticationError(
            f"The SMTP server {server} refused the login ({exc.code} {short(exc.message)}): "
            "check SMTP user name and SMTP password in the e-mail module settings.",
            code=str(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TemporaryError(
            f"The SMTP server {server} did not answer within {settings.timeout:g} s.",
            code="timeout",
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_error(exc, server)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        said = str(getattr(exc, "message", None) or exc).rstrip(".")
        return TemporaryError(f"Cannot reach the SMTP server {server}: {said}.", code="connection")
    if isinstance(exc, aiosmtplib.SMTPException):
        # What is left is the server lacking what the settings ask for (STARTTLS, AUTH).
        return AuthenticationError(
            f"The SMTP server {server} cannot do what the settings ask "
            f"({exc.message.rstrip('.')}): check Security and SMTP user name.",
            code="not-supported",
        )
    raise exc


def _reply_error(exc: aiosmtplib.SMTPResponseException, server: str) -> ProviderError:
    said = f"{exc.code} {short(exc.message)}"
    if 400 <= exc.code < 500:
        return TemporaryError(f"The SMTP server {server} answered {said}.", code=str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return AuthenticationError(
            f"The SMTP server {server} refused the From address {exc.sender} ({said}): enter "
            "an address it accepts.",
            code=str(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return PermanentError(
            f"The SMTP server refused the gateway address {exc.recipient}: {said}",
            code=str(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return PermanentError(f"The SMTP server refused the e-mail: {said}", code=str(exc.code))
    return TemporaryError(f"The SMTP server {server} answered {said}.", code=str(exc.code))


def _refused(exc: aiosmtplib.SMTPRecipientsRefused) -> Exception:
    return exc.recipients[0] if exc.recipients else aiosmtplib.SMTPException(str(exc))


async def send_emails(settings: EmailGatewaySettings, emails: Sequence[Email]) -> list[SendResult]:
    """Send each e-mail over one SMTP connection; one result per e-mail, in order.

    A refusal of one e-mail fails only that e-mail; a failure of the connection or the login
    gives the e-mails not yet sent that error, so they are tried again later.
    """
    missing = missing_smtp(settings)
    if missing:
        error: ProviderError = AuthenticationError(
            f"The e-mail module is not configured: enter {', '.join(missing)} in its settings.",
            code="settings",
        )
        return [SendResult(e.message_id, error=error, raw_code=error.code) for e in emails]
    results: list[SendResult] = []
    sending = False
    try:
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=_tls_context(settings) if settings.security != "none" else None,
        )
        async with client:
            if settings.smtp_username:
                await client.login(
                    settings.smtp_username, settings.smtp_password.get_secret_value()
                )
            for email in emails:
                sending = True
                results.append(await _send_one(client, settings, email))
                sending = False
    except ProviderError as exc:
        error = unsent = exc
    except Exception as exc:
        error = classify(exc, settings, sending=sending)
        unsent = classify(exc, settings)
    else:
        return results
    if sending:
        current = emails[len(results)]
        results.append(SendResult(current.message_id, error=error, raw_code=error.code))
    results.extend(
        SendResult(e.message_id, error=unsent, raw_code=unsent.code) for e in emails[len(results) :]
    )
    return results


async def _send_one(
    client: aiosmtplib.SMTP, settings: EmailGatewaySettings, email: Email
) -> SendResult:
    """Send one e-mail; a refusal of this e-mail alone becomes its result."""
    message = _message(settings, email)
    try:
        await client.send_message(message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusal = _refused(exc)
    except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
        refusal = exc
    else:
        return SendResult(email.message_id, str(message["Message-ID"]))
    error = classify(refusal, settings)
    if isinstance(error, AuthenticationError):
        raise error
    return SendResult(email.message_id, error=error, raw_code=error.code)


def render(template: str, values: Mapping[str, str]) -> str:
    """A validated template with its placeholders filled in."""
    return template.format_map(values)


class EmailGatewayProvider(Provider):
    """The *E-mail to SMS* module."""

    transport = Transport.SMTP
    without_fake = (
        "It speaks SMTP, not HTTP: tests/providers/test_email.py sends through an aiosmtpd "
        "server the test starts."
    )
    max_batch: ClassVar[int] = 20
    settings: EmailGatewaySettings

    async def send(self, batch: Sequence[OutboundSms]) -> list[SendResult]:
        s = self.settings
        if not s.to_template:
            error = AuthenticationError(
                "The e-mail module has no To address: enter the gateway's address template "
                "(e.g. {number}@gateway.example) in its settings.",
                code="settings",
            )
            return [SendResult(sms.message_id, error=error, raw_code=error.code) for sms in batch]
        emails = []
        for sms in batch:
            values = {**address_values(sms), "text": sms.text, "sender": sms.sender}
            emails.append(
                Email(
                    sms.message_id,
                    render(s.to_template, values),
                    render(s.subject_template, values),
                    render(s.body_template, values),
                )
            )
        return await send_emails(s, emails)


MODULE = ModuleInfo(
    "email",
    "E-mail to SMS",
    "Each SMS as an e-mail to an e-mail-to-SMS gateway over SMTP. No delivery reports or "
    "inbound SMS. Also the SMTP settings of Original Intelecom without web service.",
    EmailGatewaySettings,
    EmailGatewayProvider,
)
