"""`dataops demo` as a user runs it: every low- and medium-risk fault is
auto-fixed, high-risk ones wait for a human, and no record is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from playbooks import PlaybookCatalog

_AUTO = {"auto_fix", "auto_fix_notify"}


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
    for inc in report["incidents"]:
        assert set(inc) >= {"fault", "root_cause", "decision", "playbook", "status", "seconds_to_resolve"}
        expected = FAULTS[inc["fault"]]
        assert inc["root_cause"] == expected.expected_root_cause.value, inc
        policy = catalog.policy(expected.expected_root_cause).decision.value
        if policy in _AUTO:
            assert inc["status"] == "resolved", inc
        else:
            assert inc["status"] in ("pending_approval", "escalated"), inc
    acc = report["accounting"]
    assert acc["read"] == acc["accepted"] + acc["duplicates"] + acc["quarantined"]
    assert acc["files_missing"] == 0 and acc["files_landed"] > 0
