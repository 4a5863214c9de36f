"""Catalogue lists in the database (SQLite and PostgreSQL): filters, pages, confidentiality.

No model is loaded: rows are written straight through the repository. The filters are also
compared with the plain-Python rule they replace (every active row read and filtered in memory).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from matcher.config import REPO_DATA_DIR
from matcher.domain import BrokerIn, BrokerLevel, NeedIn, Side, TechnologyIn
from matcher.store import repo
from matcher.store.db import make_engine, migrate, session_factory, transaction
from matcher.store.models import RoutedMatchRow
from matcher.taxonomy import Taxonomy, load_taxonomy

ADMIN = repo.Viewer(admin=True)
PUBLIC = repo.Viewer()
EVERYTHING = repo.CatalogFilter()


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy(REPO_DATA_DIR)


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty store."""
    engine = make_engine(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def technology(ref: str, **overrides: Any) -> TechnologyIn:
    values: dict[str, Any] = {
        "id": ref,
        "title": f"Technology {ref} for the tests",
        "description": "A long enough description of a technology used by the list tests.",
        "owner": "Test University",
        "domains": ["04.06"],
        "trl": 5,
        "region": "CN-ZJ",
    }
    values.update(overrides)
    return TechnologyIn.model_validate(values)


def need(ref: str, **overrides: Any) -> NeedIn:
    values: dict[str, Any] = {
        "id": ref,
        "enterprise": "Test Enterprise Ltd.",
        "title": f"Need {ref} for the tests",
        "description": "A long enough description of a need used by the list tests here.",
        "domains": ["04.06"],
        "trl_min": 4,
        "trl_max": 6,
        "region_scope": "national",
        "home_region": "CN-ZJ",
    }
    values.update(overrides)
    return NeedIn.model_validate(values)


def store(factory: sessionmaker[Session], *records: TechnologyIn | NeedIn) -> dict[str, int]:
    """Write records; their ids by reference."""
    ids: dict[str, int] = {}
    with transaction(factory) as session:
        for record in records:
            if isinstance(record, TechnologyIn):
                row: Any
                row, _ = repo.upsert_technology(
                    session, record=record, language="en", content_hash=f"h-{record.id}"
                )
            else:
                row, _ = repo.upsert_need(
                    session, record=record, language="en", content_hash=f"h-{record.id}"
                )
            session.flush()
            ids[record.id] = row.id
    return ids


def listed(
    factory: sessionmaker[Session],
    side: Side,
    where: repo.CatalogFilter = EVERYTHING,
    *,
    viewer: repo.Viewer = ADMIN,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[str], int]:
    """References on one page, and the total."""
    with factory() as session:
        page = repo.list_records(
            session, side=side, viewer=viewer, where=where, limit=limit, offset=offset
        )
        return [row.ref for row in page.rows], page.total


def test_resolving_codes(tax: Taxonomy) -> None:
    under = repo.domain_codes_under(tax, "04")
    assert "04" in under and "04.06" in under and "01.01" not in under
    assert repo.domain_codes_under(tax, "04.06") == {"04.06"}
    assert repo.region_codes_in(tax, "YRD") == {"CN-SH", "CN-JS", "CN-ZJ", "CN-AH"}
    cn = repo.region_codes_in(tax, "CN")
    assert {"CN", "CN-ZJ", "CN-BJ"} <= cn and not any(c.startswith("US") for c in cn)
    eu = repo.region_codes_in(tax, "EU")
    assert {"DE", "FR"} <= eu and "GB" not in eu and "CN" not in eu


def test_domain_filter_covers_sub_fields(factory: sessionmaker[Session], tax: Taxonomy) -> None:
    store(
        factory,
        technology("T-COAT", domains=["04.06"]),
        technology("T-MAT", domains=["04"]),
        technology("T-SOFT", domains=["01.01", "04.02"]),
        technology("T-CHIP", domains=["01.02"]),
        need("N-COAT", domains=["04.06"]),
        need("N-SOFT", domains=["01.01"]),
    )

    def by_domain(side: Side, code: str) -> list[str]:
        return listed(factory, side, repo.CatalogFilter.resolve(tax, domain=code))[0]

    assert by_domain(Side.technologies, "04") == ["T-COAT", "T-MAT", "T-SOFT"]
    # The quotes keep a parent code from matching its children's text (and the reverse).
    assert by_domain(Side.technologies, "04.06") == ["T-COAT"]
    assert by_domain(Side.technologies, "01") == ["T-SOFT", "T-CHIP"]
    assert by_domain(Side.technologies, "01.02") == ["T-CHIP"]
    assert by_domain(Side.technologies, "08") == []
    assert by_domain(Side.needs, "04") == ["N-COAT"]
    assert by_domain(Side.needs, "01") == ["N-SOFT"]


def test_region_filter_covers_sub_regions_and_groupings(
    factory: sessionmaker[Session], tax: Taxonomy
) -> None:
    store(
        factory,
        technology("T-ZJ", region="CN-ZJ"),
        technology("T-BJ", region="CN-BJ"),
        technology("T-CN", region="CN"),
        technology("T-DE", region="DE"),
        technology("T-CA", region="US-CA"),
        need("N-SH", home_region="CN-SH"),
        need("N-FR", home_region="FR"),
    )

    def by_region(side: Side, code: str) -> list[str]:
        return listed(factory, side, repo.CatalogFilter.resolve(tax, region=code))[0]

    assert by_region(Side.technologies, "CN") == ["T-ZJ", "T-BJ", "T-CN"]
    assert by_region(Side.technologies, "CN-ZJ") == ["T-ZJ"]
    assert by_region(Side.technologies, "YRD") == ["T-ZJ"]
    assert by_region(Side.technologies, "EU") == ["T-DE"]
    assert by_region(Side.technologies, "USWEST") == ["T-CA"]
    assert by_region(Side.technologies, "US") == ["T-CA"]
    assert by_region(Side.needs, "YRD") == ["N-SH"]
    assert by_region(Side.needs, "EU") == ["N-FR"]
    assert by_region(Side.needs, "US") == []


def test_readiness_text_and_archived(factory: sessionmaker[Session], tax: Taxonomy) -> None:
    store(
        factory,
        technology("T-5", trl=5, title="Graphene coating for ship hulls"),
        technology("T-8", trl=8, description="A 100% biocide_free coating " + "x" * 30),
        need("N-LOW", trl_min=2, trl_max=4),
        need("N-OPEN", trl_min=7, trl_max=None),
    )
    window = repo.CatalogFilter.resolve(tax, trl_min=6, trl_max=9)
    assert listed(factory, Side.technologies, window)[0] == ["T-8"]
    assert listed(factory, Side.needs, window)[0] == ["N-OPEN"]  # windows that overlap 6–9
    assert listed(factory, Side.needs, repo.CatalogFilter(trl_max=3))[0] == ["N-LOW"]
    assert listed(factory, Side.technologies, repo.CatalogFilter(text="GRAPHENE"))[0] == ["T-5"]
    # LIKE wildcards in the text are taken literally.
    assert listed(factory, Side.technologies, repo.CatalogFilter(text="100%"))[0] == ["T-8"]
    assert listed(factory, Side.technologies, repo.CatalogFilter(text="e_f"))[0] == ["T-8"]
    assert listed(factory, Side.technologies, repo.CatalogFilter(text="0_%"))[0] == []
    with transaction(factory) as session:
        row = repo.find_record(session, side=Side.technologies, key="T-5")
        assert row is not None
        row.status = repo.ARCHIVED
    assert listed(factory, Side.technologies)[0] == ["T-8"]


def test_pages_and_total(factory: sessionmaker[Session], tax: Taxonomy) -> None:
    refs = [f"T-{i:02d}" for i in range(23)]
    store(
        factory,
        *(technology(ref, domains=["04.06" if i % 2 else "01.01"]) for i, ref in enumerate(refs)),
    )
    assert listed(factory, Side.technologies, limit=5, offset=10) == (refs[10:15], 23)
    assert listed(factory, Side.technologies, limit=10, offset=20) == (refs[20:], 23)
    assert listed(factory, Side.technologies, limit=10, offset=40) == ([], 23)
    odd = repo.CatalogFilter.resolve(tax, domain="04")
    assert listed(factory, Side.technologies, odd, limit=3, offset=2) == (refs[5:11:2], 11)


def test_confidential_records_are_seen_by_admins_and_their_brokers(
    factory: sessionmaker[Session],
) -> None:
    ids = store(
        factory,
        technology("T-OPEN"),
        technology("T-SECRET", confidential=True),
        technology("T-HIDDEN", confidential=True),
        need("N-OPEN"),
        need("N-SECRET", confidential=True),
    )
    with transaction(factory) as session:
        brokers = []
        for ref in ("B-IN", "B-OUT"):
            broker, _ = repo.upsert_broker(
                session,
                record=BrokerIn(
                    id=ref,
                    name=f"Broker {ref}",
                    certificate_no=f"C-{ref}",
                    level=BrokerLevel.advanced,
                    valid_until=date(2099, 1, 1),
                ),
            )
            brokers.append(broker)
        session.flush()
        insider, outsider = (repo.Viewer(broker_id=b.id) for b in brokers)
        session.add(
            RoutedMatchRow(
                need_id=ids["N-SECRET"],
                technology_id=ids["T-SECRET"],
                broker_id=brokers[0].id,
                score=0.9,
                components={},
                explanation="test",
                rank=1,
                reason="test",
            )
        )
    tech = Side.technologies
    assert listed(factory, tech, viewer=ADMIN) == (["T-OPEN", "T-SECRET", "T-HIDDEN"], 3)
    assert listed(factory, tech, viewer=insider) == (["T-OPEN", "T-SECRET"], 2)
    assert listed(factory, tech, viewer=outsider) == (["T-OPEN"], 1)
    assert listed(factory, tech, viewer=PUBLIC) == (["T-OPEN"], 1)
    assert listed(factory, Side.needs, viewer=insider)[0] == ["N-OPEN", "N-SECRET"]
    assert listed(factory, Side.needs, viewer=outsider)[0] == ["N-OPEN"]
    with factory() as session:
        assert repo.hidden_count(session, side=tech, viewer=ADMIN) == 0
        assert repo.hidden_count(session, side=tech, viewer=insider) == 1
        assert repo.hidden_count(session, side=tech, viewer=outsider) == 2
        assert repo.hidden_count(session, side=Side.needs, viewer=PUBLIC) == 1
        every = list(ids.values())
        assert repo.visible_ids(session, side=tech, ids=every, viewer=insider) == {
            ids["T-OPEN"],
            ids["T-SECRET"],
        }
        assert repo.visible_ids(session, side=tech, ids=[], viewer=insider) == set()
        secret = repo.find_record(session, side=tech, key="T-SECRET")
        assert secret is not None
        assert repo.is_visible(session, row=secret, viewer=insider)
        assert not repo.is_visible(session, row=secret, viewer=outsider)
        assert not repo.is_visible(session, row=secret, viewer=PUBLIC)
        assert repo.is_visible(session, row=secret, viewer=ADMIN)


def test_lookups_by_reference(factory: sessionmaker[Session]) -> None:
    ids = store(factory, technology("T-A"), technology("T-B"), need("N-A"))
    with factory() as session:
        assert repo.ref_taken(session, side=Side.technologies, ref="T-A")
        assert not repo.ref_taken(session, side=Side.needs, ref="T-A")
        row = repo.record_by_ref(session, side=Side.needs, ref="N-A")
        assert row is not None and row.id == ids["N-A"]
        assert repo.find_record(session, side=Side.technologies, key=str(ids["T-B"])) is not None
        stored = repo.stored_by_refs(session, side=Side.technologies, refs=["T-A", "T-B", "T-X"])
        assert {ref: (s.id, s.content_hash) for ref, s in stored.items()} == {
            "T-A": (ids["T-A"], "h-T-A"),
            "T-B": (ids["T-B"], "h-T-B"),
        }
        assert repo.stored_by_refs(session, side=Side.technologies, refs=[]) == {}


def test_sql_filters_agree_with_the_python_rule(
    factory: sessionmaker[Session], tax: Taxonomy
) -> None:
    """The database keeps exactly what reading every row and filtering in Python kept."""
    rng = random.Random(11)
    domain_codes = sorted(tax.domains)
    region_codes = sorted(tax.regions)
    records = [
        technology(
            f"T-{i:03d}",
            domains=rng.sample(domain_codes, rng.randint(1, 3)),
            region=rng.choice(region_codes),
        )
        for i in range(120)
    ]
    store(factory, *records)
    areas = ["CN", "US", "DE", "CN-ZJ", "EU", "YRD", "G7", "BRICS", "ASEAN", "USWEST"]
    for area in areas:
        expected = [r.id for r in records if tax.region_in(r.region, area)]
        where = repo.CatalogFilter.resolve(tax, region=area)
        assert listed(factory, Side.technologies, where, limit=200)[0] == expected, area
    for code in ["01", "04", "04.06", "05", "08.08", "02.01"]:
        expected = [r.id for r in records if any(code in tax.ancestors(d) for d in r.domains)]
        where = repo.CatalogFilter.resolve(tax, domain=code)
        assert listed(factory, Side.technologies, where, limit=200) == (expected, len(expected))
