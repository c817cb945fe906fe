"""Settings of evaluation after training and on demand."""

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Evaluate base and tuned models on the held-out split after training.")
    split: str = Field("test", description="Split to evaluate on.")
    baseline: bool = Field(True, description="Also evaluate the untouched base model.")
    max_examples: int | None = Field(None, ge=1, description="Cap on evaluated examples (all when empty).")
    max_new_tokens: int = Field(64, ge=1, description="Generation length for generative tasks.")
    batch_size: int = Field(16, ge=1, description="Examples per generation batch.")
    probes: bool = Field(True, description="Run bias, hallucination and forgetting probes.")
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples for confidence intervals.")
