"""Server-rendered forms for enterprises (needs) and institutes (technologies).

No account and no JavaScript: a submitter fills a form, gets a private tracking link
(``/track/{token}``; only the SHA-256 of the token is stored) and follows the status there.
Every form is protected by a signed double-submit CSRF token, validated by the same
:func:`matcher.ingest.validate_record` as the CLI and the API, and shown in English or Chinese.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from starlette.routing import NoMatchFound

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep, preferred_language
from api.i18n import DEFAULT_LANGUAGE, LANGUAGES, normalise, t, translate_error
from matcher.domain import IPStatus, Licensing
from matcher.engine import Engine
from matcher.ingest import validate_record
from matcher.store.db import transaction
from matcher.store.models import DealRow, MatchRow, NeedRow, TechnologyRow
from matcher.taxonomy import Taxonomy

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

LANG_COOKIE = "tm_lang"
CSRF_COOKIE = "tm_csrf"
CSRF_FIELD = "csrf_token"
DONE_COOKIE = "tm_done"
CSRF_MAX_AGE_S = 12 * 3600
DONE_MAX_AGE_S = 3600
MAX_BODY_BYTES = 512 * 1024
COOKIE_YEAR_S = 365 * 24 * 3600

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(include_in_schema=False)
# FastAPI >= 0.120 carries mounts of an included router into the app; mount_static() covers
# an app that does not include this router or an older FastAPI.
router.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def mount_static(app: FastAPI) -> None:
    """Serve ``api/static`` at ``/static`` (no-op when the router's mount is already there)."""
    try:
        app.url_path_for("static", path="style.css")
    except NoMatchFound:
        app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


# -- form definitions ---------------------------------------------------------------------
@dataclass(frozen=True)
class FormKind:
    """What differs between the need form and the technology form."""

    kind: str  # ingest kind: needs | technologies
    short: str  # need | technology (worker job kind, URL stem)
    prefix: str  # generated reference prefix
    path: str  # form URL
    template: str
    text_fields: tuple[str, ...]
    list_fields: tuple[str, ...]  # free-text lists separated by ; or ,
    multi_fields: tuple[str, ...]  # <select multiple>
    bool_fields: tuple[str, ...]
    row: type
    i18n: str  # message key prefix
    all_fields: tuple[str, ...] = field(default=())


NEED = FormKind(
    kind="needs",
    short="need",
    prefix="N-",
    path="/needs/new",
    template="need_form.html",
    text_fields=(
        "enterprise",
        "title",
        "description",
        "trl_min",
        "trl_max",
        "region_scope",
        "home_region",
        "budget_min",
        "budget_max",
        "currency",
        "deadline",
        "contact",
    ),
    list_fields=(),
    multi_fields=("domains",),
    bool_fields=("trl_hard", "region_hard", "confidential"),
    row=NeedRow,
    i18n="need",
)
TECHNOLOGY = FormKind(
    kind="technologies",
    short="technology",
    prefix="T-",
    path="/technologies/new",
    template="technology_form.html",
    text_fields=("owner", "title", "description", "trl", "region", "ip_status", "licensing"),
    list_fields=("keywords", "patents"),
    multi_fields=("domains",),
    bool_fields=("confidential",),
    row=TechnologyRow,
    i18n="tech",
)
FORMS = {"need": NEED, "technology": TECHNOLOGY}

_LIST_SPLIT = re.compile(r"[;；,，\n]+")
_ERROR_PART = re.compile(r"^(?P<field>[A-Za-z_]\w*)(?:\.\w+)*: (?P<message>.*)$", re.S)


# -- language -----------------------------------------------------------------------------
def choose_language(request: Request) -> tuple[str, bool]:
    """The page language (query, cookie, Accept-Language, English) and whether to remember it."""
    asked = normalise(request.query_params.get("lang"))
    if asked:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    remembered = normalise(request.cookies.get(LANG_COOKIE))
    if remembered:
        return remembered, False
    preferred = preferred_language(request.headers.get("accept-language", ""))
    return preferred or DEFAULT_LANGUAGE, False


# -- CSRF (signed double submit) -----------------------------------------------------------
def _serializer(settings: ApiSettings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=salt)


def _valid_csrf(settings: ApiSettings, token: str | None) -> bool:
    if not token:
        return False
    try:
        _serializer(settings, "techmatch-csrf").loads(token, max_age=CSRF_MAX_AGE_S)
    except BadSignature:
        return False
    return True


def csrf_token_for(request: Request, settings: ApiSettings) -> str:
    """The visitor's current CSRF token, or a new one."""
    current = request.cookies.get(CSRF_COOKIE)
    if _valid_csrf(settings, current):
        return current  # type: ignore[return-value]
    return _serializer(settings, "techmatch-csrf").dumps(secrets.token_urlsafe(16))


def csrf_ok(request: Request, settings: ApiSettings, submitted: str | None) -> bool:
    """The hidden field equals the cookie and carries our signature."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(cookie, submitted) and _valid_csrf(settings, submitted)


# -- rendering -----------------------------------------------------------------------------
def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def render(
    request: Request,
    template: str,
    lang: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    remember_lang: bool = False,
    csrf: str | None = None,
) -> HTMLResponse:
    """A page in ``lang``; sets the language and CSRF cookies when asked."""
    base = {
        "lang": lang,
        "languages": LANGUAGES,
        "_": lambda key, **params: t(lang, key, **params),
        "path": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf,
    }
    response = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if remember_lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=COOKIE_YEAR_S, samesite="lax", secure=_secure(request)
        )
    if csrf is not None and request.cookies.get(CSRF_COOKIE) != csrf:
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            max_age=CSRF_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


def error_page(
    request: Request, lang: str, *, status_code: int, title: str, message: str, back: str | None
) -> HTMLResponse:
    """A small page explaining what went wrong."""
    return render(
        request,
        "error.html",
        lang,
        {"page_title": title, "title": title, "message": message, "back": back},
        status_code=status_code,
    )


def domain_groups(tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """Top-level fields with their sub-fields, for <optgroup>s."""
    groups = []
    for code, domain in tax.domains.items():
        if domain.parent is not None:
            continue
        children = [d for d in tax.domains.values() if d.parent == code]
        options = [(code, t(lang, "form.whole_field", name=domain.name(lang)))]
        options += [(d.code, f"{d.code} {d.name(lang)}") for d in children]
        groups.append({"label": f"{code} {domain.name(lang)}", "options": options})
    return groups


def region_groups(tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """Countries, then the subdivisions of each country that has some (CN and US first)."""
    countries = sorted(
        (r for r in tax.regions.values() if r.level == "country"), key=lambda r: r.name_en
    )
    groups = [
        {
            "label": t(lang, "region.countries"),
            "options": [(r.code, f"{r.name(lang)} ({r.code})") for r in countries],
        }
    ]
    parents = sorted(
        {r.parent for r in tax.regions.values() if r.level != "country" and r.parent},
        key=lambda c: (c not in ("CN", "US"), c != "CN", tax.region_name(c, "en")),
    )
    for parent in parents:
        subs = sorted(
            (r for r in tax.regions.values() if r.parent == parent), key=lambda r: r.name_en
        )
        groups.append(
            {
                "label": t(lang, "region.subdivisions", country=tax.region_name(parent, lang)),
                "options": [(r.code, f"{r.name(lang)} ({r.code})") for r in subs],
            }
        )
    return groups


def trl_levels(tax: Taxonomy, lang: str) -> list[dict[str, Any]]:
    """TRL 1–9 with name and plain-language definition."""
    return [
        {
            "trl": lv.trl,
            "name": lv.name_zh if lang == "zh" else lv.name_en,
            "definition": lv.definition_zh if lang == "zh" else lv.definition_en,
        }
        for lv in sorted(tax.readiness.values(), key=lambda lv: lv.trl)
    ]


def _form_context(
    form: FormKind,
    engine: Engine,
    settings: ApiSettings,
    lang: str,
    values: dict[str, Any],
    errors: dict[str, list[str]],
) -> dict[str, Any]:
    tax = engine.taxonomy
    levels = trl_levels(tax, lang)
    return {
        "page_title": t(lang, f"{form.i18n}.page_title"),
        "form": form,
        "values": values,
        "errors": errors,
        "error_count": sum(len(v) for v in errors.values()),
        "domain_groups": domain_groups(tax, lang),
        "region_groups": region_groups(tax, lang),
        "trl_levels": levels,
        "trl_options": [
            (str(lv["trl"]), t(lang, "trl.option", trl=lv["trl"], name=lv["name"])) for lv in levels
        ],
        "ip_options": [(v.value, t(lang, f"tech.ip.{v.value}")) for v in IPStatus],
        "licensing_options": [(v.value, t(lang, f"tech.lic.{v.value}")) for v in Licensing],
        "max_text": settings.max_text_chars,
        "action": f"{form.path}?lang={lang}",
    }


def _defaults(form: FormKind) -> dict[str, Any]:
    if form is NEED:
        return {"currency": "CNY", "region_scope": "national", "domains": []}
    return {"ip_status": "none", "domains": []}


# -- validation ----------------------------------------------------------------------------
def parse_errors(message: str) -> list[tuple[str, str]]:
    """Split a validate_record message ``field: msg; field: msg`` into (field, msg) pairs."""
    parts: list[list[str]] = []
    for chunk in message.split("; "):
        found = _ERROR_PART.match(chunk)
        if found:
            parts.append([found["field"], found["message"]])
        elif parts:
            parts[-1][1] += "; " + chunk
        else:
            parts.append(["row", chunk])
    placed = []
    for where, text in parts:
        if where == "row":  # model-level checks: put them on the field to fix
            if "trl_max" in text:
                where = "trl_max"
            elif "budget_max" in text:
                where = "budget_max"
        placed.append((where, text))
    return placed


def _raw_record(form: FormKind, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values to re-render, raw record for validate_record) from submitted form data."""
    values: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for name in form.text_fields + form.list_fields:
        value = data.get(name)
        value = value if isinstance(value, str) else ""
        values[name] = value
        if not value.strip():
            continue
        if name in form.list_fields:
            raw[name] = [p.strip() for p in _LIST_SPLIT.split(value) if p.strip()]
        elif name == "currency":
            raw[name] = value.strip().upper()
        else:
            raw[name] = value
    for name in form.multi_fields:
        chosen = [v for v in data.getlist(name) if isinstance(v, str) and v.strip()]
        values[name] = chosen
        if chosen or form is NEED:
            raw[name] = chosen
    for name in form.bool_fields:
        checked = data.get(name) not in (None, "", "0", "false", "off")
        values[name] = checked
        raw[name] = checked
    return values, raw


def _reference_problems(
    form: FormKind, raw: dict[str, Any], tax: Taxonomy
) -> list[tuple[str, str]]:
    """Unknown domain and region codes, also when other fields failed first."""
    problems = []
    unknown = [d for d in raw.get("domains", []) if d not in tax.domains]
    if unknown:
        problems.append(("domains", f"unknown domain code(s) {', '.join(unknown)} (see"))
    for name in ("region", "home_region"):
        code = raw.get(name)
        if isinstance(code, str) and code.strip() and not tax.is_region(code.strip()):
            problems.append((name, f"unknown region code {code.strip()!r}"))
    return problems


def _validate(
    form: FormKind, raw: dict[str, Any], values: dict[str, Any], engine: Engine, settings: Any
) -> tuple[Any, dict[str, list[str]], str]:
    """(record or None, field → English messages, reference) for one submission."""
    errors: dict[str, list[str]] = {}
    too_long = len(values.get("description", "")) > settings.max_text_chars
    ref = new_reference(engine, form)
    try:
        record = validate_record(form.kind, {"id": ref, **raw}, engine.taxonomy)
    except ValueError as exc:
        record = None
        for where, message in parse_errors(str(exc)):
            if where == "description" and too_long:
                continue
            target = where if where in values else "_form"
            errors.setdefault(target, []).append(message)
    for name, message in _reference_problems(form, raw, engine.taxonomy):
        if name not in errors:
            errors[name] = [message]
            record = None
    if too_long:
        errors.setdefault("description", []).insert(0, "__too_long__")
        record = None
    return record, errors, ref


def _translated(
    errors: dict[str, list[str]], lang: str, values: dict[str, Any], settings: ApiSettings
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        for message in messages:
            if message == "__too_long__":
                text = t(
                    lang,
                    "err.max_length",
                    n=f"{settings.max_text_chars:,}",
                    got=f"{len(values.get(name, '')):,}",
                )
            else:
                text = translate_error(lang, message)
            if text not in out.get(name, []):
                out.setdefault(name, []).append(text)
    return out


# -- storage -------------------------------------------------------------------------------
def new_reference(engine: Engine, form: FormKind) -> str:
    """An unused reference such as ``N-3F9A0C1B``."""
    with engine.sessions() as session:
        while True:
            ref = form.prefix + secrets.token_hex(4).upper()
            if session.scalar(select(form.row.id).where(form.row.ref == ref)) is None:
                return ref


def tracking_hash(token: str) -> str:
    """What is stored for a tracking token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def store(request: Request, engine: Engine, form: FormKind, record: Any) -> tuple[str, str]:
    """Save the record, attach a new tracking token, queue matching; (reference, token)."""
    engine.save_records(form.kind, [record])
    token = secrets.token_urlsafe(24)
    with transaction(engine.sessions) as session:
        row = session.scalar(select(form.row).where(form.row.ref == record.id))
        row.tracking_hash = tracking_hash(token)
        row_id = row.id
    try:
        request.app.state.worker.submit(form.short, row_id)
    except Exception:  # the record is stored; matching can be repeated later
        log.exception("matching of %s %s failed", form.short, record.id)
    return record.id, token


# -- routes: forms -------------------------------------------------------------------------
def _show_form(request: Request, form: FormKind, engine: Engine, settings: ApiSettings) -> Response:
    lang, remember = choose_language(request)
    context = _form_context(form, engine, settings, lang, _defaults(form), {})
    return render(
        request,
        form.template,
        lang,
        context,
        remember_lang=remember,
        csrf=csrf_token_for(request, settings),
    )


async def _submit(
    request: Request, form: FormKind, engine: Engine, settings: ApiSettings
) -> Response:
    lang, remember = choose_language(request)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return error_page(
            request,
            lang,
            status_code=413,
            title=t(lang, "toolarge.title"),
            message=t(lang, "toolarge.message"),
            back=f"{form.path}?lang={lang}",
        )
    data = await request.form(max_files=0, max_fields=200, max_part_size=MAX_BODY_BYTES)
    submitted = data.get(CSRF_FIELD)
    if not csrf_ok(request, settings, submitted if isinstance(submitted, str) else None):
        return error_page(
            request,
            lang,
            status_code=400,
            title=t(lang, "csrf.title"),
            message=t(lang, "csrf.message"),
            back=f"{form.path}?lang={lang}",
        )
    values, raw = _raw_record(form, data)
    record, errors, _ = _validate(form, raw, values, engine, settings)
    if record is None:
        shown = _translated(errors, lang, values, settings)
        context = _form_context(form, engine, settings, lang, values, shown)
        return render(
            request,
            form.template,
            lang,
            context,
            status_code=422,
            remember_lang=remember,
            csrf=csrf_token_for(request, settings),
        )
    ref, token = store(request, engine, form, record)
    done = _serializer(settings, "techmatch-done").dumps(
        {"kind": form.short, "ref": ref, "token": token}
    )
    response = RedirectResponse(
        form.path.replace("/new", "/submitted") + f"?lang={lang}", status_code=303
    )
    response.set_cookie(
        DONE_COOKIE,
        done,
        max_age=DONE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


def _confirmation(request: Request, form: FormKind, settings: ApiSettings) -> Response:
    lang, remember = choose_language(request)
    try:
        done = _serializer(settings, "techmatch-done").loads(
            request.cookies.get(DONE_COOKIE, ""), max_age=DONE_MAX_AGE_S
        )
    except BadSignature:
        done = None
    if not isinstance(done, dict) or done.get("kind") != form.short:
        return RedirectResponse(f"{form.path}?lang={lang}", status_code=303)
    track_path = f"/track/{done['token']}"
    return render(
        request,
        "submitted.html",
        lang,
        {
            "page_title": t(lang, f"{form.i18n}.done_title"),
            "form": form,
            "ref": done["ref"],
            "track_path": track_path,
            "track_url": str(request.base_url).rstrip("/") + track_path,
        },
        remember_lang=remember,
    )


@router.get("/needs/new", response_class=HTMLResponse)
def need_form(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """The enterprise need form."""
    return _show_form(request, NEED, engine, settings)


@router.post("/needs/new", response_class=HTMLResponse)
async def need_submit(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """Validate and store a need; 303 to the confirmation page."""
    return await _submit(request, NEED, engine, settings)


@router.get("/needs/submitted", response_class=HTMLResponse)
def need_submitted(request: Request, settings: ApiSettingsDep) -> Response:
    """Confirmation with the private tracking link."""
    return _confirmation(request, NEED, settings)


@router.get("/technologies/new", response_class=HTMLResponse)
def technology_form(request: Request, engine: EngineDep, settings: ApiSettingsDep) -> Response:
    """The research-institute technology form."""
    return _show_form(request, TECHNOLOGY, engine, settings)


@router.post("/technologies/new", response_class=HTMLResponse)
async def technology_submit(
    request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Validate and store a technology; 303 to the confirmation page."""
    return await _submit(request, TECHNOLOGY, engine, settings)


@router.get("/technologies/submitted", response_class=HTMLResponse)
def technology_submitted(request: Request, settings: ApiSettingsDep) -> Response:
    """Confirmation with the private tracking link."""
    return _confirmation(request, TECHNOLOGY, settings)


# -- routes: tracking ----------------------------------------------------------------------
STEPS = ("received", "matched", "claimed", "negotiating", "agreed")


def submission_status(session: Any, row: NeedRow | TechnologyRow) -> tuple[str, int]:
    """(status, number of matches) of a need or technology, from matches and deals."""
    is_need = isinstance(row, NeedRow)
    deal_col = DealRow.need_id if is_need else DealRow.technology_id
    stages = set(session.scalars(select(DealRow.stage).where(deal_col == row.id)))
    if is_need:
        count = session.scalar(select(func.count()).where(MatchRow.need_id == row.id)) or 0
    else:
        count = (
            session.scalar(
                select(func.count(func.distinct(MatchRow.need_id))).where(
                    MatchRow.technology_id == row.id
                )
            )
            or 0
        )
    if "agreed" in stages:
        return "agreed", count
    if "negotiating" in stages:
        return "negotiating", count
    if stages & {"claimed", "contacted", "nda_signed"}:
        return "claimed", count
    if stages:  # every deal closed as lost
        return "closed", count
    if row.status != "active":
        return "archived", count
    return ("matched" if count else "received"), count


def _date(value: datetime | None, lang: str) -> str:
    if value is None:
        return ""
    if lang == "zh":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {value.strftime('%B')} {value.year}"


@router.get("/track/{token}", response_class=HTMLResponse)
def track(token: str, request: Request, engine: EngineDep) -> Response:
    """The status of one submission, and nothing else."""
    lang, remember = choose_language(request)
    digest = tracking_hash(token)
    with engine.sessions() as session:
        row: NeedRow | TechnologyRow | None = session.scalar(
            select(NeedRow).where(NeedRow.tracking_hash == digest)
        )
        if row is None:
            row = session.scalar(select(TechnologyRow).where(TechnologyRow.tracking_hash == digest))
        if row is None:
            return error_page(
                request,
                lang,
                status_code=404,
                title=t(lang, "notfound.title"),
                message=t(lang, "notfound.track"),
                back=None,
            )
        status, count = submission_status(session, row)
        kind = "need" if isinstance(row, NeedRow) else "technology"
        title, submitted = row.title, row.created_at
    steps = [*STEPS[:-1], status] if status in ("closed", "archived") else list(STEPS)
    current = steps.index(status)
    return render(
        request,
        "track.html",
        lang,
        {
            "page_title": t(lang, "track.page_title"),
            "kind": kind,
            "title": title,
            "submitted": _date(submitted, lang),
            "submitted_iso": submitted.date().isoformat() if submitted else "",
            "status": status,
            "count": count,
            "steps": [
                {"key": key, "state": "done" if i < current else "current" if i == current else ""}
                for i, key in enumerate(steps)
            ],
        },
        remember_lang=remember,
    )
