"""Memory per device for each fine-tuning method: weights, gradients, optimizer, activations, logits.

The activation terms count what autograd keeps for backward in a Llama-style block as
transformers implements it (RMSNorm upcasts to fp32; SDPA attention keeps q, k, v, output; the
gated MLP keeps its three intermediates); frozen layers keep less, because autograd saves a
linear layer's input only when its weight needs a gradient. tests/test_cost_memory.py pins these
counts against the tensors autograd really saves in a tiny model.
"""

from dataclasses import asdict, dataclass

from tunelab.methods.base import ADAPTER_BYTES
from tunelab.methods.registry import method_named
from tunelab.models.catalogue import ModelSpec

GB = 1e9
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit weights + 8-bit block scales + double-quantised constants
ADAMW_BYTES = 8  # two fp32 moments per trainable parameter
GPU_RUNTIME_GB = 1.0  # CUDA context, cuBLAS workspaces, allocator slack
LOGITS_COPIES = (
    16  # bytes per vocab entry per token at the loss: logits, fp32 log-softmax, its gradient, the logits' gradient
)


@dataclass(frozen=True)
class TrainSetup:
    """What decides memory besides the model: method, micro-batch shape and the device's dtype."""

    method: str = "lora"
    weights: str | None = None  # a preference or reinforcement method's weights method (default its own)
    micro_batch: int = 8
    seq_len: int = 512
    gradient_checkpointing: bool = False
    compute_bytes: int = 2  # 2 = bf16/fp16 mixed precision on GPUs; 4 = fp32 (CPU)
    gpus: int = 1
    lora_r: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("all-linear",)
    virtual_tokens: int = 20
    adapter_reduction: int = 16
    adapter_blocks: int = 1  # 1 = pfeiffer (after the MLP), 2 = houlsby
    on_gpu: bool = True

    @property
    def tokens(self) -> int:
        return self.micro_batch * self.seq_len


@dataclass
class MemoryEstimate:
    weights: float
    master_weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    runtime: float
    trainable_params: float

    @property
    def total(self) -> float:
        return (
            self.weights
            + self.master_weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.logits
            + self.runtime
        )

    def as_gb(self) -> dict:
        out = {k: round(v / GB, 3) for k, v in asdict(self).items() if k != "trainable_params"}
        out["total"] = round(self.total / GB, 3)
        return out


def trainable_params(spec: ModelSpec, setup: TrainSetup) -> float:
    """Parameters that get gradients and optimizer states under the method."""
    return method_named(setup.method, setup.weights).trainable_params(spec, setup)


def weight_bytes(spec: ModelSpec, setup: TrainSetup) -> float:
    """The base weights at their dtype: 4-bit linear layers for a quantised base, the compute dtype otherwise."""
    if method_named(setup.method, setup.weights).quantization is not None:
        linear = spec.layers * sum(n_in * n_out for _, n_in, n_out in spec.linear_shapes())
        return linear * NF4_BYTES + (spec.params - linear) * 2
    return spec.params * setup.compute_bytes


def activation_bytes_per_token(spec: ModelSpec, setup: TrainSetup) -> float:
    """Bytes autograd keeps per token for all blocks (and the final norm), before the logits."""
    cb, h, a, kv, i = setup.compute_bytes, spec.hidden, spec.attention_dim, spec.kv_dim, spec.intermediate
    method = method_named(setup.method, setup.weights)
    full = method.trains_base
    mlp_outputs = (4 if full else 3) if spec.gated_mlp else (2 if full else 1)
    norm = 4 * h + (
        cb * h if full else 0
    )  # fp32 upcast kept by pow/mul; the normalised output when the norm weight trains
    attention = (3 * a + 2 * kv) * cb if full else (2 * a + 2 * kv) * cb
    block = 2 * norm + attention + mlp_outputs * i * cb + method.activation_extra(spec, setup)
    if setup.gradient_checkpointing:
        return spec.layers * h * cb + block + norm  # each block's input, plus one block recomputed in backward
    return spec.layers * block + norm


def logits_bytes(spec: ModelSpec, setup: TrainSetup) -> float:
    """The loss buffer: vocabulary x tokens, in fp32 copies, at its peak in the loss backward."""
    if spec.architecture == "encoder":
        return 0.0
    tokens = setup.tokens // 2 if spec.architecture == "encoder-decoder" else setup.tokens
    return LOGITS_COPIES * spec.vocab * tokens


def estimate_memory(spec: ModelSpec, setup: TrainSetup) -> MemoryEstimate:
    """Peak memory per device; states of the base and of trainable parameters sharded over N GPUs (FSDP/ZeRO-3)."""
    method = method_named(setup.method, setup.weights)
    trainable = method.trainable_params(spec, setup)
    full = method.trains_base
    state_bytes = setup.compute_bytes if full else ADAPTER_BYTES
    shard = max(1, setup.gpus)
    weights = weight_bytes(spec, setup) + (0 if full else trainable * ADAPTER_BYTES)
    if method.teacher or (full and method.recipe and method.recipe.reference_copy):
        weights += spec.params * setup.compute_bytes  # a frozen teacher, or reference policy, of the same size
    master = trainable * 4 if full and setup.compute_bytes < 4 else 0.0
    gathered = (
        spec.block_params() * setup.compute_bytes * 2 if shard > 1 else 0.0
    )  # FSDP all-gathers a block (and prefetches one)
    tokens = setup.tokens + (setup.micro_batch * setup.virtual_tokens if method.virtual_tokens else 0)
    activations = activation_bytes_per_token(spec, setup) * tokens
    logits = logits_bytes(spec, setup) * (2 if method.teacher else 1)
    return MemoryEstimate(
        weights=weights / shard + gathered,
        master_weights=master / shard,
        gradients=trainable * state_bytes / shard,
        optimizer=trainable * ADAMW_BYTES / shard,
        activations=activations,
        logits=logits,
        runtime=GPU_RUNTIME_GB * GB if setup.on_gpu else 0.0,
        trainable_params=trainable,
    )
