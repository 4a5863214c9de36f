"""What every ``matcher`` subcommand shares: the engine, and failing with a clear message."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from matcher.engine import Engine


def open_engine() -> Engine:
    """The engine on the settings of the environment (loaded lazily: models load on use)."""
    from matcher.engine import Engine

    return Engine()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
