"""Server-rendered forms for enterprises (needs) and institutes (technologies).

No account and no JavaScript: a submitter fills a form, gets a private tracking link
(``/track/{token}``; only the SHA-256 of the token is stored) and follows the status there.
Every form is protected by a signed double-submit CSRF token, validated by the engine like the
CLI and the API (``Engine.submit``), and shown in English or Chinese. A submission calls the
engine once (validate, store, link the tracking token) and queues matching. Technology fields
are optional (inferred from the text when none is chosen); "Suggest fields" posts the form and
gets it back with suggestions (``api.web.suggest``).

Against spam: submissions per client address are limited (``MATCHER_API_FORM_RATE``, 429
beyond, ``api.ratelimit``), and each form carries a field people do not see (``website``); a
submission that fills it is dropped, logged, and answered like an accepted one, so a bot learns
nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep
from api.ratelimit import client_address
from api.web.choices import domain_groups, region_groups, trl_levels
from api.web.csrf import CSRF_FIELD, csrf_ok, csrf_token_for, read_done, sign_done
from api.web.i18n import field_error_text, t
from api.web.pages import choose_language, error_page, render, secure
from api.web.suggest import SUGGEST_ACTION, suggest
from matcher import intake
from matcher.domain import IPStatus, Licensing, Side
from matcher.engine import Engine
from matcher.errors import FieldError, RecordInvalidError
from matcher.store.repo.tracking import PREFIX, new_token

log = logging.getLogger(__name__)

DONE_COOKIE = "tm_done"
DONE_MAX_AGE_S = 3600
MAX_BODY_BYTES = 512 * 1024
FORM_ERRORS = "_form"  # problems no field of the form can show
HONEYPOT_FIELD = "website"  # hidden from people (CSS); a bot that fills every field fills it

router = APIRouter(include_in_schema=False)


# -- form definitions ---------------------------------------------------------------------
@dataclass(frozen=True)
class FormSpec:
    """What the HTML form of one side shows: its template, fields and message prefix."""

    side: Side
    template: str
    text_fields: tuple[str, ...]
    list_fields: tuple[str, ...]  # free-text lists separated by ; or ,
    multi_fields: tuple[str, ...]  # <select multiple>
    bool_fields: tuple[str, ...]
    i18n: str  # message key prefix
    defaults: tuple[tuple[str, Any], ...]

    @property
    def path(self) -> str:
        """The form's URL."""
        return f"/{self.side.value}/new"

    @property
    def done_path(self) -> str:
        """The confirmation page's URL."""
        return f"/{self.side.value}/submitted"


NEED = FormSpec(
    side=Side.needs,
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
    i18n="need",
    defaults=(("currency", "CNY"), ("region_scope", "national")),
)
TECHNOLOGY = FormSpec(
    side=Side.technologies,
    template="technology_form.html",
    text_fields=(
        "owner",
        "title",
        "description",
        "trl",
        "region",
        "ip_status",
        "licensing",
        "contact",
    ),
    list_fields=("keywords", "patents"),
    multi_fields=("domains",),
    bool_fields=("confidential",),
    i18n="tech",
    defaults=(("ip_status", "none"),),
)
FORMS = {form.side: form for form in (NEED, TECHNOLOGY)}

_LIST_SPLIT = re.compile(r"[;；,，\n]+")


def form_context(
    form: FormSpec,
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


# -- validation ----------------------------------------------------------------------------
def raw_record(form: FormSpec, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values to re-render, raw record for the engine) from submitted form data."""
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
        if chosen or form.side is Side.needs:
            raw[name] = chosen
    for name in form.bool_fields:
        checked = data.get(name) not in (None, "", "0", "false", "off")
        values[name] = checked
        raw[name] = checked
    return values, raw


def too_long(form: FormSpec, values: dict[str, Any], settings: ApiSettings) -> FieldError | None:
    """The service's own limit on the description (``MATCHER_API_MAX_TEXT_CHARS``)."""
    length = len(values.get("description", ""))
    if length <= settings.max_text_chars:
        return None
    return FieldError(
        "text_too_long",
        ("description",),
        f"at most {settings.max_text_chars} characters",
        {"max_length": settings.max_text_chars, "actual_length": length},
    )


def errors_by_field(form: FormSpec, errors: list[FieldError], lang: str) -> dict[str, list[str]]:
    """Translated messages by the form field each error's location names (``_form`` else)."""
    fields = {*form.text_fields, *form.list_fields, *form.multi_fields, *form.bool_fields}
    out: dict[str, list[str]] = {}
    for error in errors:
        target = error.field if error.field in fields else FORM_ERRORS
        text = field_error_text(lang, error)
        if text not in out.get(target, []):
            out.setdefault(target, []).append(text)
    return out


# -- routes --------------------------------------------------------------------------------
def _show_form(request: Request, form: FormSpec, engine: Engine, settings: ApiSettings) -> Response:
    lang, remember = choose_language(request)
    values: dict[str, Any] = {"domains": [], **dict(form.defaults)}
    context = form_context(form, engine, settings, lang, values, {})
    return render(
        request,
        form.template,
        lang,
        context,
        remember_lang=remember,
        csrf=csrf_token_for(request, settings),
    )


def _refused(request: Request, form: FormSpec, lang: str, status_code: int, what: str) -> Response:
    return error_page(
        request,
        lang,
        status_code=status_code,
        title=t(lang, f"{what}.title"),
        message=t(lang, f"{what}.message"),
        back=f"{form.path}?lang={lang}",
    )


def _store(
    request: Request, form: FormSpec, engine: Engine, settings: ApiSettings, values: dict, raw: dict
) -> intake.Submission | list[FieldError]:
    """Store a submission and queue its matching; its problems when it cannot be stored."""
    limit = too_long(form, values, settings)
    if limit is not None:  # still say what else is wrong, so one round fixes everything
        others = intake.problems(form.side, raw, engine.catalog)
        return [limit, *(e for e in others if e.field != "description")]
    try:
        queued = request.app.state.worker.in_transaction(form.side)
        submission = intake.submit(form.side, raw, engine.catalog, before_commit=queued)
    except RecordInvalidError as exc:
        return exc.errors
    try:
        request.app.state.worker.after_commit(form.side.singular, submission.id)
    except Exception:  # the record is stored; matching can be repeated later
        log.exception("matching of %s %s failed", form.side.singular, submission.ref)
    return submission


def _too_many(request: Request, form: FormSpec, lang: str, retry_after_s: int) -> Response:
    response = error_page(
        request,
        lang,
        status_code=429,
        title=t(lang, "ratelimit.title"),
        message=t(lang, "ratelimit.message", seconds=retry_after_s),
        back=f"{form.path}?lang={lang}",
    )
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def _accepted(
    request: Request, form: FormSpec, settings: ApiSettings, lang: str, *, ref: str, token: str
) -> Response:
    """303 to the confirmation page, which the signed cookie tells what was stored."""
    done = sign_done(settings, {"kind": form.side.singular, "ref": ref, "token": token})
    response = RedirectResponse(f"{form.done_path}?lang={lang}", status_code=303)
    response.set_cookie(
        DONE_COOKIE,
        done,
        max_age=DONE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    return response


def _suggested(
    request: Request, form: FormSpec, engine: Engine, settings: ApiSettings, values: dict, raw: dict
) -> Response:
    """The form again, with domain codes suggested from its text (the likeliest selected when
    none was chosen); 422 when there is no text to read yet."""
    lang, remember = choose_language(request)
    found = suggest(engine, form.side, raw, lang)
    errors = {} if found else {"domains": [t(lang, "form.suggest_no_text")]}
    if found and not values["domains"]:
        values["domains"] = found.selected
    context = form_context(form, engine, settings, lang, values, errors)
    context["suggestions"] = found.lines if found else []
    csrf = csrf_token_for(request, settings)
    status = 200 if found else 422
    return render(
        request, form.template, lang, context, status_code=status, remember_lang=remember, csrf=csrf
    )


async def _submit(
    request: Request, form: FormSpec, engine: Engine, settings: ApiSettings
) -> Response:
    lang, remember = choose_language(request)
    client = client_address(request)
    refusal = request.app.state.rate_limits.hit_form(client)
    if refusal is not None:
        log.warning("form %s: %s past %s, refused", form.path, client, refusal.rate_text)
        return _too_many(request, form, lang, refusal.retry_after_s)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return _refused(request, form, lang, 413, "toolarge")
    data = await request.form(max_files=0, max_fields=200, max_part_size=MAX_BODY_BYTES)
    submitted = data.get(CSRF_FIELD)
    if not csrf_ok(request, settings, submitted if isinstance(submitted, str) else None):
        return _refused(request, form, lang, 400, "csrf")
    if str(data.get(HONEYPOT_FIELD) or "").strip():
        # a bot: answer as if stored (a reference and a tracking link that lead nowhere)
        log.warning("form %s: hidden field filled by %s, submission dropped", form.path, client)
        decoy = PREFIX[form.side] + secrets.token_hex(4).upper()
        return _accepted(request, form, settings, lang, ref=decoy, token=new_token())
    values, raw = raw_record(form, data)
    if data.get("action") == SUGGEST_ACTION:  # the "Suggest fields" button: nothing is stored
        return _suggested(request, form, engine, settings, values, raw)
    outcome = _store(request, form, engine, settings, values, raw)
    if isinstance(outcome, list):
        shown = errors_by_field(form, outcome, lang)
        context = form_context(form, engine, settings, lang, values, shown)
        return render(
            request,
            form.template,
            lang,
            context,
            status_code=422,
            remember_lang=remember,
            csrf=csrf_token_for(request, settings),
        )
    return _accepted(request, form, settings, lang, ref=outcome.ref, token=outcome.token)


def _confirmation(request: Request, form: FormSpec, settings: ApiSettings) -> Response:
    lang, remember = choose_language(request)
    done = read_done(settings, request.cookies.get(DONE_COOKIE, ""), max_age=DONE_MAX_AGE_S)
    if done is None or done.get("kind") != form.side.singular:
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
