"""The online store contract against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pipelines.storage.test_online_contract import OnlineStoreContract, StoreFactory, redis_factory

pytestmark = pytest.mark.integration


@pytest.fixture
def store_factory() -> Iterator[StoreFactory]:
    with redis_factory() as make:
        yield make


class TestRedisOnlineStore(OnlineStoreContract):
    pass
