"""IncidentMemory against a real Chroma server (``chroma run``), through HttpClient."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.settings import load_settings
from knowledge_base import IncidentMemory, MiniLMEmbedder

from .conftest import MakeIncident


def _chroma_binary() -> str | None:
    beside = Path(sys.executable).parent / "chroma"
    return str(beside) if beside.exists() else shutil.which("chroma")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _chroma_binary()
    if binary is None:
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [binary, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("chroma server did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_server_backed_memory(
    chroma_url: str, tmp_path: Path, embedder: MiniLMEmbedder, make_incident: MakeIncident
) -> None:
    settings = load_settings(home=tmp_path, chroma_url=chroma_url)
    early = make_incident(id="early", opened_at=datetime(2025, 3, 1, tzinfo=UTC))
    late = make_incident(id="late", opened_at=datetime(2025, 9, 1, tzinfo=UTC), symptoms="S3 ReadTimeoutError again")
    with IncidentMemory.from_settings(settings, embedder=embedder) as mem:
        assert mem.location == chroma_url
        mem.clear()
        mem.record_many([early, late])
        assert mem.get("late") == late
        before = datetime(2025, 6, 1, tzinfo=UTC)
        assert [m.incident.id for m in mem.similar("S3 read timeout", before=before)] == ["early"]
    # A second client sees what the first wrote.
    with IncidentMemory.from_settings(settings, embedder=embedder) as again:
        assert again.count() == 2
        again.clear()
