"""Who may do what from Slack: a roles file maps Slack user ids to viewer,
operator or admin; anybody not in it gets the file's default (viewer).

The file is YAML or JSON::

    default: viewer          # optional; viewer unless set
    users:
      U012ABCDEF: admin      # Slack user ids (profile -> "Copy member ID")
      U034GHIJKL: operator

It is read again when it changes on disk, so a change needs no restart. A
file that stops validating makes everybody the default viewer until fixed
(fail closed), and the refusal says why.
"""

from __future__ import annotations

import json
import threading
from enum import StrEnum
from pathlib import Path

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import ConfigError

__all__ = ["Role", "RolesFile", "RoleBook", "required_role"]

_log = structlog.get_logger("dataops.chatops")


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

# Reading needs nothing; changing anything needs an operator; lifting the
# global kill switch (auto-fix everywhere again) needs an admin. Pausing is
# never harder than operator: stopping the agents must be easy.
_NEEDED = {
    "help": Role.VIEWER,
    "status": Role.VIEWER,
    "incidents": Role.VIEWER,
    "show": Role.VIEWER,
    "ask": Role.VIEWER,
    "approve": Role.OPERATOR,
    "reject": Role.OPERATOR,
    "pause": Role.OPERATOR,
    "resume": Role.OPERATOR,
    "run": Role.OPERATOR,
}


def required_role(command: str, pipeline: str | None = None) -> Role:
    """The least role that may run ``command`` (``resume`` with no pipeline
    is the global kill switch: admin)."""
    if command == "resume" and pipeline is None:
        return Role.ADMIN
    return _NEEDED.get(command, Role.VIEWER)


class RolesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Role = Role.VIEWER
    users: dict[str, Role] = Field(default_factory=dict)

    @field_validator("users")
    @classmethod
    def _slack_ids(cls, value: dict[str, Role]) -> dict[str, Role]:
        for user in value:
            if not (user[:1] in ("U", "W") and len(user) >= 3 and user.isalnum() and user.isupper()):
                raise ValueError(f"{user!r} is not a Slack user id (like U012ABCDEF); names and @handles do not work")
        return value

    @classmethod
    def load(cls, path: Path) -> RolesFile:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"slack roles file {path}: cannot read it ({exc.strerror or exc})") from None
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"slack roles file {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "file"
            raise ConfigError(f"slack roles file {path}: {loc}: {err['msg']}") from None


class RoleBook:
    """The roles in force; ``path`` None means everybody is a viewer."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._roles = RolesFile()
        self._problem: str | None = None
        if path is not None:
            self._roles = RolesFile.load(path)  # a bad file at start-up is a start-up error
            self._stamp = _stamp(path)

    @property
    def path(self) -> Path | None:
        return self._path

    def role_of(self, user: str) -> tuple[Role, str | None]:
        """The user's role and, when the file is broken, why everybody is a viewer."""
        with self._lock:
            self._refresh()
            if self._problem is not None:
                return Role.VIEWER, self._problem
            return self._roles.users.get(user, self._roles.default), None

    def _refresh(self) -> None:
        if self._path is None:
            return
        stamp = _stamp(self._path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._roles, self._problem = RolesFile.load(self._path), None
        except ConfigError as exc:
            self._problem = str(exc)
            _log.error("slack_roles_invalid", problem=self._problem)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
