"""Our own small chat interface and its two adapters.

:class:`ChatBackend` is what the LLM engine talks to: OpenAI-style message
dicts and function specs in, one :class:`ChatTurn` out. Two adapters:

- :class:`OpenAICompatibleChat` — any server speaking OpenAI's
  ``/v1/chat/completions`` (OpenAI, vLLM, llama.cpp, LM Studio…) through
  langchain-openai;
- :class:`OllamaChat` — Ollama's native ``/api/chat`` through the ``ollama``
  client.

Every transport or protocol failure leaves an adapter as one-line
:class:`~app.errors.LLMError`; no adapter ever puts a key in a message.
Nothing here opens a connection before :meth:`ChatBackend.complete`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import httpx
import ollama
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field

from app.errors import ConfigError, LLMError
from app.settings import Settings

__all__ = [
    "ChatBackend",
    "ChatTurn",
    "ToolCallRequest",
    "OpenAICompatibleChat",
    "OllamaChat",
    "make_chat_backend",
]

_OLLAMA_DEFAULT_HOST = "http://127.0.0.1:11434"
_MAX_ERROR_CHARS = 240


class ToolCallRequest(BaseModel):
    """One function call the model asked for. ``error`` is set when its
    arguments could not be read (they are then ``{}``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ChatTurn(BaseModel):
    """What the model answered in one turn, and what the turn cost."""

    model_config = ConfigDict(frozen=True)

    content: str = ""
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model with function calling.

    ``messages`` are OpenAI-style dicts: ``system`` / ``user`` with
    ``content``; ``assistant`` with ``content`` and optional ``tool_calls``
    (``[{"id", "type": "function", "function": {"name", "arguments": JSON
    string}}]``); ``tool`` with ``tool_call_id``, ``name`` and ``content``.
    ``tools`` are OpenAI function specs. ``tool_choice`` is ``None`` (the
    model decides) or ``"required"`` (it must call one of ``tools``); a
    backend whose server cannot enforce it may ignore it.
    """

    name: str

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, tool_choice: str | None = None
    ) -> ChatTurn: ...


# -- OpenAI-compatible -------------------------------------------------------
class OpenAICompatibleChat:
    """Any OpenAI-compatible chat-completions server, through langchain-openai."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60,
        max_retries: int = 1,
        *,
        temperature: float | None = 0.0,
    ) -> None:
        if not model.strip():
            raise ConfigError("llm: the model name is empty")
        if base_url is not None:
            _check_url(base_url)
        elif not api_key:
            raise ConfigError("llm: openai without llm_base_url means api.openai.com, which needs llm_api_key")
        from langchain_openai import ChatOpenAI  # heavy; only when an LLM is configured

        self.model = model
        self.name = f"openai:{model}"
        self._where = _redact(base_url) if base_url else "api.openai.com"
        self._timeout = timeout
        # Local servers rarely check keys, but the client insists on one; never read the environment.
        self._llm = ChatOpenAI(
            model=model,
            base_url=base_url,
            api_key=api_key or "unused",  # type: ignore[arg-type]
            timeout=timeout,
            max_retries=max_retries,
            temperature=temperature,  # None for models that refuse the parameter
            use_responses_api=False,
        )

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, tool_choice: str | None = None
    ) -> ChatTurn:
        lc_messages = [_to_langchain(m) for m in messages]
        with self._translate():
            runnable: Any = self._llm.bind_tools(tools, tool_choice=tool_choice) if tools else self._llm
            reply = runnable.invoke(lc_messages)
        if not isinstance(reply, AIMessage):
            raise LLMError(f"LLM {self.name} at {self._where}: unexpected reply type {type(reply).__name__}")
        calls = [
            ToolCallRequest(id=c.get("id") or _new_id(), name=c["name"], arguments=dict(c.get("args") or {}))
            for c in reply.tool_calls
        ]
        calls += [
            ToolCallRequest(
                id=c.get("id") or _new_id(),
                name=c.get("name") or "",
                error=f"arguments are not valid JSON: {_first_line(str(c.get('error') or c.get('args')))}",
            )
            for c in reply.invalid_tool_calls
        ]
        usage: dict[str, Any] = dict(reply.usage_metadata or {})
        return ChatTurn(
            content=_text_of(reply.content),
            tool_calls=calls,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
        )

    @contextmanager
    def _translate(self) -> Iterator[None]:
        prefix = f"LLM {self.name} at {self._where}"
        try:
            yield
        except openai.APITimeoutError:
            raise LLMError(f"{prefix}: timed out after {self._timeout:g}s") from None
        except openai.APIConnectionError:
            raise LLMError(f"{prefix}: cannot connect") from None
        except openai.AuthenticationError:
            raise LLMError(f"{prefix}: HTTP 401, the server refused llm_api_key") from None
        except openai.APIStatusError as exc:
            raise LLMError(f"{prefix}: HTTP {exc.status_code}: {_first_line(_status_message(exc))}") from None
        except (openai.OpenAIError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            # A server that answers something other than a chat completion.
            raise LLMError(f"{prefix}: {type(exc).__name__}: {_first_line(str(exc))}") from None


def _to_langchain(message: dict[str, Any]) -> BaseMessage:
    role = message.get("role")
    content = message.get("content") or ""
    if role == "system":
        return SystemMessage(content=content)
    if role == "user":
        return HumanMessage(content=content)
    if role == "assistant":
        calls = [
            {"name": c["function"]["name"], "args": _arguments(c["function"].get("arguments")), "id": c.get("id")}
            for c in message.get("tool_calls") or []
        ]
        return AIMessage(content=content, tool_calls=calls)
    if role == "tool":
        return ToolMessage(content=content, tool_call_id=message.get("tool_call_id") or "", name=message.get("name"))
    raise LLMError(f"cannot send a message with role {role!r}")


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return exc.message


# -- Ollama --------------------------------------------------------------------
class OllamaChat:
    """Ollama's native ``/api/chat`` with tool calling, through the ``ollama`` client."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        timeout: float = 60,
        *,
        api_key: str | None = None,
    ) -> None:
        if not model.strip():
            raise ConfigError("llm: the model name is empty")
        host = base_url or _OLLAMA_DEFAULT_HOST  # explicit: never fall back to OLLAMA_HOST
        _check_url(host)
        self.model = model
        self.name = f"ollama:{model}"
        self._where = _redact(host)
        self._timeout = timeout
        headers = {"authorization": f"Bearer {api_key}"} if api_key else None
        self._client = ollama.Client(host=host, timeout=timeout, headers=headers)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, tool_choice: str | None = None
    ) -> ChatTurn:
        # Ollama has no tool_choice; the prompt has to do the asking.
        payload = [_to_ollama(m) for m in messages]
        specs = [_ollama_tool(t) for t in tools]
        prefix = f"LLM {self.name} at {self._where}"
        try:
            reply = self._client.chat(
                model=self.model, messages=payload, tools=specs or None, options={"temperature": 0}
            )
        except ollama.ResponseError as exc:
            raise LLMError(f"{prefix}: HTTP {exc.status_code}: {_first_line(str(exc.error))}") from None
        except httpx.TimeoutException:
            raise LLMError(f"{prefix}: timed out after {self._timeout:g}s") from None
        except (ConnectionError, httpx.ConnectError):
            raise LLMError(f"{prefix}: cannot connect") from None
        except (ollama.RequestError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            # pydantic's ValidationError is a ValueError: a reply that is not a chat response.
            raise LLMError(f"{prefix}: {type(exc).__name__}: {_first_line(str(exc))}") from None
        message = reply.message
        calls = [
            ToolCallRequest(id=_new_id(), name=c.function.name, arguments=dict(c.function.arguments or {}))
            for c in message.tool_calls or []
        ]
        return ChatTurn(
            content=message.content or "",
            tool_calls=calls,
            input_tokens=int(reply.prompt_eval_count or 0),
            output_tokens=int(reply.eval_count or 0),
        )


def _to_ollama(message: dict[str, Any]) -> dict[str, Any]:
    role = message.get("role")
    out: dict[str, Any] = {"role": role, "content": message.get("content") or ""}
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [
            {"function": {"name": c["function"]["name"], "arguments": _arguments(c["function"].get("arguments"))}}
            for c in message["tool_calls"]
        ]
    elif role == "tool" and message.get("name"):
        out["tool_name"] = message["name"]
    return out


def _ollama_tool(spec: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function spec in the flatter shape Ollama's client accepts
    (no ``anyOf``: an optional field becomes its non-null type)."""
    fn = spec.get("function") or {}
    params = fn.get("parameters") or {}
    props = {name: _flat_property(prop) for name, prop in (params.get("properties") or {}).items()}
    return {
        "type": "function",
        "function": {
            "name": fn.get("name"),
            "description": fn.get("description") or "",
            "parameters": {"type": "object", "properties": props, "required": list(params.get("required") or [])},
        },
    }


def _flat_property(prop: dict[str, Any]) -> dict[str, Any]:
    merged = dict(prop)
    branches = [b for b in merged.pop("anyOf", None) or [] if b.get("type") != "null"]
    if len(branches) == 1:
        merged = {**branches[0], **merged}
    elif branches:
        merged["type"] = [b.get("type") for b in branches if b.get("type")]
    out: dict[str, Any] = {k: merged[k] for k in ("type", "items", "enum") if k in merged}
    description = merged.get("description") or merged.get("title") or ""
    if merged.get("default") is not None:
        description = f"{description} (default {merged['default']})".strip()
    if description:
        out["description"] = description
    return out


# -- the factory -----------------------------------------------------------------
def make_chat_backend(settings: Settings) -> ChatBackend | None:
    """The configured chat model: ``none`` → ``None``, ``openai:MODEL`` or ``ollama:MODEL``."""
    spec = (settings.llm or "").strip()
    if spec.lower() in ("", "none"):
        return None
    kind, sep, model = spec.partition(":")
    kind = kind.strip().lower()
    model = model.strip()
    if not sep or kind not in ("openai", "ollama") or not model:
        raise ConfigError(f"invalid llm setting {spec!r}: expected none, openai:MODEL or ollama:MODEL")
    if kind == "openai":
        return OpenAICompatibleChat(model, base_url=settings.llm_base_url, api_key=settings.llm_api_key)
    return OllamaChat(model, base_url=settings.llm_base_url, api_key=settings.llm_api_key)


# -- helpers ----------------------------------------------------------------------
def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"llm_base_url must be an http(s) URL, got {_redact(url)!r}")


def _redact(url: str) -> str:
    """``url`` without any user:password part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text") or ""))
    return "".join(parts)


def _first_line(text: str) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "") or "no detail"
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"
