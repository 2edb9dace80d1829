"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, for tests.

It can ask for a login, offer STARTTLS or speak TLS from the start, refuse chosen recipients
with a chosen reply, and be stopped and started again on the same port (a mail server that
goes away and comes back).
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from smsdesk.testing import free_port


@dataclass(frozen=True)
class ReceivedEmail:
    """One e-mail as it arrived: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        """The text, with SMTP's CRLF line ends and the final line end taken off."""
        content: str = self.message.get_content()
        return content.replace("\r\n", "\n").removesuffix("\n")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key, as PEM files in `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpInbox:
    """An aiosmtpd server in its own thread; `messages` holds what it accepted."""

    def __init__(
        self,
        *,
        login: tuple[str, str] | None = None,
        tls: Literal["none", "starttls", "tls"] = "none",
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.login = login
        self.tls = tls
        self.port = free_port()
        self.hostname = "127.0.0.1"
        self.messages: list[ReceivedEmail] = []
        self.refusals: dict[str, str] = {}
        self.logins = 0
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        if tls != "none":
            assert certificate is not None, "TLS needs a certificate"
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(*certificate)
        self._controller: Controller | None = None

    def refuse(self, address: str, reply: str) -> None:
        """Answer RCPT TO `address` with `reply`, e.g. '550 5.1.1 No such user'."""
        self.refusals[address] = reply

    def start(self) -> SmtpInbox:
        kwargs: dict[str, Any] = {}
        if self.login is not None:
            # aiosmtpd warns about a login required over plain text, so without TLS the login
            # is enforced at RCPT instead.
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = kwargs["auth_require_tls"] = self.tls != "none"
        if self.tls == "starttls":
            kwargs.update(tls_context=self._context, require_starttls=True)
        elif self.tls == "tls":
            kwargs["ssl_context"] = self._context
        self._controller = Controller(self, hostname=self.hostname, port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpInbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def received(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self.messages)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.login is not None
        ok = (
            isinstance(auth_data, LoginPassword)
            and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            )
            == self.login
        )
        if ok:
            with self._lock:
                self.logins += 1
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.login is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = self.refusals.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"
