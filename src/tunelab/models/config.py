"""Settings of the base model: which one, and how it may be loaded."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None,
        description="Bundled name, model folder or hub id; default follows the task (SmolLM2 for causal-lm, MiniLM for classification).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight dtype; auto = float32 on CPU, bfloat16 on GPUs that have it."
    )
    max_length: int = Field(1024, ge=8, description="Maximum tokens per training example (longer ones are truncated).")
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with a hub model. Off unless you trust its author."
    )
    allow_pickle: bool = Field(
        False, description="Allow pickle-based weight files (loaded with weights_only=True). Off by default."
    )
