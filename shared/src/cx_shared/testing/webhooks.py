"""A subscriber's webhook endpoint on this machine, for tests of the notifications service."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The receivers listen on this machine: plain http and loopback are allowed for them only.
LOCAL_RECEIVERS = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32"}


class Receiver:
    """A subscriber's endpoint: answers each path with a scripted sequence of statuses."""

    def __init__(self, script: dict[str, list[int]]):
        self.script, self.requests = script, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), body))
                statuses = receiver.script[self.path]
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()

    def to(self, path: str) -> list[tuple[dict, bytes]]:
        return [(h, b) for p, h, b in self.requests if p == path]
