"""The operator console's broker pages (``/admin/brokers``): every broker with workload and
certificate state, certifying a new one; one broker's certificate, history, training records,
track record and waiting inbox items, with renew / suspend / reinstate / upgrade, a training
record, and reassigning an item (``api.web.operator_console``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep
from api.routes.brokers import broker_view
from api.web.console_session import failed, page
from api.web.i18n import t
from api.web.operator_console import ACTOR, CONSOLE, act_on, field_errors, signed_in
from api.web.pages import choose_language
from matcher import competency
from matcher.domain import BrokerIn
from matcher.engine import Engine
from matcher.errors import InvalidInputError, NotFoundError, RecordInvalidError
from matcher.ingest import validate_record
from matcher.store import repo
from matcher.store.models import BrokerRow, NeedRow, TechnologyRow
from matcher.store.repo import brokers as brokers_repo
from matcher.store.repo import deals as deals_repo
from matcher.store.repo.tokens import issue_token
from matcher.track_record import TIMED_STAGES

router = APIRouter(include_in_schema=False)
BROKER_FIELDS: tuple[str, ...] = ("id", "name", "certificate_no", "level", "valid_until")
BROKER_FIELDS += ("domains", "regions", "capacity", "email")
TRAINING_FIELDS = ("course", "level", "taken_on", "hours", "training_base")


# -- brokers -----------------------------------------------------------------------------
def _brokers_page(
    request: Request,
    engine: Engine,
    settings: ApiSettings,
    lang: str,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    today = date.today()
    with engine.sessions() as session:
        rows = [broker_view(session, b, today=today) for b in brokers_repo.by_ref(session)]
    for row in rows:
        row["state"] = competency.certificate_state(
            suspended=row["suspended"],
            valid_until=date.fromisoformat(row["valid_until"]),
            today=today,
        )
    query = request.query_params
    context = {
        "page_title": t(lang, "op.brokers"),
        "brokers": rows,
        "levels": competency.LEVELS,
        "form": {},
        "errors": {},
        "done": query.get("done", ""),
        "done_ref": query.get("ref", ""),
        "new_token": "",
        **(extra or {}),
    }
    return page(request, settings, "operator_brokers.html", lang, context, status_code)


@router.get("/admin/brokers", response_class=HTMLResponse)
def brokers(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Every broker: workload against capacity, the certificate's state; certify a new one."""
    lang, _ = choose_language(request)
    if not signed_in(request, engine, settings):
        return CONSOLE.to_login(lang)
    return _brokers_page(request, engine, settings, lang)


@router.post("/admin/brokers", response_class=HTMLResponse)
async def certify(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Certify a new broker; their API token is shown once on the page that answers."""

    def act(fields: dict[str, str], lang: str) -> str | Response:
        form = {k: fields.get(k, "").strip() for k in BROKER_FIELDS}
        raw: dict[str, Any] = {k: v for k, v in form.items() if v}
        for name in ("domains", "regions"):
            raw[name] = [c.strip() for c in form[name].replace("，", ",").split(",") if c.strip()]
        with engine.sessions() as session:
            raw.setdefault("id", brokers_repo.next_ref(session))
            try:
                record = validate_record("brokers", raw, engine.taxonomy)
            except RecordInvalidError as exc:
                extra: dict[str, Any] = {"form": form, "errors": field_errors(lang, exc)}
                return _brokers_page(request, engine, settings, lang, extra, 422)
            assert isinstance(record, BrokerIn)
            if brokers_repo.ref_taken(session, record.id):
                extra = {"form": form, "errors": {"id": t(lang, "op.ref_taken")}}
                return _brokers_page(request, engine, settings, lang, extra, 409)
            if brokers_repo.certificate_holder(session, record.certificate_no) is not None:
                extra = {"form": form, "errors": {"certificate_no": t(lang, "op.cert_taken")}}
                return _brokers_page(request, engine, settings, lang, extra, 409)
            broker, _ = repo.upsert_broker(session, record=record, actor=ACTOR)
            session.flush()
            token = issue_token(
                session, role="broker", broker_id=broker.id, label="certified in console"
            )
            session.commit()
        request.app.state.worker.submit("unrouted")  # a new broker may take what waited
        extra = {"done": "certified", "done_ref": record.id, "new_token": token}
        return _brokers_page(request, engine, settings, lang, extra, 201)

    return await act_on(request, engine, settings, act)


# -- one broker --------------------------------------------------------------------------
def _broker_page(
    request: Request,
    engine: Engine,
    settings: ApiSettings,
    lang: str,
    ref: str,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    today = date.today()
    with engine.sessions() as session:
        broker = repo.get_by_ref_or_id(session, BrokerRow, ref)
        if broker is None:
            return failed(
                request,
                lang,
                NotFoundError(f"no broker {ref!r}"),
                "/admin/brokers",
                title=t(lang, "op.failed"),
            )
        view = broker_view(session, broker, today=today)
        view["state"] = competency.certificate_state(
            suspended=broker.suspended, valid_until=broker.valid_until, today=today
        )
        record = competency.competency(session, broker)
        items = []
        for item in deals_repo.inbox(session, broker_id=broker.id, state=None, limit=200, offset=0):
            if item.state not in ("new", "seen"):
                continue
            need = session.get(NeedRow, item.need_id)
            tech = session.get(TechnologyRow, item.technology_id)
            items.append(
                {
                    "id": item.id,
                    "state": item.state,
                    "need": need.ref if need else "",
                    "need_title": need.title if need else "",
                    "technology": tech.title if tech else "",
                    "score": item.score,
                }
            )
        others = [
            (b.ref, b.name)
            for b in brokers_repo.by_ref(session)
            if b.id != broker.id and competency.in_good_standing(b, today)
        ]
    query = request.query_params
    context = {
        "page_title": f"{view['name']} · {view['ref']}",
        "b": view,
        "record": record,
        "items": items,
        "others": others,
        "levels": competency.LEVELS,
        "stages": TIMED_STAGES,
        "today": today.isoformat(),
        "form": {},
        "errors": {},
        "done": query.get("done", ""),
        **(extra or {}),
    }
    return page(request, settings, "operator_broker.html", lang, context, status_code)


@router.get("/admin/brokers/{ref}", response_class=HTMLResponse)
def broker(ref: str, request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """A broker's certificate, history, training records, track record and waiting items."""
    lang, _ = choose_language(request)
    if not signed_in(request, engine, settings):
        return CONSOLE.to_login(lang)
    return _broker_page(request, engine, settings, lang, ref)


def _date(fields: dict[str, str], name: str) -> date:
    raw = fields.get(name, "").strip()
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{name}: {raw!r} is not a date (YYYY-MM-DD)") from exc


def _change(
    request: Request, engine: Engine, settings: ApiSettings, ref: str, change: str
) -> Callable[[dict[str, str], str], str | Response]:
    """Renew, suspend, reinstate or upgrade a broker, or add a training record."""

    def act(fields: dict[str, str], lang: str) -> str | Response:
        here = f"/admin/brokers/{ref}"
        if change == "renew":
            level = fields.get("level") or None
            valid_until = _date(fields, "valid_until")
            engine.set_broker_status(
                ref, valid_until=valid_until, level=level, reroute=False, actor=ACTOR
            )
        elif change in ("suspend", "reinstate"):
            suspend = change == "suspend"
            engine.set_broker_status(ref, suspended=suspend, reroute=False, actor=ACTOR)
        elif change == "upgrade":
            with engine.sessions() as session:
                competency.upgrade(
                    session,
                    _broker(session, ref),
                    level=fields.get("level", ""),
                    certificate_no=fields.get("certificate_no", ""),
                    valid_until=_date(fields, "valid_until"),
                    actor=ACTOR,
                    today=date.today(),
                    note=(fields.get("note") or "").strip()[:500] or None,
                )
                session.commit()
        else:  # a training record
            raw = {k: fields.get(k, "") for k in TRAINING_FIELDS}
            with engine.sessions() as session:
                try:
                    competency.add_training(session, _broker(session, ref), raw, today=date.today())
                except RecordInvalidError as exc:
                    extra = {"form": raw, "errors": field_errors(lang, exc)}
                    return _broker_page(request, engine, settings, lang, ref, extra, 422)
                session.commit()
            return f"{here}?done=trainings#trainings"
        request.app.state.worker.submit("unrouted")  # a broker who can take more: route
        return f"{here}?done={change}"

    return act


def _broker(session: Any, ref: str) -> BrokerRow:
    row = repo.get_by_ref_or_id(session, BrokerRow, ref)
    if row is None:
        raise NotFoundError(f"no broker {ref!r}")
    return row


@router.post("/admin/brokers/{ref}/renew", response_class=HTMLResponse)
async def renew(
    ref: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    act = _change(request, engine, settings, ref, "renew")
    return await act_on(request, engine, settings, act)


@router.post("/admin/brokers/{ref}/suspend", response_class=HTMLResponse)
async def suspend(
    ref: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    act = _change(request, engine, settings, ref, "suspend")
    return await act_on(request, engine, settings, act)


@router.post("/admin/brokers/{ref}/reinstate", response_class=HTMLResponse)
async def reinstate(
    ref: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    act = _change(request, engine, settings, ref, "reinstate")
    return await act_on(request, engine, settings, act)


@router.post("/admin/brokers/{ref}/upgrade", response_class=HTMLResponse)
async def upgrade(
    ref: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    act = _change(request, engine, settings, ref, "upgrade")
    return await act_on(request, engine, settings, act)


@router.post("/admin/brokers/{ref}/trainings", response_class=HTMLResponse)
async def add_training(
    ref: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    act = _change(request, engine, settings, ref, "trainings")
    return await act_on(request, engine, settings, act)
