"""The guardrail engine: every action passes :meth:`Guardrails.check` before
it runs. Checks run in a fixed order (kill switch, dry run, bounds, attempts
per incident, rate limits, in-flight lock) and every verdict is audited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine

from app.errors import ConfigError
from guardrails._audit import AuditLog
from guardrails._bounds import EffectiveBounds, ModelBounds, bounds_refusal, effective_bounds
from guardrails._db import as_utc
from guardrails._models import AuditEntry, AuditVerdict, InFlight, KillSwitch, LedgerStatus, utcnow
from guardrails._policy import ALL_PIPELINES, GuardrailPolicy, Risk
from guardrails._state import InFlightLocks, KillSwitchStore, Ledger

__all__ = ["ActionRequest", "Verdict", "Guardrails", "CONTROL_ACTIONS"]

T = TypeVar("T")

# Audit actions of the guardrails themselves; they count toward no budget.
PAUSE, RESUME, FORCE_RELEASE = "guardrails.pause", "guardrails.resume", "guardrails.force_release"
CONTROL_ACTIONS: tuple[str, ...] = (PAUSE, RESUME, FORCE_RELEASE)

# Outcomes that mean an action touched the world: attempts and rate limits count these.
_ACTED = (AuditVerdict.EXECUTED.value, AuditVerdict.FAILED.value)


class ActionRequest(BaseModel):
    """One action an agent, the CLI or a chat-ops user wants to run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str = Field(min_length=1)
    pipeline: str = Field(min_length=1)
    incident_id: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    actor: str = Field(default="agent", min_length=1, description="agent | cli | slack:<user> | …")
    idempotency_key: str | None = None
    # Set for a config change: the tunable, its proposed value and its current one.
    config_key: str | None = None
    new_value: Any = None
    old_value: Any = None
    # Evaluate and audit only, whatever the policy says.
    dry_run: bool = False

    @field_validator("pipeline")
    @classmethod
    def _one_pipeline(cls, value: str) -> str:
        if value == ALL_PIPELINES:
            raise ValueError("an action targets one pipeline, not '*'")
        return value


class Verdict(BaseModel):
    """What the guardrails decided. ``allowed`` is False for a dry run."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str
    risk: Risk | None
    dry_run: bool = False
    # The guardrail that refused (kill_switch, unknown_action, bounds,
    # attempts, rate_limit, in_flight); None when nothing did.
    rule: str | None = None
    audit_seq: int | None = None


class Guardrails:
    """Risk policy, bounds, budgets, kill switch, in-flight lock, idempotent
    execution and the audit log, over one metadata DB.

    ``bounds`` maps pipeline -> tunable -> (min, max) as the pipeline config
    models declare them; the policy may only tighten these.
    """

    def __init__(
        self,
        engine: Engine,
        policy: GuardrailPolicy,
        bounds: ModelBounds,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._policy = policy
        self._bounds: dict[str, dict[str, tuple[float | None, float | None]]] = {
            p: {k: (lo, hi) for k, (lo, hi) in keys.items()} for p, keys in bounds.items()
        }
        self._clock = clock or utcnow
        self._audit = AuditLog(engine, clock=self._clock)
        self._switches = KillSwitchStore(engine)
        self._locks = InFlightLocks(engine)
        self._ledger = Ledger(engine)

    @property
    def policy(self) -> GuardrailPolicy:
        return self._policy

    @property
    def audit(self) -> AuditLog:
        return self._audit

    def now(self) -> datetime:
        return as_utc(self._clock())

    # Risk and bounds ---------------------------------------------------
    def risk_of(self, action: str) -> Risk:
        """The policy's risk for ``action``; ConfigError when it has none."""
        risk = self._policy.risk_of(action)
        if risk is None:
            raise ConfigError(f"the guardrail policy declares no risk for action {action!r}")
        return risk

    def bounds_of(self, pipeline: str, key: str) -> EffectiveBounds | None:
        """The effective bounds on a tunable; None when it is not one."""
        return effective_bounds(self._policy, self._bounds, pipeline, key)

    # The check -----------------------------------------------------------
    def check(self, request: ActionRequest) -> Verdict:
        """Decide whether ``request`` may run now, and audit the verdict."""
        risk = self._policy.risk_of(request.action)
        switch = self._switches.active([ALL_PIPELINES, request.pipeline])
        if switch is not None:
            where = "every pipeline" if switch.scope == ALL_PIPELINES else f"pipeline {switch.scope!r}"
            why = f": {switch.reason}" if switch.reason else ""
            return self._verdict(request, risk, "kill_switch", f"auto-fix is paused for {where} by {switch.by}{why}")
        if risk is None:
            return self._verdict(
                request, risk, "unknown_action", f"the policy declares no risk for action {request.action!r}"
            )
        refusal = self._first_refusal(request)
        if self._policy.dry_run or request.dry_run:
            if refusal is None:
                return self._verdict(request, risk, None, "dry run: would be allowed", dry_run=True)
            return self._verdict(request, risk, refusal[0], f"dry run: would be refused: {refusal[1]}", dry_run=True)
        if refusal is not None:
            return self._verdict(request, risk, refusal[0], refusal[1])
        return self._verdict(request, risk, None, "passed every guardrail")

    def _first_refusal(self, req: ActionRequest) -> tuple[str, str] | None:
        pol = self._policy
        if req.config_key is not None:
            why = bounds_refusal(pol, self._bounds, req.pipeline, req.config_key, req.new_value, req.old_value)
            if why is not None:
                return "bounds", why
        mutating = req.action not in pol.non_mutating
        if mutating and req.incident_id is not None:
            used = self._audit.count(
                verdicts=_ACTED,
                incident_id=req.incident_id,
                exclude_actions=(*CONTROL_ACTIONS, *pol.non_mutating),
            )
            if used >= pol.max_attempts_per_incident:
                return "attempts", (
                    f"incident {req.incident_id!r} has used {used} of its {pol.max_attempts_per_incident} attempts"
                )
        now = self.now()
        for scope, limit in (
            (req.pipeline, pol.rate_limits.for_pipeline(req.pipeline)),
            (None, pol.rate_limits.global_),
        ):
            done = self._audit.count(
                verdicts=_ACTED,
                pipeline=scope,
                since=now - timedelta(seconds=limit.window_s),
                exclude_actions=CONTROL_ACTIONS,
            )
            if done >= limit.max_actions:
                where = f"pipeline {scope!r}" if scope else "all pipelines"
                return "rate_limit", (
                    f"rate limit for {where}: {done} actions in the last {limit.window_s:g}s "
                    f"(at most {limit.max_actions})"
                )
        if mutating:
            held = self._locks.holder(req.pipeline)
            if held is not None and held.incident_id != req.incident_id:
                return "in_flight", (
                    f"pipeline {req.pipeline!r} has a remediation in flight for incident "
                    f"{held.incident_id!r} since {as_utc(held.since).isoformat(timespec='seconds')}"
                )
        return None

    def _verdict(
        self, req: ActionRequest, risk: Risk | None, rule: str | None, reason: str, *, dry_run: bool = False
    ) -> Verdict:
        allowed = rule is None and not dry_run
        if dry_run:
            audit_verdict = AuditVerdict.DRY_RUN
        else:
            audit_verdict = AuditVerdict.ALLOWED if allowed else AuditVerdict.REFUSED
        entry = self._audit_request(req, audit_verdict, risk, f"{rule}: {reason}" if rule else reason)
        return Verdict(allowed=allowed, reason=reason, risk=risk, dry_run=dry_run, rule=rule, audit_seq=entry.seq)

    def _audit_request(
        self, req: ActionRequest, verdict: AuditVerdict, risk: Risk | None, reason: str, result: Any = None
    ) -> AuditEntry:
        args = dict(req.args)
        if req.config_key is not None:
            args["config_change"] = {"key": req.config_key, "new": req.new_value, "old": req.old_value}
        return self._audit.append(
            actor=req.actor,
            action=req.action,
            verdict=verdict,
            pipeline=req.pipeline,
            incident_id=req.incident_id,
            args=args,
            risk=risk.value if risk is not None else None,
            reason=reason,
            idempotency_key=req.idempotency_key,
            result=result,
        )

    def record(
        self, request: ActionRequest, verdict: AuditVerdict | str, *, reason: str = "", result: Any = None
    ) -> AuditEntry:
        """Audit what became of an action: executed, failed or rolled_back."""
        return self._audit_request(request, AuditVerdict(verdict), self._policy.risk_of(request.action), reason, result)

    # Kill switch ----------------------------------------------------------
    def pause(self, scope: str = ALL_PIPELINES, *, by: str, reason: str) -> None:
        """Stop every action on ``scope`` ("*" for all pipelines) until resumed."""
        self._switches.set(scope, paused=True, by=by, reason=reason, at=self.now())
        self._audit.append(actor=by, action=PAUSE, verdict=AuditVerdict.EXECUTED, pipeline=scope, reason=reason)

    def resume(self, scope: str = ALL_PIPELINES, *, by: str, reason: str = "") -> None:
        """Lift the pause on ``scope``. A global pause still holds every pipeline."""
        self._switches.set(scope, paused=False, by=by, reason=reason, at=self.now())
        self._audit.append(actor=by, action=RESUME, verdict=AuditVerdict.EXECUTED, pipeline=scope, reason=reason)

    def is_paused(self, pipeline: str) -> bool:
        """True when the global switch or ``pipeline``'s own one is on."""
        return self._switches.active([ALL_PIPELINES, pipeline]) is not None

    def kill_switches(self) -> list[KillSwitch]:
        return self._switches.all()

    # In-flight lock -------------------------------------------------------
    def acquire(self, pipeline: str, incident_id: str) -> bool:
        """Take ``pipeline``'s in-flight lock for ``incident_id`` (re-entrant)."""
        return self._locks.acquire(pipeline, incident_id, self.now())

    def release(self, pipeline: str, incident_id: str) -> bool:
        """Release the lock if ``incident_id`` holds it; True when it did."""
        return self._locks.release(pipeline, incident_id)

    def holder(self, pipeline: str) -> InFlight | None:
        return self._locks.holder(pipeline)

    def force_release(self, pipeline: str, *, by: str, reason: str) -> bool:
        """Human override: drop whichever incident holds ``pipeline``'s lock."""
        held = self._locks.holder(pipeline)
        released = self._locks.release(pipeline, None)
        if released:
            self._audit.append(
                actor=by,
                action=FORCE_RELEASE,
                verdict=AuditVerdict.EXECUTED,
                pipeline=pipeline,
                incident_id=held.incident_id if held else None,
                reason=reason,
            )
        return released

    # Idempotent execution -------------------------------------------------
    def completed(self, key: str) -> tuple[bool, Any]:
        """(True, stored result) when the action with this key already ran to
        the end, so a resumed remediation neither repeats nor re-audits it."""
        row = self._ledger.get(key)
        if row is not None and row.status == LedgerStatus.DONE:
            return True, row.result
        return False, None

    def run_once(self, key: str, fn: Callable[[], T], *, rerun_unfinished: bool = False) -> T:
        """Run ``fn`` at most once to success per idempotency ``key``.

        A key already done returns its stored result (JSON, as stored) without
        calling ``fn``; a failed key runs again; a key started but never
        finished (a crash, or a run elsewhere) raises GuardrailError unless
        ``rerun_unfinished`` is set.
        """
        result: T = self._ledger.run_once(key, fn, now=self.now, rerun_unfinished=rerun_unfinished)
        return result
