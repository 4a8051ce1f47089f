"""The chat adapters over real HTTP: OpenAI-compatible through
langchain-openai, Ollama through the ollama client, and the settings factory."""

from __future__ import annotations

from typing import Any

import pytest

from agents.llm import ChatBackend, OllamaChat, OpenAICompatibleChat, make_chat_backend
from app.errors import ConfigError, LLMError
from app.settings import load_settings

from ._servers import Failure, Reply, ScriptedLLM, free_port

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_logs",
            "description": "Recent log lines.",
            "parameters": {
                "type": "object",
                "properties": {
                    "pipeline": {"type": "string", "description": "which pipeline"},
                    "dataset": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Dataset"},
                },
                "required": ["pipeline"],
            },
        },
    }
]

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You diagnose."},
    {"role": "user", "content": "What broke?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_logs", "arguments": '{"pipeline": "ingestion"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_0", "name": "get_logs", "content": '{"status": "ok"}'},
]


# -- OpenAI-compatible ------------------------------------------------------------------
def test_openai_turn_reads_tool_calls_and_usage(openai_server: ScriptedLLM) -> None:
    openai_server.say(Reply(calls=[("get_logs", {"pipeline": "ingestion"})], input_tokens=120, output_tokens=30))
    chat = OpenAICompatibleChat("qwen2.5", base_url=openai_server.base_url, api_key="sk-local")
    assert isinstance(chat, ChatBackend)

    turn = chat.complete(CONVERSATION, TOOLS)

    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("get_logs", {"pipeline": "ingestion"})]
    assert turn.tool_calls[0].id and turn.tool_calls[0].error is None
    assert (turn.input_tokens, turn.output_tokens) == (120, 30)
    body = openai_server.requests[0]
    assert body["model"] == "qwen2.5"
    assert openai_server.tool_names(0) == ["get_logs"]
    assert "tool_choice" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "get_logs"
    assert body["messages"][3]["tool_call_id"] == "call_0"
    assert openai_server.headers[0]["authorization"] == "Bearer sk-local"
    assert body["temperature"] == 0


def test_openai_temperature_can_be_left_out(openai_server: ScriptedLLM) -> None:
    openai_server.say(Reply(content="ok"))
    OpenAICompatibleChat("o-model", base_url=openai_server.base_url, temperature=None).complete(CONVERSATION[:2], [])
    assert "temperature" not in openai_server.requests[0]
    assert "tools" not in openai_server.requests[0]


def test_openai_required_tool_choice_and_text_reply(openai_server: ScriptedLLM) -> None:
    openai_server.say(Reply(content="I think the network is flaky."))
    chat = OpenAICompatibleChat("m", base_url=openai_server.base_url)

    turn = chat.complete(CONVERSATION[:2], TOOLS, tool_choice="required")

    assert turn.content == "I think the network is flaky." and turn.tool_calls == []
    assert openai_server.requests[0]["tool_choice"] == "required"


def test_openai_unreadable_arguments_become_an_error_on_the_call(openai_server: ScriptedLLM) -> None:
    openai_server.say(Reply(calls=[("get_logs", {})], raw_arguments="{not json"))
    turn = OpenAICompatibleChat("m", base_url=openai_server.base_url).complete(CONVERSATION[:2], TOOLS)
    assert len(turn.tool_calls) == 1
    assert turn.tool_calls[0].name == "get_logs"
    assert turn.tool_calls[0].arguments == {}
    assert turn.tool_calls[0].error and "not valid JSON" in turn.tool_calls[0].error


@pytest.mark.parametrize(
    "status,body,expected",
    [
        (500, {"error": {"message": "CUDA out of memory\nstack trace follows"}}, "HTTP 500: CUDA out of memory"),
        (401, {"error": {"message": "bad key sk-secret-123"}}, "HTTP 401"),
        (404, {"error": {"message": "model 'nope' not found"}}, "HTTP 404: model 'nope' not found"),
    ],
)
def test_openai_http_errors_are_one_line_llm_errors(
    openai_server: ScriptedLLM, status: int, body: dict, expected: str
) -> None:
    openai_server.say(Failure(status, body))
    chat = OpenAICompatibleChat("m", base_url=openai_server.base_url, api_key="sk-secret-123", max_retries=0)
    with pytest.raises(LLMError) as caught:
        chat.complete(CONVERSATION[:2], TOOLS)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "sk-secret-123" not in message


def test_openai_server_down_is_one_line_llm_error() -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/v1"
    chat = OpenAICompatibleChat("m", base_url=url, api_key="sk-secret", timeout=5, max_retries=0)
    with pytest.raises(LLMError) as caught:
        chat.complete(CONVERSATION[:2], TOOLS)
    message = str(caught.value)
    assert "cannot connect" in message and "openai:m" in message
    assert "\n" not in message
    assert "sk-secret" not in message and "hunter2" not in message


# -- Ollama ------------------------------------------------------------------------------
def test_ollama_turn_reads_tool_calls_and_counts(ollama_server: ScriptedLLM) -> None:
    ollama_server.say(Reply(calls=[("get_logs", {"pipeline": "ingestion"})], input_tokens=200, output_tokens=17))
    chat = OllamaChat("llama3.1", base_url=ollama_server.base_url)
    assert isinstance(chat, ChatBackend)

    turn = chat.complete(CONVERSATION, TOOLS)

    assert [(c.name, c.arguments) for c in turn.tool_calls] == [("get_logs", {"pipeline": "ingestion"})]
    assert turn.tool_calls[0].id
    assert (turn.input_tokens, turn.output_tokens) == (200, 17)
    body = ollama_server.requests[0]
    assert body["model"] == "llama3.1" and body["stream"] is False
    params = body["tools"][0]["function"]["parameters"]
    assert params["required"] == ["pipeline"]
    assert params["properties"]["dataset"]["type"] == "string"  # the optional field survives as its type
    messages = body["messages"]
    assert messages[2]["tool_calls"][0]["function"] == {"name": "get_logs", "arguments": {"pipeline": "ingestion"}}
    assert messages[3]["role"] == "tool" and messages[3]["tool_name"] == "get_logs"


def test_ollama_http_error_is_one_line_llm_error(ollama_server: ScriptedLLM) -> None:
    ollama_server.say(Failure(404, {"error": "model 'llama9' not found, try pulling it first"}))
    with pytest.raises(LLMError) as caught:
        OllamaChat("llama9", base_url=ollama_server.base_url).complete(CONVERSATION[:2], TOOLS)
    assert "HTTP 404: model 'llama9' not found" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_ollama_server_down_is_one_line_llm_error() -> None:
    chat = OllamaChat("llama3.1", base_url=f"http://127.0.0.1:{free_port()}", timeout=5, api_key="secret-key")
    with pytest.raises(LLMError) as caught:
        chat.complete(CONVERSATION[:2], TOOLS)
    message = str(caught.value)
    assert "cannot connect" in message and "ollama:llama3.1" in message
    assert "\n" not in message and "secret-key" not in message


# -- the factory --------------------------------------------------------------------------
def test_make_chat_backend_none_means_no_llm() -> None:
    assert make_chat_backend(load_settings()) is None
    assert make_chat_backend(load_settings(llm="none")) is None
    assert make_chat_backend(load_settings(llm=" NONE ")) is None


def test_make_chat_backend_builds_the_adapters() -> None:
    openai_chat = make_chat_backend(load_settings(llm="openai:qwen2.5-7b", llm_base_url="http://127.0.0.1:8000/v1"))
    assert isinstance(openai_chat, OpenAICompatibleChat) and openai_chat.name == "openai:qwen2.5-7b"
    with_key = make_chat_backend(load_settings(llm="openai:gpt-4o-mini", llm_api_key="sk-x"))
    assert isinstance(with_key, OpenAICompatibleChat) and with_key.model == "gpt-4o-mini"
    ollama_chat = make_chat_backend(load_settings(llm="ollama:llama3.1:8b"))
    assert isinstance(ollama_chat, OllamaChat)
    assert ollama_chat.name == "ollama:llama3.1:8b" and ollama_chat.model == "llama3.1:8b"


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", "ollama:  ", "anthropic:claude", ":model"])
def test_make_chat_backend_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_chat_backend(load_settings(llm=spec))
    message = str(caught.value)
    assert "none, openai:MODEL or ollama:MODEL" in message and "\n" not in message


def test_make_chat_backend_rejects_bad_urls_and_missing_keys() -> None:
    with pytest.raises(ConfigError, match="http"):
        make_chat_backend(load_settings(llm="ollama:llama3.1", llm_base_url="ftp://host"))
    with pytest.raises(ConfigError, match="llm_api_key"):
        make_chat_backend(load_settings(llm="openai:gpt-4o"))
