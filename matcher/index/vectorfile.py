"""Append-only file of float32 rows: raw vectors kept on disk and read back by row number."""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_COPY_CHUNK = 1 << 24  # bytes per read/write when a file has to be copied
_HASH_CHUNK = 1 << 24


class VectorFile:
    """Rows of float32 vectors appended to one file and never changed in place.

    A row, once written, keeps its bytes for the life of the file, so a snapshot that names
    the first ``rows`` rows stays valid while later rows are appended behind it. Writes use
    ``O_APPEND`` and take their row numbers from where the bytes landed, so two handles on one
    file never overwrite each other's rows. Reads go through a read-only memory map: the
    vectors live in the page cache, not in the process' own memory.
    """

    def __init__(self, fd: int, dim: int, *, path: Path | None = None) -> None:
        self.dim = int(dim)
        self.row_bytes = 4 * self.dim
        self._fd = fd
        self._path = path  # where the file is believed to be named (checked before linking)
        self._rows = os.fstat(fd).st_size // self.row_bytes  # rows known to this handle
        self._view = np.empty((0, self.dim), dtype=np.float32)
        self._hasher = hashlib.sha256()
        self._hashed = 0  # rows fed to _hasher
        self._lock = threading.Lock()
        self._closer = weakref.finalize(self, os.close, fd)

    # ----- opening ----------------------------------------------------------------------

    @classmethod
    def scratch(cls, dim: int) -> VectorFile:
        """A new, empty file with no name: nothing is left behind if the process dies."""
        fd, name = tempfile.mkstemp(prefix="techmatch-vectors-", suffix=".f32")
        os.unlink(name)  # the descriptor keeps it; the first save copies it under a name
        _set_append(fd)
        return cls(fd, dim)

    @classmethod
    def open(cls, path: Path, dim: int, *, rows: int, sha256: str) -> VectorFile:
        """Open a saved file and check that its first ``rows`` rows hash to ``sha256``.

        Raises:
            ValueError: the file is shorter than ``rows`` rows or its contents differ.
        """
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            row_bytes = 4 * int(dim)
            if size < rows * row_bytes:
                raise ValueError(f"{path} holds {size // row_bytes} vectors, expected {rows}")
            if size % row_bytes:
                # A crash cut the last append short; those rows were never saved anywhere.
                os.ftruncate(fd, size - size % row_bytes)
        except BaseException:
            os.close(fd)
            raise
        file = cls(fd, dim, path=path)
        if file.digest(rows) != sha256:
            file.close()
            raise ValueError(f"checksum mismatch for the first {rows} vectors of {path}")
        return file

    def close(self) -> None:
        """Release the descriptor (the memory map goes when its last view does)."""
        self._closer()

    # ----- rows -------------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """Rows this handle knows of: every row it wrote or found when it opened the file."""
        return self._rows

    def append(self, vectors: np.ndarray) -> np.ndarray:
        """Append float32 rows; return the row number of each."""
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) vectors, got {data.shape}")
        out = np.empty(data.shape[0], dtype=np.int64)
        per_chunk = max(1, _COPY_CHUNK // self.row_bytes)
        with self._lock:
            for start in range(0, data.shape[0], per_chunk):
                chunk = data[start : start + per_chunk]
                payload = chunk.tobytes()
                written = os.write(self._fd, payload)
                end = os.lseek(self._fd, 0, os.SEEK_CUR)  # O_APPEND: where the bytes landed
                if written != len(payload) or (end - written) % self.row_bytes:
                    raise OSError(f"short or misaligned vector write ({written} bytes at {end})")
                first = (end - written) // self.row_bytes
                out[start : start + chunk.shape[0]] = np.arange(first, first + chunk.shape[0])
                self._rows = max(self._rows, end // self.row_bytes)
        return out

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Return a (len(rows), dim) float32 copy of the given rows."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        view = self._view
        if int(rows.max()) >= view.shape[0]:
            view = self._remap()
        return view[rows]

    def _remap(self) -> np.ndarray:
        """Map every row written so far (the file only grows, so earlier views stay valid)."""
        with self._lock:
            size = self._rows * self.row_bytes
            if size == 0:
                return self._view
            mapped = mmap.mmap(self._fd, size, prot=mmap.PROT_READ)
            self._view = np.frombuffer(mapped, dtype=np.float32).reshape(-1, self.dim)
            return self._view

    # ----- snapshots --------------------------------------------------------------------

    def digest(self, rows: int) -> str:
        """sha256 of the first ``rows`` rows (hashed once, then only what was appended since)."""
        with self._lock:
            if rows < self._hashed:
                self._hasher, self._hashed = hashlib.sha256(), 0
            step = max(1, _HASH_CHUNK // self.row_bytes)
            while self._hashed < rows:
                n = min(step, rows - self._hashed)
                offset = self._hashed * self.row_bytes
                data = os.pread(self._fd, n * self.row_bytes, offset)
                if len(data) != n * self.row_bytes:
                    raise OSError(f"vector file ends before row {rows}")
                self._hasher.update(data)
                self._hashed += n
            return self._hasher.copy().hexdigest()

    def place(self, target: Path, *, final: Path) -> None:
        """Make ``target`` name this file's rows durably; ``final`` is where it will end up.

        A hard link when this handle's file still has a name on the same filesystem (no copy);
        otherwise the rows are copied to ``target`` and this handle moves onto the copy, so
        the next snapshot can link it.
        """
        os.fsync(self._fd)
        if self._path is not None and _same_file(self._path, self._fd):
            try:
                os.link(self._path, target)
                self._path = final
                return
            except OSError:
                pass  # another filesystem or no hard links: copy instead
        self._copy_to(target)
        self._path = final

    def _copy_to(self, target: Path) -> None:
        """Copy every known row to a new file at target and continue on that file."""
        size = self._rows * self.row_bytes
        out = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            offset = 0
            while offset < size:
                data = os.pread(self._fd, min(_COPY_CHUNK, size - offset), offset)
                if not data:
                    raise OSError(f"vector file ends at byte {offset}, expected {size}")
                os.write(out, data)
                offset += len(data)
            os.fsync(out)
        except BaseException:
            os.close(out)
            raise
        with self._lock:
            self._closer()
            self._fd = out
            self._closer = weakref.finalize(self, os.close, out)
            self._view = np.empty((0, self.dim), dtype=np.float32)


@dataclass(frozen=True)
class StoredVectors:
    """The vector file and, for each live id (sorted), its row there: replaced as one value so
    that a search running beside a write reads either the old or the new whole."""

    file: VectorFile
    ids: np.ndarray
    rows: np.ndarray

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Index of each id in the sorted ids, -1 where absent."""
        if self.ids.size == 0 or ids.size == 0:
            return np.full(ids.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.size - 1)
        return np.where(self.ids[pos] == ids, pos, -1)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Vectors at these positions of the sorted ids."""
        return self.file.read(self.rows[positions])


def _set_append(fd: int) -> None:
    """Turn on O_APPEND for an open descriptor."""
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)


def _same_file(path: Path, fd: int) -> bool:
    """Whether path still names the file open on fd."""
    try:
        named, opened = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
