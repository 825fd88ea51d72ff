"""Real test doubles for prompt tasks: a chat-completions server on 127.0.0.1 and a stub CLI script."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ChatServer:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint that records every request.

    ``throttle_first``: the first N requests get 429 with ``Retry-After: retry_after``;
    ``throttle_body`` is the body of those 429s; ``invalid_first``: the next N answers are not JSON;
    ``delay``: seconds before each answer (to see concurrency); ``answer(prompt)`` makes the text.
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.prompts: list[str] = []
        self.auth: list[str] = []
        self.throttle_first = 0
        self.throttle_body = '{"error": {"message": "rate limit exceeded, slow down"}}'
        self.retry_after: str | None = "0.2"
        self.invalid_first = 0
        self.error_status: int | None = None
        self.delay = 0.0
        self.slow_prompts: dict[str, float] = {}  # prompt -> seconds before its answer
        self.answer = lambda prompt: f"# Answer\n\n{prompt}\n"
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/chat/completions"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def max_in_window(self, window: float = 1.0) -> int:
        """The most requests any sliding window of ``window`` seconds holds, from the server's log."""
        times = sorted(self.times)
        best = 0
        start = 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                arrived = time.time()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = body["messages"][-1]["content"]
                with server._lock:
                    server.times.append(arrived)
                    server.prompts.append(prompt)
                    server.auth.append(self.headers.get("Authorization", ""))
                    n = len(server.times)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if server.delay or prompt in server.slow_prompts:
                        time.sleep(server.slow_prompts.get(prompt, server.delay))
                    if n <= server.throttle_first:
                        headers = {"Retry-After": server.retry_after} if server.retry_after is not None else {}
                        return self._send(429, server.throttle_body, headers)
                    if server.error_status is not None:
                        return self._send(server.error_status, json.dumps(
                            {"error": f"bad key {self.headers.get('Authorization', '')}"}))
                    if n <= server.throttle_first + server.invalid_first:
                        return self._send(200, "this is not json {")
                    text = server.answer(prompt)
                    return self._send(200, json.dumps({
                        "id": f"c{n}", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())},
                    }))
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


STUB_CLI = '''\
"""A stand-in for an LLM command-line tool: prints a quota error for its first N calls, then answers."""
import os, sys
from pathlib import Path

counter = Path(os.environ.get("STUB_COUNTER", "stub-calls.txt"))
calls = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(calls))
fail_first = int(os.environ.get("STUB_QUOTA_FIRST", "0"))
prompt = sys.stdin.read() if "--stdin" in sys.argv else sys.argv[sys.argv.index("-p") + 1]
with open(str(counter) + ".log", "a") as log:
    log.write(prompt.replace("\\n", " ") + "\\n")
if calls <= fail_first:
    print("Error: 429 RESOURCE_EXHAUSTED: quota exceeded for model stub-1", file=sys.stderr)
    sys.exit(1)
print("# Summary")
print()
print(prompt)
'''


def write_stub_cli(folder: Path) -> Path:
    path = folder / "stub_llm.py"
    path.write_text(STUB_CLI)
    return path


PYTHON = sys.executable
