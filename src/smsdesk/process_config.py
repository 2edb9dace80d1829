"""The service's own configuration (where data lives, where to listen), from SMSDESK_* variables.

This is not the SMS configuration, which lives in the database and is edited by administrators.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AppConfig(BaseSettings):
    """Every option, each also readable from an SMSDESK_<NAME> environment variable."""

    model_config = SettingsConfigDict(env_prefix="SMSDESK_", extra="ignore")

    data_dir: Path = Field(
        Path("smsdesk-data"), description="Directory for the SQLite file and keys."
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    sqlite_synchronous: Literal["normal", "full"] = Field(
        "normal",
        description="SQLite only: normal keeps commits through a crash of smsdesk; full also "
        "through a power loss, with a disk flush per commit (docs/DURABILITY.md).",
    )
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on.")
    public_url: str = Field("", description="URL providers reach this service at (callbacks).")
    secret_key: SecretStr | None = Field(None, description="Key that encrypts stored secrets.")
    dispatcher: bool = Field(True, description="Run the dispatcher in this process.")
    worker_id: str = Field("", description="Name of this dispatcher in leases and logs.")
    lease_seconds: float = Field(60.0, gt=0, description="How long a claimed message is ours.")
    poll_interval: float = Field(0.5, gt=0, description="Longest wait between outbox scans.")
    claim_batch: int = Field(500, ge=1, le=10_000, description="Messages claimed per scan.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: str = Field("json", description="json or text.")
    max_body_bytes: int = Field(4 * 1024 * 1024, description="Largest accepted request body.")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'smsdesk.sqlite3').resolve()}"

    def effective_public_url(self, port: int | None = None) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{port or self.port}"
