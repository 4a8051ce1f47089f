"""Routing decisions: auto-accept threshold and the consensus routes."""

from __future__ import annotations

import pytest

from app.errors import InputError
from pipelines.annotation import majority_vote, route_auto, route_consensus


def test_auto_accept_at_or_above_threshold() -> None:
    assert route_auto(0.95, 0.95)
    assert route_auto(0.99, 0.95)
    assert not route_auto(0.9499, 0.95)
    assert not route_auto(float("nan"), 0.95)
    with pytest.raises(InputError, match="threshold"):
        route_auto(0.9, 1.5)


def test_consensus_routes() -> None:
    unanimous = majority_vote(["a", "a", "a"])
    two_of_three = majority_vote(["a", "a", "b"])
    tie = majority_vote(["a", "b"])
    assert route_consensus(unanimous, answers=2, annotators_per_task=3, review_below=0.5) == "needs_more"
    assert route_consensus(unanimous, answers=3, annotators_per_task=3, review_below=1.0) == "accepted"
    assert route_consensus(two_of_three, answers=3, annotators_per_task=3, review_below=0.6) == "accepted"
    assert route_consensus(two_of_three, answers=3, annotators_per_task=3, review_below=1.0) == "expert_review"
    # the default bar 0.67 sits just above 2/3: a 2-1 split goes to an expert
    assert route_consensus(two_of_three, answers=3, annotators_per_task=3, review_below=0.67) == "expert_review"
    assert route_consensus(tie, answers=2, annotators_per_task=2, review_below=0.0) == "expert_review"
    with pytest.raises(InputError, match="annotators_per_task"):
        route_consensus(tie, answers=2, annotators_per_task=0, review_below=0.5)
