"""Drift settings and results: :class:`DriftConfig` (every threshold, with its
default and why), :class:`ColumnDrift` per column and :class:`DriftReport`
for a reference/current pair. Every value is JSON-safe (non-finite floats
become ``None``), so a report stores, prints and travels as it is."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

__all__ = ["DriftConfig", "ColumnDrift", "DriftReport", "Severity", "SEVERITY_RANK"]

Severity = Literal["none", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"none": 0, "warning": 1, "critical": 2}


class DriftConfig(BaseModel):
    """Thresholds of drift detection. A column drifts when any rule fires; its
    severity is the highest any rule gives.

    * **PSI** (numeric: ``bins`` reference-quantile bins; categorical: one bin
      per category): ``psi_warning`` 0.1, ``psi_critical`` 0.25, the usual
      credit-scoring bands (< 0.1 stable, 0.1–0.25 moderate, > 0.25 major).
      Empty bins: every bin's share is clipped below at ``psi_epsilon``
      (1e-4) before the logarithm, so an empty bin costs a bounded amount
      instead of an infinite one. PSI only flags when both sides have at least
      ``psi_min_rows`` values: its noise floor is about
      ``(bins - 1) * (1/n_ref + 1/n_cur)``, 0.09 with 100 rows a side.
    * **KS** (numeric): p < ``ks_alpha`` (0.05) *and* statistic at least
      ``ks_min_statistic`` (0.1), the effect-size floor that keeps a million
      rows from flagging a shift nobody would act on; critical from
      ``ks_critical_statistic`` (0.2, about a half-standard-deviation shift of
      a normal). ``ks_method`` is scipy's ``method`` ("auto": exact p-value up
      to 10,000 rows a side, asymptotic above).
    * **chi-square** (categorical): p < ``chi2_alpha`` *and* Cramér's V at
      least ``chi2_min_effect`` (0.1, a small effect); critical from
      ``chi2_critical_effect`` (0.2).
    * **missing rate** (every column): an absolute change of the share of
      nulls (and NaNs) of ``missing_warning`` (0.05) warns, of
      ``missing_critical`` (0.2) is critical, whatever the non-missing values do.
    * **dataset drift**: at least ``dataset_drift_share`` (0.5) of the compared
      columns (the label excluded) drifted.

    Column typing: a string column whose reference values are at least
    ``id_unique_ratio`` distinct (with 50 values or more) is an identifier and
    gets only the missing-rate rule; categoricals with more than
    ``max_categories`` distinct values keep the most frequent ones and pool the
    rest into one ``(other)`` bin.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bins: int = Field(10, ge=2, le=100, description="Reference-quantile bins of numeric PSI.")
    psi_epsilon: float = Field(1e-4, gt=0, le=0.01, description="Floor of a bin's share in PSI.")
    psi_warning: float = Field(0.1, gt=0)
    psi_critical: float = Field(0.25, gt=0)
    psi_min_rows: int = Field(200, ge=1, description="Values needed on both sides before PSI can flag.")
    min_rows_after_write: int = Field(
        200, ge=1, description="Rows a write (and the table before it) needs before drift is judged after it."
    )
    ks_alpha: float = Field(0.05, gt=0, lt=1)
    ks_min_statistic: float = Field(0.1, ge=0, le=1)
    ks_critical_statistic: float = Field(0.2, ge=0, le=1)
    ks_method: Literal["auto", "exact", "asymp"] = "auto"
    chi2_alpha: float = Field(0.05, gt=0, lt=1)
    chi2_min_effect: float = Field(0.1, ge=0, le=1)
    chi2_critical_effect: float = Field(0.2, ge=0, le=1)
    missing_warning: float = Field(0.05, gt=0, le=1)
    missing_critical: float = Field(0.2, gt=0, le=1)
    dataset_drift_share: float = Field(0.5, gt=0, le=1)
    max_categories: int = Field(1000, ge=2)
    id_unique_ratio: float = Field(0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        for low, high in (
            ("psi_warning", "psi_critical"),
            ("ks_min_statistic", "ks_critical_statistic"),
            ("chi2_min_effect", "chi2_critical_effect"),
            ("missing_warning", "missing_critical"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) must not exceed {high} ({getattr(self, high)})")
        return self


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class ColumnDrift(BaseModel):
    """One column compared.

    ``kind``: numeric, categorical, temporal (skipped unless asked for),
    identifier (skipped) or other (nested, binary: skipped); skipped columns
    get only the missing-rate rule. ``test``: ``ks`` (numeric), ``chi2``
    (categorical) or ``missing``. ``statistic`` and ``p_value`` are the test's
    (KS D and scipy's p-value; chi-square statistic and p-value); ``effect`` is
    the size the thresholds read (KS D, Cramér's V). ``mean_shift`` and
    ``std_shift`` are ``(current - reference) / reference std`` of the mean and
    of the std (population std; None when the reference std is 0).
    ``missing_ref`` / ``missing_cur`` are shares of all rows.
    """

    name: str
    kind: Literal["numeric", "categorical", "temporal", "identifier", "other"]
    test: Literal["ks", "chi2", "missing"]
    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None
    psi: float | None = None
    mean_shift: float | None = None
    std_shift: float | None = None
    missing_ref: float = 0.0
    missing_cur: float = 0.0
    reference_count: int = 0
    current_count: int = 0
    new_categories: list[str] = Field(default_factory=list)
    drifted: bool = False
    severity: Severity = "none"
    reasons: list[str] = Field(default_factory=list)

    @field_validator("statistic", "p_value", "effect", "psi", "mean_shift", "std_shift", mode="before")
    @classmethod
    def _finite_or_none(cls, value: float | None) -> float | None:
        return _finite(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def missing_change(self) -> float:
        return self.missing_cur - self.missing_ref


class DriftReport(BaseModel):
    """Reference vs current: every compared column, the label's class
    distribution (``label_drift``, when a label was named) and the dataset
    verdict (``drifted_share`` of the compared columns, the label excluded;
    ``dataset_drift`` when that share reaches the configured one)."""

    columns: list[ColumnDrift]
    drifted_share: float
    dataset_drift: bool
    label_drift: ColumnDrift | None = None
    reference_rows: int
    current_rows: int
    config: DriftConfig = Field(default_factory=DriftConfig)
    seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drifted_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.drifted]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> Severity:
        """The worst severity of any column, the label, or critical on dataset drift."""
        worst = max((SEVERITY_RANK[c.severity] for c in self.all_columns()), default=0)
        if self.dataset_drift:
            worst = 2
        return ("none", "warning", "critical")[worst]  # type: ignore[return-value]

    def all_columns(self) -> list[ColumnDrift]:
        """The compared columns and, last, the label."""
        return self.columns + ([self.label_drift] if self.label_drift is not None else [])

    def column(self, name: str) -> ColumnDrift:
        for c in self.all_columns():
            if c.name == name:
                return c
        raise KeyError(name)
