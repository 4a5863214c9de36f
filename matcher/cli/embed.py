"""``matcher embed FILE``: encode a catalogue file on Ray into the shared embedding cache, so
that ``matcher import`` and ``matcher index build`` then assemble without encoding."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from matcher.cli.common import fail, open_engine
from matcher.domain import Side

if TYPE_CHECKING:
    from matcher.config import Settings
    from matcher.embed.ray_batch import Space, SpaceReport
    from matcher.embed.ray_cluster import RayOptions
    from matcher.engine import Engine

# A field only the records of one kind have → that kind.
_TELLING_FIELDS = {
    "owner": Side.technologies,
    "trl": Side.technologies,
    "enterprise": Side.needs,
    "trl_min": Side.needs,
}


def spaces_of(settings: Settings) -> list[Space]:
    """Every space a collection is indexed in: the primary model's, and the multilingual one's
    when it is on (named as the engine names their vectors)."""
    from matcher.embed.ray_batch import Space

    spaces = [
        Space.of(
            settings.encoder_id,
            settings.model,
            settings.encoder_backend,
            batch_size=settings.batch_size,
            models_dir=settings.models_dir,
        )
    ]
    if settings.multilingual_enabled:
        model = settings.multilingual_model
        spaces.append(
            Space.of(model, model, "torch", batch_size=settings.batch_size, models_dir=None)
        )
    return spaces


def guess_kind(path: Path) -> Side | None:
    """Technologies or needs, from the fields of the file's first record (None: cannot tell)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".csv":
                fields = set(next(csv.reader(handle), []))
            else:
                line = next((x for x in handle if x.strip()), "{}")
                first = json.loads(line)
                fields = set(first) if isinstance(first, dict) else set()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    kinds = {_TELLING_FIELDS[f] for f in fields if f in _TELLING_FIELDS}
    return kinds.pop() if len(kinds) == 1 else None


@dataclass
class EmbedResult:
    """A file's run: per space what was encoded, and how many records were read or skipped."""

    spaces: list[SpaceReport]
    records: int
    skipped: int


def embed_file(path: Path, side: Side, options: RayOptions, *, engine: Engine) -> EmbedResult:
    """Embed the valid records of a file into every space of the engine's collections on Ray."""
    from matcher.embed.ray_batch import embed_texts
    from matcher.ingest import read_file
    from matcher.store import repo

    batch = read_file(path, side.value, engine.taxonomy)
    texts = [repo.text_of(side, record) for _, record in batch.records]
    reports = embed_texts(
        texts, spaces_of(engine.settings), engine.cache, options, progress=engine.settings.progress
    )
    return EmbedResult(spaces=reports, records=len(batch.records), skipped=len(batch.errors))


def embed(
    file: Annotated[Path, typer.Argument(help="a .jsonl or .csv file, as `matcher import` reads")],
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="technologies | needs (default: told by the file's fields)"),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--ray", help="a running cluster: ray://host:10001 or host:6379 (default: local)"
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="actors, one encoder each")] = 2,
    cpus_per_worker: Annotated[
        int, typer.Option("--cpus-per-worker", min=1, help="CPUs and encoder threads per actor")
    ] = 1,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="texts per actor call")
    ] = 256,
) -> None:
    """Encode a catalogue file on Ray into the embedding cache (then `matcher import` it)."""
    from matcher.embed.ray_cluster import RayOptions, RayUnavailableError
    from matcher.ingest import ImportFormatError

    if not file.is_file():
        fail(f"no file {str(file)!r}")
    if kind is not None and kind not in (Side.technologies, Side.needs):
        fail(f"unknown kind {kind!r}; use technologies or needs")
    side = Side(kind) if kind is not None else guess_kind(file)
    if side is None:
        fail("cannot tell technologies from needs by the file's fields; say --kind")
    options = RayOptions(
        address=address, workers=workers, cpus_per_worker=cpus_per_worker, batch_size=batch_size
    )
    engine = open_engine()
    try:
        result = embed_file(file, side, options, engine=engine)
    except (RayUnavailableError, ImportFormatError) as exc:
        fail(str(exc))
    finally:
        engine.close()
    typer.echo(f"{side.value}: {result.records} records")
    for report in result.spaces:
        typer.echo(
            f"{report.space}: {report.distinct} distinct texts, {report.cached} already cached, "
            f"{report.encoded} encoded"
            + (f" ({report.per_second:.1f}/s)" if report.encoded else "")
        )
    if result.skipped:
        typer.secho(
            f"  {result.skipped} invalid rows not embedded (`matcher import` reports them)",
            fg=typer.colors.YELLOW,
            err=True,
        )
