"""The shipped catalogue, loaded once for the playbook tests."""

from __future__ import annotations

import pytest

from playbooks import PlaybookCatalog


@pytest.fixture(scope="session")
def catalog() -> PlaybookCatalog:
    return PlaybookCatalog.load()
