"""Auto-labelers: zero-shot text with the bundled MiniLM, the torch image
classifier on scikit-learn's digits, the CLIP labeler on a local checkpoint,
and the factory that picks one from settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from app.errors import ConfigError, InputError
from app.settings import Settings, load_settings
from pipelines.annotation import (
    AutoLabeler,
    ClipLabeler,
    ImageClassifier,
    LabelProposal,
    TextZeroShotLabeler,
    make_labeler,
)

DESCRIPTIONS = {
    "billing": "billing, payments, invoices, refunds and charges on a credit card",
    "shipping": "shipping and delivery of an order, parcels, tracking numbers and couriers",
    "login": "logging in to an account, passwords, sign-in problems and two-factor authentication codes",
}

TICKETS = [
    ("I was charged twice for my subscription this month", "billing"),
    ("Can I get a refund for the annual plan?", "billing"),
    ("My invoice shows the wrong VAT number", "billing"),
    ("Why did my card get declined when paying?", "billing"),
    ("Please cancel the extra charge on my credit card", "billing"),
    ("I need a copy of last month's receipt for my accountant", "billing"),
    ("You billed me after I cancelled", "billing"),
    ("My payment failed but the money left my bank account", "billing"),
    ("How do I change the card you charge every month?", "billing"),
    ("The price on my bill is higher than what the website said", "billing"),
    ("Do you accept PayPal or only credit cards?", "billing"),
    ("I was promised a discount code but paid full price", "billing"),
    ("Where is my package? It has been two weeks", "shipping"),
    ("The tracking number you sent does not work", "shipping"),
    ("The courier left my parcel at the wrong address", "shipping"),
    ("How long does delivery to Canada take?", "shipping"),
    ("Order 4411 still hasn't shipped", "shipping"),
    ("The box arrived damaged and half the items are missing", "shipping"),
    ("Can you send it by express delivery instead?", "shipping"),
    ("The delivery driver never showed up", "shipping"),
    ("I need to change the delivery address on my order", "shipping"),
    ("Do you ship to PO boxes?", "shipping"),
    ("My order says delivered but nothing is at my door", "shipping"),
    ("Is there a way to pick up the order at a store instead?", "shipping"),
    ("I forgot my password and the reset email never arrives", "login"),
    ("I can't sign in, it says my account is locked", "login"),
    ("The two-factor code is always rejected", "login"),
    ("The login page keeps redirecting me back", "login"),
    ("I can't log into my account after changing my phone", "login"),
    ("The password reset link expired", "login"),
    ("It says wrong username or password but I'm sure it's right", "login"),
    ("How do I turn off two-step verification?", "login"),
    ("Signing in with Google gives an error", "login"),
    ("I no longer have access to the email on my account", "login"),
    ("The app logs me out every few minutes", "login"),
    ("Someone else may have signed into my account", "login"),
]


@pytest.fixture(scope="module")
def text_labeler() -> TextZeroShotLabeler:
    return TextZeroShotLabeler(DESCRIPTIONS)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return d.images.astype(np.float32), np.array([str(t) for t in d.target])


def _check_probs(probs: np.ndarray, rows: int, cols: int) -> None:
    assert probs.shape == (rows, cols)
    assert np.all(probs >= 0.0) and np.all(probs <= 1.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


# ---------------------------------------------------------------- text
@pytest.mark.slow  # loads MiniLM
def test_zero_shot_support_tickets(text_labeler: TextZeroShotLabeler) -> None:
    texts = [t for t, _ in TICKETS]
    probs = text_labeler.predict_proba(texts)
    _check_probs(probs, len(TICKETS), 3)
    predicted = [text_labeler.labels[i] for i in probs.argmax(axis=1)]
    accuracy = np.mean([p == y for p, (_, y) in zip(predicted, TICKETS, strict=True)])
    assert accuracy >= 0.8
    proposals = text_labeler.propose(texts[:3])
    assert all(isinstance(p, LabelProposal) and p.model == text_labeler.model_id for p in proposals)
    assert [p.label for p in proposals] == predicted[:3]
    np.testing.assert_allclose([p.confidence for p in proposals], probs[:3].max(axis=1), rtol=1e-4)
    assert isinstance(text_labeler, AutoLabeler)


@pytest.mark.slow
def test_calibration_matches_confidence_to_accuracy() -> None:
    labeler = TextZeroShotLabeler(DESCRIPTIONS, temperature=1.0)  # far too soft on purpose
    order = np.random.default_rng(0).permutation(len(TICKETS))
    fit, held = [TICKETS[i] for i in order[:18]], [TICKETS[i] for i in order[18:]]
    soft = labeler.predict_proba([t for t, _ in held]).max(axis=1).mean()
    temperature = labeler.calibrate([t for t, _ in fit], [y for _, y in fit])
    assert 0.01 < temperature < 0.5 and labeler.temperature == temperature
    probs = labeler.predict_proba([t for t, _ in held])
    accuracy = np.mean([labeler.labels[i] == y for i, (_, y) in zip(probs.argmax(axis=1), held, strict=True)])
    confidence = probs.max(axis=1).mean()
    assert soft < 0.5  # before: near-uniform, useless for auto-accept
    assert abs(confidence - accuracy) < 0.15  # after: a confidence means about what it says
    # A perfect score on 18 examples is no evidence for certainty.
    assert confidence < 0.99


def test_text_labeler_rejects_bad_input(text_labeler: TextZeroShotLabeler) -> None:
    with pytest.raises(InputError, match="strings"):
        text_labeler.predict_proba([b"bytes"])
    with pytest.raises(InputError, match="unknown labels"):
        text_labeler.calibrate(["x"], ["refunds"])
    with pytest.raises(InputError, match="at least two labels"):
        TextZeroShotLabeler({"only": "one label"})
    with pytest.raises(InputError, match="description"):
        TextZeroShotLabeler({"a": "first", "b": "  "})
    assert text_labeler.predict_proba([]).shape == (0, 3)


# --------------------------------------------------------------- image
def test_image_classifier_learns_digits(digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:600], order[600:1100]
    clf = ImageClassifier([str(i) for i in range(10)], seed=0, image_size=8)
    untrained = clf.predict_proba(images[test[:5]])
    np.testing.assert_allclose(untrained, 0.1)  # no model, no confidence
    clf.fit(images[train], labels[train])
    probs = clf.predict_proba(images[test])
    _check_probs(probs, len(test), 10)
    accuracy = np.mean(np.array(clf.labels)[probs.argmax(axis=1)] == labels[test])
    assert accuracy >= 0.9
    assert clf.trained_on == 600
    # Deterministic for a seed; the penultimate features have the hidden width.
    again = ImageClassifier([str(i) for i in range(10)], seed=0, image_size=8).fit(images[train], labels[train])
    np.testing.assert_allclose(again.predict_proba(images[test[:20]]), probs[:20], atol=1e-6)
    assert clf.embed(images[test[:7]]).shape == (7, clf.hidden)


def test_image_classifier_takes_any_size_and_colour(digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    # The same digits as bigger RGB uint8 images, and a list of mixed sizes.
    big = np.repeat(np.repeat(images[:300], 4, axis=1), 4, axis=2)
    rgb = (np.stack([big] * 3, axis=-1) / 16 * 255).astype(np.uint8)
    clf = ImageClassifier([str(i) for i in range(10)], image_size=16).fit(rgb[:250], labels[:250])
    mixed = [rgb[260], images[261], rgb[262, :20, :30], np.zeros((5, 5, 4), dtype=np.uint8)]
    _check_probs(clf.predict_proba(mixed), 4, 10)
    accuracy = np.mean(np.array(clf.labels)[clf.predict_proba(rgb[250:]).argmax(axis=1)] == labels[250:300])
    assert accuracy >= 0.7
    with pytest.raises(InputError, match="shape"):
        clf.predict_proba([np.zeros(10)])
    with pytest.raises(InputError, match="not an image"):
        clf.predict_proba(["a string"])
    with pytest.raises(InputError, match="unknown labels"):
        clf.fit(images[:2], ["1", "eleven"])


def test_image_classifier_save_load_round_trip(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    clf = ImageClassifier([str(i) for i in range(10)], seed=3, image_size=8, hidden=32).fit(images[:200], labels[:200])
    path = tmp_path / "models" / "digits.pt"
    clf.save(path)
    loaded = ImageClassifier.load(path)
    assert loaded.labels == clf.labels and loaded.hidden == 32 and loaded.trained_on == 200
    np.testing.assert_allclose(loaded.predict_proba(images[200:260]), clf.predict_proba(images[200:260]), atol=1e-9)
    np.testing.assert_allclose(loaded.embed(images[200:210]), clf.embed(images[200:210]), atol=1e-6)
    with pytest.raises(InputError, match="not been trained"):
        ImageClassifier(["a", "b"]).save(tmp_path / "x.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a saved image classifier"):
        ImageClassifier.load(tmp_path / "junk.pt")


# ---------------------------------------------------------------- CLIP
def _tiny_clip_checkpoint(folder: Path) -> Path:
    """A randomly initialised CLIP saved the way a real one is: config,
    safetensors weights, tokenizer and image processor files."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**layers, "vocab_size": len(vocab), "max_position_embeddings": 64, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**layers, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_clip_labeler_on_a_local_checkpoint(tmp_path: Path) -> None:
    folder = _tiny_clip_checkpoint(tmp_path / "clip")
    settings = load_settings(home=tmp_path / "ws", clip_model_path=folder)
    labeler = make_labeler(settings, "image", ["cat", "dog", "car"])
    assert isinstance(labeler, ClipLabeler) and labeler.model_id == "clip:clip"
    rng = np.random.default_rng(0)
    items = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), rng.random((20, 20)), np.zeros((10, 10, 1))]
    _check_probs(labeler.predict_proba(items), 3, 3)
    assert [p.label for p in labeler.propose(items[:1])][0] in {"cat", "dog", "car"}


def test_clip_labeler_refuses_a_bad_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ClipLabeler(tmp_path / "missing", ["cat", "dog"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        ClipLabeler(tmp_path / "empty", ["cat", "dog"])
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="no model weights"):
        ClipLabeler(tmp_path / "empty", ["cat", "dog"])
    settings = load_settings(home=tmp_path / "ws", clip_model_path=tmp_path / "missing")
    with pytest.raises(ConfigError, match="DATAOPS_CLIP_MODEL_PATH"):
        make_labeler(settings, "image", ["cat", "dog"])


# ------------------------------------------------------------- factory
def test_make_labeler_by_modality(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert settings.clip_model_path is None
    image = make_labeler(settings, "image", ["cat", "dog"])
    assert isinstance(image, ImageClassifier)
    text = make_labeler(settings, "text", ["billing", "login"], {"billing": DESCRIPTIONS["billing"]})
    assert isinstance(text, TextZeroShotLabeler) and text.labels == ["billing", "login"]
    with pytest.raises(InputError, match="unknown labels"):
        make_labeler(settings, "text", ["billing", "login"], {"refunds": "money back"})
    with pytest.raises(ConfigError, match="audio"):
        make_labeler(settings, "audio", ["speech", "music"])
    with pytest.raises(InputError, match="modality"):
        make_labeler(settings, "video", ["a", "b"])
    monkeypatch.setenv("DATAOPS_CLIP_MODEL_PATH", str(tmp_path / "clip"))
    assert load_settings().clip_model_path == tmp_path / "clip"
