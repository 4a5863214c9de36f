"""``python -m benchmarks quality|learn|speed|bilingual`` — offline evaluation of TechMatch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.cache import OUT


def _quality(args: argparse.Namespace) -> int:
    from benchmarks.quality import plot, run_quality, table, write_json

    if not (args.dataset / "corpus.jsonl").exists():
        print(f"error: {args.dataset} is not a BEIR data set (no corpus.jsonl)", file=sys.stderr)
        return 2
    try:
        report = run_quality(
            args.dataset,
            args.split,
            max_queries=args.max_queries,
            with_txtai=not args.no_txtai,
            with_ablations=not args.no_ablations,
            progress=not args.quiet,
            model=args.model,
            ranker=args.ranker,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(report))
    if args.json:
        write_json(report, args.json)
        print(f"\nJSON: {args.json}")
    if not args.no_plots:
        for path in plot(report, args.plots):
            print(f"plot: {path}")
    return 0


def _bilingual(args: argparse.Namespace) -> int:
    import json

    from benchmarks.bilingual import run_bilingual, table, timings_table

    systems = [s for s in args.systems.split(",") if s]
    report = run_bilingual(systems, max_needs=args.max_needs, distractors=args.distractors)
    print(table(report, "engine"))
    print()
    print(table(report, "dense"))
    print()
    print(timings_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"\nJSON: {args.json}")
    return 0


def _learn(args: argparse.Namespace) -> int:
    import json

    from benchmarks.feedback_sim import plot as plot_simulation
    from benchmarks.learn import run_learn, table

    parts = tuple(p.strip() for p in args.part.split(",") if p.strip())
    unknown = set(parts) - {"cv", "transfer", "simulation"}
    if unknown:
        print(f"error: unknown part(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    simulation = {
        "n_needs": args.sim_needs,
        "n_awards": args.sim_awards,
        "eval_needs": args.sim_eval_needs,
        "repeats": args.sim_repeats,
        "checkpoints": tuple(int(x) for x in args.sim_checkpoints.split(",")),
    }
    report = run_learn(
        [Path(d) for d in args.datasets.split(",")],
        split=args.split,
        parts=parts,
        folds=args.folds,
        inner_folds=args.inner_folds,
        max_queries=args.max_queries,
        simulation=simulation,
    )
    print(table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"\nJSON: {args.json}")
    if "simulation" in report and not args.no_plots:
        path = args.plots / "learn-feedback-simulation.png"
        plot_simulation(report["simulation"], path)
        print(f"plot: {path}")
    return 0


def _speed(args: argparse.Namespace) -> int:
    from benchmarks.speed import main as speed_main

    return speed_main(args)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one benchmark."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="retrieval quality on a BEIR data set")
    q.add_argument("--dataset", type=Path, required=True, help="folder in the BEIR layout")
    q.add_argument("--split", default="dev", help="qrels split name (qrels/<split>.tsv)")
    q.add_argument("--json", type=Path, help="write the report as JSON here")
    q.add_argument("--plots", type=Path, default=OUT / "plots", help="folder for PNG plots")
    q.add_argument("--max-queries", type=int, help="only the first N judged queries (smoke run)")
    q.add_argument("--no-txtai", action="store_true", help="skip the txtai peer")
    q.add_argument(
        "--model",
        default="all-MiniLM-L6-v2",
        help="embedding model: all-MiniLM-L6-v2, use-multilingual-v3 or multilingual-e5-small",
    )
    q.add_argument("--no-ablations", action="store_true", help="skip the feature ablations")
    q.add_argument("--no-plots", action="store_true")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument(
        "--ranker",
        type=Path,
        help="also score the pipeline with this learned ranker (a saved model folder, e.g. "
        "$MATCHER_HOME/rankers/<id>); refused if it was trained on these queries",
    )
    q.set_defaults(func=_quality)
    lr = sub.add_parser("learn", help="fixed weights vs the learned ranker")
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
    lr.add_argument(
        "--datasets",
        default=f"{shared / 'uspppm-dev'},{shared / 'sbir-dev'}",
        help="comma-separated BEIR folders",
    )
    lr.add_argument("--split", default="dev")
    lr.add_argument("--part", default="cv,transfer,simulation", help="cv, transfer, simulation")
    lr.add_argument("--folds", type=int, default=5)
    lr.add_argument("--inner-folds", type=int, default=3, help="folds that choose the model")
    lr.add_argument("--max-queries", type=int, help="only the first N judged queries (smoke run)")
    lr.add_argument("--sim-needs", type=int, default=400, help="SBIR topics used as needs")
    lr.add_argument("--sim-awards", type=int, default=3000, help="SBIR awards as technologies")
    lr.add_argument("--sim-eval-needs", type=int, default=100, help="needs kept for evaluation")
    lr.add_argument("--sim-repeats", type=int, default=3, help="independent feedback runs")
    lr.add_argument(
        "--sim-checkpoints",
        default="30,60,90,150,210,300,450,600,750,900",
        help="feedback events at which the ranker is trained and scored",
    )
    lr.add_argument("--json", type=Path, help="write the report as JSON here")
    lr.add_argument("--plots", type=Path, default=OUT / "plots", help="folder for PNG plots")
    lr.add_argument("--no-plots", action="store_true")
    lr.set_defaults(func=_learn)
    b = sub.add_parser("bilingual", help="cross-lingual matching on the demo set (zh <-> en)")
    from benchmarks.bilingual import DEFAULT_SYSTEMS, SYSTEMS

    b.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help=f"comma-separated, from: {', '.join(SYSTEMS)} "
        "(primary|multilingual model; +cal: language calibration on)",
    )
    b.add_argument("--max-needs", type=int, help="only the first N needs (smoke run)")
    b.add_argument("--distractors", type=int, help="only N technologies besides the intended")
    b.add_argument("--json", type=Path, help="write the report as JSON here")
    b.set_defaults(func=_bilingual)
    s = sub.add_parser("speed", help="encoding, index and end-to-end speed")
    from benchmarks.speed import add_arguments

    add_arguments(s)
    s.set_defaults(func=_speed)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
