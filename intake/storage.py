"""Attachment bytes: what a file is (read from its first bytes) and where it is kept.

``AttachmentStore`` is the one interface; ``LocalDirectoryStore`` keeps files in a
directory (development, or a mounted volume in production). Keys are SHA-256 digests, so
storing the same file twice is a no-op.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Magic numbers (file signatures) of the types we accept.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"%PDF-", 0, "application/pdf"),
)


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file show, or None when it is none we accept."""
    for magic, offset, content_type in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


class AttachmentStore(Protocol):
    """Where attachment bytes live. Keys are SHA-256 hex digests, so a put is idempotent."""

    async def put(self, key: str, source: Path) -> None:
        """Take ``source`` (a finished temporary file) as the content of ``key``."""

    async def get(self, key: str) -> bytes:
        """The content stored under ``key``."""


@dataclass(frozen=True)
class LocalDirectoryStore:
    """A directory on local disk (development, or a mounted volume): ``root/ab/abcdef…``."""

    root: Path

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    async def put(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path) -> None:
        target = self._path(key)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Rename is atomic: a reader never sees half a file, a crash leaves only a temp file.
        os.replace(source, target)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)
