"""A ``matcher worker`` process on a fake-encoder engine, for tests/service/test_jobs*.py:
``python -m tests.service.jobs_worker HOME [DATABASE_URL]``. With ``TEST_SLOW_ROUTE=1`` each
routing prints ROUTED and then hangs (a test kills the process there)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from matcher.engine import Engine
from matcher.jobs import Workers
from tests.unit.fakes import FakeEncoder, fake_settings


def main() -> None:
    home, url = Path(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)
    engine = Engine(fake_settings(home, url), encoder=FakeEncoder())
    if os.environ.get("TEST_SLOW_ROUTE"):
        route = engine.match_and_route

        def slow(key: Any, **kwargs: Any) -> Any:
            outcome = route(key, **kwargs)
            print("ROUTED", outcome.need_id, flush=True)
            time.sleep(300)
            return outcome

        engine.match_and_route = slow  # type: ignore[method-assign]
    workers = Workers(engine, concurrency=1)
    signal.signal(signal.SIGTERM, lambda *_: workers.request_stop())
    workers.start()
    print("READY", workers.backend, flush=True)
    workers.wait()
    workers.stop()
    engine.close()


if __name__ == "__main__":
    main()
