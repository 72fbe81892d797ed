"""Run the application with uvicorn until SIGINT or SIGTERM, saying where it listens once it does."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from wenda.index.knowledge import KnowledgeBase
from wenda.retrieval.retriever import Retriever

from .app import create_app
from .settings import ServeSettings


class Server(uvicorn.Server):
    """uvicorn's server, announcing the address it bound (a port of 0 means any free one) on stderr, and
    exiting normally after SIGINT or SIGTERM (uvicorn re-raises the signal once shut down: status -15)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {number: signal.signal(number, self.handle_exit) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    async def startup(self, sockets=None) -> None:  # noqa: ANN001 - uvicorn's signature
        await super().startup(sockets)
        if self.started:
            for server in self.servers:
                for socket in server.sockets:
                    host, port = socket.getsockname()[:2]
                    shown = f"[{host}]" if ":" in host else host
                    print(f"wenda: serving on http://{shown}:{port} (API documentation at /docs)", file=sys.stderr)
            sys.stderr.flush()


def serve(retriever: Retriever, settings: ServeSettings, bases: dict[str, KnowledgeBase] | None = None) -> int:
    """Serve until stopped; in-flight requests finish (up to 10 s) before the process exits."""
    config = uvicorn.Config(
        create_app(retriever, settings, bases),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
        # X-Forwarded-For only from the proxies named in WENDA_SERVE_TRUSTED_PROXIES: uvicorn believes any
        # client on 127.0.0.1 by default, which let a local client choose its address for the rate limit
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
    )
    Server(config).run()
    return 0
