"""Settings of the data stage: how raw files become prepared, split, versioned data."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DataFormat = Literal[
    "auto",
    "chat",
    "sharegpt",
    "alpaca",
    "completion",
    "classification",
    "seq2seq",
    "text",
    "preference",
    "reinforcement",
]


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: list[str] = Field(
        default_factory=list,
        description="Raw data files or a prepared folder; empty = the built-in ticket-triage demo data.",
    )
    format: DataFormat = Field("auto", description="Record schema; auto-detected per file when 'auto'.")
    map: dict[str, str] = Field(
        default_factory=dict, description="Rename columns: {schema_field: file_column}, e.g. {text: utterance}."
    )
    split: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Train/validation/test fractions; must sum to 1."
    )
    seed: int = Field(42, description="Seed for shuffling and splitting.")
    dedup: bool = Field(
        True,
        description="Drop exact and near duplicates; off keeps every valid record (evaluating a raw file turns it off).",
    )
    near_dup_threshold: float = Field(
        0.8, gt=0, le=1, description="Jaccard similarity above which two records are near duplicates."
    )
    max_tokens: int | None = Field(
        None, gt=0, description="Token limit per example; longer ones are handled per `overlong`."
    )
    overlong: Literal["reject", "truncate"] = Field("reject", description="What to do with examples over max_tokens.")
    redact_pii: bool = Field(False, description="Replace e-mail addresses and phone numbers with placeholders.")
    augment: int = Field(
        0, ge=0, le=10, description="Label-preserving variants added per train example (train split only)."
    )
    force: bool = Field(False, description="Proceed even with fewer than 100 usable examples.")
    demo_size: int = Field(300, ge=20, description="Number of generated examples for the built-in demo data.")
    tokenizer: str | None = Field(
        None,
        description="Model whose tokenizer counts tokens (token_stats, max_tokens); default the bundled SmolLM2; 'whitespace' counts words.",
    )
    min_tokens: int = Field(0, ge=0, description="Examples with fewer tokens are rejected (too_short).")
    unknown_keys: Literal["reject", "ignore"] = Field(
        "reject", description="Records with keys the schema does not know: reject them, or ignore the extra keys."
    )

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, split):
        if any(f < 0 for f in split) or abs(sum(split) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must be >= 0 and sum to 1 (got {list(split)}, sum {sum(split):g})")
        return split

    @field_validator("path", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value
