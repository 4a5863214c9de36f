"""Which process writes a data directory's index files: the one holding its lock.

Several processes may open one data directory (a service, ``matcher worker``, a ``matcher
import`` while the service runs). Only one of them may write its index files, or one's save
overwrites another's; the others keep their indexes in memory, up to date from the change log
(``matcher.follow``), and never save them. The writer holds an exclusive ``flock`` on
``<index dir>/.writer.lock`` for as long as it runs: the kernel releases it when the process
ends, however it ends, so a killed writer never leaves the directory locked. Engines of one
process share the lock (tests and benchmarks open several).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from matcher.index.collection import CollectionIndex

LOCK_FILE = ".writer.lock"


class IndexDirLock:
    """The right to write one directory's index files, held by at most one process."""

    _held: ClassVar[dict[Path, tuple[int, IO[str]]]] = {}  # this process: path -> (users, file)

    def __init__(self, directory: Path) -> None:
        self.path = (Path(directory) / LOCK_FILE).resolve()
        self.held = False

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; whether this process now holds it."""
        if self.held:
            return True
        users, handle = self._held.get(self.path, (0, None))
        if handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        self._held[self.path] = (users + 1, handle)
        self.held = True
        return True

    def release(self) -> None:
        """Give the lock back (the last user in this process unlocks the file)."""
        if not self.held:
            return
        self.held = False
        users, handle = self._held.pop(self.path)
        if users > 1:
            self._held[self.path] = (users - 1, handle)
        else:
            handle.close()  # closing the descriptor drops the flock

    def holder(self) -> str:
        """The process id of the holder as it wrote it ('' when unknown)."""
        try:
            return self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""


def claim(directory: Path, indexes: Iterable[CollectionIndex]) -> IndexDirLock:
    """Take the directory's lock if free and tell its indexes (and their companions) whether
    they may write their files."""
    lock = IndexDirLock(directory)
    lock.acquire()
    allow_writes(indexes, lock.held)
    return lock


def allow_writes(indexes: Iterable[CollectionIndex], allowed: bool) -> None:
    """Let these indexes and their companions write their files, or keep them in memory."""
    for index in indexes:
        for one in (index, *index.companions):
            one.writes_files = allowed
