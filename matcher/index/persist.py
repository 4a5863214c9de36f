"""Atomic, checksummed save/load of vector indexes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from matcher.index.base import (
    REBUILD_HINT,
    BaseVectorIndex,
    IndexCorruptError,
    IndexMismatchError,
)
from matcher.index.registry import BACKENDS

FORMAT_VERSION = 1
META_FILE = "meta.json"
FAISS_FILE = "index.faiss"
IDS_FILE = "ids.npy"
VECTORS_FILE = "vectors.npy"
_STATE_PREFIX = "state_"


@dataclass(frozen=True)
class IndexMeta:
    """Contents of meta.json describing a saved index."""

    format_version: int
    kind: str
    params: dict[str, Any]
    model: str
    dim: int
    count: int
    checksum: str
    ids_checksum: str
    built_at: str
    faiss_version: str
    numpy_version: str
    extra: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256, for diagnosis
    state: dict[str, Any] = field(default_factory=dict)  # backend scalars, e.g. IVF trained_on

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexMeta:
        """Build from a meta.json dict, ignoring unknown keys from newer writers."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def save_index(
    index: BaseVectorIndex, directory: Path, *, model: str, extra: dict[str, Any] | None = None
) -> IndexMeta:
    """Write index to directory atomically (temp dir + rename swap) and return its metadata."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted_swap(directory)
    blobs = _serialise(index)
    ids = index.ids()
    faiss_index, state, _ = index.export_state()
    meta = IndexMeta(
        format_version=FORMAT_VERSION,
        kind=index.kind,
        params=index.params,
        model=model,
        dim=index.dim,
        count=len(index),
        checksum=_combined_checksum(blobs),
        ids_checksum=_ids_checksum(ids),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        faiss_version=faiss.__version__,
        numpy_version=np.__version__,
        extra=dict(extra or {}),
        files={name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()},
        state=state,
    )
    blobs[META_FILE] = json.dumps(meta.to_dict(), indent=2, sort_keys=True).encode()
    # Same parent => same filesystem, so the final renames are atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        index.write_files(tmp, final=directory)
        for name, data in blobs.items():  # meta.json last: it marks the set as complete
            _write_durably(tmp / name, data)
        _fsync_dir(tmp)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def read_meta(directory: Path) -> IndexMeta | None:
    """Return the metadata of the index in directory, or None if there is none."""
    path = _readable_dir(Path(directory)) / META_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("top level is not an object")
        return IndexMeta.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc}); {REBUILD_HINT}") from exc


def load_index(
    directory: Path, *, expected_model: str | None = None, expected_dim: int | None = None
) -> tuple[BaseVectorIndex, IndexMeta]:
    """Load and verify an index saved by save_index; raise typed errors on any inconsistency."""
    src = _readable_dir(Path(directory))
    meta = read_meta(src)
    if meta is None:
        raise IndexCorruptError(
            f"no index found in {directory} ({META_FILE} missing); {REBUILD_HINT}"
        )
    if meta.format_version > FORMAT_VERSION:
        raise IndexMismatchError(
            f"index in {directory} has format {meta.format_version}, this version reads up to "
            f"{FORMAT_VERSION}; upgrade techmatch or {REBUILD_HINT}"
        )
    if expected_model is not None and meta.model != expected_model:
        raise IndexMismatchError(
            f"index in {directory} was built with model {meta.model!r} but {expected_model!r} "
            f"is configured; {REBUILD_HINT}"
        )
    if expected_dim is not None and meta.dim != expected_dim:
        raise IndexMismatchError(
            f"index in {directory} has dimension {meta.dim} but {expected_dim} is expected; "
            f"{REBUILD_HINT}"
        )
    on_disk = meta.kind in BACKENDS and BACKENDS[meta.kind].vectors_on_disk
    blobs = _read_verified(src, meta, with_vectors=not on_disk)
    try:
        ids = _load_npy(blobs[IDS_FILE])
        vectors = None if on_disk else _load_npy(blobs[VECTORS_FILE])
        arrays = {
            n[len(_STATE_PREFIX) : -4]: _load_npy(b)
            for n, b in blobs.items()
            if n.startswith(_STATE_PREFIX)
        }
        fidx = (
            faiss.deserialize_index(np.frombuffer(blobs[FAISS_FILE], dtype=np.uint8))
            if FAISS_FILE in blobs
            else None
        )
        if ids.dtype != np.int64 or ids.ndim != 1:
            raise ValueError("ids have an unexpected dtype")
        if vectors is not None and (
            vectors.dtype != np.float32 or vectors.shape != (meta.count, meta.dim)
        ):
            raise ValueError(f"expected {meta.count} x {meta.dim} float32 vectors")
        if ids.size != meta.count:
            raise ValueError(f"expected {meta.count} ids, found {ids.size}")
        if np.unique(ids).size != ids.size or _ids_checksum(np.sort(ids)) != meta.ids_checksum:
            raise ValueError("stored ids do not match ids_checksum")
        if meta.kind not in BACKENDS:
            raise ValueError(f"unknown index kind {meta.kind!r}")
        index = BACKENDS[meta.kind](meta.dim, **meta.params)
        index.open_files(src, meta.state)
        index.restore(ids, vectors, fidx, meta.state, arrays)
    except (ValueError, TypeError, RuntimeError) as exc:  # faiss raises RuntimeError
        raise IndexCorruptError(
            f"index in {directory} is inconsistent: {exc}; {REBUILD_HINT}"
        ) from exc
    return index, meta


# ----- helpers --------------------------------------------------------------------


def _serialise(index: BaseVectorIndex) -> dict[str, bytes]:
    """Return file name -> bytes for everything needed to restore index exactly."""
    faiss_index, _, arrays = index.export_state()
    if index.vectors_on_disk:  # the backend names its own vector file (write_files)
        blobs = {IDS_FILE: _npy_bytes(index.ids())}
    else:
        ids, vectors = index.stored()
        blobs = {IDS_FILE: _npy_bytes(ids), VECTORS_FILE: _npy_bytes(vectors)}
    for name, arr in arrays.items():
        blobs[f"{_STATE_PREFIX}{name}.npy"] = _npy_bytes(arr)
    if faiss_index is not None:
        # Persisting the graph/lists means loading never rebuilds HNSW or retrains IVF.
        blobs[FAISS_FILE] = faiss.serialize_index(faiss_index).tobytes()
    return blobs


def _read_verified(src: Path, meta: IndexMeta, *, with_vectors: bool) -> dict[str, bytes]:
    """Read every listed file and check per-file and combined checksums."""
    needed = {IDS_FILE, VECTORS_FILE} if with_vectors else {IDS_FILE}
    if not meta.files or not needed <= set(meta.files):
        raise IndexCorruptError(f"{src / META_FILE} lists no data files; {REBUILD_HINT}")
    blobs: dict[str, bytes] = {}
    for name, digest in meta.files.items():
        path = src / name
        if Path(name).name != name or not path.is_file():
            raise IndexCorruptError(f"index file {path} is missing; {REBUILD_HINT}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise IndexCorruptError(f"checksum mismatch for {path}; {REBUILD_HINT}")
        blobs[name] = data
    if _combined_checksum(blobs) != meta.checksum:
        raise IndexCorruptError(f"combined checksum mismatch in {src}; {REBUILD_HINT}")
    return blobs


def _combined_checksum(blobs: dict[str, bytes]) -> str:
    """sha256 over (name, bytes) of every data file in name order."""
    h = hashlib.sha256()
    for name in sorted(blobs):
        h.update(name.encode() + b"\0" + len(blobs[name]).to_bytes(8, "little"))
        h.update(blobs[name])
    return h.hexdigest()


def _ids_checksum(sorted_ids: np.ndarray) -> str:
    """sha256 of the sorted ids as little-endian int64, portable across machines."""
    return hashlib.sha256(np.ascontiguousarray(sorted_ids, dtype="<i8").tobytes()).hexdigest()


def _npy_bytes(arr: np.ndarray) -> bytes:
    """Serialise an array as .npy bytes without pickling."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _load_npy(data: bytes) -> np.ndarray:
    """Deserialise .npy bytes; pickles are refused so a tampered file cannot run code."""
    return np.load(io.BytesIO(data), allow_pickle=False)


def _write_durably(path: Path, data: bytes) -> None:
    """Write bytes and fsync so a crash after the rename cannot expose empty files."""
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """fsync a directory so renames inside it are durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap_in(tmp: Path, directory: Path) -> None:
    """Replace directory with tmp: old aside, new in, old deleted; undo on failure."""
    old: Path | None = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{time.time_ns()}")
        os.replace(directory, old)
    try:
        os.replace(tmp, directory)
    except BaseException:
        if old is not None:
            os.replace(old, directory)
        raise
    _fsync_dir(directory.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _backups(directory: Path) -> list[Path]:
    """Return previous versions moved aside by an interrupted swap, newest first."""
    pattern = f".{directory.name}.old-*"
    return sorted(directory.parent.glob(pattern), key=lambda p: p.name, reverse=True)


def _readable_dir(directory: Path) -> Path:
    """Return directory, or the moved-aside old version if a swap crashed mid-way."""
    if directory.exists():
        return directory
    backups = _backups(directory)
    return backups[0] if backups else directory


def _restore_interrupted_swap(directory: Path) -> None:
    """Before writing, undo what a crashed save left: restore or discard moved-aside versions."""
    backups = _backups(directory)
    if backups and not directory.exists():
        os.replace(backups.pop(0), directory)
    for stale in backups:  # directory is complete, so these are obsolete copies
        shutil.rmtree(stale, ignore_errors=True)


def clean_interrupted_save(directory: Path) -> None:
    """When a process opens its index: put back a version a crashed save moved aside, and
    delete the half-written new versions it left (the process is its directory's one writer,
    and it has not started saving yet)."""
    directory = Path(directory)
    if not directory.parent.is_dir():
        return
    _restore_interrupted_swap(directory)
    for unfinished in directory.parent.glob(f".{directory.name}.tmp-*"):
        shutil.rmtree(unfinished, ignore_errors=True)
