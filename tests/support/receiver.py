"""Another system's webhook endpoint on loopback, for tests that run smsdesk as a process."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from smsdesk.testing import free_port


class WebhookReceiver:
    """Records every POST (headers and raw body) and answers 200; a thread serves it.

    With `gate`, each answer waits until the gate is set (a slow endpoint)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if gate is not None:
                    gate.wait(timeout=60)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return list(self.requests)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The envelopes received so far (of one type if given), in arrival order."""
        envelopes = [json.loads(body) for _, body in self.received()]
        return [e for e in envelopes if event_type is None or e["type"] == event_type]
