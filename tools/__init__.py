"""The only door between agents and the world: typed observe and action
tools over one backend interface (live or replay)."""

from tools._base import (
    ActionTool,
    Args,
    Backend,
    InverseStep,
    ObserveTool,
    Tool,
    ToolCall,
    ToolResult,
    ToolStatus,
)
from tools._catalog import ACTION_TOOLS, OBSERVE_TOOLS, TOOLS, tool
from tools._replay import ReplayBackend, ReplayCase, playbook_of_key
from tools._signals import Signal, SignalKind
from tools._toolbox import ActionOutcome, ToolBox

__all__ = [
    "ACTION_TOOLS",
    "OBSERVE_TOOLS",
    "TOOLS",
    "ActionOutcome",
    "ActionTool",
    "Args",
    "Backend",
    "InverseStep",
    "ObserveTool",
    "ReplayBackend",
    "ReplayCase",
    "Signal",
    "SignalKind",
    "Tool",
    "ToolBox",
    "ToolCall",
    "ToolResult",
    "ToolStatus",
    "playbook_of_key",
    "tool",
]
