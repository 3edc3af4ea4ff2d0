"""A real HTTP receiver of the portal's webhooks, on 127.0.0.1 in a thread: unit, state and e2e tests send to it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cf_portal.services import webhooks


class Receiver:
    """A real HTTP server on 127.0.0.1 that checks each delivery's signature with the secret of its path
    ("/hooks/<endpoint id>") and answers with the next scripted status (or sleeps past the worker's timeout)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.script: list[int | str] = []  # status codes, or "sleep"; then 200
        self.received: list[dict] = []  # verified deliveries: path, event, headers
        self.refused = 0  # deliveries whose signature did not verify
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    answer = receiver.script.pop(0) if receiver.script else 200
                    secret = receiver.secrets.get(self.path, "")
                if answer == "sleep":
                    time.sleep(1.5)
                    answer = 200
                if not webhooks.verify_signature(secret, self.headers.get("CF-Signature", ""), body):
                    with receiver.lock:
                        receiver.refused += 1
                    answer = 400
                elif answer == 200:
                    with receiver.lock:
                        receiver.received.append({"path": self.path, "event": json.loads(body),
                                                  "headers": dict(self.headers)})
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, endpoint_key: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/{endpoint_key}"

    def events(self, path: str | None = None) -> list[dict]:
        return [r["event"] for r in self.received if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout_s: float = 45) -> list[dict]:
        """The verified deliveries once there are `count` of them (a worker in another process sends them)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.2)
        raise AssertionError(f"{len(self.received)} verified deliveries within {timeout_s} s, expected {count} "
                             f"({self.refused} refused)")
