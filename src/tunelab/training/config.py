"""Settings of the training loop. Defaults follow established practice for each method."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(3, gt=0, description="Passes over the train split.")
    max_steps: int | None = Field(
        None, ge=1, description="Cap on optimizer steps (overrides epochs when reached first)."
    )
    learning_rate: float | None = Field(
        None, gt=0, le=1, description="Peak learning rate; default 2e-4 for adapter methods, 2e-5 for full fine-tuning."
    )
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step (micro-batch x gradient accumulation).")
    micro_batch_size: int | None = Field(None, ge=1, description="Examples per forward pass; default = batch_size.")
    scheduler: Literal["cosine", "linear", "constant"] = Field(
        "cosine", description="Learning-rate schedule after warmup."
    )
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Fraction of steps spent warming up.")
    warmup_steps: int | None = Field(None, ge=0, description="Warmup steps; overrides warmup_ratio.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    seed: int = Field(42, description="Seed for initialisation, dropout and data order.")
    logging_steps: int = Field(1, ge=1, description="Log metrics every N optimizer steps.")
    eval_steps: int | None = Field(
        None, ge=1, description="Validation every N steps; default: once per epoch and at the end."
    )
    save_steps: int | None = Field(
        None, ge=1, description="Checkpoint every N optimizer steps (crash-safe, resumable)."
    )
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept.")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after N validations without improvement and restore the best weights."
    )
    class_weights: Literal["auto", "none"] | dict[str, float] = Field(
        "auto", description="Classification loss weights: auto = inverse label frequency of the train split."
    )
    neftune_alpha: float | None = Field(None, gt=0, description="NEFTune embedding noise strength (off when empty).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on GPUs that have it, fp32 on CPU (measured faster here)."
    )
    packing: bool = Field(True, description="Pack short examples into padding-free rows (causal-lm).")
    loss_on: Literal["assistant", "all"] = Field("assistant", description="Which tokens carry the loss for chat data.")
    replay_fraction: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of general replay data mixed into the train split to limit forgetting (needs replay_data).",
    )
    replay_data: str | None = Field(
        None, description="File or prepared folder of general examples (text or chat) to replay."
    )
    tokens_per_batch: int = Field(4096, ge=64, description="Token budget of one packed micro-batch.")
