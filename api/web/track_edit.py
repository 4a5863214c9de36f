"""Edit or withdraw a submission from its tracking link (``/track/{token}/edit``, ``/withdraw``).

Whoever holds the link may correct the record (the same form, filled in; it is matched again)
or withdraw it (archived: no longer matched or passed to brokers); both are audited with the
actor ``submitter``, and both forms carry the CSRF token. A withdrawn or closed submission can
no longer be changed (409).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.config import ApiSettings
from api.deps import ApiSettingsDep, EngineDep
from api.web.console_session import csrf_failed
from api.web.csrf import CSRF_FIELD, csrf_ok, csrf_token_for
from api.web.forms import FORMS, MAX_BODY_BYTES, FormSpec, errors_by_field, form_context, raw_record
from api.web.i18n import t
from api.web.pages import choose_language, error_page, render
from api.web.tracking import not_found
from matcher import intake
from matcher.engine import Engine
from matcher.errors import RecordInvalidError
from matcher.store.repo import tracking
from matcher.store.repo.records import row_model

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
CLOSED = ("archived", "closed", "agreed")


def values_of(form: FormSpec, row: Any) -> dict[str, Any]:
    """A stored record as the form's values."""
    values: dict[str, Any] = {}
    for name in form.text_fields:
        value = getattr(row, name, None)
        values[name] = "" if value is None else str(value)
    for name in form.list_fields:
        values[name] = "; ".join(getattr(row, name, None) or [])
    for name in form.multi_fields:
        values[name] = [] if getattr(row, "domains_inferred", False) else list(getattr(row, name))
    for name in form.bool_fields:
        values[name] = bool(getattr(row, name, False))
    return values


def _found(request: Request, engine: Engine, token: str, lang: str) -> Any:
    """(the tracked submission, its row) or an error page (404 unknown, 409 closed)."""
    with engine.sessions() as session:
        found = tracking.find_tracked(session, token=token)
        row = None if found is None else session.get(row_model(found.side), found.row_id)
        if row is not None:
            session.expunge(row)
    if found is None or row is None:
        return not_found(request, lang)
    if found.status in CLOSED:
        return error_page(
            request,
            lang,
            status_code=409,
            title=t(lang, "track.edit"),
            message=t(lang, "track.closed"),
            back=f"/track/{token}?lang={lang}",
        )
    return found, row


def _form_page(
    request: Request,
    engine: Engine,
    settings: ApiSettings,
    token: str,
    form: FormSpec,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> Response:
    lang, remember = choose_language(request)
    context = form_context(form, engine, settings, lang, values, errors)
    context["action"] = f"/track/{token}/edit?lang={lang}"
    context["page_title"] = t(lang, "track.edit")
    csrf = csrf_token_for(request, settings)
    return render(
        request,
        form.template,
        lang,
        context,
        status_code=status_code,
        remember_lang=remember,
        csrf=csrf,
    )


@router.get("/track/{token}/edit", response_class=HTMLResponse)
def edit_form(
    token: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """The submission's form, filled in with what is stored."""
    lang, _ = choose_language(request)
    found = _found(request, engine, token, lang)
    if isinstance(found, Response):
        return found
    tracked, row = found
    form = FORMS[tracked.side]
    return _form_page(request, engine, settings, token, form, values_of(form, row), {})


async def _checked_form(request: Request, settings: ApiSettings) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return None
    data = await request.form(max_files=0, max_fields=200, max_part_size=MAX_BODY_BYTES)
    submitted = data.get(CSRF_FIELD)
    if not csrf_ok(request, settings, submitted if isinstance(submitted, str) else None):
        return None
    return data


@router.post("/track/{token}/edit", response_class=HTMLResponse)
async def edit_submit(
    token: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Save the corrected submission and match it again; the form with its errors if invalid."""
    lang, _ = choose_language(request)
    found = _found(request, engine, token, lang)
    if isinstance(found, Response):
        return found
    tracked, _row = found
    data = await _checked_form(request, settings)
    if data is None:
        return csrf_failed(request, lang, f"/track/{token}?lang={lang}")
    form = FORMS[tracked.side]
    values, raw = raw_record(form, data)
    worker = request.app.state.worker
    try:
        queued = worker.in_transaction(tracked.side)
        intake.revise(tracked.side, tracked.ref, raw, engine.catalog, before_commit=queued)
    except RecordInvalidError as exc:
        shown = errors_by_field(form, exc.errors, lang)
        return _form_page(request, engine, settings, token, form, values, shown, 422)
    try:
        worker.after_commit(tracked.side.singular, tracked.row_id)
    except Exception:  # stored; matching can be repeated later
        log.exception("matching of %s %s failed", tracked.side.singular, tracked.ref)
    return RedirectResponse(f"/track/{token}?lang={lang}&saved=1", status_code=303)


@router.post("/track/{token}/withdraw", response_class=HTMLResponse)
async def withdraw(
    token: str, request: Request, engine: EngineDep, settings: ApiSettingsDep
) -> Response:
    """Withdraw (archive) the submission."""
    lang, _ = choose_language(request)
    found = _found(request, engine, token, lang)
    if isinstance(found, Response):
        return found
    tracked, _row = found
    if await _checked_form(request, settings) is None:
        return csrf_failed(request, lang, f"/track/{token}?lang={lang}")
    intake.withdraw(tracked.side, tracked.ref, engine.catalog)
    return RedirectResponse(f"/track/{token}?lang={lang}&withdrawn=1", status_code=303)
