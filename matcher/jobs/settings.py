"""Settings of background work (``MATCHER_JOBS_*``); the webhook ones also read the service's
older ``MATCHER_API_WEBHOOK_*`` names, and the URL policy ``MATCHER_API_ENVIRONMENT``."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, *older: str) -> AliasChoices:
    return AliasChoices(f"MATCHER_JOBS_{name}", *older)


class JobSettings(BaseSettings):
    """Which queue runs the jobs, how often they are tried, and how webhooks are delivered."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    backend: str = Field(
        default="auto",
        validation_alias=_env("BACKEND"),
        description="auto (procrastinate on PostgreSQL, the jobs table on SQLite) | table",
    )
    lease_s: float = Field(
        default=60.0,
        validation_alias=_env("LEASE_S"),
        description="the jobs table: a running job's lease, renewed every third of it; a "
        "job whose worker stopped renewing it runs again after it (stalled-job recovery)",
    )
    heartbeat_s: float = Field(
        default=10.0,
        validation_alias=_env("HEARTBEAT_S"),
        description="procrastinate: a worker's heartbeat; its job is stalled after 3 missed",
    )
    sweep_every_s: int = Field(
        default=10, validation_alias=_env("SWEEP_EVERY_S"), description="stalled-job sweep"
    )
    poll_s: float = Field(default=0.5, validation_alias=_env("POLL_S"))
    match_attempts: int = Field(default=5, validation_alias=_env("MATCH_ATTEMPTS"))
    match_backoff_s: float = Field(default=2.0, validation_alias=_env("MATCH_BACKOFF_S"))
    rematch_needs: int = Field(
        default=10,
        validation_alias=_env("REMATCH_NEEDS"),
        description="a new technology re-matches the needs it ranks best for, at most this many",
    )
    webhook_timeout_s: float = Field(
        default=5.0, validation_alias=_env("WEBHOOK_TIMEOUT_S", "MATCHER_API_WEBHOOK_TIMEOUT_S")
    )
    webhook_attempts: int = Field(
        default=4, validation_alias=_env("WEBHOOK_ATTEMPTS", "MATCHER_API_WEBHOOK_RETRIES")
    )
    webhook_backoff_s: float = Field(
        default=1.0, validation_alias=_env("WEBHOOK_BACKOFF_S", "MATCHER_API_WEBHOOK_BACKOFF_S")
    )
    environment: str = Field(
        default="development", validation_alias=AliasChoices("MATCHER_API_ENVIRONMENT")
    )
    # E-mail to submitters (``matcher.notify``): off while no SMTP host is set.
    smtp_host: str | None = Field(default=None, validation_alias=AliasChoices("MATCHER_SMTP_HOST"))
    smtp_port: int = Field(default=25, validation_alias=AliasChoices("MATCHER_SMTP_PORT"))
    smtp_from: str = Field(
        default="TechMatch <noreply@techmatch.invalid>",
        validation_alias=AliasChoices("MATCHER_SMTP_FROM"),
    )
    smtp_user: str | None = Field(default=None, validation_alias=AliasChoices("MATCHER_SMTP_USER"))
    smtp_password: str | None = Field(
        default=None, validation_alias=AliasChoices("MATCHER_SMTP_PASSWORD")
    )
    smtp_starttls: bool = Field(
        default=False, validation_alias=AliasChoices("MATCHER_SMTP_STARTTLS")
    )
    smtp_timeout_s: float = Field(
        default=10.0, validation_alias=AliasChoices("MATCHER_SMTP_TIMEOUT_S")
    )
    mail_attempts: int = Field(default=5, validation_alias=_env("MAIL_ATTEMPTS"))
    mail_backoff_s: float = Field(default=30.0, validation_alias=_env("MAIL_BACKOFF_S"))

    @property
    def development(self) -> bool:
        """Loopback webhook receivers are allowed in development only."""
        return self.environment == "development"

    def backoff(self, kind_backoff_s: float, attempt: int) -> float:
        """Seconds before try ``attempt + 1`` after try ``attempt`` (1, 2, …) failed."""
        return kind_backoff_s * 2 ** (attempt - 1)
