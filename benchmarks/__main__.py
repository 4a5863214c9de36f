"""``python -m benchmarks quality|speed`` — offline evaluation of TechMatch."""

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
    report = run_quality(
        args.dataset,
        args.split,
        max_queries=args.max_queries,
        with_txtai=not args.no_txtai,
        with_ablations=not args.no_ablations,
        progress=not args.quiet,
    )
    print(table(report))
    if args.json:
        write_json(report, args.json)
        print(f"\nJSON: {args.json}")
    if not args.no_plots:
        for path in plot(report, args.plots):
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
    q.add_argument("--no-ablations", action="store_true", help="skip the feature ablations")
    q.add_argument("--no-plots", action="store_true")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_quality)
    s = sub.add_parser("speed", help="encoding, index and end-to-end speed")
    from benchmarks.speed import add_arguments

    add_arguments(s)
    s.set_defaults(func=_speed)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
