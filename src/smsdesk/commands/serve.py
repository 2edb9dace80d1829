"""`smsdesk serve` and `smsdesk worker`: the long-running processes.

`serve` holds the web app, the provider callbacks and (by default) a dispatcher; `worker` holds
only a dispatcher, so more of them can share one PostgreSQL outbox.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import gc
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from smsdesk.commands.common import (
    ClaimBatch,
    DatabaseUrl,
    DataDir,
    LeaseSeconds,
    LogFormat,
    LogLevel,
    PollInterval,
    WorkerId,
    err,
    fail,
    make_config,
    public_url_option,
    start_service,
)
from smsdesk.commands.serve_processes import (
    again_with_shared_metrics,
    api_processes,
    owned_metrics_directory,
)
from smsdesk.service import Service
from smsdesk.siblings import READY, ParentLink

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn
    from starlette.types import ASGIApp


# New container objects between two collections of the youngest generation (Python's default
# is 700); see `settle_startup_objects`.
YOUNG_COLLECTION_THRESHOLD = 10_000


def register(app: typer.Typer) -> None:
    """Add `serve` and `worker` as top-level commands of `app`."""
    app.command()(serve)
    app.command()(worker)


def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[
        str, typer.Option(envvar="SMSDESK_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SMSDESK_PORT", help="Port to listen on.")] = 8080,
    public_url: Annotated[
        str | None, public_url_option("URL providers reach this service at.")
    ] = None,
    dispatcher: Annotated[
        bool, typer.Option(envvar="SMSDESK_DISPATCHER", help="Run the dispatcher in this process.")
    ] = True,
    worker_id: WorkerId = None,
    lease_seconds: LeaseSeconds = None,
    poll_interval: PollInterval = None,
    claim_batch: ClaimBatch = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "json",
    processes: Annotated[
        int,
        typer.Option(
            envvar="SMSDESK_PROCESSES",
            min=1,
            max=64,
            help="Processes serving the web app on the one port. With more than 1, the first "
            "process runs only the dispatcher and the background jobs and starts the others.",
        ),
    ] = 1,
    parent_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run the API, the provider callbacks and the dispatcher (with --processes N, N API
    processes sharing the port and one process for the dispatcher)."""
    from smsdesk import logs, metrics

    shared = metrics.shared_directory()
    if shared is not None and not os.path.isdir(shared):
        fail(
            escape(
                f"{metrics.SHARED_DIRECTORY}={shared} is not a directory: create it (empty) "
                "or unset the variable"
            )
        )
    if processes > 1 and parent_fd is None and shared is None:
        again_with_shared_metrics()
    own_metrics = owned_metrics_directory()
    if own_metrics is not None:
        atexit.register(shutil.rmtree, own_metrics, ignore_errors=True)
    logs.configure(log_level, log_format)
    if parent_fd is not None:
        dispatcher = False  # an API process of a `serve --processes N`
    config = make_config(
        data_dir,
        database_url,
        host=host,
        port=port,
        public_url=public_url,
        dispatcher=dispatcher,
        worker_id=worker_id,
        lease_seconds=lease_seconds,
        poll_interval=poll_interval,
        claim_batch=claim_batch,
    )
    listener = listening_socket(host, port, shared=processes > 1 or parent_fd is not None)
    service = start_service(config)
    if parent_fd is not None:
        service.parent_link = ParentLink(socket.socket(fileno=parent_fd))
        _serve_http(service, listener, host, port)
        return
    _first_run_hints(service)
    bound = listener.getsockname()[1]
    url = config.effective_public_url(bound)
    listening = f"smsdesk listening on {url}  (API docs: {url}/docs)"
    if processes == 1:
        print(listening, file=sys.stderr, flush=True)
        _serve_http(service, listener, host, port)
        return
    service.siblings = api_processes(config, bound, processes, log_level, log_format)
    _run_until_stopped(
        service,
        dispatcher=config.dispatcher,
        api=False,
        started=lambda: print(f"{listening} in {processes} processes", file=sys.stderr, flush=True),
    )
    listener.close()


def _serve_http(service: Service, listener: socket.socket, host: str, port: int) -> None:
    """The web app on `listener` until SIGINT or SIGTERM (or, in an API process of a
    `serve --processes N`, until the first process is gone)."""
    from smsdesk.web.app import create_app

    server = _http_server(create_app(service), host, port)
    settle_startup_objects()
    _end_live_streams_on_exit(server, service)
    if service.parent_link is not None:
        _stop_with_first_process(server, service.parent_link)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, restores the handlers it found and then
    # raises the signal again; with the default handlers that ends the process "killed by
    # SIGTERM" (or KeyboardInterrupt, exit 1) after a clean stop. Finding its own handler
    # there makes that last step a no-op, so a finished shutdown exits 0; a signal that comes
    # before uvicorn listens still stops it gracefully.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, server.handle_exit)
    server.run(sockets=[listener])


def settle_startup_objects() -> None:
    """Keep the objects made while starting (modules, tables, the app: most of the process)
    out of the garbage collector's scans from now on.

    Each full collection walked all of them: a pause of tens of milliseconds in which no
    request is answered, which set the accept latency's 99th percentile under load (p99 about
    200 ms at 128 connections, about 95 ms with them set aside). Cycles among them are not
    collected any more; they live as long as the process anyway.

    The youngest generation is then collected after 10,000 new objects instead of 700: under
    load nearly every object a request makes is freed by its reference count, yet the default
    ran about 550 young, 50 middle and 4 full collections per 10,000 messages, 7 % of the
    event loop's time and pauses of 12-19 ms each for the full ones. With 10,000 it is about
    10 young collections and one middle one (under 40 ms in all), and a cycle of garbage
    waits at most 10,000 allocations longer to be freed."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


def listening_socket(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """The server's socket, bound before anything claims to listen: a port in use or an
    address this machine does not have ends `serve` with one plain line instead.

    `shared`: each process of a `serve --processes N` binds a socket of its own to the port
    (SO_REUSEPORT), so the kernel spreads new connections evenly over them; the first process
    binds one too, without listening on it, to hold the port and report a problem at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(escape(_bind_problem(host, port, exc)))
    sock.set_inheritable(True)
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use; stop the other process or choose "
            "another with --port / SMSDESK_PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return (
            f"cannot listen on {host}: this machine has no such address; choose another "
            "with --host / SMSDESK_HOST (127.0.0.1 for this machine only, 0.0.0.0 for all)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} on {host} (ports below 1024 need "
            "privileges); choose another with --port / SMSDESK_PORT"
        )
    return f"cannot listen on {host} port {port} ({exc.strerror or exc})"


def _end_live_streams_on_exit(server: uvicorn.Server, service: Service) -> None:
    """Open live streams (Server-Sent Events) never finish by themselves, and uvicorn waits
    for open responses before it stops: a stop request ends them first."""
    exit_server = server.handle_exit

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        service.live.close_soon()
        exit_server(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]


def _stop_with_first_process(server: uvicorn.Server, link: ParentLink) -> None:
    """An API process stops (gracefully) when the first process of its `serve` is gone."""
    started = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await started(sockets)
        link.watch(lambda: server.handle_exit(signal.SIGTERM, None))
        link.send(READY)

    server.startup = startup  # type: ignore[method-assign]


def _first_run_hints(service: Service) -> None:
    """A fresh install gets an admin API key and is told how to make a web login."""
    if not service.keys.list():
        _, plain = service.keys.create("first admin key", "admin")
        print(f"Created the first admin API key (shown only now): {plain}", file=sys.stderr)
    if not service.users.list():
        print(
            "No one can log in to the web interface yet; create an administrator with: "
            "smsdesk users create admin --role admin",
            file=sys.stderr,
        )


def _http_server(asgi_app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    """uvicorn tuned for many short API calls; smsdesk does its own logging."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            asgi_app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
            backlog=4096,
            timeout_keep_alive=30,
        )
    )


def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    public_url: Annotated[
        str | None, public_url_option("URL of the smsdesk that receives provider callbacks.")
    ] = None,
    worker_id: WorkerId = None,
    lease_seconds: LeaseSeconds = None,
    poll_interval: PollInterval = None,
    claim_batch: ClaimBatch = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "json",
) -> None:
    """Run only the dispatcher (add workers to share the outbox on PostgreSQL)."""
    from smsdesk import logs

    logs.configure(log_level, log_format)
    config = make_config(
        data_dir,
        database_url,
        public_url=public_url,
        worker_id=worker_id,
        lease_seconds=lease_seconds,
        poll_interval=poll_interval,
        claim_batch=claim_batch,
    )
    service = start_service(config)
    _run_until_stopped(service, dispatcher=True, api=False)


def _run_until_stopped(
    service: Service, *, dispatcher: bool, api: bool, started: Callable[[], None] | None = None
) -> None:
    """Run the service's background work (and its API processes, if any) until SIGINT or
    SIGTERM, then stop it in order. `started` is called once its API processes listen."""

    settle_startup_objects()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.start(dispatcher=dispatcher, api=api)
        if dispatcher:
            err.print(f"dispatcher {service.owner} running")
        if service.siblings is not None:
            ready = asyncio.create_task(service.siblings.ready())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if ready.done() and started is not None:
                started()
            ready.cancel()
        await stop.wait()
        await service.stop()

    asyncio.run(run())
