"""Load on the running daemon, loopback only and bounded.

Run by hand from the repository root::

    .venv/bin/python -m benchmarks.bench_daemon_load                   # 2 rounds of 2000 requests, 32 at a time
    .venv/bin/python -m benchmarks.bench_daemon_load --requests 5000 --concurrency 64 --json

It starts ``dataops daemon`` as a subprocess on a free loopback port with a
fresh workspace, an ingestion job on a 2 s schedule (its runs go on under the
load) and Slack configured against a local stand-in for Slack's Web API
(``tests/fixtures/slack_api.py``). Then it sends the requests with httpx at
bounded concurrency, in a fixed interleaving:

- half are Alertmanager webhooks (each one alert, unique fingerprint, routed
  to the job: every one is a run event and asks for a monitor cycle),
- a quarter are signed ``/dataops status`` slash commands (Bolt verifies the
  signature, the ops backend reads the stores),
- a quarter are API reads (``/api/incidents``, ``/api/runs``).

The load is sent in ``--rounds`` equal rounds (default 2). Per round it
reports latency percentiles per kind and errors (non-2xx answers and
transport errors), then waits for the monitor to take every alert in, and
reads the daemon's RSS from ``/proc/<pid>/status`` (sampled every 100 ms
during the round; ``VmHWM`` is the kernel's peak). Flat memory means the
RSS after round 2 is about the RSS after round 1: the first round pays for
warm-up (caches, allocator arenas), a leak would grow with every round.
The accounting at the end: every webhook answered 200 must be one
``alert_firing`` run event in the metadata DB, and all of them join one
incident (same alert name, within the join window).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"
SIGNING_SECRET = "bench-signing-secret-0123456789"


def _rss_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class Sampler(threading.Thread):
    """VmRSS every ``every`` seconds until stopped; the largest seen."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, _rss_kb(self.pid)["VmRSS"])
            self._halt.wait(self.every)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def _start_daemon(work: Path, slack_api: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    from evals.faults import high_res_sample_schema
    from pipelines.ingestion import make_sample_dataset

    make_sample_dataset(work / "landing" / "b00", n_images=20, n_audio=2, n_text=4, seed=7)
    (work / "schema.yaml").write_text(high_res_sample_schema())
    (work / "daemon.yaml").write_text(json.dumps({
        "incident_memory": False,
        "monitor_interval_s": 5,
        "jobs": [{"pipeline": "ingestion", "dataset": "bench", "source": str(work / "landing"),
                  "schema": str(work / "schema.yaml"), "schedule": {"interval_s": 2}, "run_at_start": True}],
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAOPS_")}
    env.update(
        DATAOPS_HOME=str(work / "ws"), DATAOPS_API_TOKEN=TOKEN, DATAOPS_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        DATAOPS_SLACK_BOT_TOKEN="xoxb-test-token", DATAOPS_SLACK_API_URL=slack_api, HF_HUB_OFFLINE="1",
    )
    log = work / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "daemon", "--config", str(work / "daemon.yaml"), "--port", "0"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if '"daemon_listening"' in line:
                return proc, int(json.loads(line)["port"]), log
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("daemon did not start in 120 s")


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("daemon not ready in 120 s")


def _alert(i: int, status: str = "firing") -> bytes:
    return json.dumps({
        "version": "4", "groupKey": f'{{}}:{{alertname="BenchStorm"}}:{i}', "status": status, "receiver": "dataops",
        "alerts": [{
            "status": status, "startsAt": "2026-01-05T10:00:00Z", "fingerprint": f"bench{i:08d}",
            "labels": {"alertname": "BenchStorm", "pipeline": "ingestion", "dataset": "bench", "severity": "warning"},
            "annotations": {"summary": f"synthetic alert {i}"},
        }],
    }).encode()


def _slash(user: str = "U0BENCH") -> tuple[bytes, dict[str, str]]:
    body = urlencode({
        "command": "/dataops", "text": "status", "user_id": user, "user_name": "bench", "team_id": "T0BENCH",
        "channel_id": "C0BENCH", "response_url": "http://127.0.0.1:9/unused", "trigger_id": "1.2.3",
        "api_app_id": "A0BENCH",
    }).encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
                  "x-slack-signature": sig}


Request = tuple[str, Callable[[httpx.AsyncClient], Any]]


def _send_slash(client: httpx.AsyncClient) -> Any:
    body, headers = _slash()  # signed when sent: Bolt refuses stale timestamps
    return client.post("/slack/commands", content=body, headers=headers)


def _plan(n: int, start: int = 0, status: str = "firing") -> list[Request]:
    auth = {"authorization": f"Bearer {TOKEN}"}
    plan: list[Request] = []
    for i in range(start, start + n):
        slot = i % 4
        if slot in (0, 2):
            body = _alert(i, status)
            plan.append(("webhook", lambda c, b=body: c.post("/webhooks/alertmanager", content=b, headers=auth)))
        elif slot == 1:
            plan.append(("slack", _send_slash))
        else:
            path = "/api/incidents" if i % 8 == 3 else "/api/runs"
            plan.append(("api", lambda c, p=path: c.get(p, headers=auth)))
    return plan


async def _load(base: str, plan: list[Request], concurrency: int) -> list[tuple[str, float, int | None]]:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(kind: str, send: Callable[[httpx.AsyncClient], Any]) -> tuple[str, float, int | None]:
            async with sem:
                started = time.perf_counter()
                try:
                    status: int | None = (await send(client)).status_code
                except httpx.HTTPError:
                    status = None
                return kind, time.perf_counter() - started, status

        return await asyncio.gather(*(one(k, s) for k, s in plan))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000 if ordered else float("nan")


def _accounting(home: Path, status: str = "firing") -> dict[str, int]:
    with sqlite3.connect(home / "metadata.db") as db:
        events = db.execute("SELECT count(*) FROM run_events WHERE type = ?", (f"alert_{status}",)).fetchone()[0]
        incidents = db.execute("SELECT count(*) FROM incidents WHERE dataset = 'bench'").fetchone()[0]
        signals = db.execute("SELECT signals FROM incidents WHERE dataset = 'bench'").fetchall()
        runs = db.execute("SELECT count(*) FROM runs WHERE dataset = 'bench'").fetchone()[0]
    joined = sum(sum(1 for s in json.loads(row[0] or "[]") if s.get("type") == f"alert_{status}") for row in signals)
    return {"alert_events": events, "incidents": incidents, "alerts_in_incidents": joined, "pipeline_runs": runs}


def _settle(home: Path, expected: int, status: str, timeout: float = 60.0) -> None:
    """Wait until the monitor has joined every stored firing alert into the
    incident (resolved ones are no symptom: a few seconds for the cycles)."""
    deadline = time.monotonic() + (timeout if status == "firing" else 6.0)
    while time.monotonic() < deadline:
        got = _accounting(home, status)
        if status == "firing" and got["alert_events"] >= expected and got["alerts_in_incidents"] >= got["alert_events"]:
            return
        time.sleep(0.5)


def _round(base: str, pid: int, plan: list[Request], concurrency: int) -> tuple[list[tuple[str, float, int | None]], float, int]:
    sampler = Sampler(pid)
    sampler.start()
    started = time.perf_counter()
    results = asyncio.run(_load(base, plan, concurrency))
    wall = time.perf_counter() - started
    return results, wall, sampler.stop()


def _summary(results: list[tuple[str, float, int | None]], wall: float) -> dict[str, Any]:
    kinds = sorted({k for k, _, _ in results})
    latency = {
        kind: {f"p{q}": round(_pct([t for k, t, _ in results if k == kind], q), 1) for q in (50, 95, 99)}
        for kind in kinds
    }
    latency["all"] = {f"p{q}": round(_pct([t for _, t, _ in results], q), 1) for q in (50, 95, 99)}
    return {
        "requests": len(results), "seconds": round(wall, 2), "requests_per_s": round(len(results) / wall, 1),
        "latency_ms": latency,
        "errors": {kind: sum(1 for k, _, s in results if k == kind and (s is None or s >= 300)) for kind in kinds},
        "webhooks_accepted": sum(1 for k, _, s in results if k == "webhook" and s == 200),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="requests per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--alert-status", choices=["firing", "resolved"], default="firing",
                    help="resolved alerts are recorded but are no symptom: no incident grows")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if not 1 <= args.requests <= 20_000 or not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 10:
        ap.error("--requests must be 1..20000, --concurrency 1..256 and --rounds 1..10")
    from tests.fixtures.slack_api import FakeSlack

    slack = FakeSlack().start()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dataops-bench-") as tmp:
        work = Path(tmp)
        proc, port, _ = _start_daemon(work, slack.api_url)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base)
            time.sleep(3)  # the first run and a monitor cycle: the steady state the load lands on
            rss_before = _rss_kb(proc.pid)["VmRSS"]
            accepted = 0
            for r in range(args.rounds):
                plan = _plan(args.requests, start=r * args.requests, status=args.alert_status)
                results, wall, peak = _round(base, proc.pid, plan, args.concurrency)
                summary = _summary(results, wall)
                accepted += summary["webhooks_accepted"]
                _settle(work / "ws", accepted, args.alert_status)
                rss = _rss_kb(proc.pid)
                rounds.append({**summary, "rss_peak_sampled_mb": round(peak / 1024, 1),
                               "rss_after_mb": round(rss["VmRSS"] / 1024, 1)})
            kernel_peak = _rss_kb(proc.pid)["VmHWM"]
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            accounting = _accounting(work / "ws", args.alert_status)
        finally:
            if proc.poll() is None:
                proc.kill()
            slack.stop()
    report: dict[str, Any] = {
        "alert_status": args.alert_status, "concurrency": args.concurrency, "rounds": rounds, "webhooks_accepted": accepted, **accounting,
        "webhooks_unaccounted": accepted - accounting["alert_events"],
        "rss_before_mb": round(rss_before / 1024, 1), "rss_kernel_peak_mb": round(kernel_peak / 1024, 1),
        "exit_status_after_sigterm": rc,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    errors = sum(sum(r["errors"].values()) for r in rounds)
    return 0 if report["webhooks_unaccounted"] == 0 and errors == 0 else 1


def _print(r: dict[str, Any]) -> None:
    print(f"{r['alert_status']} alerts, concurrency {r['concurrency']}; daemon RSS before the load {r['rss_before_mb']} MB")
    for n, rd in enumerate(r["rounds"], 1):
        print(f"round {n}: {rd['requests']} requests in {rd['seconds']} s ({rd['requests_per_s']}/s); "
              f"RSS peak {rd['rss_peak_sampled_mb']} MB, after {rd['rss_after_mb']} MB")
        print(f"  {'kind':<8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for kind, lat in rd["latency_ms"].items():
            errors = rd["errors"].get(kind, sum(rd["errors"].values()))
            print(f"  {kind:<8} {lat['p50']:>8} {lat['p95']:>8} {lat['p99']:>8} {errors:>7}")
    print(f"webhooks accepted {r['webhooks_accepted']}, alert_{r['alert_status']} events stored {r['alert_events']} "
          f"(unaccounted {r['webhooks_unaccounted']}); incidents {r['incidents']} holding "
          f"{r['alerts_in_incidents']} alert signals; pipeline runs {r['pipeline_runs']}")
    print(f"kernel RSS peak {r['rss_kernel_peak_mb']} MB; exit status after SIGTERM {r['exit_status_after_sigterm']}")


if __name__ == "__main__":
    raise SystemExit(main())
