"""The server-rendered forms: need and technology submission, CSRF, errors, tracking."""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from api.web.i18n import field_error_text
from matcher.config import REPO_DATA_DIR
from matcher.errors import FieldError
from matcher.store.models import DealRow, MatchRow, NeedRow, RoutedMatchRow, TechnologyRow

READINESS = json.loads((REPO_DATA_DIR / "taxonomy" / "readiness.json").read_text("utf-8"))
TRL4 = next(level for level in READINESS["levels"] if level["trl"] == 4)

GOOD_NEED = {
    "enterprise": "Jiangsu Haifeng Wind Equipment Co., Ltd.",
    "title": "Corrosion-resistant coating for offshore wind towers",
    "description": (
        "Our offshore wind tower sections corrode at the splash zone within five years. We need "
        "a coating system that survives 3000 h of salt spray, applies on existing lines and can "
        "be repaired in the field without blasting."
    ),
    "domains": ["04.06"],
    "trl_min": "5",
    "trl_max": "8",
    "region_scope": "national",
    "home_region": "CN-JS",
    "budget_min": "500000",
    "budget_max": "2000000",
    "currency": "CNY",
    "deadline": "2027-12-31",
    "contact": "Li Na <li.na@haifeng-wind.cn>",
}

GOOD_TECHNOLOGY = {
    "owner": "Zhejiang University",
    "title": "Graphene-modified epoxy anti-corrosion coating for marine steel",
    "description": (
        "A waterborne epoxy coating filled with functionalised graphene nanosheets that blocks "
        "chloride ingress; 4000 h neutral salt spray without blistering on Q235 steel, applied "
        "by airless spray on existing lines; pilot tested on offshore platforms."
    ),
    "domains": ["04.06"],
    "keywords": "coating; corrosion；offshore",
    "trl": "6",
    "region": "CN-ZJ",
    "ip_status": "granted",
    "patents": "CN114123456B; EP3456789B1",
    "licensing": "non_exclusive_licence",
}


def csrf_of(page: str) -> str:
    """The hidden CSRF token of a rendered form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF field in the form"
    return found.group(1)


def field_block(page: str, name: str) -> str:
    """The HTML of one form field: from its container to the control (label, help, error)."""
    start = page.index(f'for="f-{name}"')
    start = page.rindex('<div class="field', 0, start)
    end = page.index(f'id="f-{name}"', start)
    end = page.index(">", end)
    return page[start : end + 1]


def count(engine: Any, model: Any) -> int:
    with engine.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def post_form(client: Any, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    page = client.get(path)
    return client.post(
        path, data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False, **kwargs
    )


def submit(client: Any, path: str, data: dict[str, Any], lang: str = "en") -> str:
    """Submit a valid form; returns the tracking path shown on the confirmation page."""
    response = post_form(client, f"{path}?lang={lang}", data)
    assert response.status_code == 303, response.text[:2000]
    confirmation = client.get(response.headers["location"])
    assert confirmation.status_code == 200
    found = re.search(r'id="tracking-link" href="(/track/[A-Za-z0-9_-]+)', confirmation.text)
    assert found, confirmation.text
    return found.group(1)


# -- the need form -------------------------------------------------------------------------
def test_need_form_english(client: Any) -> None:
    page = client.get("/needs/new?lang=en")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert '<html lang="en">' in text
    assert "Post a technology need" in text
    for name in (
        "enterprise",
        "title",
        "description",
        "domains",
        "trl_min",
        "trl_max",
        "home_region",
        "budget_min",
        "budget_max",
        "currency",
        "deadline",
        "contact",
        "trl_hard",
        "region_hard",
        "confidential",
    ):
        assert f'<label for="f-{name}"' in text, name
        assert f'id="f-{name}"' in text, name
    assert 'name="region_scope" value="local"' in text
    assert 'name="region_scope" value="international"' in text
    assert '<optgroup label="04 New materials">' in text
    assert '<option value="04.06"' in text
    assert '<optgroup label="China: provinces and states">' in text
    assert '<option value="CN-JS"' in text
    assert 'type="date"' in text
    assert html.escape(TRL4["definition_en"], quote=False) in text
    assert "<legend>" in text
    assert page.cookies.get("tm_csrf")
    assert 'href="/static/style.css"' in text
    assert client.get("/static/style.css").status_code == 200


def test_enter_in_a_field_submits_the_form_not_the_suggestions(client: Any) -> None:
    """Implicit submission (Enter) uses a form's first submit button: it must be the one that
    stores the record, not "Suggest fields" (name=action value=suggest)."""
    for path in ("/needs/new?lang=en", "/technologies/new?lang=zh"):
        page = client.get(path).text
        form = page[page.index("<form") :]
        first = form[form.index("<button") : form.index("</button>")]
        assert 'type="submit"' in first and 'name="action"' not in first, first


def test_need_form_chinese_and_remembered(client: Any) -> None:
    page = client.get("/needs/new?lang=zh")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    for label in (
        "发布技术需求",
        "企业名称",
        "需求标题",
        "技术领域",
        "可承接的最低成熟度",
        "寻找范围",
    ):
        assert label in page.text, label
    assert TRL4["definition_zh"] in page.text
    assert "江苏" in page.text  # region names in Chinese
    assert page.cookies.get("tm_lang") == "zh"
    # the cookie remembers the choice; ?lang=en switches back
    assert "企业名称" in client.get("/needs/new").text
    assert "Company name" in client.get("/needs/new?lang=en").text
    assert "Company name" in client.get("/needs/new").text


def test_post_without_or_with_bad_csrf_is_refused(client: Any, service_engine: Any) -> None:
    before = count(service_engine, NeedRow)
    client.get("/needs/new")  # sets the CSRF cookie
    missing = client.post("/needs/new", data=GOOD_NEED, follow_redirects=False)
    assert missing.status_code == 400
    assert "security token" in missing.text
    forged = client.post(
        "/needs/new", data={**GOOD_NEED, "csrf_token": "forged.token.value"}, follow_redirects=False
    )
    assert forged.status_code == 400
    # a correctly signed token that is not the visitor's cookie is refused too
    token = csrf_of(client.get("/needs/new").text)
    client.cookies.clear()
    stolen = client.post("/needs/new", data={**GOOD_NEED, "csrf_token": token})
    assert stolen.status_code == 400
    assert count(service_engine, NeedRow) == before


def test_need_errors_shown_next_to_fields_and_input_kept(
    client: Any, service_engine: Any, api_settings: Any
) -> None:
    before = count(service_engine, NeedRow)
    crafted = {
        **GOOD_NEED,
        "title": "",
        "trl_min": "12",
        "domains": ["99.99"],
        "description": "Salt spray <b>3000 h</b> " + "x" * api_settings.max_text_chars,
    }
    response = post_form(client, "/needs/new?lang=en", crafted)
    assert response.status_code == 422
    text = response.text
    assert "Please correct the" in text

    title = field_block(text, "title")
    assert 'id="f-title-error"' in title and "This field is required." in title
    assert 'aria-describedby="f-title-help f-title-error"' in title
    assert 'aria-invalid="true"' in title

    trl = field_block(text, "trl_min")
    assert "The value must be at most 9." in trl
    assert '<option value="12" selected>' in text  # the crafted value is kept

    domains = field_block(text, "domains")
    assert "Unknown technology field code: 99.99." in domains
    assert '<option value="99.99" selected>' in text

    description = field_block(text, "description")
    assert "Please enter at most 20,000 characters" in description
    assert "&lt;b&gt;3000 h&lt;/b&gt;" in text  # kept, and escaped

    # everything else is kept as typed
    assert 'value="Jiangsu Haifeng Wind Equipment Co., Ltd."' in text
    assert '<option value="CN-JS" selected>' in text
    assert '<option value="04.06"' in text and '<option value="04.06" selected>' not in text
    assert re.search(r'value="national"[^>]* checked', text)
    assert 'value="2027-12-31"' in text
    assert html.escape("Li Na <li.na@haifeng-wind.cn>") in text
    assert count(service_engine, NeedRow) == before


def test_need_errors_unknown_domain_alone_and_in_chinese(client: Any, service_engine: Any) -> None:
    before = count(service_engine, NeedRow)
    alone = post_form(client, "/needs/new?lang=en", {**GOOD_NEED, "domains": ["99.99"]})
    assert alone.status_code == 422
    assert "Unknown technology field code: 99.99." in field_block(alone.text, "domains")

    window = post_form(client, "/needs/new?lang=en", {**GOOD_NEED, "trl_min": "7", "trl_max": "3"})
    assert window.status_code == 422
    assert "is below the lowest" in field_block(window.text, "trl_max")

    zh = post_form(client, "/needs/new?lang=zh", {**GOOD_NEED, "title": "", "home_region": "XX-99"})
    assert zh.status_code == 422
    assert "此项为必填项。" in field_block(zh.text, "title")
    assert "未知的地区代码" in field_block(zh.text, "home_region")
    assert count(service_engine, NeedRow) == before


def test_field_errors_are_worded_from_type_and_context_never_from_text() -> None:
    """The message text is pydantic's (or anyone's): the words come from (type, ctx) alone."""
    nonsense = "this English text is never read"
    short = FieldError("string_too_short", ("title",), nonsense, {"min_length": 5})
    assert field_error_text("zh", short) == "请至少输入 5 个字符。"
    assert field_error_text("en", short) == "Please enter at least 5 characters."
    window = FieldError("trl_window", ("trl_max",), nonsense, {"min": 7, "max": 3})
    assert field_error_text("zh", window) == "最高成熟度（3）低于最低成熟度（7）。"
    region = FieldError("unknown_region", ("home_region",), nonsense, {"code": "XX-99"})
    assert field_error_text("zh", region) == "未知的地区代码 XX-99，请从列表中选择。"
    big = FieldError("less_than_equal", ("budget_min",), nonsense, {"le": 20000.0})
    assert field_error_text("en", big) == "The value must be at most 20,000."
    currency = FieldError("string_pattern_mismatch", ("currency",), nonsense, {"pattern": "x"})
    assert field_error_text("zh", currency) == "请使用三位字母的币种代码，例如 CNY、EUR 或 USD。"
    # a type without wording of its own still tells the person what is wrong
    odd = FieldError("url_scheme", ("contact",), "URL scheme should be 'http'", {})
    assert field_error_text("en", odd) == "This value is not valid (URL scheme should be 'http')."


def test_chinese_form_errors_come_from_the_engine_field_errors(client: Any) -> None:
    """A Chinese page shows the engine's typed errors (pydantic's and its own) on their fields."""
    short = post_form(
        client, "/needs/new?lang=zh", {**GOOD_NEED, "title": "abc", "domains": ["99.99"]}
    )
    assert short.status_code == 422
    assert "f-title-error" not in field_block(short.text, "title")  # a short title is a title
    assert "未知的技术领域代码：99.99。" in field_block(short.text, "domains")
    window = post_form(
        client, "/needs/new?lang=zh", {**GOOD_NEED, "budget_min": "9000", "budget_max": "10"}
    )
    assert "预算上限低于预算下限。" in field_block(window.text, "budget_max")


def test_need_submission_tracking_and_status(client: Any, service_engine: Any) -> None:
    before = count(service_engine, NeedRow)
    track_path = submit(client, "/needs/new", GOOD_NEED)
    token = track_path.rsplit("/", 1)[1]
    assert len(token) >= 32
    assert count(service_engine, NeedRow) == before + 1

    with service_engine.sessions() as session:
        row = session.scalar(
            select(NeedRow).where(
                NeedRow.tracking_hash == hashlib.sha256(token.encode()).hexdigest()
            )
        )
        assert row is not None
        assert re.fullmatch(r"N-[0-9A-F]{8}", row.ref)
        assert row.title == GOOD_NEED["title"] and row.home_region == "CN-JS"
        assert row.trl_min == 5 and row.trl_max == 8 and row.budget_max == 2_000_000
        need_id = row.id
        matches = session.scalar(select(func.count()).where(MatchRow.need_id == need_id))
        routed = session.scalars(
            select(RoutedMatchRow).where(RoutedMatchRow.need_id == need_id)
        ).all()
    assert matches and matches > 0  # the worker ran (inline in tests)

    page = client.get(track_path + "?lang=en")
    assert page.status_code == 200
    assert GOOD_NEED["title"] in page.text
    assert 'id="status">Matched<' in page.text
    assert f"{matches} technologies found." in page.text
    assert "Received" in page.text  # the progress list
    # nothing but the status: no technology titles, no broker identities
    with service_engine.sessions() as session:
        titles = session.scalars(
            select(TechnologyRow.title)
            .join(MatchRow, MatchRow.technology_id == TechnologyRow.id)
            .where(MatchRow.need_id == need_id)
        ).all()
    for title in titles:
        assert html.escape(title) not in page.text
    for name in ("Wang Lixin", "Schröder", "Chen Yufei", "@techmatch-brokers"):
        assert name not in page.text

    zh = client.get(track_path + "?lang=zh")
    assert "已匹配" in zh.text and f"已找到 {matches} 项技术成果" in zh.text

    # a broker claims it, negotiates, agrees: the status page follows
    with service_engine.sessions() as session:
        if routed:
            first = routed[0]
            routed_id, broker_id, tech_id = first.id, first.broker_id, first.technology_id
        else:  # no eligible broker in the demo for this need: route one by hand
            match = session.scalars(select(MatchRow).where(MatchRow.need_id == need_id)).first()
            from matcher.store.models import BrokerRow

            broker = session.scalars(select(BrokerRow)).first()
            row_ = RoutedMatchRow(
                need_id=need_id,
                technology_id=match.technology_id,
                broker_id=broker.id,
                score=match.score,
                components=match.components,
                explanation=match.explanation,
                rank=1,
                reason="test",
            )
            session.add(row_)
            session.flush()
            routed_id, broker_id, tech_id = row_.id, broker.id, match.technology_id
        deal = DealRow(
            routed_id=routed_id,
            broker_id=broker_id,
            need_id=need_id,
            technology_id=tech_id,
            stage="claimed",
        )
        session.add(deal)
        session.commit()
        deal_id = deal.id
    assert 'id="status">With a broker<' in client.get(track_path + "?lang=en").text
    for stage, shown in (
        ("negotiating", "In negotiation"),
        ("agreed", "Agreed"),
        ("closed_lost", "Closed"),
    ):
        with service_engine.sessions() as session:
            session.get(DealRow, deal_id).stage = stage
            session.commit()
        assert f'id="status">{shown}<' in client.get(track_path + "?lang=en").text


@pytest.mark.parametrize(
    ("path", "data", "model"),
    [("/needs/new", GOOD_NEED, NeedRow), ("/technologies/new", GOOD_TECHNOLOGY, TechnologyRow)],
)
def test_a_form_submission_is_audited(
    client: Any,
    service_engine: Any,
    admin_headers: dict[str, str],
    path: str,
    data: Any,
    model: Any,
) -> None:
    """A record made through a public form is audited like one made through the API: a
    ``create`` entry by the anonymous ``submitter``, its fields after, nothing before."""
    token = submit(client, path, data).rsplit("/", 1)[1]
    hashed = hashlib.sha256(token.encode()).hexdigest()
    with service_engine.sessions() as session:
        row = session.scalar(select(model).where(model.tracking_hash == hashed))
        assert row is not None
        ref, created_by = row.ref, row.created_by
    answer = client.get("/api/v1/admin/audit", params={"ref": ref}, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    (entry,) = answer.json()["items"]
    assert (entry["action"], entry["actor"], entry["before"]) == ("create", "submitter", None)
    assert entry["side"] == path.split("/")[1] and entry["ref"] == ref
    assert {"title", "description", "domains"} <= set(entry["fields"])
    assert entry["after"]["title"] == data["title"] and entry["after"]["id"] == ref
    assert token not in answer.text and hashed not in answer.text  # never in the trail
    assert created_by is None  # no broker made it


def test_unknown_tracking_token_is_404(client: Any) -> None:
    page = client.get("/track/not-a-real-token-0123456789abcdef?lang=en")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No submission belongs to this tracking link" in page.text
    assert "页面不存在" in client.get("/track/nope?lang=zh").text


def test_confirmation_without_submission_goes_back_to_form(client: Any) -> None:
    response = client.get("/needs/submitted", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/needs/new")


def test_chinese_need_submission(client: Any, service_engine: Any) -> None:
    need = {
        **GOOD_NEED,
        "title": "海上风电塔筒防腐涂层",
        "description": "我们的海上风电塔筒在浪溅区五年内就出现严重腐蚀，需要一种耐盐雾3000小时、"
        "可在现有产线涂装并能现场修补的防腐涂层体系。",
    }
    track_path = submit(client, "/needs/new", need, lang="zh")
    page = client.get(track_path)  # language remembered from the form
    assert "海上风电塔筒防腐涂层" in page.text
    assert "提交日期" in page.text
    with service_engine.sessions() as session:
        row = session.scalar(select(NeedRow).where(NeedRow.title == need["title"]))
        assert row is not None and row.language == "zh"


# -- the technology form -------------------------------------------------------------------
def test_technology_form_english_and_chinese(client: Any) -> None:
    page = client.get("/technologies/new?lang=en")
    assert page.status_code == 200
    for name in (
        "owner",
        "title",
        "description",
        "domains",
        "keywords",
        "trl",
        "region",
        "ip_status",
        "patents",
        "licensing",
        "confidential",
    ):
        assert f'<label for="f-{name}"' in page.text, name
    assert html.escape(TRL4["definition_en"], quote=False) in page.text
    assert "Granted patent(s)" in page.text
    zh = client.get("/technologies/new?lang=zh")
    for label in ("发布技术成果", "高校或科研院所", "专利状态", "希望的转化方式", "技术成熟度"):
        assert label in zh.text, label


def test_technology_errors(client: Any, service_engine: Any) -> None:
    before = count(service_engine, TechnologyRow)
    bad = {**GOOD_TECHNOLOGY, "region": "ZZ", "ip_status": "stolen", "domains": [], "trl": "0"}
    response = post_form(client, "/technologies/new?lang=en", bad)
    assert response.status_code == 422
    assert "Please choose one of the options." in field_block(response.text, "ip_status")
    assert "The value must be at least 1." in field_block(response.text, "trl")
    assert 'value="Zhejiang University"' in response.text
    assert "coating; corrosion；offshore" in response.text
    assert count(service_engine, TechnologyRow) == before

    region = post_form(client, "/technologies/new", {**GOOD_TECHNOLOGY, "region": "ZZ"})
    assert "Unknown region code" in field_block(region.text, "region")
    assert count(service_engine, TechnologyRow) == before


def test_technology_submission_and_tracking(client: Any, service_engine: Any) -> None:
    before = count(service_engine, TechnologyRow)
    track_path = submit(client, "/technologies/new", GOOD_TECHNOLOGY)
    token = track_path.rsplit("/", 1)[1]
    assert count(service_engine, TechnologyRow) == before + 1
    with service_engine.sessions() as session:
        row = session.scalar(
            select(TechnologyRow).where(
                TechnologyRow.tracking_hash == hashlib.sha256(token.encode()).hexdigest()
            )
        )
        assert row is not None and re.fullmatch(r"T-[0-9A-F]{8}", row.ref)
        assert row.keywords == ["coating", "corrosion", "offshore"]
        assert row.patents == ["CN114123456B", "EP3456789B1"]
        assert row.ip_status == "granted" and row.licensing == "non_exclusive_licence"
        needs = session.scalar(
            select(func.count(func.distinct(MatchRow.need_id))).where(
                MatchRow.technology_id == row.id
            )
        )
    page = client.get(track_path + "?lang=en")
    assert page.status_code == 200
    assert "Technology offer" in page.text
    assert GOOD_TECHNOLOGY["title"] in page.text
    if needs:
        assert 'id="status">Matched<' in page.text
        assert f"{needs} enterprise needs found." in page.text
    else:
        assert 'id="status">Received<' in page.text


@pytest.mark.parametrize("path", ["/needs/new", "/technologies/new"])
def test_oversized_body_is_refused(client: Any, path: str) -> None:
    token = csrf_of(client.get(path).text)
    response = client.post(path, data={"csrf_token": token, "description": "x" * 600_000})
    assert response.status_code == 413
