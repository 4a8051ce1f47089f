"""Text quality detectors on real prose (standard-library documentation) and
the same texts damaged: cut to a few characters, padded past the length limit,
looped, or sprinkled with control and replacement characters."""

from __future__ import annotations

import functools
import importlib
import inspect

import numpy as np
import pytest

from app.errors import InputError
from pipelines.enrichment import TEXT_ISSUES, QualityThresholds, score_texts

_MODULES = (
    "argparse", "asyncio", "collections", "csv", "datetime", "decimal", "difflib", "email.message",
    "http.client", "json", "logging", "pathlib", "shutil", "subprocess", "tarfile", "textwrap", "zipfile",
)  # fmt: skip


@functools.cache
def _prose() -> tuple[str, ...]:
    """Docstrings of modules, classes and methods: English prose of 80-4000 characters."""
    docs: dict[str, None] = {}
    for name in _MODULES:
        module = importlib.import_module(name)
        objects = [module] + [obj for _, obj in inspect.getmembers(module)]
        objects += [m for obj in objects if inspect.isclass(obj) for _, m in inspect.getmembers(obj)]
        for obj in objects:
            doc = inspect.getdoc(obj)
            if doc and 80 <= len(doc) <= 4000 and ">>>" not in doc:
                docs[doc] = None
    return tuple(docs)


def _damage(rng: np.random.Generator, text: str, issue: str) -> str:
    if issue == "too_short":
        return text[: int(rng.integers(1, 16))]
    if issue == "too_long":  # many different documents run together past 2x the limit
        docs = _prose()
        parts: list[str] = []
        while sum(map(len, parts)) < 45_000:
            parts.append(docs[int(rng.integers(len(docs)))])
        return "\n\n".join(parts)
    if issue == "repetitive":
        sentence = text.split(".")[0][:120] + ". "
        return sentence * int(rng.integers(5, 30)) if rng.random() < 0.7 else "buy now click here " * 40
    if issue == "non_printable":
        chars = np.array(list(text))
        at = rng.random(len(chars)) < rng.uniform(0.03, 0.1)
        chars[at] = rng.choice(["\x00", "\x07", "\ufffd", "\x1b", "\ue000", "\udcff"], at.sum())
        return "".join(chars)
    raise AssertionError(issue)


def _mixed_set(seed: int = 11, n_clean: int = 80, n_each: int = 15) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = _prose()
    pick = rng.choice(len(docs), size=n_clean + n_each * len(TEXT_ISSUES), replace=False)
    texts = [docs[i] for i in pick[:n_clean]]
    labels = ["clean"] * n_clean
    rest = iter(pick[n_clean:])
    for issue in TEXT_ISSUES:
        for _ in range(n_each):
            texts.append(_damage(rng, docs[next(rest)], issue))
            labels.append(issue)
    return texts, np.array(labels)


@pytest.mark.parametrize("issue", TEXT_ISSUES)
def test_each_text_detector_has_precision_and_recall_of_at_least_0_9(issue: str) -> None:
    texts, labels = _mixed_set()
    reports = score_texts(texts)
    flagged = np.array([issue in r.issues for r in reports])
    truth = labels == issue
    tp = int((flagged & truth).sum())
    precision, recall = tp / max(1, int(flagged.sum())), tp / int(truth.sum())
    assert precision >= 0.9, f"{issue}: precision {precision:.2f}, also flags {sorted(set(labels[flagged & ~truth]))}"
    assert recall >= 0.9, f"{issue}: recall {recall:.2f}"


def test_prose_is_not_flagged() -> None:
    reports = score_texts(list(_prose()[:200]))
    assert [r.issues for r in reports if r.issues] == []


def test_scores_follow_their_definitions() -> None:
    nine_words = "one two three four five six seven eight nine"
    short, looped, dirty, cjk = score_texts(
        ["abcde fghij", nine_words, "a" * 98 + "\x00\x01", "数据质量检测" * 10],
    )
    assert short.scores["too_short"] == pytest.approx(1 - 10 / 40)
    assert looped.scores["repetitive"] == 0.0  # seven distinct word 3-grams
    assert dirty.scores["non_printable"] == pytest.approx(0.02 / 0.1)
    assert cjk.scores["repetitive"] > 0.8 and "repetitive" in cjk.issues  # char 5-grams without spaces
    (long_,) = score_texts(["x" * 50], QualityThresholds(max_chars=40))
    assert long_.scores["too_long"] == pytest.approx(50 / 80) and "too_long" in long_.issues


def test_tabs_newlines_and_emoji_are_printable() -> None:
    (rep,) = score_texts(["Line one\tcolumn\r\nLine two 🙂 with ünïcode and 中文 text."])
    assert rep.scores["non_printable"] == 0.0 and rep.issues == ()


def test_empty_text_is_too_short_and_nothing_else() -> None:
    (rep,) = score_texts([""])
    assert rep.issues == ("too_short",) and rep.scores["too_short"] == 1.0


def test_non_strings_raise_one_clear_input_error() -> None:
    with pytest.raises(InputError, match="text 1: expected str"):
        score_texts(["fine", b"bytes"])  # type: ignore[list-item]
