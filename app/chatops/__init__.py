"""Slack chat-ops: ``/dataops`` commands and Approve / Reject buttons over an
:class:`OpsBackend`, with Slack's request signing verified by Bolt, roles
from a file, and every command in the audit log with its Slack user."""

from app.chatops._app import ChatOps, SlackAPIError, build_chatops
from app.chatops._backend import OpsBackend
from app.chatops._blocks import APPROVE_ACTION, REJECT_ACTION
from app.chatops._commands import Command, parse_command
from app.chatops._ops import RuntimeOpsBackend
from app.chatops._roles import Role, RoleBook, RolesFile, required_role

__all__ = [
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "ChatOps",
    "Command",
    "OpsBackend",
    "Role",
    "RoleBook",
    "RolesFile",
    "RuntimeOpsBackend",
    "SlackAPIError",
    "build_chatops",
    "parse_command",
    "required_role",
]
