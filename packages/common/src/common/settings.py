"""Settings for every entry point, read from ``ETL_*`` environment variables.

Served flow runs are subprocesses that inherit the environment, so entry points call
:func:`export_to_env` once: every process of one deployment then agrees on the same
paths and URLs without each re-deriving them from its own working directory.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import UserError

LIMITS_FILE_NAME = "limits.toml"


def find_project_dir() -> Path:
    """The repository root: the nearest folder holding ``limits.toml``.

    Searched upward from the working directory first, then from this file (the workspace
    installs ``common`` in editable mode, so its source lives inside the repository).
    """
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / LIMITS_FILE_NAME).is_file():
                return folder
    return Path.cwd()


def backend_name(url: str) -> str:
    """``duckdb``, ``postgresql``...; ``unknown`` for a URL SQLAlchemy cannot parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return "unknown"


class Settings(BaseSettings):
    """Where the data lives and how to reach the shared systems."""

    model_config = SettingsConfigDict(env_prefix="ETL_", extra="ignore")

    project_dir: Path = Field(default_factory=find_project_dir)
    # Unset (""): the defaults below, made from project_dir once it is known.
    limits_file: Path = Field(default=Path(""), description="The limits file; default <project>/limits.toml.")
    data_dir: Path = Field(
        default=Path(""), description="Demo database, lake, reports, Prefect home; default <project>/data."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the shared database; default the read-only demo DuckDB file.",
    )
    api_url: str | None = Field(default=None, description="Base URL of the partner API; default the embedded demo API.")
    api_token: SecretStr | None = Field(default=None, description="Bearer token for the partner API.")
    api_timeout_seconds: float = 10.0
    server_patience_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long a flow run waits for the Prefect server to come back before it gives up "
        "submitting again the calls the server's absence lost.",
    )
    demo_api_port: int = 8765
    board_port: int = Field(default=4280, description="Port of the live slot board on 127.0.0.1.")
    demo_scale: int = Field(default=1, ge=1)
    duckdb_memory_limit: str = Field(
        default="160MB",
        pattern=r"^[0-9]+(\.[0-9]+)? ?([KMGT]i?B)$",
        description="Memory of each DuckDB instance a flow run opens (one per database slot it holds, "
        "one for its lake steps, which take turns), e.g. 160MB or 1GiB; beyond it DuckDB spills to "
        "<data>/spill. At the demo's scale 10 every query answers within 160MB (bench/RESULTS.md).",
    )
    demo_api_ticks_per_day: int | None = Field(
        default=None,
        ge=0,
        description="Intraday quotes behind each daily fixing the demo API computes, i.e. its CPU per "
        "fx page; default the API's own (about 0.5 s of one core a page). The test session lowers it.",
    )

    def model_post_init(self, __context: object) -> None:
        self.project_dir = self.project_dir.resolve()
        if self.limits_file == Path(""):
            self.limits_file = self.project_dir / LIMITS_FILE_NAME
        if self.data_dir == Path(""):
            self.data_dir = self.project_dir / "data"
        self.limits_file = self.limits_file.resolve()
        self.data_dir = self.data_dir.resolve()

    # --- derived locations -------------------------------------------------------------
    @property
    def demo_db_path(self) -> Path:
        return self.data_dir / "demo" / "shop.duckdb"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    @property
    def uses_demo_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_demo_api(self) -> bool:
        return self.api_url is None

    @property
    def sqlalchemy_url(self) -> str:
        """The URL flow tasks connect with: the demo file opens read-only (DuckDB allows
        many read-only processes but only one writer)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"duckdb:///{self.demo_db_path}?access_mode=read_only"

    @property
    def database_backend(self) -> str:
        """``duckdb``, ``postgresql``...: the kind of shared database (``unknown`` if unparseable)."""
        return backend_name(self.sqlalchemy_url)

    @property
    def effective_api_url(self) -> str:
        return (self.api_url or f"http://127.0.0.1:{self.demo_api_port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached: read the environment once)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_invalid(exc)) from None


class SettingsError(UserError, ValueError):
    """An ``ETL_*`` variable holds a value the settings refuse."""


def describe_invalid(exc: ValidationError) -> str:
    """One line per refused variable, joined: its name, the value given, what is wrong."""
    secret = {name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)}
    parts = []
    for error in exc.errors():
        name = "ETL_" + "_".join(str(p) for p in error["loc"]).upper()
        given = "***" if error["loc"] and error["loc"][0] in secret else repr(error.get("input"))  # never a secret
        parts.append(f"{name}={given}: {error['msg']}")
    return "; ".join(parts) + ": fix or unset it"


def export_to_env(settings: Settings) -> None:
    """Pin resolved paths in the environment so child processes (served flow runs) agree."""
    os.environ["ETL_PROJECT_DIR"] = str(settings.project_dir)
    os.environ["ETL_LIMITS_FILE"] = str(settings.limits_file)
    os.environ["ETL_DATA_DIR"] = str(settings.data_dir)
