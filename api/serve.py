"""``techmatch-serve``: run the service (by default on the shipped demo data)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from api.config import get_api_settings
from matcher.engine import Engine
from matcher.route import RoutingState
from matcher.store import repo
from matcher.store.repo import brokers as brokers_repo
from matcher.store.repo import routing as routing_repo
from matcher.store.repo.tokens import issue_token

# uvicorn's options for the service. The HTTP/1.1 parser is named, not picked by what is
# installed ("auto" prefers httptools), so that the limit below is the one that holds: how much
# of a request's line and headers h11 buffers before it gives up on the request. Its default
# (16 KiB) is hit before the app sees the request, and the server then closes the connection
# while the client still sends: a long URL got a reset instead of the app's 414 (above
# MATCHER_API_MAX_URL_BYTES). With 2 MiB of room every URL up to 2 MiB gets its 414.
SERVER_OPTIONS: dict[str, Any] = {"http": "h11", "h11_max_incomplete_event_size": 2 * 1024 * 1024}


def write_demo_tokens(engine: Engine, path: Path) -> None:
    """Issue an admin token and one token per demo broker, kept in a private file to try the API."""
    lines = ["# TechMatch demo tokens (bearer tokens; only their hashes are in the database)"]
    with engine.sessions() as session:
        lines.append(f"admin\t{issue_token(session, role='admin', label='demo')}")
        for broker in brokers_repo.by_ref(session):
            token = issue_token(session, role="broker", broker_id=broker.id, label="demo")
            lines.append(f"{broker.ref}\t{broker.level}\tvalid until {broker.valid_until}\t{token}")
        session.commit()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)


def route_pending(engine: Engine) -> int:
    """Match and route every active need not routed yet (the demo's needs); how many items."""
    from api.worker import match_and_route

    with engine.sessions() as session:
        pending = [n.id for n in routing_repo.needs_in_state(session, RoutingState.pending)]
    return sum(len(match_and_route(engine, get_api_settings(), need_id)) for need_id in pending)


def main(argv: list[str] | None = None) -> None:
    """Load the demo data unless told not to, print where to look, and serve."""
    import uvicorn

    from api.main import create_app

    settings = get_api_settings()
    parser = argparse.ArgumentParser(prog="techmatch-serve", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    args = parser.parse_args(argv)
    engine = Engine()
    if not args.no_demo:
        results = engine.load_demo()
        counts = ", ".join(f"{r.created + r.updated} {kind}" for kind, r in results.items())
        routed = route_pending(engine)
        tokens = engine.settings.home / "demo-tokens.txt"
        if not tokens.exists():
            write_demo_tokens(engine, tokens)
        print(f"demo data loaded: {counts}; {routed} matches routed to brokers")
        print(f"API tokens for the demo admin and brokers: {tokens}")
    with engine.sessions() as session:
        needs = len(repo.active_needs(session))
    base = f"http://{args.host}:{args.port}"
    print(f"data directory: {engine.settings.home} ({needs} needs)")
    print(f"TechMatch is serving at {base}")
    print(f"  need form:        {base}/needs/new   (中文: {base}/needs/new?lang=zh)")
    print(f"  technology form:  {base}/technologies/new")
    print(f"  API docs:         {base}/docs")
    uvicorn.run(
        create_app(engine, settings),
        host=args.host,
        port=args.port,
        log_level="info",
        **SERVER_OPTIONS,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
