"""The replay backend: the tools' calls answered from a recorded incident case.

Observe tools answer from the case's signals visible at the case clock
(``t <= clock.t()``), in the live backend's shapes. Action tools are recorded
and answered ok (``probe_source`` fails while the world is failing); what
the world shows afterwards comes from the case's ``outcomes``: the first
mutating action of a playbook (for one incident and attempt) decides the
world's future from that moment by ``outcomes[playbook]``, else
``outcomes["default"]``, else ``still_failing`` (see
:class:`tools._replay_world.ReplayTimeline` for what each outcome shows).

Which playbook an action belongs to is read from its idempotency key,
``<incident>:<attempt>:<playbook>:<step>:<rep>`` (the act node's format);
``...:undo`` keys are rollbacks and decide nothing, and a key of another
shape (``<incident>:escalate``) belongs to no playbook. The key travels on
every call the ToolBox passes on, so the backend needs no access to the
graph's state.

A call the case cannot answer (a metric it never shows, no checks, no logs,
no runs, memory off, an unknown tool) returns ``no_data`` and is counted in
:attr:`ReplayBackend.no_data`; an empty signal window is an answer (nothing
new happened) and is not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from tools._base import ToolCall, ToolResult
from tools._catalog import ACTION_TOOLS, TOOLS
from tools._catalog_ml import MODEL_VERSION_KEYS
from tools._replay_world import ReplayTimeline, WorldOutcome, playbook_of_key
from tools._signals import Signal

__all__ = ["ReplayBackend", "ReplayCase", "WorldOutcome", "playbook_of_key"]

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "warn": 2, "error": 3, "critical": 4, "fatal": 4}
_SUCCESS = ("succeeded", "success", "completed", "finished", "recovered", "ok", "done")


class Clock(Protocol):
    def t(self) -> float: ...


class ReplayCase(Protocol):
    """What the backend needs of a case (``evals.Case`` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def pipeline(self) -> str: ...

    @property
    def started_at(self) -> datetime: ...

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def signals(self) -> Sequence[Signal]: ...

    @property
    def outcomes(self) -> Mapping[str, str]: ...


class ReplayBackend:
    """Answers every tool from ``case`` at ``clock``'s time. ``config_model``
    gives the pipeline's tunables, defaults and bounds (default: ingestion's
    for ingestion, the shared :class:`PipelineConfig` otherwise)."""

    def __init__(
        self,
        case: ReplayCase,
        clock: Clock,
        *,
        memory: Any = None,
        config_model: Any = None,
        dataset: str | None = None,
        recovery_delay_s: float = 2.0,
        repeat_every_s: float = 30.0,
    ) -> None:
        self.case = case
        self.clock = clock
        self.memory = memory
        self.pipeline = str(case.pipeline)
        self.dataset = dataset or case.id
        self.no_data = 0
        self.no_data_calls: Counter[str] = Counter()
        self.actions: list[dict[str, Any]] = []
        self.paused = False
        self._decided: set[tuple[str, str, str]] = set()
        self.world = ReplayTimeline(case.signals, started_at=case.started_at, pipeline=self.pipeline,
                                    recovery_delay_s=recovery_delay_s, repeat_every_s=repeat_every_s)
        self._model = config_model or _default_model(self.pipeline)
        defaults = self._model().model_dump() if self._model is not None else {}
        self._versions: list[dict[str, Any]] = [
            {"version": 1, "values": defaults, "changed": {}, "actor": "system", "reason": "defaults", "good": True,
             "at": case.started_at.isoformat()}
        ]
        start = {**defaults, **dict(case.config)}
        if start != defaults:
            self._new_version(start, actor="operator", reason="the config the case starts with", good=False, t=0.0)

    # -- the world ---------------------------------------------------------
    def now_t(self) -> float:
        return float(self.clock.t())

    def visible(self, until: float | None = None) -> list[Signal]:
        """Every signal the world shows up to ``until`` (default now), oldest first."""
        return self.world.visible(self.now_t() if until is None else until)

    @property
    def segments(self) -> list[tuple[float, str, str]]:
        """(start t, outcome, playbook) of each decision, in order."""
        return self.world.segments

    def outcome_now(self) -> str | None:
        """The outcome deciding the world now; None before any playbook acted."""
        return self.world.outcome_now()

    def _emit(self, **fields: Any) -> None:
        self.world.emit(self.now_t(), **fields)

    # -- dispatch ------------------------------------------------------------
    def handle(self, call: ToolCall) -> ToolResult:
        fn = getattr(self, f"_{call.tool}", None) if call.tool in TOOLS else None
        if fn is None:
            return self._nothing(call.tool, f"the replay backend has no {call.tool!r}")
        if call.tool in ACTION_TOOLS:
            self._record(call)
        result: ToolResult = fn(**call.args)
        return result

    def _nothing(self, tool: str, reason: str) -> ToolResult:
        self.no_data += 1
        self.no_data_calls[tool] += 1
        return ToolResult.no_data(tool, reason)

    def _record(self, call: ToolCall) -> None:
        playbook, undo = playbook_of_key(call.idempotency_key)
        mutating = ACTION_TOOLS[call.tool].mutating
        entry: dict[str, Any] = {
            "tool": call.tool, "args": dict(call.args), "t": self.now_t(), "playbook": playbook,
            "key": call.idempotency_key, "incident_id": call.incident_id, "undo": undo, "mutating": mutating,
        }
        parts = (call.idempotency_key or "").split(":")
        if playbook and mutating and not undo:
            scope = (parts[0], parts[1], playbook)
            if scope not in self._decided:
                self._decided.add(scope)
                outcome = self.case.outcomes.get(playbook, self.case.outcomes.get("default", "still_failing"))
                self.world.decide(self.now_t(), str(outcome), playbook)
                entry["outcome"] = str(outcome)
        self.actions.append(entry)

    # -- observe -------------------------------------------------------------
    def _get_signals(
        self, pipeline: str, dataset: str | None = None, since_t: float = 0.0, kinds: list[str] | None = None,
        limit: int = 200,
    ) -> ToolResult:
        signals = [s for s in self.visible() if s.t >= since_t and (not kinds or s.kind in kinds)][-limit:]
        if not signals:
            return ToolResult.no_data("get_signals", "no signals in that window")
        return ToolResult.ok("get_signals", [s.model_dump(mode="json", exclude_none=True) for s in signals])

    def _run_status(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        visible = self.visible()
        runs = [s for s in visible if s.kind == "event" and (_runlike(s) or s.failing)]
        latest = runs[-1] if runs else None
        if latest is None:
            failing = [s for s in visible if s.failing]
            if not failing:
                return self._nothing("run_status", "the case shows no runs")
            latest = failing[-1]
        kind = (latest.type or "").lower()
        if latest.failing:
            status, error = "failed", latest.error or latest.message or latest.text()
        elif kind.endswith(_SUCCESS):
            status, error = "succeeded", None
        else:
            status, error = "running", None
        extra = latest.model_extra or {}
        return ToolResult.ok(
            "run_status",
            {
                "run_id": str(extra.get("run_id") or f"{self.case.id}-run"),
                "pipeline": self.pipeline,
                "dataset": self.dataset,
                "source": str(extra.get("source") or ""),
                "status": status,
                **{k: int(extra.get(k) or 0) for k in ("read", "accepted", "duplicates", "quarantined", "skipped")},
                "quarantine_reasons": {},
                "snapshot_id": None,
                "seconds": 0.0,
                "error": error,
            },
        )

    def _get_metrics(self, name: str, labels: dict[str, str] | None = None) -> ToolResult:
        wanted = {name, name.removesuffix("_total"), f"dataops_{name}", name.removeprefix("dataops_")}
        latest: dict[tuple[str, tuple[tuple[str, str], ...]], Signal] = {}
        for s in self.visible():
            if s.kind == "metric" and s.name in wanted and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                latest[(s.name, tuple(sorted(s.labels.items())))] = s
        out = [{"name": s.name, "labels": dict(s.labels), "value": s.value} for s in latest.values()]
        return ToolResult.ok("get_metrics", out) if out else self._nothing("get_metrics", f"no metric {name!r}")

    def _get_checks(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        latest: dict[str, dict[str, Any]] = {}
        for s in self.visible():
            if s.kind == "check" and s.name:
                latest[s.name] = {
                    "name": s.name, "status": s.status, "observed": s.observed, "expected": s.expected,
                    "dataset": self.dataset, **(s.model_extra or {}),
                }
        out = list(latest.values())
        return ToolResult.ok("get_checks", out) if out else self._nothing("get_checks", "no checks yet")

    def _get_logs(self, pipeline: str, dataset: str | None = None, level: str = "warning", limit: int = 50) -> ToolResult:
        lines = []
        for s in self.visible():
            if s.kind == "log":
                lvl, msg = (s.level or "info").lower(), s.message or ""
            elif s.kind == "event" and s.failing:
                lvl, msg = "error", f"{s.type}: {s.error}" if s.error else str(s.type)
            else:
                continue
            if _LEVELS.get(lvl, 1) >= _LEVELS[level]:
                lines.append({"ts": s.ts.isoformat() if s.ts else None, "level": lvl, "message": msg, "stage": s.stage})
        lines = lines[-limit:]
        return ToolResult.ok("get_logs", lines) if lines else self._nothing("get_logs", "no log lines")

    def _get_config(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        current = self._versions[-1]
        return ToolResult.ok(
            "get_config",
            {"version": current["version"], "values": dict(current["values"]), "bounds": self._bounds()},
        )

    def _bounds(self) -> dict[str, list[float | None]]:
        if self._model is None:
            return {}
        from pipelines.runtime import bounds_of

        return {k: list(v) for k, v in bounds_of(self._model).items()}

    def _config_history(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        keep = ("version", "changed", "actor", "reason", "good", "at")
        return ToolResult.ok("config_history", [{k: v[k] for k in keep} for v in self._versions])

    def _recall_incidents(self, query: str, k: int = 5) -> ToolResult:
        if self.memory is None:
            return self._nothing("recall_incidents", "incident memory is off")
        matches = self.memory.similar(query, k=k, before=self.case.started_at)
        return ToolResult.ok(
            "recall_incidents",
            [
                {"id": m.incident.id, "title": m.incident.title, "root_cause": str(m.incident.root_cause),
                 "playbook": m.incident.playbook, "outcome": str(m.incident.outcome),
                 "similarity": round(m.similarity, 3)}
                for m in matches
            ],
        )

    # -- act -----------------------------------------------------------------
    def _new_version(self, values: dict[str, Any], *, actor: str, reason: str, good: bool, t: float) -> int:
        previous = self._versions[-1]
        diff = {k: [previous["values"].get(k), v] for k, v in values.items() if previous["values"].get(k) != v}
        version = previous["version"] + 1
        at = (self.case.started_at + timedelta(seconds=t)).isoformat()
        self._versions.append(
            {"version": version, "values": dict(values), "changed": diff, "actor": actor, "reason": reason,
             "good": good, "at": at}
        )
        return version

    def _change(self, changes: dict[str, Any], reason: str) -> tuple[int, int]:
        previous = self._versions[-1]["version"]
        values = {**self._versions[-1]["values"], **changes}
        version = self._new_version(values, actor="agent", reason=reason, good=False, t=self.now_t())
        self._emit(kind="event", type="config_changed", version=version, actor="agent")
        return version, previous

    def _set_config(self, pipeline: str, key: str, value: Any, dataset: str | None = None) -> ToolResult:
        version, previous = self._change({key: value}, f"set {key}")
        return ToolResult.ok("set_config", {"version": version, "previous_version": previous, key: value})

    def _scale_workers(self, pipeline: str, workers: int, dataset: str | None = None) -> ToolResult:
        return self._set_config(pipeline, "workers", workers, dataset)

    def _restore_config(self, pipeline: str, dataset: str | None = None, version: int | None = None) -> ToolResult:
        latest = self._versions[-1]["version"]
        if version is None:
            earlier = [v for v in self._versions if v["version"] < latest]
            good = [v for v in earlier if v["good"]] or earlier or self._versions
            version = good[-1]["version"]
        source = next((v for v in self._versions if v["version"] == version), self._versions[0])
        new, previous = self._change(dict(source["values"]), f"restore version {version}")
        return ToolResult.ok("restore_config", {"version": new, "restored_from": version, "previous_version": previous})

    def _retry_stage(self, pipeline: str, dataset: str | None = None, stage: str | None = None) -> ToolResult:
        return ToolResult.ok("retry_stage", {"retried": True, "stage": stage, "dataset": self.dataset})

    def _pause_pipeline(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        self.paused = True
        self._emit(kind="event", type="pipeline_paused", by="agent")
        return ToolResult.ok("pause_pipeline", {"paused": True, "dataset": self.dataset})

    def _resume_pipeline(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        self.paused = False
        self._emit(kind="event", type="pipeline_resumed", by="agent")
        return ToolResult.ok("resume_pipeline", {"paused": False, "dataset": self.dataset})

    def _probe_source(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        if self.world.failing(self.now_t()):
            return ToolResult.fail("probe_source", "the source did not answer")
        return ToolResult.ok("probe_source", {"reachable": True, "source": self.dataset})

    def _notify(self, pipeline: str, message: str, severity: str = "info") -> ToolResult:
        self._emit(kind="event", type="notification", severity=severity)
        return ToolResult.ok("notify", {"delivered": False, "logged": True})

    def _quarantine_batch(self, pipeline: str, dataset: str | None = None, run_id: str | None = None) -> ToolResult:
        return ToolResult.ok("quarantine_batch", {"run_id": run_id or f"{self.case.id}-run", "quarantined": 0,
                                                  "table_rolled_back_to": None})

    def _rollback_table(self, pipeline: str, dataset: str | None = None, snapshot_id: int | None = None) -> ToolResult:
        return ToolResult.ok("rollback_table", {"snapshot_id": snapshot_id, "previous_snapshot_id": None})

    # -- annotation and enrichment -------------------------------------------
    def _quarantine_annotator(
        self, pipeline: str, annotator: str, dataset: str | None = None, reason: str = ""
    ) -> ToolResult:
        self._emit(kind="event", type="annotator_quarantined", annotator=annotator, by="agent")
        return ToolResult.ok("quarantine_annotator", {"annotator": annotator, "answers_set_aside": 0, "requeued": 0})

    def _release_annotator(self, pipeline: str, annotator: str, dataset: str | None = None) -> ToolResult:
        self._emit(kind="event", type="annotator_released", annotator=annotator, by="agent")
        return ToolResult.ok("release_annotator", {"annotator": annotator})

    def _fallback_model(self, pipeline: str, kind: str, dataset: str | None = None) -> ToolResult:
        key = MODEL_VERSION_KEYS[kind]
        current = self._versions[-1]["values"].get(key)
        if not isinstance(current, int) or current <= 1:
            return ToolResult.fail("fallback_model", f"the model registry has no {kind} version before {current}")
        version, _ = self._change({key: current - 1}, f"fall back to {kind} version {current - 1}")
        return ToolResult.ok(
            "fallback_model", {"kind": kind, "version": current - 1, "previous_version": current, "config_version": version}
        )

    def _reenrich_scope(
        self, pipeline: str, dataset: str | None = None, snapshot_id: int | None = None, version: str | None = None
    ) -> ToolResult:
        samples = _samples_in(self.visible())
        if samples is None:
            return self._nothing("reenrich_scope", "the case shows no sample counts")
        return ToolResult.ok(
            "reenrich_scope", {"samples": samples, "snapshot_id": snapshot_id, "version": version or "next"}
        )

    def _reenrich(
        self, pipeline: str, dataset: str | None = None, snapshot_id: int | None = None, version: str | None = None
    ) -> ToolResult:
        samples = _samples_in(self.visible()) or 0
        self._emit(kind="event", type="reenrich_started", samples=samples, by="agent")
        return ToolResult.ok("reenrich", {"version": version or "next", "snapshot_id": snapshot_id, "samples": samples})


def _samples_in(signals: Sequence[Signal]) -> int | None:
    """The most samples any run or report in the case speaks of: what a
    re-enrichment of the whole snapshot would go through again."""
    counts: list[float] = []
    for s in signals:
        extra = s.model_extra or {}
        for key in ("samples", "read"):
            value = extra.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                counts.append(float(value))
        if s.kind == "metric" and s.name == "enrichment_processed" and s.value is not None:
            counts.append(s.value)
    return int(max(counts)) if counts else None


def _runlike(s: Signal) -> bool:
    kind = (s.type or "").lower()
    return kind.startswith(("run_", "run.", "job_", "stage_failed")) or kind in ("run", "job")


def _default_model(pipeline: str) -> Any:
    from pipelines.runtime import PipelineConfig

    if pipeline == "ingestion":
        from pipelines.ingestion import IngestionConfig

        return IngestionConfig
    return PipelineConfig
