"""The metrics exporter: a runtime's registry served over HTTP for a
Prometheus server to scrape (the daemon runs one; so does the integration
test)."""

from __future__ import annotations

import threading
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from app.errors import ConfigError

__all__ = ["MetricsServer", "serve_metrics"]


class MetricsServer:
    """A running exporter. ``url`` is its scrape URL; :meth:`stop` (or leaving
    the ``with`` block) shuts the server down and frees the port."""

    def __init__(self, httpd: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._httpd = httpd
        self._thread = thread
        self.host = host
        self.port: int = httpd.server_port
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_metrics(
    registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0
) -> tuple[MetricsServer, int]:
    """Serve ``registry`` in the Prometheus text format at ``/metrics`` from a
    daemon thread. ``port=0`` picks a free port; the real one is returned."""
    try:
        httpd, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    server = MetricsServer(httpd, thread, host)
    return server, server.port
