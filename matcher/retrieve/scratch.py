"""A process's working files under the data directory (``scratch/<pid>-…``): the lexical
indexes it keeps on disk, memory-mapped, instead of in its heap.

Nothing here is durable: the view they belong to is rebuilt from the store at each start. A
process removes its own directory when it closes or exits; one that was killed leaves it, and
the next process to start removes the directories of processes that no longer run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(root: Path) -> list[Path]:
    """Remove the scratch directories of processes that no longer run; the ones removed."""
    removed = []
    for child in root.iterdir() if root.is_dir() else ():
        pid = child.name.split("-", 1)[0]
        if child.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


class Scratch:
    """This process's scratch directory under ``root``, created on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path: Path | None = None

    def directory(self, name: str) -> Path:
        """A new, empty directory for one purpose (its name starts with ``name``)."""
        if self._path is None or not self._path.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            sweep(self.root)
            self._path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.root))
            atexit.register(shutil.rmtree, self._path, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._path))

    def remove(self) -> None:
        """Remove this process's directory and everything in it."""
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
