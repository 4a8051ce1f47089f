"""The runtime context: every store and service a pipeline or agent needs,
built once from settings and passed down (never a global)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.db import init_db, make_engine
from app.errors import NotFoundError
from app.settings import Settings
from pipelines.runtime._config import ConfigStore
from pipelines.runtime._events import EventLog, PipelineControl
from pipelines.runtime._metrics import PipelineMetrics
from pipelines.runtime._models import DatasetRow

if TYPE_CHECKING:
    from pipelines.storage import ObjectStore, OfflineStore, OnlineStore

__all__ = ["Runtime", "MetricValue"]


@dataclass(frozen=True)
class MetricValue:
    """One figure a pipeline reports: ``name`` (no ``dataops_`` prefix), value, labels."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    events: EventLog
    control: PipelineControl
    configs: ConfigStore
    metrics: PipelineMetrics
    _objects: ObjectStore | None = field(default=None, repr=False)
    _offline: OfflineStore | None = field(default=None, repr=False)
    _online: OnlineStore | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, metrics: PipelineMetrics | None = None) -> Runtime:
        settings.ensure_home()
        engine = make_engine(settings.db_url)
        init_db(engine)
        events = EventLog(engine)
        return cls(
            settings=settings,
            engine=engine,
            events=events,
            control=PipelineControl(engine, events),
            configs=ConfigStore(engine, events),
            metrics=metrics or PipelineMetrics(),
        )

    # Stores open on first use: most commands need only the metadata DB.
    @property
    def objects(self) -> ObjectStore:
        if self._objects is None:
            from pipelines.storage import ObjectStore

            self._objects = ObjectStore(self.settings.objects_url, fsync=self.settings.object_store_fsync)
        return self._objects

    @property
    def offline(self) -> OfflineStore:
        with self._lock:  # opened from a warm-up thread too
            if self._offline is None:
                from pipelines.storage import OfflineStore

                self._offline = OfflineStore(self.settings.iceberg_catalog_url, self.settings.warehouse)
            return self._offline

    @property
    def online(self) -> OnlineStore:
        if self._online is None:
            from pipelines.storage import open_online_store

            self._online = open_online_store(self.settings.online_url)
        return self._online

    def report_metrics(
        self, pipeline: str, dataset: str, values: Sequence[MetricValue], *, run_id: str | None = None
    ) -> None:
        """Publish a pipeline's own figures: as Prometheus gauges, and as one
        ``metrics`` event the monitor turns into metric signals."""
        for v in values:
            self.metrics.gauge_set(pipeline, dataset, v.name, v.value, v.labels)
        self.events.emit(
            pipeline, "metrics", run_id=run_id, dataset=dataset,
            values=[{"name": v.name, "labels": dict(v.labels), "value": float(v.value)} for v in values],
        )

    def dataset(self, name: str) -> DatasetRow:
        with Session(self.engine) as s:
            row = s.get(DatasetRow, name)
        if row is None:
            raise NotFoundError(f"unknown dataset {name!r} (see `dataops datasets list`)")
        return row

    def datasets(self) -> list[DatasetRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(DatasetRow).order_by(DatasetRow.name)))  # type: ignore[arg-type]

    def ensure_dataset(self, name: str, pipeline: str, schema_yaml: str | None = None) -> DatasetRow:
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.get(DatasetRow, name)
            if row is None:
                row = DatasetRow(name=name, pipeline=pipeline, schema_yaml=schema_yaml)
                s.add(row)
                s.commit()
            elif schema_yaml is not None and row.schema_yaml != schema_yaml:
                row.schema_yaml = schema_yaml
                s.add(row)
                s.commit()
            return row

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
        self.engine.dispose()
