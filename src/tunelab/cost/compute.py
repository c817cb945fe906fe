"""Training FLOPs and time: FLOPs / (peak x MFU), with MFU from a calibration run or a default per GPU.

FLOPs per token: 6N for full fine-tuning (forward 2N, backward 4N), 4N when the base is frozen
(no weight gradients), plus the attention term 6 x layers x context x attention width, plus one
more forward (2N) per token when gradient checkpointing recomputes activations.
"""

from dataclasses import dataclass

from tunelab.methods.registry import method_named
from tunelab.models.catalogue import ModelSpec

QUANTIZED_SLOWDOWN = 0.7  # de-quantising 4-bit weights on every matmul costs throughput


def flops_per_token(
    spec: ModelSpec, method: str, seq_len: int, gradient_checkpointing: bool = False, weights: str | None = None
) -> float:
    weight_params = spec.params - (0 if spec.tied else spec.vocab * spec.hidden)  # an embedding lookup costs no FLOPs
    trains = method_named(method, weights)
    matmul = (6 if trains.trains_base else 4) * weight_params
    recipe = trains.recipe
    if recipe and (not trains.trains_base or recipe.reference_copy):  # the reference's forward pass each step
        matmul += 2 * recipe.extra_forward * weight_params  # (full-weight DPO scores its reference once, up front)
    if recipe and recipe.samples_online:  # each trained token was sampled by the policy first
        matmul += 2 * weight_params
    if trains.teacher:
        matmul += 2 * weight_params  # the teacher's forward pass
    attention = 6 * spec.layers * seq_len * spec.attention_dim
    recompute = 2 * weight_params + 2 * spec.layers * seq_len * spec.attention_dim if gradient_checkpointing else 0
    return matmul + attention + recompute


def training_flops(
    spec: ModelSpec,
    method: str,
    train_tokens: int,
    seq_len: int,
    gradient_checkpointing: bool = False,
    weights: str | None = None,
) -> float:
    return flops_per_token(spec, method, seq_len, gradient_checkpointing, weights) * train_tokens


@dataclass(frozen=True)
class Throughput:
    """Achieved FLOP/s per device, as a low..high range, and where it came from."""

    flops_low: float
    flops_high: float
    source: str  # "default MFU for <GPU>" or "calibrated on this machine"

    def hours(self, flops: float, devices: int = 1) -> tuple[float, float]:
        """Wall-clock hours (low, high) for `flops` spread over `devices`."""
        return flops / (self.flops_high * devices * 3600), flops / (self.flops_low * devices * 3600)


def default_throughput(
    peak_tflops: float, mfu_low: float, mfu_high: float, method: str, gpu_name: str, weights: str | None = None
) -> Throughput:
    factor = QUANTIZED_SLOWDOWN if method_named(method, weights).quantization is not None else 1.0
    peak = peak_tflops * 1e12 * factor
    return Throughput(peak * mfu_low, peak * mfu_high, f"default MFU {mfu_low:.0%}-{mfu_high:.0%} of {gpu_name} peak")


def calibrated_throughput(achieved_flops: float, spread: float = 0.15) -> Throughput:
    """A measured FLOP/s, widened by the step-to-step spread seen in such runs."""
    return Throughput(achieved_flops * (1 - spread), achieved_flops * (1 + spread), "calibrated on this machine")


BANDWIDTH_EFFICIENCY = 0.6  # share of peak memory bandwidth a decode step reaches


def inference_tokens_per_second(
    params: float,
    weight_bytes_per_param: float,
    bandwidth_gbs: float,
    peak_tflops: float,
    batch: int = 1,
    mfu: float = 0.3,
) -> float:
    """Decode throughput: each step streams the weights once (bandwidth-bound) for `batch` sequences,
    capped by compute (2 FLOPs per parameter per token)."""
    memory_bound = bandwidth_gbs * 1e9 * BANDWIDTH_EFFICIENCY / (params * weight_bytes_per_param) * batch
    compute_bound = peak_tflops * 1e12 * mfu / (2 * params)
    return min(memory_bound, compute_bound)
