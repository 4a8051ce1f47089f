"""Modality detection and decode checks, one test per rejection kind."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from app.errors import RecordRejected
from pipelines.ingestion import (
    AudioInfo,
    ImageInfo,
    TextInfo,
    decode_audio,
    decode_image,
    decode_record,
    decode_text,
    detect_modality,
    phash_bytes,
    synth_image,
)


def _image_bytes(fmt: str, size: tuple[int, int] = (120, 80), mode: str = "RGB") -> bytes:
    img = synth_image(np.random.default_rng(0), 128).resize(size).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _wav_bytes(
    seconds: float = 0.5, rate: int = 8000, channels: int = 1, width: int = 2, amp: float = 0.5
) -> bytes:
    n = int(seconds * rate)
    wave_ = amp * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    frames = np.repeat(wave_[:, None], channels, axis=1)
    if width == 1:
        pcm = ((frames * 127) + 128).astype(np.uint8).tobytes()
    elif width == 2:
        pcm = (frames * 32767).astype("<i2").tobytes()
    elif width == 3:
        ints = (frames * (2**23 - 1)).astype("<i4").ravel()
        pcm = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        pcm = (frames * (2**31 - 1)).astype("<i4").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def _reason(call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(RecordRejected) as err:
        call(*args, **kwargs)
    assert err.value.detail  # every rejection says why
    return err.value.reason


# ------------------------------------------------------------------ modality
@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("a.png", "image"),
        ("A.JPG", "image"),
        ("x/y/photo.jpeg", "image"),
        ("clip.wav", "audio"),
        ("CLIP.WAVE", "audio"),
        ("notes.txt", "text"),
    ],
)
def test_extension_decides_modality(filename: str, expected: str) -> None:
    assert detect_modality(b"whatever", filename) == expected


def test_magic_bytes_decide_without_a_known_extension() -> None:
    assert detect_modality(_image_bytes("PNG"), None) == "image"
    assert detect_modality(_image_bytes("JPEG"), "upload.bin") == "image"
    assert detect_modality(_wav_bytes(), "blob") == "audio"
    assert detect_modality("héllo\nworld".encode(), "README") == "text"


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"ID3\x03\x00" + b"\x00" * 40, "song.mp3"),
        (_image_bytes("GIF"), "anim.gif"),
        (_image_bytes("GIF"), None),
        (_image_bytes("BMP"), "scan.dat"),
        (b"\x00\x01\x02\xff\xfe binary", "blob.bin"),
        (b"\xff\xfe\xfa not utf8", None),
    ],
)
def test_unknown_or_refused_formats_are_unsupported(data: bytes, filename: str | None) -> None:
    assert _reason(detect_modality, data, filename) == "unsupported_format"


def test_empty_file_is_empty_whatever_its_name() -> None:
    assert _reason(detect_modality, b"", "a.png") == "empty_file"
    for decode in (decode_image, decode_audio, decode_text):
        assert _reason(decode, b"") == "empty_file"


# --------------------------------------------------------------------- image
@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("JPEG", "RGB")])
def test_good_images_report_size_mode_format(fmt: str, mode: str) -> None:
    data = _image_bytes(fmt, (120, 80), mode)
    info = decode_image(data)
    assert info == ImageInfo(width=120, height=80, mode=mode, format=fmt, n_bytes=len(data))
    assert info.modality == "image" and info.phash is None


def test_phash_from_the_same_decode_equals_phash_bytes() -> None:
    for fmt, size in (("PNG", (300, 300)), ("JPEG", (600, 400))):
        img = synth_image(np.random.default_rng(1), 600).resize(size)
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        info = decode_image(buf.getvalue(), with_phash=True)
        assert (info.width, info.height) == size  # the original size, not the draft's
        assert info.phash == phash_bytes(buf.getvalue())


@pytest.mark.parametrize("with_phash", [False, True])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_images_are_decode_errors(fmt: str, with_phash: bool) -> None:
    data = _image_bytes(fmt, (600, 600))  # large enough for the JPEG draft path
    for keep in (0.3, 0.6, 0.95):
        cut = data[: int(len(data) * keep)]
        assert _reason(decode_image, cut, with_phash=with_phash) == "decode_error"


def test_garbage_behind_image_magic_is_a_decode_error() -> None:
    assert _reason(decode_image, b"\xff\xd8\xff" + b"\x00" * 100) == "decode_error"
    png = bytearray(_image_bytes("PNG"))
    png[60:80] = b"\xff" * 20  # smash compressed pixel data
    assert _reason(decode_image, bytes(png)) == "decode_error"
    assert _reason(decode_image, b"just text in a .png") == "decode_error"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "WEBP"])
def test_other_image_formats_are_unsupported_even_if_named_png(fmt: str) -> None:
    assert _reason(decode_image, _image_bytes(fmt)) == "unsupported_format"


# --------------------------------------------------------------------- audio
@pytest.mark.parametrize(("channels", "width"), [(1, 1), (1, 2), (2, 2), (2, 3), (1, 4)])
def test_good_wav_reports_format_and_peak(channels: int, width: int) -> None:
    data = _wav_bytes(seconds=0.5, rate=8000, channels=channels, width=width, amp=0.5)
    info = decode_audio(data)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.channels, info.sample_width, info.n_frames) == (8000, channels, width, 4000)
    assert info.duration_s == pytest.approx(0.5)
    assert info.peak == pytest.approx(0.5, abs=0.02)
    assert info.n_bytes == len(data)


def test_silent_wav_has_zero_peak() -> None:
    assert decode_audio(_wav_bytes(amp=0.0)).peak == 0.0


def test_truncated_wav_is_a_decode_error() -> None:
    data = _wav_bytes(seconds=1.0)
    assert _reason(decode_audio, data[: len(data) // 2]) == "decode_error"
    assert _reason(decode_audio, data[:-1]) == "decode_error"  # even one byte short
    assert _reason(decode_audio, data[:30]) == "decode_error"  # inside the header


def test_wav_without_frames_is_empty() -> None:
    assert _reason(decode_audio, _wav_bytes(seconds=0.0)) == "empty_file"


def test_float_wav_is_unsupported_and_non_wav_is_refused() -> None:
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 8) + b"\x00" * 8
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    assert _reason(decode_audio, data) == "unsupported_format"
    assert _reason(decode_audio, b"ID3\x03" + b"\x00" * 50) == "unsupported_format"
    assert _reason(decode_audio, b"RIFX not a wave") == "decode_error"


# ---------------------------------------------------------------------- text
def test_text_counts() -> None:
    info = decode_text("héllo wörld\nsecond line".encode())
    assert info == TextInfo(n_chars=23, n_lines=2, n_bytes=25, n_nonspace=20, n_control=0)
    assert decode_text(b"a\nb\n").n_lines == 2
    assert decode_text(b"\n\n").n_lines == 2
    assert decode_text(b"   \t ").n_nonspace == 0
    assert decode_text(b"ok\x00\x07\tfine\r\n").n_control == 2  # NUL, BEL; not tab/CR/LF


def test_bom_is_allowed_and_not_counted() -> None:
    assert decode_text(b"\xef\xbb\xbfabc").n_chars == 3


@pytest.mark.parametrize(
    "data",
    ["café".encode("latin-1"), b"\xff\xfe\x00a", b"ok so far \xe2\x82", b"\xc0\xaf overlong"],
)
def test_invalid_utf8_is_not_utf8(data: bytes) -> None:
    assert _reason(decode_text, data) == "not_utf8"


def test_decode_record_detects_modality_and_hashes_images_by_default() -> None:
    png = _image_bytes("PNG")
    info = decode_record(png, filename="photo.png")
    assert isinstance(info, ImageInfo) and info.phash == phash_bytes(png)
    assert decode_record(png, "image", with_phash=False).phash is None  # type: ignore[union-attr]
    assert isinstance(decode_record(_wav_bytes()), AudioInfo)
    assert isinstance(decode_record(b"id,value\n1,2\n", filename="table.csv"), TextInfo)
    assert _reason(decode_record, b"ID3\x03" + b"\x00" * 20, filename="a.mp3") == "unsupported_format"


def test_decode_record_dispatches_on_modality() -> None:
    assert isinstance(decode_record(_image_bytes("PNG"), "image", with_phash=True), ImageInfo)
    assert isinstance(decode_record(_wav_bytes(), "audio"), AudioInfo)
    assert isinstance(decode_record(b"hi", "text"), TextInfo)
    assert _reason(decode_record, b"x", "video") == "unsupported_format"  # type: ignore[arg-type]
