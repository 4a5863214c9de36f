"""Several processes over one database: each follows the change log into its own indexes.

Every write logs the records it wrote or archived (``record_changes``, in the write's own
transaction, in commit order). A process keeps its vector indexes and in-memory view up to date
with its own writes at once; ``ChangeFollower`` applies everyone else's by reading the log after
the last sequence it applied (every ``interval_s``; on PostgreSQL a writer's commit is seen
within that interval), and checkpoints every ``checkpoint_s``: it saves the indexes changed
since the last checkpoint, then the sequence they hold (a write then costs no whole-index save).
Applying a change reads the record's state from the store and its vectors from the shared
embedding cache (the writer embedded it), so replaying a change twice or out of turn is
harmless. The last saved sequence is kept beside the indexes: a process that restarts catches
up from there, without a rebuild.

Processes sharing one data directory: only the holder of its ``IndexDirLock`` saves index files
and the sequence; a follower without it keeps its indexes in memory (loaded after reading the
sequence, so never older than it) and takes over at a checkpoint once the holder has gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from pathlib import Path

from matcher.catalog import Catalog
from matcher.domain import Side
from matcher.index.owner import IndexDirLock, allow_writes
from matcher.store.repo import changes

log = logging.getLogger(__name__)
STATE_FILE = "changes.seq"


class ChangeFollower:
    """Applies the change log to one process's catalogue (indexes and view)."""

    def __init__(
        self,
        catalog: Catalog,
        state_dir: Path,
        *,
        interval_s: float = 0.5,
        checkpoint_s: float = 30.0,
        files: IndexDirLock | None = None,
    ) -> None:
        self.catalog = catalog
        catalog.autosave = False  # a write no longer saves whole indexes: checkpoints do
        self.state_path = Path(state_dir) / STATE_FILE
        self.interval_s = interval_s
        # A checkpoint saves whole indexes (seconds at 100k records) and holds the index lock,
        # so writes wait behind it: it runs at most this often; a restart replays the rest.
        self.checkpoint_s = checkpoint_s
        self._checkpointed = time.monotonic()
        self.files = files  # None: this process writes the files; else only while it holds it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if not self._writes():  # a reader: the sequence first, then files at least that new
            for index in catalog.indexes.values():
                for one in (index, *index.companions):
                    one.unload()
        self.applied = self._start_from()
        self._save()

    def _writes(self) -> bool:
        return self.files is None or self.files.held

    def _start_from(self) -> int:
        """Where this process stands: the sequence saved beside its indexes; without one,
        the start of the log where index files exist (written by a process that did not
        follow the log, perhaps killed before its index update: replaying is harmless), else
        the newest (indexes built from the store from now on are in step with it)."""
        try:
            return int(self.state_path.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            with self.catalog.sessions() as session:
                newest = changes.last(session)
            written = any(
                one.directory.exists()
                for index in self.catalog.indexes.values()
                for one in (index, *index.companions)
            )
            return 0 if written else newest

    def catch_up(self) -> int:
        """Apply every change after the last applied one; how many records were brought up
        to date. This process's own writes are skipped once their writer has indexed them
        (``catalog.own_changes``); one committed but not yet indexed is applied here too, so
        the sequence saved never runs ahead of what the indexes hold (a kill between a
        write's commit and its index update replays it at the next start)."""
        with self._lock:
            done = 0
            while True:
                with self.catalog.sessions() as session:
                    batch = changes.since(session, self.applied)
                if not batch:
                    return done
                by_side: dict[str, list[int]] = defaultdict(list)
                own = self.catalog.own_changes
                for seq, side, record_id in batch:
                    if seq not in own:
                        by_side[side].append(record_id)
                    own.discard(seq)
                for side, ids in by_side.items():
                    self.catalog.reindex(Side(side), list(dict.fromkeys(ids)))
                    done += len(ids)
                self.applied = batch[-1][0]
                # an own write indexed after this pass re-applied it: forget its entries too
                own.difference_update([seq for seq in tuple(own) if seq <= self.applied])

    def checkpoint_due(self) -> bool:
        """Whether indexes changed since the last checkpoint, and it is time for the next."""
        waited = time.monotonic() - self._checkpointed >= self.checkpoint_s
        return waited and bool(self.catalog.unsaved or self.applied != self._saved)

    def checkpoint(self) -> None:
        """Save the indexes changed since the last checkpoint, then the sequence they hold:
        a crash in between replays changes already in the files, which is harmless."""
        catalog = self.catalog
        if not self._writes():
            assert self.files is not None
            if not self.files.acquire():
                return  # another process writes the files; this one's indexes live in memory
            # the writer has gone: this process takes over, its indexes replace the files
            allow_writes(catalog.indexes.values(), True)
            catalog.unsaved.update(Side(name) for name in catalog.indexes)
        with catalog.index_lock:
            for side in list(catalog.unsaved):
                for index in (catalog.indexes[side], *catalog.indexes[side].companions):
                    index.save()
            catalog.unsaved.clear()
        self._save()
        self._checkpointed = time.monotonic()

    def _save(self) -> None:
        self._saved = self.applied
        if not self._writes():
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(str(self.applied), encoding="utf-8")
        temporary.replace(self.state_path)

    # -- in the background -----------------------------------------------------------------
    def start(self) -> None:
        """Catch up now (and save that), then follow the log in a daemon thread until
        ``stop``."""
        if self.catch_up():
            self.checkpoint()
        self._thread = threading.Thread(target=self._run, name="change-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.catch_up()
                if self.checkpoint_due():
                    self.checkpoint()
            except Exception:  # noqa: BLE001 - a failed pass is logged and tried again
                log.exception("following the change log failed; trying again")

    def stop(self) -> None:
        """Stop following, with a last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.catalog.autosave = True
        self.checkpoint()
