"""``matcher broker``, ``matcher admin`` and ``matcher route``: brokers, tokens and routing."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from matcher.cli.common import fail, open_engine
from matcher.errors import MatcherError

broker_app = typer.Typer(
    help="Certify, list, suspend, renew and reinstate brokers; issue their API tokens.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="Administrator API tokens.", no_args_is_help=True)


def _print_token(token: str, who: str) -> None:
    typer.echo(f"API token for {who} (shown once; only its hash is stored):")
    typer.echo(token)


@broker_app.command("add")
def broker_add(
    ref: Annotated[str, typer.Option("--id", help="broker reference, e.g. B-13")],
    name: Annotated[str, typer.Option("--name")],
    certificate_no: Annotated[str, typer.Option("--certificate-no")],
    level: Annotated[str, typer.Option("--level", help="beginner | intermediate | advanced")],
    valid_until: Annotated[str, typer.Option("--valid-until", help="YYYY-MM-DD")],
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="domain code (repeatable)")
    ] = None,
    region: Annotated[
        list[str] | None, typer.Option("--region", help="region or grouping code (repeatable)")
    ] = None,
    capacity: Annotated[int, typer.Option("--capacity", help="open items at once")] = 10,
    email: Annotated[str | None, typer.Option("--email")] = None,
) -> None:
    """Certify a broker (validated like an import) and print their API token once."""
    from matcher.ingest import validate_record
    from matcher.store import repo
    from matcher.store.models import BrokerRow
    from matcher.store.repo import brokers as brokers_repo
    from matcher.store.repo.tokens import issue_token

    raw = {
        "id": ref,
        "name": name,
        "certificate_no": certificate_no,
        "level": level,
        "valid_until": valid_until,
        "domains": domain or [],
        "regions": region or [],
        "capacity": capacity,
        "email": email,
    }
    engine = open_engine()
    try:
        record = validate_record("brokers", raw, engine.taxonomy)
    except ValueError as exc:
        fail(str(exc))
    with engine.sessions() as session:
        if brokers_repo.ref_taken(session, ref):
            fail(f"broker {ref} already exists; use `matcher broker token {ref}` for a token")
        taken = brokers_repo.certificate_holder(session, certificate_no)
        if taken is not None:
            fail(f"certificate number {certificate_no} belongs to broker {taken}")
    engine.save_records("brokers", [record])
    with engine.sessions() as session:
        broker = repo.get_by_ref_or_id(session, BrokerRow, ref)
        assert broker is not None
        token = issue_token(session, role="broker", broker_id=broker.id, label="matcher broker add")
        session.commit()
    typer.echo(f"certified {ref} ({name}), {level} level, valid until {valid_until}")
    _print_token(token, ref)


@broker_app.command("token")
def broker_token(
    ref: Annotated[str, typer.Argument(help="broker reference or id, e.g. B-01")],
) -> None:
    """Issue another API token for a broker (printed once)."""
    from matcher.store import repo
    from matcher.store.models import BrokerRow
    from matcher.store.repo.tokens import issue_token

    engine = open_engine()
    with engine.sessions() as session:
        broker = repo.get_by_ref_or_id(session, BrokerRow, ref)
        if broker is None:
            fail(f"no broker {ref!r}; certify one with `matcher broker add`")
        assert broker is not None
        token = issue_token(
            session, role="broker", broker_id=broker.id, label="matcher broker token"
        )
        session.commit()
        who = broker.ref
    _print_token(token, who)


@admin_app.command("token")
def admin_token(
    label: Annotated[str, typer.Option("--label", help="who holds it")] = "matcher admin token",
) -> None:
    """Issue an administrator API token (printed once)."""
    from matcher.store.repo.tokens import issue_token

    engine = open_engine()
    with engine.sessions() as session:
        token = issue_token(session, role="admin", label=label)
        session.commit()
    _print_token(token, "an administrator")


def _certificate(broker: object, today: date) -> str:
    if getattr(broker, "suspended", False):
        return "suspended"
    return "expired" if broker.valid_until < today else "valid"  # type: ignore[attr-defined]


@broker_app.command("list")
def broker_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every broker with level, certificate state and workload."""
    from matcher.store.repo import routing

    engine = open_engine()
    today = date.today()
    with engine.sessions() as session:
        loads = routing.broker_loads(session)
        rows = [
            {
                "ref": b.ref,
                "name": b.name,
                "level": b.level,
                "valid_until": b.valid_until.isoformat(),
                "certificate": _certificate(b, today),
                "load": loads.get(b.id, 0),
                "capacity": b.capacity,
            }
            for b in routing.brokers(session)
        ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        typer.echo(
            f"  {r['ref']:<6} {r['level']:<12} {r['certificate']:<9} until {r['valid_until']}  "
            f"load {r['load']}/{r['capacity']}  {r['name']}"
        )


def _set_status(ref: str, **change: object) -> None:
    engine = open_engine()
    try:
        broker = engine.set_broker_status(ref, **change)  # type: ignore[arg-type]
    except MatcherError as exc:
        fail(str(exc))
    state = _certificate(broker, date.today())
    typer.echo(
        f"{broker.ref}: {broker.level} level, certificate {state} "
        f"(valid until {broker.valid_until.isoformat()})"
    )
    unrouted, _ = engine.unrouted_needs(limit=1)
    typer.echo(f"needs still waiting for a broker: {unrouted}")


@broker_app.command("suspend")
def broker_suspend(ref: Annotated[str, typer.Argument(help="broker reference, e.g. B-01")]) -> None:
    """Suspend a broker: their unclaimed matches go back to routing."""
    _set_status(ref, suspended=True)


@broker_app.command("reinstate")
def broker_reinstate(
    ref: Annotated[str, typer.Argument(help="broker reference, e.g. B-01")],
) -> None:
    """Lift a suspension; needs nobody could take are routed again."""
    _set_status(ref, suspended=False)


@broker_app.command("renew")
def broker_renew(
    ref: Annotated[str, typer.Argument(help="broker reference, e.g. B-01")],
    valid_until: Annotated[
        str, typer.Option("--valid-until", help="new expiry, YYYY-MM-DD, today or later")
    ],
    level: Annotated[
        str | None, typer.Option("--level", help="beginner | intermediate | advanced")
    ] = None,
) -> None:
    """Renew a broker's certificate (a date in the past is refused)."""
    try:
        until = date.fromisoformat(valid_until)
    except ValueError:
        fail(f"--valid-until: {valid_until!r} is not a date (YYYY-MM-DD)")
    if level is not None and level not in ("beginner", "intermediate", "advanced"):
        fail(f"--level: {level!r} is not beginner, intermediate or advanced")
    _set_status(ref, valid_until=until, level=level)


def route(
    need: Annotated[
        str | None, typer.Option("--need", help="route this need (reference or id)")
    ] = None,
    unrouted: Annotated[
        bool,
        typer.Option(
            "--unrouted",
            help="route again what waits: matches taken back from lapsed brokers and needs "
            "nobody could take (lists what is still unrouted)",
        ),
    ] = False,
    lang: Annotated[str, typer.Option("--lang", help="language of the reasons: en | zh")] = "en",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Route needs to certified brokers, as the service does for each new need."""
    if (need is None) == (not unrouted):
        fail("give either --need REF or --unrouted")
    engine = open_engine()
    try:
        outcomes = [engine.match_and_route(need)] if need is not None else engine.route_unrouted()
    except MatcherError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps([o.as_dict() for o in outcomes], ensure_ascii=False, indent=2))
    else:
        for o in outcomes:
            reason = o.reason.get(lang) or o.reason.get("en", "")
            typer.echo(f"  {o.need_ref:<10} {o.state.value:<9} {reason}")
        if not outcomes:
            typer.echo("  (nothing waits for routing)")
    if unrouted:
        total, still = engine.unrouted_needs(limit=1000)
        if not as_json:
            typer.echo(f"still unrouted: {total}")
            for n in still:
                why = n.routing_reason or {}
                typer.echo(f"  {n.ref:<10} {why.get(lang) or why.get('en')}")
