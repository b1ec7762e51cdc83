"""An external sort for lines: buffered in memory up to a size, spilled as sorted runs to
temporary files, and k-way merged at the end, so memory stays flat however many lines."""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType


class ExternalSorter:
    """Collects ``(key, payload)`` lines and yields the payloads in key order.

    Keys must not contain a tab or a newline; payloads must not contain a newline.  Keys
    should be unique (ties keep no particular order)."""

    def __init__(self, directory: Path, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="runs-", dir=directory))
        self._max = max_bytes
        self._buf: list[bytes] = []
        self._size = 0
        self._runs: list[Path] = []
        self.count = 0

    def add(self, key: str, payload: bytes) -> None:
        line = key.encode() + b"\t" + payload + b"\n"
        self._buf.append(line)
        self._size += len(line)
        self.count += 1
        if self._size >= self._max:
            self._spill()

    def _spill(self) -> None:
        if not self._buf:
            return
        self._buf.sort()
        path = self._dir / f"run-{len(self._runs):05d}"
        with path.open("wb") as f:
            f.writelines(self._buf)
        self._runs.append(path)
        self._buf, self._size = [], 0

    def sorted_payloads(self) -> Iterator[bytes]:
        """Every payload (with its newline) in key order; call once."""
        if not self._runs:
            self._buf.sort()
            for line in self._buf:
                yield line.split(b"\t", 1)[1]
            self._buf = []
            return
        self._spill()
        files = [p.open("rb", buffering=64 * 1024) for p in self._runs]
        try:
            for line in heapq.merge(*files):
                yield line.split(b"\t", 1)[1]
        finally:
            for f in files:
                f.close()

    def close(self) -> None:
        for p in self._runs:
            p.unlink(missing_ok=True)
        self._runs = []
        self._buf = []
        if self._dir.exists():
            for p in self._dir.iterdir():
                p.unlink()
            os.rmdir(self._dir)

    def __enter__(self) -> ExternalSorter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
