"""`dataops demo` as a user runs it: ingestion, annotation and enrichment
under the agents; every low- and medium-risk fault is auto-fixed, high-risk
ones wait for a human, and no record is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playbooks import PlaybookCatalog

pytestmark = pytest.mark.slow  # the whole scripted demo, about a minute

_AUTO = {"auto_fix", "auto_fix_notify"}
_ORDER = ["auto_fix", "auto_fix_notify", "needs_approval", "escalate"]


def test_demo_json(tmp_path: Path) -> None:
    env = {**os.environ, "DATAOPS_HOME": str(tmp_path / "ws")}
    proc = subprocess.run(
        [sys.executable, "-m", "app", "demo", "--json"], capture_output=True, text=True, timeout=600, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    catalog = PlaybookCatalog.load()
    from evals.faults import FAULTS

    assert sorted(i["fault"] for i in report["incidents"]) == sorted(FAULTS)
    assert {i["pipeline"] for i in report["incidents"]} == {"ingestion", "annotation", "enrichment"}
    for inc in report["incidents"]:
        assert set(inc) >= {"fault", "pipeline", "root_cause", "decision", "playbook", "status", "seconds_to_resolve"}
        expected = FAULTS[inc["fault"]]
        assert inc["pipeline"] == expected.pipeline
        assert inc["root_cause"] == expected.expected_root_cause.value, inc
        assert inc["playbook"] == expected.expected_playbook, inc
        policy = catalog.policy(expected.expected_root_cause, expected.pipeline).decision.value
        # The gate only ever tightens the policy (incident memory may ask a
        # human where a playbook failed on similar incidents before).
        assert _ORDER.index(inc["decision"]) >= _ORDER.index(policy), inc
        if inc["decision"] in _AUTO:
            assert inc["status"] == "resolved", inc
        elif inc["decision"] == "needs_approval":
            assert policy in _AUTO and inc["status"] == "pending_approval", inc
        else:
            assert inc["status"] in ("pending_approval", "escalated"), inc
    acc = report["accounting"]
    assert acc["read"] == acc["accepted"] + acc["duplicates"] + acc["quarantined"]
    assert acc["files_missing"] == 0 and acc["files_landed"] > 0
