"""What a source hands the runtime, and the one-method source interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["Modality", "SourceRecord", "Source"]

Modality = Literal["image", "audio", "text"]


@dataclass
class SourceRecord:
    """One record as read from a source, before any validation.

    ``source`` names where it came from (a path/URL for files, a message id for
    streams) and is what a user searches for in ``dataops runs show``.
    """

    source: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    filename: str | None = None
    modality: Modality | None = None
    # Opaque handle a stream source needs to acknowledge the message.
    ack_token: Any = None


class Source(Protocol):
    """A batch or stream source. ``read`` returns at most ``n`` records and an
    empty list once the source is exhausted (or a stream has been idle long
    enough). ``ack`` is called only after the records' durable write."""

    uri: str

    def read(self, n: int) -> list[SourceRecord]: ...

    def ack(self, records: Sequence[SourceRecord]) -> None: ...

    def close(self) -> None: ...
