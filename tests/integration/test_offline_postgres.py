"""The offline store contract against an Iceberg catalog in a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines.storage.test_offline_contract import OfflineStoreContract, StoreFactory, postgres_factory

pytestmark = pytest.mark.integration


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    with postgres_factory(tmp_path) as make:
        yield make


class TestPostgresOfflineStore(OfflineStoreContract):
    pass
