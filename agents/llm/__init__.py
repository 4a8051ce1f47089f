"""LLM adapters and the LLM diagnosis engine.

The LLM is optional (``llm = "none"`` is a first-class setting): when one is
configured, :func:`make_chat_backend` builds its adapter and
:class:`LLMDiagnosisEngine` diagnoses unfamiliar incidents with it, choosing
only among catalogued playbooks; its answer is validated before anything
downstream sees it.
"""

from agents.llm._answer import SUBMIT_TOOL, SubmittedDiagnosis
from agents.llm._chat import (
    ChatBackend,
    ChatTurn,
    OllamaChat,
    OpenAICompatibleChat,
    ToolCallRequest,
    make_chat_backend,
)
from agents.llm._engine import LLMDiagnosisEngine

__all__ = [
    "SUBMIT_TOOL",
    "ChatBackend",
    "ChatTurn",
    "LLMDiagnosisEngine",
    "OllamaChat",
    "OpenAICompatibleChat",
    "SubmittedDiagnosis",
    "ToolCallRequest",
    "make_chat_backend",
]
