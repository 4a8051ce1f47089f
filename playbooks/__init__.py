"""Remediation playbooks as YAML data, and the catalogue that validates them.

``PlaybookCatalog.load()`` reads the shipped playbooks (``library/``) and the
root cause -> playbook -> decision policy (``policy.yaml``), and checks every
step against the action tools, their argument models, the config bounds and
the guardrail policy. Signatures on the playbooks are what offline diagnosis
matches signals against.
"""

from playbooks._catalog import PlaybookCatalog, default_library_dir, default_policy_file
from playbooks._evidence import evidence_lookups, sample_lookups
from playbooks._models import (
    BlastRadius,
    PipelineTreatment,
    Playbook,
    PolicyEntry,
    SignalMatcher,
    Signature,
    Step,
    ValidationCheck,
    signal_haystack,
)
from playbooks._template import evaluate, render

__all__ = [
    "BlastRadius",
    "PipelineTreatment",
    "Playbook",
    "PlaybookCatalog",
    "PolicyEntry",
    "Signature",
    "SignalMatcher",
    "Step",
    "ValidationCheck",
    "default_library_dir",
    "default_policy_file",
    "evaluate",
    "evidence_lookups",
    "render",
    "sample_lookups",
    "signal_haystack",
]
