"""Sending one e-mail through the configured SMTP server (aiosmtplib, asyncio-native, so a slow
mail server holds no thread).

Every failure comes back as `MailFailed` with words for the administrator; the password is
never part of them.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from smsdesk.domain.email_settings import EmailSettings

TIMEOUT_SECONDS = 20.0


class MailFailed(Exception):
    """The e-mail was not accepted; `str()` says why (safe to show and keep)."""


def build_message(settings: EmailSettings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


async def send_email(
    settings: EmailSettings,
    to: str,
    subject: str,
    body: str,
) -> None:
    """Hand one e-mail to the SMTP server; raise MailFailed when it is not accepted."""
    if not settings.configured:
        raise MailFailed("No SMTP server is set in the SMS configuration's e-mail section.")
    password = settings.password.get_secret_value()
    try:
        tls_context = (
            ssl.create_default_context(cafile=settings.ca_file or None)
            if settings.security != "none"
            else None
        )
    except (OSError, ssl.SSLError) as exc:
        unreadable = f"Trusted certificates '{settings.ca_file}' cannot be read ({exc})."
        raise MailFailed(unreadable) from None
    try:
        await aiosmtplib.send(
            build_message(settings, to, subject, body),
            hostname=settings.host,
            port=settings.port,
            username=settings.username or None,
            password=(password or None) if settings.username else None,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=tls_context,
            timeout=TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        reasons = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        raise MailFailed(f"The mail server refused {to}: {reasons}") from None
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise MailFailed(f"The mail server refused the login: {exc.code} {exc.message}") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailFailed(f"The mail server answered {exc.code} {exc.message}") from None
    except aiosmtplib.SMTPException as exc:
        raise MailFailed(_words(exc, settings)) from None
    except (OSError, ssl.SSLError) as exc:
        raise MailFailed(_words(exc, settings)) from None


def _words(exc: BaseException, settings: EmailSettings) -> str:
    where = f"{settings.host}:{settings.port}"
    text = str(exc) or type(exc).__name__
    password = settings.password.get_secret_value()
    if password:
        text = text.replace(password, "********")
    return f"Could not send through {where}: {text}"
