"""A local HTTP server playing the group bots' webhook endpoints, recording what it gets.

Paths `/wecom`, `/dingtalk`, `/feishu` answer as those services document (`errcode` 0,
`code` 0) and check the DingTalk and Feishu signatures with `secret` as the services would;
any other path answers 200 with `{}` (a generic JSON webhook). `fail_next` makes the next
requests fail (HTTP 500, or the bot's own error code with `fail_with_code`); `stall_s`
holds each answer back that long (a webhook that hangs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class WebhookReceiver:
    secret: str = ""
    fail_next: int = 0
    fail_with_code: bool = False
    stall_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                receiver._handle(self, raw)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.received if r.path == path]

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if self.stall_s:
            time.sleep(self.stall_s)
        with self._lock:
            self.attempts += 1
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        if failing and not self.fail_with_code:
            self._answer(handler, 500, {"error": "try later"})
            return
        body = json.loads(raw.decode("utf-8"))
        code, reply = 0, {}
        if failing:
            code = 45009  # WeCom's "api freq out of limit", DingTalk's is 130101
        elif path == "/dingtalk" and self.secret and not self._dingtalk_signed(query):
            code = 310000  # DingTalk: sign not match
        elif path == "/feishu" and self.secret and not self._feishu_signed(body):
            code = 19021  # Feishu: sign match fail or timestamp is not within one hour
        if path in ("/wecom", "/dingtalk"):
            reply = {"errcode": code, "errmsg": "ok" if code == 0 else "refused"}
        elif path == "/feishu":
            reply = {"code": code, "msg": "success" if code == 0 else "refused", "data": {}}
        if code == 0:
            with self._lock:
                self.received.append(Received(path, query, body, time.time()))
        self._answer(handler, 200, reply)

    def _dingtalk_signed(self, query: dict[str, str]) -> bool:
        stamp = query.get("timestamp", "")
        want = hmac.new(
            self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256
        ).digest()
        fresh = stamp.isdigit() and abs(int(stamp) / 1000 - time.time()) < 3600
        return fresh and query.get("sign") == base64.b64encode(want).decode()

    def _feishu_signed(self, body: dict[str, Any]) -> bool:
        stamp = str(body.get("timestamp", ""))
        key = f"{stamp}\n{self.secret}".encode()
        want = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        fresh = stamp.isdigit() and abs(int(stamp) - time.time()) < 3600
        return fresh and body.get("sign") == want

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, reply: dict[str, Any]) -> None:
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
