"""Speed and scale benchmark (placeholder until the speed issue's work lands)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m benchmarks speed``."""
    parser.add_argument("--quick", action="store_true")


def main(args: argparse.Namespace) -> int:
    """Run the speed benchmark."""
    raise SystemExit("speed benchmark not implemented yet")
