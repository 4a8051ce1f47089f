"""Guardrails: every action an agent takes passes here first.

Risk policy (:func:`load_policy`), bounds on config changes, attempt and rate
budgets, the kill switch, the one-remediation-per-pipeline lock, idempotent
execution and a hash-chained audit log, all kept in the metadata DB.

Typical use by an action tool::

    verdict = guardrails.check(request)
    if verdict.allowed:
        result = guardrails.run_once(request.idempotency_key, do_it)
        guardrails.record(request, "executed", result=result)
"""

from guardrails._audit import GENESIS_HASH, AuditLog, VerifyResult
from guardrails._bounds import EffectiveBounds, ModelBounds
from guardrails._engine import CONTROL_ACTIONS, ActionRequest, Guardrails, Verdict
from guardrails._models import (
    ActionLedger,
    AuditEntry,
    AuditVerdict,
    InFlight,
    KillSwitch,
    LedgerStatus,
)
from guardrails._policy import (
    ACTIONS,
    ALL_PIPELINES,
    GuardrailPolicy,
    RateLimit,
    RateLimits,
    Risk,
    TunableBounds,
    default_policy_path,
    load_policy,
)

__all__ = [
    "ACTIONS",
    "ALL_PIPELINES",
    "CONTROL_ACTIONS",
    "GENESIS_HASH",
    "ActionLedger",
    "ActionRequest",
    "AuditEntry",
    "AuditLog",
    "AuditVerdict",
    "EffectiveBounds",
    "GuardrailPolicy",
    "Guardrails",
    "InFlight",
    "KillSwitch",
    "LedgerStatus",
    "ModelBounds",
    "RateLimit",
    "RateLimits",
    "Risk",
    "TunableBounds",
    "Verdict",
    "VerifyResult",
    "default_policy_path",
    "load_policy",
]
