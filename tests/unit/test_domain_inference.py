"""Domain codes inferred from text: the decision rules (pure), the label channel over a fake
space, and the engine's writes with a fake encoder (flag, confidence, codes a person sets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from matcher.config import REPO_DATA_DIR
from matcher.domain import NeedIn, Side
from matcher.engine import Engine
from matcher.errors import RecordInvalidError
from matcher.infer import (
    CodeTree,
    InferenceSettings,
    LabelSpace,
    Neighbour,
    combine,
    descriptions,
    neighbour_vote,
    note_inferred,
    person_domains,
)
from matcher.ingest import validate_record
from matcher.store import repo
from matcher.store.models import NeedRow, TechnologyRow
from matcher.taxonomy import load_taxonomy
from tests.unit.fakes import FakeEncoder, fake_settings, need, technologies

TAX = load_taxonomy(REPO_DATA_DIR)
TREE = CodeTree.of(TAX)
SETTINGS = InferenceSettings()


def label_scores(**scores: float) -> np.ndarray:
    """Label scores over the sub-fields: the named ones (``_04_06=0.9``), the rest 0."""
    out = np.zeros(len(TREE.subfields))
    for name, value in scores.items():
        code = name.lstrip("_").replace("_", ".")
        out[[TREE.codes[i] for i in TREE.subfields].index(code)] = value
    return out


# -- the decision --------------------------------------------------------------------------
def test_the_field_is_decided_over_all_its_sub_fields_then_the_sub_field_within_it() -> None:
    # 06.03 is the likeliest single sub-field, but field 04's three sub-fields together weigh more
    scores = label_scores(_06_03=0.30, _04_06=0.29, _04_07=0.29, _04_01=0.29)
    inference = combine(scores, [], TREE, SETTINGS)
    assert inference.field.code == "04"
    assert inference.subfield.code == "04.01"  # a tie within the field: taxonomy order
    assert inference.ranked[0].code == "06.03"  # the ranking itself is by sub-field alone
    assert inference.codes == ["04.01"]
    assert inference.confidence == inference.subfield.confidence
    assert 0 < inference.subfield.confidence < inference.field.confidence <= 1
    assert inference.fields[0] == inference.field


def test_labels_alone_decide_in_an_empty_catalogue() -> None:
    inference = combine(label_scores(_07_01=0.6), [], TREE, SETTINGS)
    assert (inference.field.code, inference.subfield.code) == ("07", "07.01")
    assert abs(sum(g.confidence for g in inference.ranked) - 1.0) < 1e-3


def test_neighbours_vote_by_closeness_and_split_their_codes() -> None:
    neighbours = [
        Neighbour(0.90, ("02.05",)),
        Neighbour(0.88, ("02.05", "01.09")),
        Neighbour(0.50, ("08.03",)),  # far from the nearest: its vote all but vanishes
        Neighbour(0.89, ("99.99",)),  # an unknown code does not vote
    ]
    votes, voters = neighbour_vote(neighbours, TREE, SETTINGS)
    assert voters == 3
    by_code = dict(zip(TREE.codes, votes, strict=True))
    assert by_code["02.05"] > by_code["01.09"] > by_code["08.03"] > 0
    assert abs(votes.sum() - 1.0) < 1e-9


def test_a_field_code_votes_for_its_field_and_more_neighbours_weigh_more() -> None:
    labels = label_scores(_01_01=0.5)
    few = combine(labels, [Neighbour(0.8, ("03",))], TREE, SETTINGS)
    many = combine(labels, [Neighbour(0.8, ("03",))] * SETTINGS.neighbours, TREE, SETTINGS)
    assert few.field.code == "01"  # one voter of 20 moves little
    assert many.field.code == "03"  # a full neighbourhood outweighs the labels
    assert many.subfield.code in {"03.01", "03.02"}


def test_the_same_input_gives_the_same_answer() -> None:
    labels = np.random.default_rng(7).random(len(TREE.subfields))
    neighbours = [Neighbour(0.7, ("05.03",)), Neighbour(0.7, ("01.01",))]
    first = combine(labels, neighbours, TREE, SETTINGS)
    assert all(combine(labels, neighbours, TREE, SETTINGS) == first for _ in range(3))


# -- the label channel ---------------------------------------------------------------------
def test_every_sub_field_is_described_in_both_languages() -> None:
    for i in TREE.subfields:
        code = TREE.codes[i]
        english, chinese = descriptions(TAX, code, ["en"]), descriptions(TAX, code, ["zh"])
        assert len(english) >= 4 and len(chinese) == len(english), code
        assert english[0] == TAX.domains[code].name_en


def test_a_text_scores_highest_on_the_sub_field_whose_words_it_uses() -> None:
    encoder = FakeEncoder()
    space = LabelSpace(TAX, encoder.encode, ["en"], temperature=SETTINGS.item_temperature)
    text = "wastewater treatment plant removing nitrogen from municipal sewage and sludge"
    scores = space.scores(encoder.encode([text]))
    assert scores.shape == (1, len(TREE.subfields))
    inference = combine(scores[0], [], TREE, SETTINGS)
    assert inference.subfield.code == "07.01"


# -- what a reader is told -------------------------------------------------------------------
def test_explanations_say_which_side_s_field_was_inferred() -> None:
    inferred = type("Row", (), {"domains_inferred": True, "domain_confidence": 0.731})()
    person = type("Row", (), {"domains_inferred": False, "domain_confidence": None})()
    explained = {"en": "same field: x", "zh": "同一领域：x"}
    out = note_inferred(explained, inferred, person, Side.technologies)
    assert out["en"] == "same field: x; need's field inferred, confidence 0.73"
    assert out["zh"] == "同一领域：x；需求领域为推断，置信度 0.73"
    both = note_inferred(explained, person, inferred, Side.needs)
    assert both["en"].endswith("need's field inferred, confidence 0.73")
    assert note_inferred(explained, person, person, Side.needs) == explained


def test_inferred_codes_are_not_carried_into_an_update() -> None:
    assert person_domains(type("Row", (), {"domains": ["04.06"], "domains_inferred": True})()) == []
    assert person_domains(type("Row", (), {"domains": ["04.06"], "domains_inferred": False})()) == [
        "04.06"
    ]


# -- validation ----------------------------------------------------------------------------
def test_records_without_codes_and_with_short_titles_are_valid() -> None:
    fields = need("N-S").model_dump(mode="json")
    record = validate_record("needs", {**fields, "domains": [], "title": " SBIR "}, TAX)
    assert isinstance(record, NeedIn) and record.domains == [] and record.title == "SBIR"
    assert validate_record("needs", {**fields, "title": "锂电"}, TAX).title == "锂电"  # type: ignore[attr-defined]
    with pytest.raises(RecordInvalidError) as blank:
        validate_record("needs", {**fields, "title": "   "}, TAX)
    assert [(e.loc, e.msg) for e in blank.value.errors] == [(("title",), "must not be empty")]
    with pytest.raises(RecordInvalidError) as unknown:
        validate_record("needs", {**fields, "domains": ["99.99"]}, TAX)
    assert "unknown domain code 99.99" in str(unknown.value)


# -- the engine's writes, with a fake encoder ----------------------------------------------------
@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(fake_settings(tmp_path / "home"), encoder=FakeEncoder())
    eng.save_records("technologies", technologies())  # coded by a person: 01.07
    yield eng
    eng.close()


def stored(engine: Engine, model: type, ref: str) -> tuple[list[str], bool, float | None]:
    with engine.sessions() as session:
        row = repo.get_by_ref_or_id(session, model, ref)
        assert row is not None
        return list(row.domains), row.domains_inferred, row.domain_confidence


def test_a_record_saved_without_codes_gets_them_inferred_and_flagged(engine: Engine) -> None:
    engine.save_records("needs", [need("N-X", domains=[])])
    codes, inferred, confidence = stored(engine, NeedRow, "N-X")
    assert len(codes) == 1 and codes[0] in TAX.domains and TAX.domains[codes[0]].parent
    assert inferred and confidence is not None and 0 < confidence <= 1
    # the same text against the same catalogue: the same codes
    again = engine.catalog.inferrer.infer([repo.need_text(need("N-X"))], ["en"])
    assert again[0].codes == codes
    # a person sets codes: the flag and the confidence go
    engine.save_records("needs", [need("N-X", domains=["01.07"])])
    assert stored(engine, NeedRow, "N-X") == (["01.07"], False, None)
    # and saved without codes again, they are inferred again
    engine.save_records("needs", [need("N-X", domains=[])])
    assert stored(engine, NeedRow, "N-X")[1] is True


def test_only_codes_a_person_set_teach_and_a_record_never_teaches_itself(engine: Engine) -> None:
    text = repo.need_text(need("N-Y"))
    before = engine.catalog.inferrer.infer([text], ["en"])[0]
    engine.save_records("needs", [need(f"N-I{i}", domains=[]) for i in range(3)])
    after = engine.catalog.inferrer.infer([text], ["en"])[0]
    assert after == before  # inferred records do not vote
    # the three technologies (01.07) vote; left out as the record itself, T-1 does not
    with_all = engine.catalog.inferrer.infer([text], ["en"])[0]
    without = engine.catalog.inferrer.infer([text], ["en"], own=[(Side.technologies, "T-1")])[0]
    probability = {g.code: g.confidence for g in with_all.ranked}
    assert probability["01.07"] > {g.code: g.confidence for g in without.ranked}["01.07"]


def test_an_import_file_without_codes_is_accepted(engine: Engine, tmp_path: Path) -> None:
    rows = [
        {**technologies()[0].model_dump(mode="json"), "id": "T-CSV", "title": "SBIR"},
    ]
    rows[0].pop("domains")
    path = tmp_path / "techs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = engine.import_file(path, "technologies")
    assert result.created == 1
    codes, inferred, confidence = stored(engine, TechnologyRow, "T-CSV")
    assert codes and inferred and confidence is not None


def test_a_catalogue_of_inferred_records_still_matches(engine: Engine) -> None:
    engine.save_records("needs", [need("N-M", domains=[])])
    matches = engine.match_need("N-M", top=2)
    assert matches and "need's field inferred, confidence" in matches[0].explanation
    assert "需求领域为推断" in matches[0].explanations["zh"]
