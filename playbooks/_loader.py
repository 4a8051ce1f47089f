"""Reading and validating playbook and policy files. Every problem is one
:class:`PlaybookError` line naming the file, the playbook (or root cause)
and the field."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.errors import PlaybookError
from app.taxonomy import RootCause
from guardrails import GuardrailPolicy
from playbooks._evidence import sample_lookups
from playbooks._models import Playbook, PolicyEntry, Step
from playbooks._template import render
from tools import ACTION_TOOLS, Args

__all__ = [
    "read_playbook",
    "read_policy",
    "check_playbook",
    "check_catalogue",
    "check_args",
    "sample_context",
]

_ID_LINE = re.compile(r"^id:\s*['\"]?([\w-]+)", re.MULTILINE)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _fail(file: Path, pid: str | None, field: str, message: str) -> PlaybookError:
    who = f"playbook {pid!r}" if pid else "playbook ?"
    return PlaybookError(_one_line(f"{file}: {who}: field {field}: {message}", 600))


def _loc(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _pydantic_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if err["type"] not in ("missing", "extra_forbidden", "value_error") and not isinstance(value, dict | list):
        msg += f" (got {_one_line(repr(value), 60)})"
    return _loc(err["loc"]), msg


def _read_yaml(file: Path, pid: str | None = None) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(file, pid, "(file)", f"cannot read: {exc.strerror or exc}") from None
    if pid is None:
        found = _ID_LINE.search(text)
        pid = found.group(1) if found else None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(file, pid, "(YAML)", f"invalid YAML{where}: {problem}") from None


def read_playbook(file: Path) -> Playbook:
    """One playbook per file."""
    data = _read_yaml(file)
    if not isinstance(data, dict):
        raise _fail(file, None, "(top level)", "a playbook file must be a mapping")
    pid = data.get("id") if isinstance(data.get("id"), str) else None
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        field, msg = _pydantic_error(exc)
        raise _fail(file, pid, field, msg) from None


def read_policy(file: Path) -> dict[RootCause, PolicyEntry]:
    """``root_cause: {playbook: id | null, decision: ...}`` for every root cause."""
    data = _read_yaml(file, pid="(policy)")
    if not isinstance(data, dict):
        raise PlaybookError(f"{file}: policy: field (top level): must map each root cause to its playbook and decision")
    known = [rc.value for rc in RootCause]
    out: dict[RootCause, PolicyEntry] = {}
    for key, value in data.items():
        if key not in known:
            raise PlaybookError(f"{file}: policy: field {key}: unknown root cause; known: {', '.join(known)}")
        if not isinstance(value, dict):
            raise PlaybookError(
                f"{file}: root cause {key!r}: field {key}: must be a mapping with playbook and decision"
            )
        try:
            out[RootCause(key)] = PolicyEntry.model_validate({"root_cause": key, **value})
        except ValidationError as exc:
            field, msg = _pydantic_error(exc)
            field = key if field == "(top level)" else f"{key}.{field}"
            raise PlaybookError(_one_line(f"{file}: root cause {key!r}: field {field}: {msg}")) from None
    missing = [rc for rc in known if RootCause(rc) not in out]
    if missing:
        raise PlaybookError(f"{file}: policy: field (top level): no entry for root cause {', '.join(missing)}")
    return out


def sample_context(pipeline: str, config_model: type[BaseModel]) -> dict[str, Any]:
    """What step templates are rendered with when a playbook is validated."""
    return {
        "config": config_model().model_dump(),
        "pipeline": pipeline,
        "dataset": "example",
        "incident": {"id": "inc-example"},
        "attempt": 1,
        **sample_lookups(),
    }


def check_args(step: Step, args: Any) -> Args:
    """``args`` parsed by the step tool's ``args_model``; raises ValidationError."""
    return ACTION_TOOLS[step.tool].args_model.model_validate(args)


def _bounds_problem(model: type[BaseModel], policy: GuardrailPolicy, pipeline: str, key: str, value: Any) -> str | None:
    from pipelines.runtime import bounds_of

    declared = bounds_of(model)  # type: ignore[arg-type]
    if key not in declared:
        return f"{key!r} is not a tunable of the {pipeline} config (tunables: {', '.join(sorted(declared))})"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"{key}={value!r} is not a finite number"
    lo, hi = declared[key]
    step: float | None = None
    tight = policy.bounds_for(pipeline, key)
    if tight is not None:
        lo = tight.min if lo is None else (lo if tight.min is None else max(lo, tight.min))
        hi = tight.max if hi is None else (hi if tight.max is None else min(hi, tight.max))
        step = tight.max_step_factor
    shown = f"[{'-inf' if lo is None else f'{lo:g}'}, {'+inf' if hi is None else f'{hi:g}'}]"
    if lo is not None and value < lo:
        return f"{key}={value:g} is below the minimum of the allowed range {shown}"
    if hi is not None and value > hi:
        return f"{key}={value:g} is above the maximum of the allowed range {shown}"
    default = model.model_fields[key].default
    if step is not None and isinstance(default, int | float) and not isinstance(default, bool):
        old, new = abs(float(default)), abs(float(value))
        factor = 1.0 if old == new else (math.inf if 0 in (old, new) else max(old, new) / min(old, new))
        if factor > step:
            return f"{key}: {default:g} -> {value:g} (from the default) is a step factor of {factor:.3g}, more than {step:g}"
    return None


def check_playbook(
    pb: Playbook, file: Path, policy: GuardrailPolicy, config_models: Mapping[str, type[BaseModel]]
) -> None:
    """Tools, rendered arguments, config bounds, declared risk, signatures."""
    from pipelines.runtime import PipelineConfig

    for i, sig in enumerate(pb.signatures):
        if sig.root_cause not in pb.root_causes:
            raise _fail(
                file,
                pb.id,
                f"signatures[{i}].root_cause",
                f"{sig.root_cause.value!r} is not among this playbook's root_causes "
                f"({', '.join(rc.value for rc in pb.root_causes)})",
            )
        if sig.note is not None:
            try:
                render(sig.note, sample_lookups())
            except PlaybookError as exc:
                raise _fail(file, pb.id, f"signatures[{i}].note", str(exc)) from None
    worst: tuple[int, str, str] | None = None
    for where, steps in (("steps", pb.steps), ("rollback", pb.rollback or [])):
        for i, step in enumerate(steps):
            field = f"{where}[{i}]"
            tool_cls = ACTION_TOOLS.get(step.tool)
            if tool_cls is None:
                known = ", ".join(sorted(ACTION_TOOLS))
                raise _fail(file, pb.id, f"{field}.tool", f"{step.tool!r} is not an action tool; known: {known}")
            risk = policy.risk_of(step.tool)
            if risk is None:
                raise _fail(file, pb.id, f"{field}.tool", f"{step.tool!r} has no risk in the guardrail policy")
            if worst is None or risk.rank > worst[0]:
                worst = (risk.rank, step.tool, risk.value)
            for pipeline in pb.pipelines:
                model = config_models.get(pipeline.value, PipelineConfig)
                try:
                    rendered = render(step.args, sample_context(pipeline.value, model))
                except PlaybookError as exc:
                    raise _fail(file, pb.id, f"{field}.args", f"{exc} (pipeline {pipeline.value})") from None
                try:
                    parsed = check_args(step, rendered)
                except ValidationError as exc:
                    loc, msg = _pydantic_error(exc)
                    raise _fail(
                        file, pb.id, f"{field}.args.{loc}", f"{msg}; {step.tool} args (pipeline {pipeline.value})"
                    ) from None
                change = tool_cls().config_change(parsed)
                if change is not None:
                    problem = _bounds_problem(model, policy, pipeline.value, change[0], change[1])
                    if problem is not None:
                        raise _fail(file, pb.id, f"{field}.args", f"{problem} (pipeline {pipeline.value})")
    if worst is not None and pb.risk.rank < worst[0]:
        raise _fail(
            file,
            pb.id,
            "risk",
            f"declared {pb.risk.value}, but step tool {worst[1]!r} is {worst[2]} risk in the guardrail policy",
        )


def check_catalogue(
    playbooks: Mapping[str, Playbook],
    sources: Mapping[str, Path],
    policy: Mapping[RootCause, PolicyEntry],
    policy_file: Path,
    directory: Path,
) -> None:
    """The policy names catalogued playbooks that treat its root causes, and
    every root cause but no_fault has a signature somewhere."""
    for rc, entry in policy.items():
        if entry.playbook is None:
            continue
        pb = playbooks.get(entry.playbook)
        if pb is None:
            known = ", ".join(sorted(playbooks)) or "none"
            raise PlaybookError(
                f"{policy_file}: root cause {rc.value!r}: field playbook: unknown playbook {entry.playbook!r}; "
                f"known: {known}"
            )
        if rc not in pb.root_causes:
            raise PlaybookError(
                f"{policy_file}: root cause {rc.value!r}: field playbook: playbook {pb.id!r} "
                f"({sources[pb.id].name}) does not list {rc.value!r} in its root_causes"
            )
        for pipeline, own in entry.pipelines.items():
            field = f"pipelines.{pipeline.value}.playbook"
            if own.playbook is None:
                continue
            opb = playbooks.get(own.playbook)
            if opb is None:
                known = ", ".join(sorted(playbooks)) or "none"
                raise PlaybookError(
                    f"{policy_file}: root cause {rc.value!r}: field {field}: unknown playbook {own.playbook!r}; "
                    f"known: {known}"
                )
            if rc not in opb.root_causes or pipeline not in opb.pipelines:
                raise PlaybookError(
                    f"{policy_file}: root cause {rc.value!r}: field {field}: playbook {opb.id!r} "
                    f"({sources[opb.id].name}) does not treat {rc.value!r} on {pipeline.value} "
                    f"(root_causes: {', '.join(r.value for r in opb.root_causes)}; "
                    f"pipelines: {', '.join(p.value for p in opb.pipelines)})"
                )
    covered = {sig.root_cause for pb in playbooks.values() for sig in pb.signatures}
    missing = [rc.value for rc in RootCause if rc != RootCause.NO_FAULT and rc not in covered]
    if missing:
        raise PlaybookError(
            f"{directory}: playbook (catalogue): field signatures: no signature diagnoses {', '.join(missing)}; "
            "every root cause except no_fault needs one on the playbook that treats it"
        )
