"""One settings object, built once at start-up and passed down.

Nothing here reads the environment at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Where everything lives. Every field reads ``DATAOPS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DATAOPS_", extra="ignore")

    home: Path = Field(default=Path(".dataops"), description="Workspace directory.")
    database_url: str | None = Field(
        default=None, description="Metadata DB; default SQLite in the workspace."
    )
    object_store_url: str | None = Field(
        default=None, description="Object store root; a folder or an fsspec URL (s3://…)."
    )
    object_store_fsync: bool = Field(
        default=False, description="fsync every object written (power-loss durability, ~1 ms each)."
    )
    online_store_url: str | None = Field(
        default=None, description="Online store; default SQLite in the workspace, or redis://…"
    )
    catalog_url: str | None = Field(
        default=None, description="Iceberg SQL catalog URL; default SQLite in the workspace."
    )
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    prometheus_url: str | None = None
    chroma_url: str | None = Field(
        default=None, description="Chroma server URL; default an embedded store in the workspace."
    )
    llm: str = Field(default="none", description="none | openai:MODEL | ollama:MODEL")
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    notify_webhook_url: str | None = None
    clip_model_path: Path | None = Field(
        default=None,
        description="Local CLIP checkpoint folder (transformers format) for image auto-labels; never downloaded.",
    )

    # Daemon and chat-ops. Secrets stay SecretStr so they never reach a log line.
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token the daemon's JSON API and webhooks require (none: they answer 503)."
    )
    daemon_config: Path | None = Field(default=None, description="The daemon's jobs and schedules (YAML).")
    slack_signing_secret: SecretStr | None = Field(default=None, description="Verifies Slack's requests.")
    slack_bot_token: SecretStr | None = Field(default=None, description="xoxb- token the daemon posts with.")
    slack_channel: str | None = Field(default=None, description="Channel incidents are posted to.")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL.")
    slack_roles: Path | None = Field(default=None, description="Who may do what from Slack (YAML).")

    @field_validator("home")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    # Derived locations -------------------------------------------------
    @property
    def db_url(self) -> str:
        if self.database_url:
            return _normalise_db_url(self.database_url)
        return f"sqlite:///{(self.home / 'metadata.db').resolve()}"

    @property
    def objects_url(self) -> str:
        return self.object_store_url or str((self.home / "objects").resolve())

    @property
    def online_url(self) -> str:
        return self.online_store_url or f"sqlite:///{(self.home / 'online.db').resolve()}"

    @property
    def iceberg_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{(self.home / 'catalog.db').resolve()}"

    @property
    def warehouse(self) -> Path:
        return (self.home / "warehouse").resolve()

    @property
    def is_postgres(self) -> bool:
        return self.db_url.startswith("postgresql")

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.warehouse.mkdir(parents=True, exist_ok=True)


def _normalise_db_url(url: str) -> str:
    # SQLAlchemy needs the driver named; users write plain postgresql://.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {loc}: {first['msg']}") from None
