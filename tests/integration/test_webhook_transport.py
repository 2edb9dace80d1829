"""The deliverer's transport over TLS: it connects to the checked address, yet the receiver
sees its own name in Host and as the TLS server name, and its certificate is verified
against that name."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsdesk.webhooks_out.destinations import Address
from smsdesk.webhooks_out.transport import PinnedTransport

NAME = "hooks.example.com"


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A certificate for `subject`: a CA's own if `issuer` is None, else one it signed."""
    is_ca = issuer is None
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """A client context trusting a test CA, and the CA-signed certificate and key of NAME."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("smsdesk test CA", ca_key, None, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(NAME, key, ca, ca_key)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return client, cert_file, key_file


@contextlib.asynccontextmanager
async def tls_receiver(cert: Path, key: Path, hosts: list[str]) -> AsyncIterator[int]:
    """An HTTPS endpoint on 127.0.0.2 recording each request's Host header in `hosts`."""

    async def endpoint(request: Request) -> Response:
        hosts.append(request.headers["host"])
        return Response(b"ok")

    app = Starlette(routes=[Route("/events", endpoint, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.2", 0))
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.005)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


def pinned_to(address: str, context: ssl.SSLContext) -> PinnedTransport:
    """A transport whose check answers `address` for every name."""

    def check(host: str, port: int) -> Sequence[Address]:
        return [ip_address(address)]

    return PinnedTransport(check, verify=context)


async def test_tls_goes_to_the_checked_address_under_the_urls_name(
    tls: tuple[ssl.SSLContext, Path, Path],
) -> None:
    context, cert, key = tls
    hosts: list[str] = []
    async with (
        tls_receiver(cert, key, hosts) as port,
        httpx.AsyncClient(transport=pinned_to("127.0.0.2", context)) as client,
    ):
        answer = await client.post(f"https://{NAME}:{port}/events", content=b"{}")
        assert answer.status_code == 200
        # The same address under another name: its certificate does not match that name.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.post(f"https://crm.example.net:{port}/events", content=b"{}")
    assert hosts == [f"{NAME}:{port}"]
