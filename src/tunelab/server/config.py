"""Settings of the service: where it keeps state, who may call it, which base models it serves."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tunelab.models.bundled import DEFAULT_FOR_TASK


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: Path = Field(description="Service home: jobs.db (SQLite), files/ and jobs/ live here.")
    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless told otherwise.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port.")
    api_keys: list[str] = Field(default_factory=list, description="Accepted bearer keys; empty = no authentication.")
    workers: int = Field(1, ge=1, le=16, description="Fine-tuning jobs run at the same time.")
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1, description="Largest accepted upload.")
    models: dict[str, str] = Field(
        default_factory=dict, description="Extra base models: API id -> model folder or name."
    )
    max_attempts: int = Field(3, ge=1, description="Runs of one job (restarts included) before it is marked failed.")
    job_overrides: dict[str, object] = Field(
        default_factory=dict, description="Extra --set keys for every job's run config."
    )

    def base_models(self) -> dict[str, str]:
        """API model id -> what tunelab's loader accepts; the bundled SmolLM2 is always there."""
        return {DEFAULT_FOR_TASK["causal-lm"]: DEFAULT_FOR_TASK["causal-lm"], **self.models}

    @property
    def files_dir(self) -> Path:
        return self.home / "files"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"
