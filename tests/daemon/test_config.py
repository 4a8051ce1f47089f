"""The daemon's config file: what it accepts and the one line it says when
something is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.daemon import DaemonConfig, load_daemon_config
from app.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "daemon.yaml"
    path.write_text(text)
    return path


def test_a_full_config_loads(tmp_path: Path) -> None:
    cfg = load_daemon_config(_write(tmp_path, """
monitor_interval_s: 15
agents: {min_confidence: 0.7}
jobs:
  - pipeline: ingestion
    dataset: products
    source: s3://raw-uploads/products/
    schema: schemas/products.yaml
    schedule: {cron: "*/15 * * * *"}
  - dataset: audio
    source: /data/audio
    schedule: {interval_s: 600, jitter_s: 30}
"""))
    assert [j.key for j in cfg.jobs] == ["ingestion/products", "ingestion/audio"]
    assert cfg.monitor_interval_s == 15 and cfg.agents.min_confidence == 0.7
    # A relative schema path is relative to the config file, not to where the daemon starts.
    assert cfg.jobs[0].schema_path == tmp_path / "schemas" / "products.yaml"
    cron, interval = (j.schedule.trigger() for j in cfg.jobs if j.schedule is not None)
    assert "minute='*/15'" in str(cron)
    assert interval.interval.total_seconds() == 600 and interval.jitter == 30


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: [{dataset: a, source: /x, schedule: {cron: '* * * * *', interval_s: 5}}]",
         "jobs.0.schedule: give exactly one of cron and interval_s"),
        ("jobs: [{dataset: a, source: /x, schedule: {cron: 'every monday'}}]", "invalid cron 'every monday'"),
        ("jobs: [{dataset: a, source: /x}, {dataset: a, source: /y}]", "job ingestion/a is listed twice"),
        ("jobs: [{dataset: a, source: /x, colour: red}]", "jobs.0.colour: Extra inputs are not permitted"),
        ("jobs: [{pipeline: billing, dataset: a, source: /x}]", "jobs.0.pipeline: Input should be"),
        ("monitor_interval_s: 0", "monitor_interval_s: Input should be greater than 0"),
        ("jobs: [dataset: a", "invalid YAML (line 1"),
        ("- just a list", "a daemon config is a mapping at the top level"),
    ],
)
def test_a_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_daemon_config(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_no_file_means_defaults_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    assert load_daemon_config(None) == DaemonConfig()
    with pytest.raises(ConfigError, match="cannot read daemon config .*nope.yaml: No such file"):
        load_daemon_config(tmp_path / "nope.yaml")
