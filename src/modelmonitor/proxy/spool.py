"""A bounded on-disk spool for batches the bus could not take (``spool_max_bytes``).

While the broker is away the shipper first holds events in memory; with a spool
it moves undeliverable batches to disk instead, so a long outage does not drop
events once the memory buffer is full. Batches are files named by a sequence
number and replayed oldest first; they survive a proxy restart. File I/O runs in
a thread and only while the bus is down, never on the request path.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

__all__ = ["FileSpool"]

_HEADER = struct.Struct(">I")  # event count
_SUFFIX = ".batch"


class FileSpool:
    """Encoded batches as files in ``directory``, at most ``max_bytes`` in all."""

    def __init__(self, directory: Path | str, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: list[tuple[int, int, int]] = []  # (sequence, bytes, events), oldest first
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            try:
                sequence = int(path.stem)
                with path.open("rb") as handle:
                    (events,) = _HEADER.unpack(handle.read(_HEADER.size))
            except (ValueError, struct.error):
                continue  # a torn write from a crash: not a batch
            self._files.append((sequence, path.stat().st_size, events))
        self._files.sort()
        self._lock = asyncio.Lock()

    @property
    def spooled(self) -> int:
        """Events currently on disk."""
        return sum(events for _, _, events in self._files)

    @property
    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._files)

    def _path(self, sequence: int) -> Path:
        return self.directory / f"{sequence:020d}{_SUFFIX}"

    def _write(self, sequence: int, body: bytes, events: int) -> int:
        data = _HEADER.pack(events) + body
        temporary = self.directory / f"{sequence:020d}.tmp"
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self._path(sequence))  # atomic: a batch is whole or absent
        return len(data)

    async def put(self, body: bytes, events: int) -> bool:
        """Store one batch at the back; ``False`` when it would exceed ``max_bytes``."""
        async with self._lock:
            size = _HEADER.size + len(body)
            if self.size_bytes + size > self.max_bytes:
                return False
            sequence = self._files[-1][0] + 1 if self._files else 1 << 40
            written = await asyncio.to_thread(self._write, sequence, body, events)
            self._files.append((sequence, written, events))
            return True

    async def take(self) -> tuple[bytes, int] | None:
        """Remove and return the oldest batch, or ``None`` when empty."""
        async with self._lock:
            if not self._files:
                return None
            sequence, _, events = self._files.pop(0)
            path = self._path(sequence)
            data = await asyncio.to_thread(path.read_bytes)
            await asyncio.to_thread(path.unlink)
            return data[_HEADER.size :], events

    async def give_back(self, body: bytes, events: int) -> None:
        """Put a batch that ``take`` returned back at the front (it was not delivered)."""
        async with self._lock:
            sequence = self._files[0][0] - 1 if self._files else 1 << 40
            written = await asyncio.to_thread(self._write, sequence, body, events)
            self._files.insert(0, (sequence, written, events))
