"""The ``matcher`` command: load data, keep the index healthy, match from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from matcher.cli.brokers import admin_app, broker_app, route
from matcher.cli.common import fail as _fail
from matcher.cli.common import open_engine as _engine
from matcher.cli.embed import embed
from matcher.cli.worker import worker
from matcher.domain import Match, Side
from matcher.ingest import detect_language
from matcher.phrases import LANGUAGES

app = typer.Typer(
    help="TechMatch: match technology supply to enterprise demand.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="Build, verify and inspect the FAISS indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(broker_app, name="broker")
app.add_typer(admin_app, name="admin")
app.command("route")(route)
app.command("embed")(embed)
app.command("worker")(worker)
ranker_app = typer.Typer(
    help="Train, inspect, promote and roll back the learned ranker.", no_args_is_help=True
)
app.add_typer(ranker_app, name="ranker")

COLLECTIONS = ("technologies", "needs")


def _print_matches(
    matches: list[Match], as_json: bool, target: str = "technologies", lang: str | None = None
) -> None:
    for m in matches:
        if lang:
            m.explanation = m.explained_in(lang)
    if as_json:
        typer.echo(json.dumps([m.as_dict() for m in matches], ensure_ascii=False, indent=2))
        return
    if not matches:
        typer.echo("  (no matches)")
    for m in matches:
        # Matches for a need carry both refs: show the side that was ranked.
        ref = m.technology_ref if target == Side.technologies else m.need_ref
        typer.echo(f"  {m.rank:>2}. [{m.score:.3f}] {ref}  {m.title}")
        typer.echo(f"      {m.explanation}")


@app.command("load-demo")
def load_demo() -> None:
    """Import the shipped demo data (technologies, needs, brokers) and build the indexes."""
    from matcher.engine import ImportRejectedError

    engine = _engine()
    try:
        results = engine.load_demo()
    except ImportRejectedError as exc:
        _fail(str(exc))
    for kind, result in results.items():
        typer.echo(f"{kind}: {result.created} new, {result.updated} updated")


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="technologies | needs | brokers")],
    file: Annotated[Path, typer.Argument(help="a .jsonl or .csv file", exists=False)],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the valid rows, report the others")
    ] = False,
) -> None:
    """Import records; any invalid row rejects the whole file unless --skip-invalid."""
    from matcher.engine import ImportRejectedError
    from matcher.ingest import MODELS, ImportFormatError

    if kind not in MODELS:
        _fail(f"unknown kind {kind!r}; use one of: {', '.join(MODELS)}")
    engine = _engine()
    try:
        result = engine.import_file(file, kind, skip_invalid=skip_invalid)
    except (ImportRejectedError, ImportFormatError) as exc:
        _fail(str(exc))
    typer.echo(f"{kind}: {result.created} new, {result.updated} updated")
    for error in result.skipped:
        typer.secho(f"  skipped {error}", fg=typer.colors.YELLOW, err=True)


def _which(collection: str | None) -> tuple[str, ...]:
    if collection is None:
        return COLLECTIONS
    if collection not in COLLECTIONS:
        _fail(f"unknown collection {collection!r}; use one of: {', '.join(COLLECTIONS)}")
    return (collection,)


@index_app.command("build")
def index_build(
    collection: Annotated[
        str | None, typer.Argument(help="technologies | needs (default both)")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="rebuild from scratch")] = False,
) -> None:
    """Bring the indexes in line with the database (repairs any drift found by verify)."""
    engine = _engine()
    if not engine.files.held:
        _fail(
            f"the indexes in {engine.settings.index_dir} are kept by a running process "
            f"(pid {engine.files.holder() or '?'}), in step from the change log; stop it first"
        )
    for name in _which(collection):
        report = engine.indexes[name].repair(full=full)
        action = (
            "rebuilt"
            if full or report.problem
            else (
                f"added {len(report.missing)}, re-embedded {len(report.stale)}, "
                f"removed {len(report.extra)}"
            )
        )
        typer.echo(f"{name}: {action}; {len(engine.indexes[name].index)} vectors")


@index_app.command("verify")
def index_verify(
    collection: Annotated[str | None, typer.Argument(help="technologies | needs")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the indexes against the database; exit 1 if any drift or corruption is found."""
    engine = _engine()
    reports = [engine.indexes[name].verify() for name in _which(collection)]
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2))
    else:
        for r in reports:
            status = "ok" if r.ok else "DRIFT"
            typer.echo(
                f"{r.collection}: {status} (database {r.db_count}, index {r.index_count}, "
                f"missing {len(r.missing)}, extra {len(r.extra)}, stale {len(r.stale)})"
            )
            if r.problem:
                typer.echo(f"  problem: {r.problem}")
        if not all(r.ok for r in reports):
            typer.echo("run `matcher index build` to repair")
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@index_app.command("stats")
def index_stats() -> None:
    """Show what is on disk for each index (kind, model, count, build time)."""
    engine = _engine()
    typer.echo(json.dumps([engine.indexes[n].stats() for n in COLLECTIONS], indent=2, default=str))


@app.command("match")
def match(
    need: Annotated[str | None, typer.Option("--need", help="need id or reference")] = None,
    technology: Annotated[
        str | None, typer.Option("--technology", help="technology id: find needs for it")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="free-text query")] = None,
    domain: Annotated[list[str] | None, typer.Option("--domain", help="domain code")] = None,
    min_trl: Annotated[int | None, typer.Option("--min-trl", min=1, max=9)] = None,
    max_trl: Annotated[int | None, typer.Option("--max-trl", min=1, max=9)] = None,
    region: Annotated[str | None, typer.Option("--region", help="home region ISO code")] = None,
    scope: Annotated[str, typer.Option("--scope", help="local|national|international")] = (
        "international"
    ),
    hard: Annotated[bool, typer.Option("--hard", help="TRL and region as hard filters")] = False,
    top: Annotated[int, typer.Option("--top", min=1, max=1000)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="language of explanations: en or zh (default: the query's)"),
    ] = None,
) -> None:
    """Rank technologies for a need or a text, or needs for a technology."""
    from matcher.engine import NotFoundError

    given = [x is not None for x in (need, technology, text)]
    if sum(given) != 1:
        _fail("give exactly one of --need, --technology or --text")
    if lang is not None and lang not in LANGUAGES:
        _fail(f"--lang: unsupported language {lang!r}; use one of {', '.join(LANGUAGES)}")
    engine = _engine()
    try:
        if need is not None:
            matches = engine.match_need(need, top=top)
        elif technology is not None:
            matches = engine.match_technology(technology, top=top)
        else:
            assert text is not None
            matches = engine.match_text(
                text,
                domains=domain or [],
                min_trl=min_trl,
                max_trl=max_trl,
                region=region,
                scope=scope,
                hard=hard,
                top=top,
                lang=lang or detect_language(text),
            )
    except (NotFoundError, ValueError) as exc:
        _fail(str(exc))
    _print_matches(matches, as_json, "needs" if technology is not None else "technologies", lang)


@app.command("demo")
def demo(
    top: Annotated[int, typer.Option("--top", min=1, max=50)] = 5,
    needs: Annotated[int, typer.Option("--needs", help="how many demo needs to show")] = 80,
) -> None:
    """The main job: load the demo data and print ranked, explained matches for its needs."""
    engine = _engine()
    engine.load_demo()
    intended = engine.demo_intended()
    hits = total = 0
    from matcher.store import repo

    with engine.sessions() as session:
        rows = list(repo.active_needs(session))[:needs]
    for row in rows:
        ref = row.ref
        matches = engine.match_need(row.id, top=max(top, 10))
        want = intended.get(ref, {})
        found = [m.technology_ref for m in matches[:10] if m.technology_ref in want]
        hits += bool(found)
        total += bool(want)
        typer.secho(f"\n{ref}  {row.title}  ({row.enterprise})", bold=True)
        _print_matches(matches[:top], as_json=False)
    if total:
        typer.echo(f"\nintended answer in the top 10 for {hits}/{total} demo needs")
    typer.echo(f"data directory: {engine.settings.home}")


# -- the learned ranker -------------------------------------------------------------------------
@ranker_app.command("train")
def ranker_train(
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="labelled data in the BEIR layout")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="qrels split (qrels/<split>.tsv)")] = "dev",
    from_feedback: Annotated[
        bool, typer.Option("--from-feedback", help="brokers' feedback and deal outcomes")
    ] = False,
    folds: Annotated[int, typer.Option("--folds", min=2, help="grouped CV folds")] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train a ranker, choosing model and settings by grouped cross-validation; saved, not used
    until `matcher ranker promote`."""
    from matcher.rank.learned import lifecycle as learn
    from matcher.rank.learned.registry import RankerError

    if (dataset is None) == (not from_feedback):
        _fail("give exactly one of --dataset DIR or --from-feedback")
    engine = _engine()
    try:
        if dataset is not None:
            trained = learn.train_from_dataset(engine, dataset, split, folds=folds)
        else:
            trained = learn.train_from_feedback(engine, folds=folds)
    except (RankerError, FileNotFoundError) as exc:
        _fail(str(exc))
    cv = trained.meta["cross_validation"]
    if as_json:
        typer.echo(json.dumps({"id": trained.model_id, "cross_validation": cv}, indent=2))
        return
    typer.echo(f"saved {trained.model_id}: {cv['best']} (not in use until promoted)")
    typer.echo(f"grouped {cv['folds']}-fold CV over {cv['queries']} queries, nDCG@10:")
    typer.echo(f"  {'fixed weights':<58} {cv['fixed_ndcg@10']:.4f}")
    for name, value in cv["learned_ndcg@10"].items():
        mark = " <- chosen" if name == cv["best"] else ""
        typer.echo(f"  {name:<58} {value:.4f}{mark}")


@ranker_app.command("status")
def ranker_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What ranks now, how much feedback there is, and the saved models."""
    from matcher.rank.learned import lifecycle as learn

    report = learn.status(_engine())
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    typer.echo(f"ranking: {report['ranking']} (MATCHER_RANKER={report['setting']})")
    typer.echo(
        f"feedback: {report['judged_matches']} judged matches "
        f"({report['held_back_matches']} held back to judge promotions); "
        f"minimum {report['min_feedback']}"
    )
    if not report["models"]:
        typer.echo("no trained rankers")
    for m in report["models"]:
        cv = m.get("cross_validation", {})
        held = m.get("held_back_evaluation")
        line = (
            f"  {'*' if m['in_use'] else ' '} {m['id']}  {m['created']}  {m['source']}  "
            f"{cv.get('best', m['kind'])}  CV nDCG@10 {cv.get('best_ndcg@10', 0):.4f} "
            f"(fixed {cv.get('fixed_ndcg@10', 0):.4f})"
        )
        if held:
            line += (
                f"; held back {held['candidate_ndcg@10']:.4f} vs {held['against']} "
                f"{held['current_ndcg@10']:.4f}"
            )
        typer.echo(line)


@ranker_app.command("promote")
def ranker_promote(
    model_id: Annotated[str | None, typer.Argument(help="model id (default: the newest)")] = None,
) -> None:
    """Put a model in use if it beats the ranking in use on held-back feedback (exit 1 if not)."""
    from matcher.rank.learned import lifecycle as learn
    from matcher.rank.learned.registry import RankerError

    try:
        verdict = learn.promote(_engine(), model_id)
    except RankerError as exc:
        _fail(str(exc))
    typer.echo(verdict.message)
    if not verdict.promoted:
        raise typer.Exit(1)


@ranker_app.command("rollback")
def ranker_rollback() -> None:
    """Withdraw the model in use: the one promoted before it, or the fixed weights, returns."""
    from matcher.rank.learned import lifecycle as learn
    from matcher.rank.learned.registry import RankerError

    try:
        now = learn.rollback(_engine())
    except RankerError as exc:
        _fail(str(exc))
    typer.echo(f"rolled back; now ranking with {now or 'the fixed weights'}")


def main() -> None:  # pragma: no cover
    """Entry point for ``python -m matcher``."""
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
