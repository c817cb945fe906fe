"""Settings of the fine-tuning methods (one section per method family)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list of module names."
    )
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")
    use_rslora: bool = Field(False, description="Rank-stabilised scaling alpha / sqrt(r).")


class PromptSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_virtual_tokens: int = Field(20, ge=1, le=512, description="Virtual tokens for prompt and prefix tuning.")
    init_text: str | None = Field(
        None, description="Initialise prompt-tuning embeddings from this text (random when empty)."
    )


class AdapterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reduction_factor: int = Field(16, ge=1, description="Bottleneck size = hidden size / reduction_factor.")
    placement: Literal["pfeiffer", "houlsby"] = Field(
        "pfeiffer", description="pfeiffer: after the MLP only; houlsby: after attention and MLP."
    )
    activation: Literal["relu", "gelu", "silu"] = Field(
        "relu", description="Non-linearity between down- and up-projection."
    )


class DistillSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: str | None = Field(None, description="Teacher model (name or folder); default: the bundled SmolLM2.")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of the KL term.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the KL term; 1 - alpha weighs the hard-label loss.")


class PreferenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loss: Literal["sigmoid", "ipo", "hinge"] = Field(
        "sigmoid",
        description="dpo's loss: sigmoid (DPO), ipo (IPO, squared, on mean log-probabilities) or hinge (SLiC).",
    )
    beta: float = Field(0.1, gt=0, description="dpo: strength of the implicit KL constraint to the reference.")
    sft_weight: float = Field(0.0, ge=0, description="dpo: weight of an added SFT loss on the chosen answer.")
    orpo_lambda: float = Field(0.1, gt=0, description="orpo: weight of the odds-ratio term (Hong et al., 2024).")
    simpo_beta: float = Field(
        2.0, gt=0, description="simpo: reward scale on mean log-probabilities (Meng et al., 2024)."
    )
    simpo_gamma: float = Field(1.0, ge=0, description="simpo: target reward margin.")


class RLSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader: str | dict | None = Field(
        None, description="grpo: the grader (a JSON file or an OpenAI grader object) that scores each sample."
    )
    k: int = Field(4, ge=2, le=64, description="grpo: completions sampled per prompt (the group).")
    kl_beta: float = Field(0.04, ge=0, description="grpo: weight of the KL penalty to the reference policy.")
    clip: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="grpo: PPO-style clipping range of the probability ratio (tunelab takes one update per rollout, "
        "where the ratio is 1; the clip bounds it where updates reuse samples).",
    )
    max_new_tokens: int = Field(64, ge=1, le=4096, description="grpo: tokens sampled per completion at most.")
    temperature: float = Field(1.0, gt=0, le=2, description="grpo: sampling temperature of the completions.")
