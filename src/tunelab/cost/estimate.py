"""`tunelab cost estimate`: tokens, memory per device with a verdict per GPU, time and money.

Plain functions over flat arguments; the CLI and the training job (which stores the estimate
next to the measured figures) call `estimate()` alike.
"""

from dataclasses import dataclass, replace

from tunelab.cost import prices as price_data
from tunelab.cost.compute import calibrated_throughput, default_throughput, training_flops
from tunelab.cost.memory import GB, TrainSetup, estimate_memory
from tunelab.cost.tokens import TokenCount, assumed_count, count_tokens, openai_count
from tunelab.errors import ConfigError
from tunelab.methods.registry import get_method, method_named
from tunelab.models.catalogue import ModelSpec, lookup

FITS, FITS_CHECKPOINTED, NO_FIT = "fits", "fits with gradient checkpointing", "does not fit"
CPU_USABLE = 0.9  # share of host RAM a training process may use


@dataclass(frozen=True)
class Verdict:
    gpu: str
    verdict: str
    memory_gb: float  # as configured
    checkpointed_memory_gb: float
    fix: str

    @property
    def fits(self) -> bool:
        return self.verdict != NO_FIT

    def as_dict(self) -> dict:
        return {
            "gpu": self.gpu,
            "verdict": self.verdict,
            "fits": self.fits,
            "memory_gb": self.memory_gb,
            "checkpointed_memory_gb": self.checkpointed_memory_gb,
            "fix": self.fix,
        }


def capacity_bytes(gpu: price_data.Gpu) -> float:
    return gpu.memory_gb * GB * (CPU_USABLE if gpu.is_cpu else 1.0)


def setup_for(gpu: price_data.Gpu, setup: TrainSetup) -> TrainSetup:
    """The setup as it runs on this device: fp32 on CPU, bf16 (fp16 on GPUs without bf16) elsewhere."""
    return replace(setup, compute_bytes=4 if gpu.is_cpu else 2, on_gpu=not gpu.is_cpu)


def memory_verdict(spec: ModelSpec, setup: TrainSetup, gpu: price_data.Gpu, all_gpus: list) -> Verdict:
    setup = setup_for(gpu, setup)
    method = method_named(setup.method, setup.weights)
    if method.needs_cuda and gpu.is_cpu:
        return Verdict(
            gpu.name, NO_FIT, 0.0, 0.0, f"{method.name} needs a CUDA GPU ({method.summary}); use lora on CPU"
        )
    configured = estimate_memory(spec, setup).total
    checkpointed = estimate_memory(spec, replace(setup, gradient_checkpointing=True)).total
    capacity = capacity_bytes(gpu)
    if configured <= capacity:
        verdict, fix = FITS, ""
    elif checkpointed <= capacity:
        verdict, fix = FITS_CHECKPOINTED, "enable train.gradient_checkpointing (about 30% slower)"
    else:
        verdict, fix = NO_FIT, cheapest_fix(spec, replace(setup, gradient_checkpointing=True), gpu, all_gpus)
    return Verdict(gpu.name, verdict, round(configured / GB, 2), round(checkpointed / GB, 2), fix)


def cheapest_fix(spec: ModelSpec, setup: TrainSetup, gpu: price_data.Gpu, all_gpus: list) -> str:
    """The first change, cheapest first, that makes the run fit: smaller micro-batch, lighter method, more GPUs, bigger GPU."""
    capacity = capacity_bytes(gpu)

    def fits(candidate: TrainSetup) -> bool:
        return estimate_memory(spec, candidate).total <= capacity

    micro = setup.micro_batch // 2
    while micro >= 1:
        if fits(replace(setup, micro_batch=micro)):
            return f"gradient checkpointing with micro-batch {micro} and gradient accumulation"
        micro //= 2
    current = method_named(setup.method, setup.weights)
    for method in current.lighter:  # a recipe keeps its loss and moves to lighter weights
        lighter = (
            replace(setup, weights=method, micro_batch=1)
            if current.recipe
            else replace(setup, method=method, micro_batch=1)
        )
        if (not get_method(method).needs_cuda or not gpu.is_cpu) and fits(lighter):
            change = f"weights {method}" if current.recipe else f"method {method}"
            return f"{change} (with gradient checkpointing, micro-batch 1)"
    if not gpu.is_cpu:
        for count in (2, 4, 8):
            if fits(replace(setup, gpus=count, micro_batch=1)):
                return f"shard over {count} x {gpu.name} with FSDP/ZeRO-3 (gradient checkpointing, micro-batch 1)"
    for other in sorted((g for g in all_gpus if not g.is_cpu), key=lambda g: g.memory_gb):
        if other.memory_gb > gpu.memory_gb and estimate_memory(spec, setup_for(other, setup)).total <= capacity_bytes(
            other
        ):
            return f"a GPU with more memory: {other.name} ({other.memory_gb:g} GB)"
    return "no single change found: shard over more than 8 GPUs or pick a smaller model"


def detect_device(prices: dict) -> price_data.Gpu:
    """The catalogued GPU matching this machine's CUDA device, else the CPU entry."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).upper().replace(" ", "")
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        for gpu in price_data.all_gpus(prices):
            if not gpu.is_cpu and gpu.name.split("-")[0] in name and abs(gpu.memory_gb - memory) < 12:
                return gpu
    return price_data.find_gpu("cpu", prices)


def count_train_tokens(data, spec: ModelSpec, openai: dict | None, max_length: int = 1024) -> TokenCount:
    if data is None:
        return assumed_count()
    return openai_count(data, openai) if openai else count_tokens(data, spec, max_length)


def estimate(
    model: str | None = None,
    method: str = "lora",
    weights: str | None = None,
    data=None,
    epochs: float = 3,
    micro_batch: int | None = None,
    seq_len: int | None = None,
    gradient_checkpointing: bool = False,
    gpu: str | None = None,
    gpus: int = 1,
    calibrate: bool = False,
    prices_file=None,
    lora_r: int = 16,
    lora_dropout: float = 0.05,
    lora_targets: tuple[str, ...] = ("all-linear",),
    virtual_tokens: int = 20,
    adapter_reduction: int = 16,
    adapter_blocks: int = 1,
    tokens_per_batch: int = 4096,
    max_length: int = 1024,
    batch_size: int = 8,
    packing: bool = True,
) -> dict:
    """One estimate: tokens, per-device memory with verdicts, FLOPs, hours and dollars (ranges)."""
    method_named(method, weights)  # an unknown name is a ConfigError listing the known ones
    if gpus < 1:
        raise ConfigError(f"--gpus must be at least 1 (got {gpus})", "pass --gpus 1 or more")
    prices = price_data.load_prices(prices_file)
    openai = price_data.openai_model(model, prices)
    if openai:
        return _openai_estimate(openai, prices, count_train_tokens(data, None, prices["openai"]), epochs)
    spec = lookup(model)
    count = count_train_tokens(data, spec, None, max_length)
    chosen = price_data.find_gpu(gpu, prices) if gpu else detect_device(prices)
    rows, length = forward_shape(count, spec, micro_batch, seq_len, batch_size, packing, tokens_per_batch, max_length)
    setup = TrainSetup(
        method=method,
        weights=weights,
        micro_batch=rows,
        seq_len=length,
        gradient_checkpointing=gradient_checkpointing,
        gpus=gpus,
        lora_r=lora_r,
        lora_dropout=lora_dropout,
        lora_targets=tuple(lora_targets),
        virtual_tokens=virtual_tokens,
        adapter_reduction=adapter_reduction,
        adapter_blocks=adapter_blocks,
    )
    catalogued = price_data.all_gpus(prices)
    verdicts = [memory_verdict(spec, setup, g, catalogued) for g in catalogued]
    mine = memory_verdict(spec, setup, chosen, catalogued)
    checkpointed = gradient_checkpointing or mine.verdict == FITS_CHECKPOINTED
    memory = estimate_memory(spec, setup_for(chosen, replace(setup, gradient_checkpointing=checkpointed)))
    train_tokens = round(count.tokens * epochs)
    flops = training_flops(spec, method, train_tokens, length, checkpointed, weights)
    throughput, calibration = _throughput(spec, setup, chosen, calibrate)
    hours_low, hours_high = throughput.hours(flops, gpus)
    assumptions = [
        count.note,
        f"micro-batch {rows} x {length} tokens; {'FSDP/ZeRO-3 over ' + str(gpus) + ' GPUs; ' if gpus > 1 else ''}"
        f"{'fp32 on CPU' if chosen.is_cpu else 'bf16 mixed precision, AdamW with fp32 states'}",
        f"time: {throughput.source}",
        f"prices: {chosen.source} ({chosen.as_of})",
    ]
    return {
        "model": spec.name,
        "params": int(spec.params),
        "method": method,
        "gpu": chosen.name,
        "gpus": gpus,
        "examples": count.examples,
        "tokens_per_epoch": count.tokens,
        "epochs": epochs,
        "train_tokens": train_tokens,
        "token_count": count.method,
        "micro_batch": rows,
        "seq_len": length,
        "gradient_checkpointing": checkpointed,
        "trainable_params": int(memory.trainable_params),
        "per_device_memory_gb": round(memory.total / GB, 2),
        "memory_breakdown_gb": memory.as_gb(),
        "fits": mine.fits,
        "verdict": mine.verdict,
        "fix": mine.fix,
        "verdicts": [v.as_dict() for v in verdicts],
        "flops": flops,
        "calibration": calibration,
        "hours": {"low": round(hours_low, 4), "high": round(hours_high, 4)},
        "gpu_hours": {"low": round(hours_low * gpus, 4), "high": round(hours_high * gpus, 4)},
        "cost_usd": {
            "low": round(hours_low * gpus * chosen.price_low, 2),
            "high": round(hours_high * gpus * chosen.price_high, 2),
        },
        "assumptions": assumptions,
    }


def forward_shape(
    count: TokenCount,
    spec: ModelSpec,
    micro_batch: int | None,
    seq_len: int | None,
    batch_size: int,
    packing: bool,
    tokens_per_batch: int,
    max_length: int,
) -> tuple[int, int]:
    """(rows, tokens per row) of one forward pass, as the trainer forms it: packed causal-LM steps put
    the step's examples (up to tokens_per_batch) in one padding-free pass; otherwise rows are padded
    to the longest example. Explicit --batch-size/--seq-len win."""
    cap = min(max_length, spec.context)
    if seq_len or micro_batch or not packing or spec.architecture != "decoder":
        return micro_batch or batch_size, min(seq_len or count.max_tokens, cap)
    mean = max(1, min(cap, round(count.tokens / max(count.examples, 1))))
    return max(1, min(batch_size, tokens_per_batch // mean)), mean


def _throughput(spec: ModelSpec, setup: TrainSetup, chosen: price_data.Gpu, calibrate: bool):
    if not calibrate:
        peak = (chosen.peak_tflops, chosen.mfu_low, chosen.mfu_high)
        return default_throughput(*peak, setup.method, chosen.name, setup.weights), None
    import torch

    from tunelab.cost.calibrate import calibrate as run_calibration

    if torch.cuda.is_available() == chosen.is_cpu:
        here = "a CUDA GPU" if torch.cuda.is_available() else "the CPU"
        raise ConfigError(
            f"--calibrate measures this machine ({here}), not {chosen.name}",
            "drop --gpu when calibrating here; run --calibrate on the GPU machine for GPU figures",
        )
    measured = run_calibration(spec, setup.method, setup.micro_batch, setup.seq_len, setup.lora_r)
    return calibrated_throughput(measured["flops_per_second"]), measured


def settings_from_config(config) -> dict:
    """estimate() arguments from a RunConfig (model, method, data, train and method settings)."""
    from pathlib import Path

    from tunelab.methods.adapter import BLOCKS_PER_PLACEMENT

    folders = [Path(p) for p in config.data.path]
    targets = config.lora.target_modules
    return {
        "model": config.model.name,
        "method": config.method or "lora",
        "weights": config.weights,
        "data": next((p for p in folders if p.is_dir() or p.suffix == ".jsonl"), None),
        "epochs": config.train.epochs,
        "micro_batch": config.train.micro_batch_size,
        "gradient_checkpointing": config.train.gradient_checkpointing,
        "lora_r": config.lora.r,
        "lora_dropout": config.lora.dropout,
        "lora_targets": (targets,) if isinstance(targets, str) else tuple(targets),
        "virtual_tokens": config.prompt.num_virtual_tokens,
        "adapter_reduction": config.adapter.reduction_factor,
        "adapter_blocks": BLOCKS_PER_PLACEMENT[config.adapter.placement],
        "tokens_per_batch": config.train.tokens_per_batch,
        "max_length": config.model.max_length,
        "batch_size": config.train.batch_size,
        "packing": config.train.packing,
    }


def actual_next_to_estimate(
    planned: dict,
    train_seconds: float | None = None,
    peak_memory_gb: float | None = None,
    train_tokens: int | None = None,
    memory_measured_as: str | None = None,
) -> dict:
    """The figures a finished run measured beside what the planner said, for eval.json and the report."""
    hours = planned.get("hours") or {"low": 0.0, "high": 0.0}
    return {
        "estimate": {
            "train_tokens": planned["train_tokens"],
            "per_device_memory_gb": planned["per_device_memory_gb"],
            "hours": hours,
            "cost_usd": planned["cost_usd"],
            "gpu": planned.get("gpu"),
        },
        "actual": {
            "train_tokens": train_tokens,
            "peak_memory_gb": peak_memory_gb,
            "memory_measured_as": memory_measured_as,
            "hours": round(train_seconds / 3600, 4) if train_seconds is not None else None,
        },
    }


def _openai_estimate(openai: dict, prices: dict, count: TokenCount, epochs: float | None) -> dict:
    epochs = epochs or prices["openai"]["default_epochs"]
    train_tokens = round(count.tokens * epochs)
    cost = round(train_tokens / 1e6 * openai["training"], 2)
    return {
        "model": openai["name"],
        "backend": "openai",
        "method": "openai-fine-tuning",
        "examples": count.examples,
        "tokens_per_epoch": count.tokens,
        "epochs": epochs,
        "train_tokens": train_tokens,
        "token_count": count.method,
        "per_device_memory_gb": 0.0,
        "fits": True,
        "verdict": "runs on OpenAI (no local hardware)",
        "fix": "",
        "gpu_hours": {"low": 0.0, "high": 0.0},
        "cost_usd": {"low": cost, "high": cost},
        "price_per_1m_training_tokens": openai["training"],
        "inference_per_1m": {"input": openai["input"], "output": openai["output"]},
        "assumptions": [count.note, f"prices: {prices['openai']['source']} ({prices['openai']['as_of']})"],
    }


def planned_vs_actual(config, steps: int, seconds: float, tokens_seen: int, memory, n_train: int) -> dict:
    """The planner's estimate for the steps a run took, beside what the run measured (`memory` is the
    training's TrainingMemory)."""
    epochs_run = min(config.train.epochs, steps * config.train.batch_size / max(n_train, 1))
    planned = estimate(**{**settings_from_config(config), "epochs": epochs_run})
    return actual_next_to_estimate(planned, seconds, round(memory.peak_gb, 3), tokens_seen, memory.measured_as)
