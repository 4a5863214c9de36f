"""Import validation: line-specific messages, nothing written on bad rows, CSV and JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from matcher.config import REPO_DATA_DIR
from matcher.engine import Engine, ImportRejectedError
from matcher.errors import FieldError, RecordInvalidError
from matcher.ingest import ImportFormatError, detect_language, read_file, validate_record
from matcher.store.models import TechnologyRow
from matcher.taxonomy import load_taxonomy
from tests.catalogue import NEEDS, TECHNOLOGIES


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    return path


def _count(engine: Engine) -> int:
    with engine.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(TechnologyRow)) or 0)


def test_bad_rows_are_reported_by_line_and_nothing_is_written(
    engine: Engine, tmp_path: Path
) -> None:
    bad_trl = dict(TECHNOLOGIES[1], id="T-9", trl=12)
    bad_domain = dict(TECHNOLOGIES[2], id="T-10", domains=["99.99"])
    missing = {k: v for k, v in TECHNOLOGIES[3].items() if k != "title"}
    path = _write_jsonl(
        tmp_path / "t.jsonl",
        [
            TECHNOLOGIES[0],
            bad_trl,
            bad_domain,
            "{not json",
            missing,
            TECHNOLOGIES[0],
            dict(TECHNOLOGIES[4], region="XX-ZZ", colour="blue"),
        ],
    )
    with pytest.raises(ImportRejectedError) as caught:
        engine.import_file(path, "technologies")
    errors = {e.line: e.message for e in caught.value.errors}
    assert set(errors) == {2, 3, 4, 5, 6, 7}
    assert "trl" in errors[2] and "less than or equal to 9" in errors[2]
    assert "domains.0: unknown domain code 99.99" in errors[3]
    assert "not valid JSON" in errors[4]
    assert "title: required field is missing" in errors[5]
    assert "repeats line 1" in errors[6]
    assert "colour: unknown field" in errors[7]
    assert "nothing was imported" in str(caught.value)
    assert _count(engine) == 0
    assert len(engine.indexes["technologies"].index) == 0

    result = engine.import_file(path, "technologies", skip_invalid=True)
    assert (result.created, len(result.skipped)) == (1, 6)
    assert _count(engine) == 1


def test_unknown_region_is_rejected(engine: Engine, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "t.jsonl", [dict(TECHNOLOGIES[4], region="XX-ZZ")])
    with pytest.raises(ImportRejectedError, match="line 1: region: unknown region code 'XX-ZZ'"):
        engine.import_file(path, "technologies")


def test_csv_import_with_list_cells_and_cpc_inference(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "id,title,description,owner,trl,region,cpc,keywords,confidential\n"
        "T-7,Lithium metal anode protection layer,A thin artificial interphase layer that "
        "suppresses dendrites on lithium metal anodes in pouch cells.,Tsinghua University,4,"
        "CN-BJ,H01M 4/134,lithium;anode,false\n",
        encoding="utf-8",
    )
    result = sqlite_engine.import_file(path, "technologies")
    assert result.created == 1
    with sqlite_engine.sessions() as session:
        row = session.scalar(select(TechnologyRow))
        assert row is not None
        assert row.keywords == ["lithium", "anode"]
        assert row.domains and all(d.startswith("06") for d in row.domains)
        assert row.confidential is False and row.language == "en"
    assert 1 in sqlite_engine.indexes["technologies"].index


def test_format_errors(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="unsupported file type .xml"):
        read_file(tmp_path / "x.xml", "technologies", sqlite_engine.taxonomy)
    with pytest.raises(ImportFormatError, match="file not found"):
        read_file(tmp_path / "none.jsonl", "technologies", sqlite_engine.taxonomy)
    with pytest.raises(ImportFormatError, match="unknown record kind"):
        read_file(tmp_path / "none.jsonl", "widgets", sqlite_engine.taxonomy)


def test_need_window_is_checked(sqlite_engine: Engine, tmp_path: Path) -> None:
    from tests.catalogue import NEEDS

    path = _write_jsonl(tmp_path / "n.jsonl", [dict(NEEDS[0], trl_min=7, trl_max=5)])
    with pytest.raises(
        ImportRejectedError, match=r"line 1: .*trl_max \(5\) is below trl_min \(7\)"
    ):
        sqlite_engine.import_file(path, "needs")


def test_detect_language() -> None:
    assert detect_language("A graphene coating for steel") == "en"
    assert detect_language("用于海上钢结构的石墨烯防腐涂层") == "zh"
    # Chinese writing keeps Latin acronyms, units and standards: still Chinese.
    assert detect_language("1200 V SiC MOSFET 在 HTGB 试验中阈值电压漂移超过 AEC-Q101 要求") == "zh"
    # Bilingual text (a Chinese need with an English gloss) counts as Chinese.
    assert detect_language("海上风电塔筒防腐涂层 (anti-corrosion coating for towers)") == "zh"
    # A Chinese company name inside English prose does not make it Chinese.
    text = "Our plant in Suzhou (苏州) needs a vision system to inspect solder joints on PCBs."
    assert detect_language(text) == "en"
    assert detect_language("12345 !!") == "en"


def test_field_errors_keep_pydantic_structure_and_add_the_engine_own() -> None:
    """Each problem is a FieldError: pydantic's type, location and context, never re-parsed
    from its message; unknown codes are typed too, and reported alongside pydantic's."""
    taxonomy = load_taxonomy(REPO_DATA_DIR)
    raw = dict(TECHNOLOGIES[0], id="T-1", trl=12, title="  ", domains=["04.06", "99.99"])
    raw.pop("owner")
    raw["region"] = "XX-ZZ"
    with pytest.raises(RecordInvalidError) as caught:
        validate_record("technologies", raw, taxonomy)
    assert isinstance(caught.value, ValueError)  # callers catching ValueError keep working
    by_loc = {e.loc: e for e in caught.value.errors}
    assert by_loc[("trl",)].type == "less_than_equal" and by_loc[("trl",)].ctx == {"le": 9}
    assert by_loc[("title",)] == FieldError(  # blank once stripped: the plain words say so
        "string_too_short", ("title",), "must not be empty", {"min_length": 1}
    )
    assert by_loc[("owner",)].type == "missing"
    assert by_loc[("owner",)].msg == "required field is missing"
    assert by_loc[("domains", 1)].type == "unknown_domain"
    assert by_loc[("domains", 1)].ctx == {"code": "99.99"}
    assert by_loc[("region",)].type == "unknown_region"
    assert by_loc[("region",)].ctx == {"code": "XX-ZZ"}
    assert by_loc[("trl",)].as_dict() == {
        "type": "less_than_equal",
        "loc": ["trl"],
        "msg": "Input should be less than or equal to 9",
        "ctx": {"le": 9},
    }

    with pytest.raises(RecordInvalidError) as window:
        validate_record("needs", dict(NEEDS[0], trl_min=7, trl_max=5), taxonomy)
    (error,) = window.value.errors
    # a check of the whole record sits on the field that fixes it, with its values
    assert (error.type, error.loc, error.ctx) == ("trl_window", ("trl_max",), {"min": 7, "max": 5})
