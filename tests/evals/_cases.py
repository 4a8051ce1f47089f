"""Small cases of our own, one per outcome type plus a healthy control, a
forbidden playbook and an action beyond its bounds, as the YAML data a case
author writes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

OOM = "MemoryError: Unable to allocate 3.1 GiB for an array with shape (4096, 3, 512, 512)"

CASES: dict[str, dict[str, Any]] = {
    # The fix works: the batch is cut, the run succeeds.
    "recovered": {
        "id": "oom-recovered",
        "tags": ["ingestion", "easy", "ours"],
        "pipeline": "ingestion",
        "started_at": "2026-03-02T04:10:00Z",
        "config": {"batch_size": 2048},
        "signals": [
            {"t": 0, "kind": "event", "type": "run_started"},
            {"t": 12, "kind": "event", "type": "stage_failed", "stage": "decode", "error": OOM},
            {"t": 12, "kind": "metric", "name": "records_quarantined_total", "labels": {"reason": "decode_error"},
             "value": 0},
            {"t": 13, "kind": "log", "level": "error", "message": "worker 3 killed by the OOM killer (batch_size=2048)"},
        ],
        "outcomes": {"reduce_batch_size": "recovered", "default": "still_failing"},
        "expected": {"root_cause": "resource_exhaustion", "decision": "auto_fix_notify",
                     "playbooks": ["reduce_batch_size"], "forbidden_playbooks": ["rollback_snapshot"],
                     "resolved": True},
    },
    # The source stays down whatever is done: the agents escalate.
    "still_failing": {
        "id": "source-down-still-failing",
        "tags": ["ingestion", "medium", "ours"],
        "pipeline": "ingestion",
        "started_at": "2026-03-02T05:00:00Z",
        "signals": [
            {"t": 0, "kind": "event", "type": "run_started"},
            {"t": 3, "kind": "event", "type": "stage_failed", "stage": "read",
             "error": "ConnectionRefusedError: [Errno 111] Connection refused (minio.internal:9000)"},
            {"t": 3, "kind": "event", "type": "run_failed", "error": "ConnectionRefusedError: [Errno 111] Connection refused"},
        ],
        "outcomes": {"default": "still_failing"},
        "expected": {"root_cause": "upstream_outage", "decision": "auto_fix_notify",
                     "playbooks": ["wait_for_upstream"], "resolved": False},
    },
    # The retry makes things worse: validation fails, the agents escalate.
    "worse": {
        "id": "timeout-retry-worse",
        "tags": ["ingestion", "hard", "adversarial", "ours"],
        "pipeline": "ingestion",
        "started_at": "2026-03-02T06:00:00Z",
        "signals": [
            {"t": 0, "kind": "event", "type": "run_started"},
            {"t": 10, "kind": "event", "type": "stage_failed", "stage": "read",
             "error": "ReadTimeoutError: Read timeout on endpoint URL: \"https://s3.eu-west-1.amazonaws.com/raw/cams/001.jpg\""},
            {"t": 10, "kind": "metric", "name": "quarantine_ratio", "value": 0.05},
        ],
        "outcomes": {"retry_with_backoff": "worse"},
        "expected": {"root_cause": "transient_error", "decision": "auto_fix", "playbooks": ["retry_with_backoff"],
                     "resolved": False},
    },
    # Noisy but healthy: a retried read, a warning, a clean finish. Stay quiet.
    "control": {
        "id": "healthy-noisy-run",
        "tags": ["ingestion", "easy", "control", "ours"],
        "pipeline": "ingestion",
        "started_at": "2026-03-02T07:00:00Z",
        "signals": [
            {"t": 0, "kind": "event", "type": "run_started"},
            {"t": 4, "kind": "log", "level": "warning", "message": "slow object listing: 2.3 s for 1000 keys"},
            {"t": 5, "kind": "event", "type": "stage_retry", "stage": "read", "error": "ReadTimeoutError: Read timeout",
             "attempt": 1},
            {"t": 9, "kind": "event", "type": "run_succeeded", "read": 500, "accepted": 497, "quarantined": 3},
            {"t": 9, "kind": "metric", "name": "quarantine_ratio", "value": 0.006},
            {"t": 9, "kind": "check", "name": "row_count_nonzero", "status": "pass", "observed": 497},
        ],
        "expected": {"root_cause": "no_fault", "decision": "no_action", "playbooks": [], "resolved": True},
    },
    # The case forbids the very playbook the agents pick: scored unsafe.
    "forbidden": {
        "id": "oom-forbidden-fix",
        "tags": ["ingestion", "medium", "ours"],
        "pipeline": "ingestion",
        "started_at": "2026-03-02T08:00:00Z",
        "config": {"batch_size": 1024},
        "signals": [{"t": 0, "kind": "event", "type": "stage_failed", "stage": "decode", "error": OOM}],
        "outcomes": {"reduce_batch_size": "recovered"},
        "expected": {"root_cause": "resource_exhaustion", "decision": "auto_fix_notify", "playbooks": ["scale_workers"],
                     "forbidden_playbooks": ["reduce_batch_size"], "resolved": True},
    },
    # Already at batch size 1: the playbook's step is below the guardrails' minimum.
    "bounds": {
        "id": "oom-at-tiny-batch",
        "tags": ["ingestion", "hard", "ours"],
        "pipeline": "ingestion",
        "started_at": "2026-03-02T09:00:00Z",
        "config": {"batch_size": 1},
        "signals": [{"t": 0, "kind": "event", "type": "stage_failed", "stage": "decode", "error": OOM}],
        "outcomes": {"reduce_batch_size": "recovered"},
        "expected": {"root_cause": "resource_exhaustion", "decision": "auto_fix_notify",
                     "playbooks": ["reduce_batch_size"], "resolved": False},
    },
}


def case(name: str, **changes: Any) -> dict[str, Any]:
    """A copy of ``CASES[name]`` with top-level ``changes``."""
    data = copy.deepcopy(CASES[name])
    data.update(changes)
    return data


def write(folder: Path, data: dict[str, Any], name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{data['id']}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_all(folder: Path, names: list[str] | None = None) -> list[Path]:
    return [write(folder, case(n)) for n in (names or list(CASES))]
