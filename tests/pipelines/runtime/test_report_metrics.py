"""A pipeline's own figures: Prometheus gauges and metric signals for the monitor."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.runtime import MetricValue, Runtime, utcnow
from tools._live_observe import event_signals


def test_report_metrics_sets_gauges_and_becomes_signals(runtime: Runtime) -> None:
    start = utcnow() - timedelta(seconds=1)
    runtime.report_metrics(
        "annotation",
        "digits",
        [MetricValue("annotation_backlog", 120), MetricValue("annotator_agreement", 0.42, {"annotator": "ann-2"})],
        run_id="r1",
    )
    assert runtime.metrics.registry.get_sample_value(
        "dataops_annotator_agreement", {"pipeline": "annotation", "dataset": "digits", "annotator": "ann-2"}
    ) == pytest.approx(0.42)
    signals = [s for s in event_signals(runtime.events.list(pipeline="annotation"), start) if s.kind == "metric"]
    by_name = {s.name: s for s in signals}
    assert by_name["annotation_backlog"].value == 120
    assert by_name["annotator_agreement"].labels == {"annotator": "ann-2"}
    assert all(s.pipeline == "annotation" and s.dataset == "digits" for s in signals)


def test_a_gauge_keeps_its_label_names(runtime: Runtime) -> None:
    runtime.metrics.gauge_set("annotation", "d", "figure", 1.0, {"a": "x"})
    with pytest.raises(ValueError, match="labels"):
        runtime.metrics.gauge_set("annotation", "d", "figure", 1.0, {"b": "x"})
    with pytest.raises(ValueError, match="bad metric name"):
        runtime.metrics.gauge_set("annotation", "d", "Bad-Name", 1.0)
