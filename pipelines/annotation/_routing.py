"""Where a task goes next: auto-accepted by the model, accepted by consensus,
back for more answers, or to an expert."""

from __future__ import annotations

import math
from typing import Literal

from app.errors import InputError
from pipelines.annotation._consensus import Vote

__all__ = ["Route", "ROUTES", "route_auto", "route_consensus"]

Route = Literal["accepted", "expert_review", "needs_more"]
ROUTES: tuple[Route, ...] = ("accepted", "expert_review", "needs_more")


def route_auto(confidence: float, threshold: float) -> bool:
    """True when the model's confidence is at or above ``threshold`` and the
    label can be accepted without people (NaN never is)."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"auto-accept threshold must be in (0, 1], got {threshold}")
    return not math.isnan(confidence) and confidence >= threshold


def route_consensus(vote: Vote, *, answers: int, annotators_per_task: int, review_below: float) -> Route:
    """``needs_more`` until ``annotators_per_task`` answers are in; then
    ``expert_review`` on a tie or a majority share below ``review_below``
    (1.0 sends every non-unanimous task), else ``accepted``."""
    if annotators_per_task < 1:
        raise InputError(f"annotators_per_task must be at least 1, got {annotators_per_task}")
    if not 0.0 <= review_below <= 1.0:
        raise InputError(f"review_below must be in [0, 1], got {review_below}")
    if answers < annotators_per_task:
        return "needs_more"
    if vote.label is None or vote.share < review_below:
        return "expert_review"
    return "accepted"
