"""Settings of the service: where it keeps state, who may call it (keys and their projects), which base models it
serves, where it sends webhooks."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tunelab.errors import ConfigError
from tunelab.models.bundled import DEFAULT_FOR_TASK

DEFAULT_PROJECT = "proj_default"


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path = Field(description="Service home: jobs.db (SQLite), files/ and jobs/ live here.")
    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless told otherwise.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port.")
    api_keys: list[str] = Field(
        default_factory=list,
        description="Accepted bearer keys as KEY or KEY:PROJECT (no project = proj_default); empty = no authentication.",
    )
    workers: int = Field(1, ge=1, le=16, description="Fine-tuning jobs run at the same time.")
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1, description="Largest accepted upload.")
    models: dict[str, str] = Field(
        default_factory=dict, description="Extra base models: API id -> model folder or name."
    )
    max_attempts: int = Field(3, ge=1, description="Runs of one job (restarts included) before it is marked failed.")
    job_overrides: dict[str, object] = Field(
        default_factory=dict, description="Extra --set keys for every job's run config."
    )
    webhook_url: str | None = Field(None, description="Where fine_tuning.job.* events are POSTed, signed.")
    webhook_secret: str | None = Field(
        None, description="Standard Webhooks secret (whsec_BASE64, as OpenAI issues them) that signs each event."
    )

    def base_models(self) -> dict[str, str]:
        """API model id -> what tunelab's loader accepts; the bundled SmolLM2 is always there."""
        return {DEFAULT_FOR_TASK["causal-lm"]: DEFAULT_FOR_TASK["causal-lm"], **self.models}

    def projects_by_key(self) -> dict[str, str]:
        """Bearer key -> the project whose files, jobs and models it sees."""
        projects = {}
        for entry in self.api_keys:
            key, _, project = entry.partition(":")
            if not key.strip():
                raise ConfigError(f"--api-key {entry!r} has no key", "give KEY or KEY:PROJECT")
            projects[key.strip()] = project.strip() or DEFAULT_PROJECT
        return projects

    @property
    def files_dir(self) -> Path:
        return self.home / "files"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"


def read_keys_file(path: Path) -> list[str]:
    """KEY[:PROJECT] per line; blank lines and # comments skipped (a keys file keeps keys out of `ps`)."""
    if not path.is_file():
        raise ConfigError(f"keys file not found: {path}", "give a file with one KEY or KEY:PROJECT per line")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
