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
    metrics: list[str] | None = Field(None, description="Metric names to report (default: every metric of the task).")
    normalisation: list[str] = Field(
        ["strip", "lower", "whitespace"],
        description="Text normalisation before exact match: strip, lower, punctuation, articles, whitespace.",
    )
    temperature: float = Field(0.0, ge=0, description="Sampling temperature for evaluation generation; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass when temperature > 0.")
    stop: list[str] = Field([], description="Stop sequences that end a generated answer.")
    samples_shown: int = Field(
        10, ge=0, description="Largest regressions and largest wins listed in the report (each)."
    )
    probe_examples: int = Field(8, ge=1, description="Counterfactual pairs in the bias probe.")
    probe_max_new_tokens: int = Field(24, ge=1, description="Generation length in the bias and forgetting probes.")
    forgetting_threshold: float = Field(
        0.2, ge=0, description="Relative rise in general-text perplexity flagged as forgetting."
    )
    seed: int = Field(0, description="Seed of the bootstrap resampling and of sampled generation.")
    grader: str | dict | None = Field(
        None,
        description="Grader (JSON file or OpenAI grader object) whose mean reward is added to every evaluation; "
        "a grpo run uses rl.grader when this is empty.",
    )
