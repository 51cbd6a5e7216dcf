"""A tiny real HTTP receiver of task updates on 127.0.0.1 for the buffer's tests (http.server in a thread)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Stores updates the way the Manager does: per-worker last seq, repeats ignored."""

    def __init__(self, port: int = 0) -> None:
        self.updates: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[float] = []
        self.last_seq = 0
        self.fail_next = 0  # answer 503 to this many requests
        self.max_body: int | None = None  # a larger request's body is refused 413, as a Manager's limit does
        self.too_large = 0  # requests refused so
        self.stale_tasks: set[int] = set()
        # as a Manager that took these runs back: it refuses their updates, but takes a completion on its own
        self.taken_back_tasks: set[int] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.requests.append(time.monotonic())
                body = self.rfile.read(int(self.headers["Content-Length"]))
                m = re.fullmatch(r"/api/v1/worker/tasks/(\d+)/updates", self.path)
                if m is None:
                    return self._answer(404, {"detail": "no such path"})
                if receiver.max_body is not None and len(body) > receiver.max_body:
                    receiver.too_large += 1
                    return self._answer(413, {"detail": f"the request body ({len(body)} bytes) is over the limit"})
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    return self._answer(503, {"detail": "busy"})
                task_id = int(m.group(1))
                if task_id in receiver.stale_tasks:
                    return self._answer(409, {"detail": f"task {task_id} is stale"})
                updates = json.loads(body)["updates"]
                if task_id in receiver.taken_back_tasks:
                    if not any(u.get("status") == "completed" for u in updates):
                        return self._answer(409, {"detail": f"task {task_id} is stale"})
                    receiver.taken_back_tasks.discard(task_id)
                for update in updates:
                    if update["seq"] > receiver.last_seq:
                        receiver.updates.append((task_id, update))
                        receiver.last_seq = update["seq"]
                return self._answer(200, {"last_seq": receiver.last_seq})

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
