"""``uv run seed-demo``: create the deterministic demo shop database that the flows query
(a DuckDB file, or with ``--url`` the same dataset in a PostgreSQL database)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import duckdb
import typer

from common.catalog import TABLES
from demo_systems.shop.build import SeedResult, seed_demo_database


def _describe(result: SeedResult) -> str:
    return (
        f"seeded {result.path} (scale {result.scale}) in {result.seconds:.1f} s: "
        f"{result.total_rows:,} rows in {len(result.rows)} tables"
    )


app = typer.Typer(add_completion=False, help="Create the deterministic demo shop database.")


@app.command()
def seed_demo(
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale", help="Multiplies the rows of facts, customers and products (default: ETL_DEMO_SCALE, else 1)."
        ),
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option("--path", help="The DuckDB file (default: <data dir>/demo/shop.duckdb)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Load the dataset into this PostgreSQL database instead "
            "(a SQLAlchemy URL, e.g. postgresql+psycopg://etl:***@/shop?host=/socket/dir).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-seed even if the file (or the tables) exist.")] = False,
) -> None:
    """Create the deterministic demo shop database that the flows query (a DuckDB file, or
    with --url the same dataset in a PostgreSQL database)."""
    from common.errors import user_errors
    from common.settings import get_settings

    with user_errors():
        settings = get_settings()
    scale = settings.demo_scale if scale is None else scale
    if scale < 1:
        typer.echo(f"error: --scale must be at least 1, got {scale}", err=True)
        raise typer.Exit(2)
    if url is not None:
        if path is not None:
            typer.echo("error: give --path or --url, not both", err=True)
            raise typer.Exit(2)
        _seed_url(url, scale, force)
        return
    path = settings.demo_db_path if path is None else path
    if path.exists() and not force:
        typer.echo(f"demo database already at {path} (use --force to re-seed)")
        return
    try:
        result = seed_demo_database(path, scale)
    except (OSError, duckdb.Error) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"error: could not seed {path}: {message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_describe(result))


def _seed_url(url: str, scale: int, force: bool) -> None:
    """``seed-demo --url``: the same dataset, loaded into PostgreSQL (see demo_systems.postgres_loader)."""
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    from common.db import redacted_url
    from demo_systems.postgres_loader import PostgresLoadError, seed_postgres, seeded_tables

    target = redacted_url(url)
    try:
        if not force and len(seeded_tables(url)) == len(TABLES):
            typer.echo(f"demo dataset already in {target} (use --force to re-seed)")
            return
        result = seed_postgres(url, scale)
    except PostgresLoadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, duckdb.Error, SQLAlchemyError, psycopg.Error, RuntimeError) as exc:
        original = getattr(exc, "orig", None) or exc
        message = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
        typer.echo(f"error: could not seed {target}: {message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"seeded {result.target} (scale {result.scale}) in {result.seconds:.1f} s "
        f"(built in {result.build_seconds:.1f} s, loaded with COPY in "
        f"{result.seconds - result.build_seconds:.1f} s): "
        f"{result.total_rows:,} rows in {len(result.rows)} tables"
    )


def main() -> None:
    """Console script ``seed-demo``."""
    app()


if __name__ == "__main__":
    main()
