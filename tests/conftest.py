"""Shared fixtures: a fresh workspace per test, and reachability of the real
services the integration tests use."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import Settings, load_settings
from pipelines.runtime import Runtime

PG_URL = os.environ.get("DATAOPS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DATAOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("DATAOPS_TEST_NATS_URL", "nats://127.0.0.1:4222")


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    # Tests must never read the developer's real workspace or settings.
    for key in list(os.environ):
        if key.startswith("DATAOPS_") and not key.startswith("DATAOPS_TEST_"):
            del os.environ[key]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "ws")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()
