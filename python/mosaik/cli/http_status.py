"""`mosaik node --metrics HOST:PORT`: the node's metrics, status and health over HTTP.

- ``GET /metrics``: Prometheus text format (`mosaik.metrics`);
- ``GET /status``: JSON, what `mosaik status` prints;
- ``GET /healthz``: 200 while the node is online in its group, 503 otherwise.

The server runs on a thread of its own; every answer reads the node's state
as it is at that moment.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..group import Group
from ..network import Network
from .errors import CliError
from .node_status import NodeStatus


def status_document(net: Network, group: Group[Any]) -> dict[str, Any]:
    """What ``/status`` answers."""
    status = NodeStatus.of(group)
    position = group.log_position()
    return {
        "pid": os.getpid(),
        "id": str(net.local.id),
        "address": str(net.local.addr),
        "network": str(net.network_id),
        "group": str(group.id),
        **status.to_json(),
        "online": group.is_online(),
        "applied": group._replica.applied,
        "peers": [str(peer) for peer in group.bonds().peer_ids()],
        "log": {"last_index": position.index, "last_term": position.term},
    }


class StatusServer:
    """Serves the three paths for one node until `close`."""

    def __init__(self, net: Network, group: Group[Any], host: str, port: int) -> None:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

            from .. import metrics
        except ImportError:
            raise CliError(
                "--metrics needs prometheus_client, from the extra mosaik[metrics]: install "
                "this project's wheel as 'mosaik-<version>-<tags>.whl[metrics]', or run "
                "pip install '.[metrics]' in a checkout (PyPI's 'mosaik' is another project)"
            ) from None
        registry = CollectorRegistry()
        metrics.register(net, registry)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/status":
                    body = json.dumps(status_document(net, group), indent=2).encode() + b"\n"
                    self._send(200, "application/json", body)
                elif path == "/healthz":
                    online = group.is_online()
                    body = b"online\n" if online else b"offline\n"
                    self._send(200 if online else 503, "text/plain; charset=utf-8", body)
                else:
                    self._send(404, "text/plain; charset=utf-8", b"/metrics, /status, /healthz\n")

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: a scrape every few seconds is not news."""

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise CliError(f"--metrics {host}:{port}: {exc.strerror or exc}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mosaik-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


__all__ = ["StatusServer", "status_document"]
