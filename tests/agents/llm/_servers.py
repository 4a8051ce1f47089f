"""Local stand-ins for an LLM's HTTP API: an OpenAI-compatible
``/v1/chat/completions`` and Ollama's ``/api/chat``, serving scripted replies
on 127.0.0.1 and recording every request body."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Protocol = Literal["openai", "ollama"]


@dataclass
class Reply:
    """One scripted model turn: text and/or tool calls, with token counts.
    ``raw_arguments`` sends a call's arguments as this exact string (OpenAI only)."""

    content: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 10
    output_tokens: int = 5
    raw_arguments: str | None = None


@dataclass
class Failure:
    """One scripted HTTP error."""

    status: int
    body: dict[str, Any]


def call(name: str, **arguments: Any) -> Reply:
    return Reply(calls=[(name, arguments)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScriptedLLM:
    """A tiny HTTP server speaking one protocol; replies come from ``script`` in order."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.script: list[Reply | Failure] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        if self.protocol == "openai":
            return f"http://127.0.0.1:{self.port}/v1"
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ScriptedLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def say(self, *replies: Reply | Failure) -> ScriptedLLM:
        self.script.extend(replies)
        return self

    # -- what the server received ---------------------------------------------------
    def tool_names(self, index: int) -> list[str]:
        return [t["function"]["name"] for t in self.requests[index].get("tools") or []]

    def messages(self, index: int) -> list[dict[str, Any]]:
        return list(self.requests[index]["messages"])

    def text_of(self, index: int, role: str) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages(index) if m["role"] == role)

    # -- serving ------------------------------------------------------------------------
    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            n = len(self.requests)
            if not self.script:
                return 500, {"error": {"message": "script exhausted"}}
            item = self.script.pop(0)
        if isinstance(item, Failure):
            return item.status, item.body
        if self.protocol == "openai":
            return 200, _openai_body(item, n)
        return 200, _ollama_body(item, str(body.get("model")))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self
        path = "/v1/chat/completions" if self.protocol == "openai" else "/api/chat"

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != path:
                    status, reply = 404, {"error": f"no route {self.path}"}
                else:
                    status, reply = llm._next(body, {k.lower(): v for k, v in self.headers.items()})
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        return Handler


def _openai_body(reply: Reply, n: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.calls:
        message["tool_calls"] = [
            {
                "id": f"call_{n}_{i}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": reply.raw_arguments if reply.raw_arguments is not None else json.dumps(args),
                },
            }
            for i, (name, args) in enumerate(reply.calls)
        ]
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.calls else "stop"}],
        "usage": {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
    }


def _ollama_body(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.calls:
        message["tool_calls"] = [{"function": {"name": name, "arguments": args}} for name, args in reply.calls]
    return {
        "model": model,
        "created_at": "2025-06-01T12:00:00Z",
        "message": message,
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": reply.input_tokens,
        "eval_count": reply.output_tokens,
    }
