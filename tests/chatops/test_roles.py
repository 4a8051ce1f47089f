"""The roles file: who may do what, read again when it changes, failing
closed when it breaks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.chatops import Role, RoleBook, RolesFile, required_role
from app.errors import ConfigError


def test_yaml_and_json_files_give_the_same_roles(tmp_path: Path) -> None:
    y = tmp_path / "roles.yaml"
    y.write_text("default: viewer\nusers:\n  U01ADMIN: admin\n  W02OPS: operator\n")
    j = tmp_path / "roles.json"
    j.write_text('{"users": {"U01ADMIN": "admin", "W02OPS": "operator"}}')
    for path in (y, j):
        book = RoleBook(path)
        assert book.role_of("U01ADMIN") == (Role.ADMIN, None)
        assert book.role_of("W02OPS") == (Role.OPERATOR, None)
        assert book.role_of("U03UNKNOWN") == (Role.VIEWER, None), "unknown users are viewers"


def test_a_default_role_applies_to_everyone_not_listed(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("default: operator\nusers: {U01BOSS: admin}\n")
    assert RoleBook(path).role_of("U09SOMEONE")[0] is Role.OPERATOR


def test_no_roles_file_makes_everybody_a_viewer() -> None:
    assert RoleBook(None).role_of("U01ANYONE") == (Role.VIEWER, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("users: {alice: admin}\n", "not a Slack user id"),
        ("users: {'@alice': admin}\n", "not a Slack user id"),
        ("users: {U01X: root}\n", "users.U01X"),
        ("admins: [U01X]\n", "admins"),
        ("users: [unclosed\n", "not valid"),
    ],
)
def test_a_bad_roles_file_is_a_config_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        RoleBook(path)


def test_a_missing_roles_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        RoleBook(tmp_path / "nope.yaml")


def test_a_changed_file_is_read_again_and_a_broken_one_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("users: {U01ALICE: viewer}\n")
    book = RoleBook(path)
    assert book.role_of("U01ALICE")[0] is Role.VIEWER
    path.write_text("users: {U01ALICE: admin}\n")
    os.utime(path, ns=(1, 2_000_000_000_000_000_000))  # a new mtime whatever the clock's resolution
    assert book.role_of("U01ALICE")[0] is Role.ADMIN
    path.write_text("users: {U01ALICE: emperor}\n")
    os.utime(path, ns=(1, 3_000_000_000_000_000_000))
    role, problem = book.role_of("U01ALICE")
    assert role is Role.VIEWER, "a broken file must not keep old privileges"
    assert problem is not None and "users.U01ALICE" in problem


def test_which_role_each_command_needs() -> None:
    for command in ("help", "status", "incidents", "show", "ask"):
        assert required_role(command) is Role.VIEWER
    for command in ("approve", "reject", "pause", "run"):
        assert required_role(command) is Role.OPERATOR
    assert required_role("pause", None) is Role.OPERATOR, "stopping the agents is never harder than operator"
    assert required_role("resume", "ingestion") is Role.OPERATOR
    assert required_role("resume", None) is Role.ADMIN, "auto-fix everywhere again needs an admin"


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)
    assert RolesFile().default is Role.VIEWER
