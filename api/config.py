"""Service settings (``MATCHER_API_*``); the engine's own settings, routing rules included
(``MATCHER_ROUTE_*``), live in matcher.config."""

from __future__ import annotations

import secrets
from functools import lru_cache

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "development-only-secret-change-me"


class ApiSettings(BaseSettings):
    """Settings of the HTTP service. Outside development the secret key must be set."""

    model_config = SettingsConfigDict(env_prefix="MATCHER_API_", extra="ignore")

    environment: str = Field(default="development", description="development | production")
    secret_key: str = Field(default=DEV_SECRET, description="signs CSRF tokens and cookies")
    host: str = "127.0.0.1"
    port: int = 8000
    max_text_chars: int = Field(default=20_000, description="longest description accepted")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, description="bulk import limit")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        description="largest request body but an import upload (JSON, forms): 413 beyond",
    )
    max_url_bytes: int = Field(default=8 * 1024, description="longest path + query: 414 beyond")
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 4
    webhook_backoff_s: float = 1.0
    background_matching: bool = Field(
        default=True, description="match and route new needs in a background worker"
    )
    follow_interval_s: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="how often the service reads the change log for other processes' writes "
        "(seconds; 0: never, for a single process)",
    )
    checkpoint_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="at most how often the service saves its changed indexes and the change-log "
        "sequence they hold (seconds); a restart replays the log from the last save",
    )
    in_process_worker: bool = Field(
        default=True,
        description="run background job workers inside the service; false when separate "
        "`matcher worker` processes run them",
    )
    worker_concurrency: int = Field(default=1, description="in-process jobs at once per queue")
    form_rate: str = Field(
        default="5/minute;100/day",
        description="public form submissions per client IP address ('limits' notation, "
        "several separated by ';'): 429 beyond",
    )
    token_rate: str = Field(
        default="600/minute", description="API requests per bearer token: 429 beyond"
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="where request counts are kept: memory:// for one process, a shared "
        "store (redis://host:6379) when several processes serve",
    )

    @property
    def development(self) -> bool:
        """Whether the service runs in development (local webhook receivers allowed)."""
        return self.environment == "development"

    @field_validator("form_rate", "token_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a rate; write e.g. '5/minute' or '5/minute;100/day'"
            ) from exc
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> ApiSettings:
        if self.environment != "development" and self.secret_key == DEV_SECRET:
            raise ValueError(
                "MATCHER_API_SECRET_KEY must be set outside development, e.g. to "
                f"{secrets.token_urlsafe(32)!r}"
            )
        return self


@lru_cache(maxsize=1)
def get_api_settings() -> ApiSettings:
    """The process-wide service settings."""
    return ApiSettings()
