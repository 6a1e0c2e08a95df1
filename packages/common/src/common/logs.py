"""Logging: structlog for our code, configured once by each entry point.

Library code only calls :func:`get_logger`. Entry points call :func:`configure_logging`
once: readable console lines on a terminal, JSON lines otherwise. Events go through the
stdlib logger ``etl``, which Prefect also forwards to its API (``PREFECT_LOGGING_EXTRA_LOGGERS``),
so the same lines show in the Prefect UI under the task run that logged them. Run ids are
bound per task run (contextvars), never at import time.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

LOGGER_NAME = "etl"
_configured = False


def prefect_logging_env() -> dict[str, str]:
    """Environment that makes Prefect ship our ``etl`` logger to the UI and stay quiet
    about it outside runs. Entry points export it before Prefect configures logging."""
    return {
        "PREFECT_LOGGING_EXTRA_LOGGERS": LOGGER_NAME,
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }


def configure_logging(level: str | None = None, json: bool | None = None) -> None:
    """Set up structlog and the ``etl`` stdlib logger once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    for key, value in prefect_logging_env().items():
        os.environ.setdefault(key, value)
    if json is None:
        json = not sys.stderr.isatty()
    level_name = (level or os.environ.get("ETL_LOG_LEVEL", "INFO")).upper()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    etl = logging.getLogger(LOGGER_NAME)
    etl.handlers = [h for h in etl.handlers if getattr(h, "_etl", False) is False]
    handler._etl = True  # type: ignore[attr-defined]
    etl.addHandler(handler)
    etl.setLevel(level_name)
    etl.propagate = False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.processors.format_exc_info,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing to the ``etl`` logger (works before configuration too)."""
    logger: structlog.stdlib.BoundLogger = (
        structlog.get_logger(LOGGER_NAME, component=name) if name else structlog.get_logger(LOGGER_NAME)
    )
    return logger
