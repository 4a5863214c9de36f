"""Connecting to Ray for batch embedding: a running cluster, or a local one on 127.0.0.1.

Ray is optional: ``ray`` is imported only here, when a cluster is wanted
(``pip install 'ray[data]==2.60.0'``, part of the dev extra).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matcher.errors import UnavailableError

# Unix socket paths under Ray's temp directory must stay below ~107 bytes.
_MAX_TEMP_ROOT = 60
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayUnavailableError(UnavailableError):
    """Ray is not installed, or the cluster cannot be reached."""


@dataclass
class RayOptions:
    """Where and how wide to run.

    Args:
        address: a running cluster (``ray://host:10001``, ``host:6379``); None: a local
            cluster on 127.0.0.1 for this run only.
        workers: actors, each with one encoder.
        cpus_per_worker: CPUs (and so encoder threads) per actor.
        batch_size: texts per actor call.
        temp_root: the local cluster's session files; None: ``$MATCHER_HOME/ray`` when that
            path is short enough for Ray's sockets, else a fresh folder in /tmp.
    """

    address: str | None = None
    workers: int = 2
    cpus_per_worker: int = 1
    batch_size: int = 256
    temp_root: Path | None = None

    def __post_init__(self) -> None:
        if self.workers < 1 or self.cpus_per_worker < 1 or self.batch_size < 1:
            raise ValueError("workers, CPUs per worker and batch size must be at least 1")


def _temp_root(options: RayOptions) -> tuple[Path, bool]:
    """Ray's temp folder and whether it is ours to remove afterwards."""
    if options.temp_root is not None:
        return options.temp_root, False
    home = Path(os.environ.get("MATCHER_HOME", Path.home() / ".techmatch")) / "ray"
    if len(str(home)) <= _MAX_TEMP_ROOT:
        return home, False
    return Path(tempfile.mkdtemp(prefix="techmatch-ray-")), True


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayUnavailableError(
            "batch embedding needs Ray: pip install 'ray[data]==2.60.0' (or techmatch[dev])"
        ) from exc
    return ray


@contextmanager
def _loopback(local: bool) -> Iterator[None]:
    """A local cluster stays on 127.0.0.1 for the block.

    Ray on Linux rewrites 127.0.0.1 to the host's address (and listens there) unless
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: its processes read the variable when they start, the
    driver when it imports ray, so a driver that imported ray earlier gets the constant set too.
    A remote cluster must reach this driver, so there the host's address stays.
    """
    if not local:
        yield
        return
    before = os.environ.get(_LOOPBACK_ENV)
    os.environ[_LOOPBACK_ENV] = "0"  # set before ray is imported, when it is not yet
    constants: Any = None
    try:
        from ray._private import ray_constants

        was = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = False
        constants = ray_constants
    except (ImportError, AttributeError):  # no Ray, or a later one: the variable has to do
        pass
    try:
        yield
    finally:
        if constants is not None:
            constants.ENABLE_RAY_CLUSTER = was
        if before is None:
            os.environ.pop(_LOOPBACK_ENV, None)
        else:
            os.environ[_LOOPBACK_ENV] = before


@contextmanager
def ray_cluster(options: RayOptions) -> Iterator[Any]:
    """Connected to Ray for the block: an existing connection is reused and left open; else
    the cluster at ``options.address``, or a local one on 127.0.0.1 (shut down afterwards).

    Yields:
        The ``ray`` module.
    """
    local = options.address is None
    with _loopback(local):
        ray = _import_ray()
        if ray.is_initialized():
            yield ray
            return
        removable: Path | None = None
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if local:
            root, owned = _temp_root(options)
            root.mkdir(parents=True, exist_ok=True)
            removable = root if owned else None
            kwargs |= {
                "address": "local",
                "num_cpus": options.workers * options.cpus_per_worker,
                "include_dashboard": False,
                "_node_ip_address": "127.0.0.1",
                "_temp_dir": str(root),
            }
        else:
            kwargs["address"] = options.address
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; say where and why
            if removable is not None:
                shutil.rmtree(removable, ignore_errors=True)
            where = options.address or "a local cluster"
            raise RayUnavailableError(f"cannot start Ray on {where}: {exc}") from exc
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows its own, in records/s
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # not each dataset's plan
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        try:
            yield ray
        finally:
            ray.shutdown()
            if removable is not None:
                shutil.rmtree(removable, ignore_errors=True)
