"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests of the real bot process.

It answers the methods the bot calls, records every request, hands out injected updates through
getUpdates (long polling), and can be told to fail the next calls of a method (429, 500, …). Files a test
registers (`document`) are served like Telegram's: getFile gives a file_path, and GET /file/bot<token>/<file_path>
the bytes; every download is counted (`downloads`).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote

BOT_USER = {
    "id": 999000,
    "is_bot": True,
    "first_name": "Wenda",
    "username": "wenda_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": True,
}


def decode(value: str):
    """PTB sends scalars as text and objects as JSON text."""
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeTelegram:
    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[tuple[str, dict]] = []
        self.updates: list[dict] = []
        self.faults: dict[str, list[tuple[int, dict]]] = {}
        self.confirmed = 0  # the highest getUpdates offset seen
        self.files: dict[str, bytes] = {}  # file_id → bytes, served through getFile and the file URL
        self.downloads: list[str] = []  # file_ids in the order their bytes were fetched
        self.condition = threading.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def __enter__(self) -> FakeTelegram:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what tests call -------------------------------------------------------------------------
    def start_bot(self, *args: str, env: dict[str, str], log=subprocess.DEVNULL) -> subprocess.Popen:
        """The real `wenda telegram` process, talking to this server; `env` adds WENDA_* settings."""
        root = Path(__file__).resolve().parent.parent
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_API_BASE_URL": self.base_url,
            **env,
        }
        command = [sys.executable, "-m", "wenda.bot.cli", "telegram", *args]
        return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)

    @contextmanager
    def running_bot(self, *args: str, env: dict[str, str], log=subprocess.DEVNULL) -> Iterator[subprocess.Popen]:
        """`start_bot`, ready once it registered its commands, and stopped when the block ends."""
        registered = len(self.calls("setMyCommands"))
        process = self.start_bot(*args, env=env, log=log)
        try:
            self.wait_for("setMyCommands", count=registered + 1, timeout=120)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)

    def fail(self, method: str, status: int | str, times: int = 1, retry_after: int | None = None) -> None:
        """The next `times` calls of `method` fail: an HTTP status, or "drop" (connection closed without an
        answer), "garbage" (200 with a body that is not JSON) or "slow" (a normal answer after 3 s)."""
        body = {"ok": False, "error_code": status, "description": f"Fake failure {status}"}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
            body["description"] = f"Too Many Requests: retry after {retry_after}"
        with self.condition:
            self.faults.setdefault(method, []).extend([(status, body)] * times)

    def recover(self, method: str) -> None:
        """Drop the faults still queued for `method`."""
        with self.condition:
            self.faults.pop(method, None)

    def push(self, **update: object) -> int:
        with self.condition:
            update_id = next(self._update_ids)
            self.updates.append({"update_id": update_id, **update})
            self.condition.notify_all()
        return update_id

    def message(
        self,
        user: int,
        text: str | None,
        chat: int | None = None,
        chat_type: str = "private",
        entities: list | None = None,
        reply_to: dict | None = None,
        **extra: object,
    ) -> int:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {
                "id": chat if chat is not None else user,
                "type": chat_type,
                **({"title": "group"} if chat_type != "private" else {"first_name": "u"}),
            },
            "from": {"id": user, "is_bot": False, "first_name": f"user{user}"},
            **({"text": text} if text is not None else {}),
            **extra,
        }
        if entities:
            message["entities"] = entities
        if reply_to:
            message["reply_to_message"] = reply_to
        return self.push(message=message)

    def document(self, file_id: str, data: bytes, name: str | None, size: int | None = None) -> dict:
        """Register `data` under `file_id` and return the `document` of a message carrying it; `size` is the
        file_size Telegram declares (the real size unless given)."""
        with self.condition:
            self.files[file_id] = data
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data) if size is None else size,
            **({"file_name": name} if name is not None else {}),
        }

    def downloaded(self, file_id: str) -> int:
        """How often the bytes of `file_id` were fetched."""
        with self.condition:
            return self.downloads.count(file_id)

    def press(self, user: int, sent: dict, data: str) -> int:
        """A button press on a message the bot sent (`sent` is its recorded sendMessage result)."""
        return self.push(
            callback_query={
                "id": str(next(self._message_ids)),
                "chat_instance": "ci",
                "data": data,
                "from": {"id": user, "is_bot": False, "first_name": f"user{user}"},
                "message": sent,
            }
        )

    def inline(self, user: int, query: str) -> int:
        return self.push(
            inline_query={
                "id": str(next(self._message_ids)),
                "query": query,
                "offset": "",
                "from": {"id": user, "is_bot": False, "first_name": f"user{user}"},
            }
        )

    def calls(self, method: str, where: Callable[[dict], bool] = lambda p: True) -> list[dict]:
        with self.condition:
            return [params for name, params in self.requests if name == method and where(params)]

    def wait_for(
        self, method: str, where: Callable[[dict], bool] = lambda p: True, count: int = 1, timeout: float = 60
    ) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                found = [params for name, params in self.requests if name == method and where(params)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {count} {method} call(s) in {timeout} s; got {self.requests[-5:]}")
                self.condition.wait(remaining)

    # --- the server ------------------------------------------------------------------------------
    def _answer(self, method: str, params: dict, faults: bool = True) -> tuple[int | str, dict]:
        params["_received"] = time.monotonic()
        with self.condition:
            if faults:
                self.requests.append((method, params))
            self.condition.notify_all()
            queued = self.faults.get(method) if faults else None
            if queued:
                status, body = queued.pop(0)
                params["_failed"] = status
                return status, body
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._updates(params)}
        if method == "getMe":
            return 200, {"ok": True, "result": BOT_USER}
        if method == "getFile":
            file_id = str(params.get("file_id", ""))
            if file_id not in self.files:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
            result = {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_size": len(self.files[file_id]),
                "file_path": f"documents/{file_id}",
            }
            return 200, {"ok": True, "result": result}
        if method in ("sendMessage", "editMessageText"):
            chat_id = int(params.get("chat_id", 0))
            result = {
                "message_id": int(params.get("message_id") or next(self._message_ids)),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": BOT_USER,
                "text": params.get("text", ""),
            }
            if "reply_markup" in params:
                result["reply_markup"] = params["reply_markup"]
            params["_result"] = result
            return 200, {"ok": True, "result": result}
        return 200, {"ok": True, "result": True}

    def _updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        self.confirmed = max(self.confirmed, offset)  # like Telegram: updates below it are gone for good
        offset = self.confirmed
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
        with self.condition:
            while True:
                pending = [u for u in self.updates if u["update_id"] >= offset]
                if pending or time.monotonic() >= deadline:
                    return pending
                self.condition.wait(deadline - time.monotonic())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                """A file download: /file/bot<token>/documents/<file_id>."""
                prefix = f"/file/bot{fake.token}/documents/"
                path = unquote(self.path)  # the token's ":" arrives as %3A
                file_id = path[len(prefix) :] if path.startswith(prefix) else None
                with fake.condition:
                    data = fake.files.get(file_id) if file_id is not None else None
                    if data is not None:
                        fake.downloads.append(file_id)
                        fake.condition.notify_all()
                if data is None:
                    self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(raw or "{}")
                else:
                    params = {key: decode(value) for key, value in parse_qsl(raw)}
                status, body = fake._answer(self.path[len(prefix) :], params)
                if status == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if status == "garbage":
                    self._send(200, None)
                    return
                if status == "slow":
                    time.sleep(3)
                    params.pop("_failed")
                    status, body = fake._answer(self.path[len(prefix) :], params, faults=False)
                self._send(status, body)

            def _send(self, status: int, body: dict | None) -> None:
                data = json.dumps(body).encode("utf-8") if body is not None else b"<html>502 Bad Gateway"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot went away mid long-poll (it is being stopped)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
