"""A real SMTP server for local mode: it accepts every message, keeps it as an .eml
file and serves the sent mail as JSON over HTTP, so people and tests can read it.

    GET  /messages      every message received, oldest first (?to=<address> keeps those to it)
    DELETE /messages    forget them all
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller


class MaildirHandler:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def read_messages(folder: Path, to: str | None = None) -> list[dict]:
    messages = []
    for path in sorted(folder.glob("*.eml")):
        raw = path.read_bytes()
        if to and to.encode().lower() not in raw.lower():
            continue  # cheap pre-filter: parsing every message grows slow as the sink fills
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if to and to.lower() not in str(msg["To"] or "").lower():
            continue
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        messages.append({
            "id": path.stem, "from": msg["From"], "to": msg["To"], "subject": msg["Subject"],
            "date": msg["Date"], "message_id": msg["Message-ID"],
            "headers": {k: str(v) for k, v in msg.items()},
            "text": text.get_content() if text else "", "html": html.get_content() if html else "",
        })
    return messages


def http_handler(folder: Path):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            if url.path.rstrip("/") in ("/messages", ""):
                to = parse_qs(url.query).get("to", [None])[0]
                self._send(200, read_messages(folder, to))
            elif url.path == "/messages/count":  # without parsing: the sink holds a whole test run's mail
                self._send(200, {"count": sum(1 for _ in folder.glob("*.eml"))})
            elif self.path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": "not found"})

        def do_DELETE(self):  # noqa: N802
            for path in folder.glob("*.eml"):
                path.unlink()
            self._send(200, {"deleted": True})

        def log_message(self, *args):  # keep the sink quiet
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--folder", default=".local/mail")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    smtp = Controller(MaildirHandler(folder), hostname=args.host, port=args.smtp_port)
    smtp.start()
    web = ThreadingHTTPServer((args.host, args.http_port), http_handler(folder))
    threading.Thread(target=web.serve_forever, daemon=True).start()
    print(f"smtp sink: smtp://{args.host}:{args.smtp_port}, mail at http://{args.host}:{args.http_port}/messages",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    web.shutdown()
    smtp.stop()


if __name__ == "__main__":
    main()
