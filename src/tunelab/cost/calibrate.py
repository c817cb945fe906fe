"""Calibration: time a few forward+backward+optimizer steps of the model's shape on this device.

The measured FLOP/s (FLOPs counted with the same formula as the estimate) replaces the default
MFU. Models too large for this machine are calibrated on a slice of their blocks, which keeps the
matrix sizes (and so the achieved FLOP/s) of the real model.
"""

import time
from dataclasses import replace

from tunelab.cost.compute import flops_per_token
from tunelab.methods.registry import get_method
from tunelab.models.catalogue import ModelSpec, shape_params

MAX_CALIBRATION_PARAMS = 400e6
MAX_CALIBRATION_TOKENS = 2048


def calibration_spec(spec: ModelSpec) -> ModelSpec:
    """The model itself when it is small enough, else fewer blocks and a capped vocabulary."""
    if spec.params <= MAX_CALIBRATION_PARAMS:
        return spec
    vocab = min(spec.vocab, 32000)
    layers = max(1, int((MAX_CALIBRATION_PARAMS - vocab * spec.hidden * 2) // spec.block_params()))
    small = replace(spec, layers=min(spec.layers, layers), vocab=vocab, local_path=None)
    return replace(small, params=float(shape_params(small)))


def _build_model(spec: ModelSpec, method: str, lora_r: int):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

    if spec.local_path:
        config = AutoConfig.from_pretrained(spec.local_path)
    else:
        config = LlamaConfig(
            vocab_size=spec.vocab,
            hidden_size=spec.hidden,
            intermediate_size=spec.intermediate,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            num_key_value_heads=spec.kv_heads,
            head_dim=spec.head_dim or spec.hidden // spec.heads,
            tie_word_embeddings=spec.tied,
            max_position_embeddings=max(spec.context, 4096),
        )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    if not get_method(method).trains_base:  # LoRA stands in for every adapter method
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05, target_modules="all-linear")
        )
    return model.train()


def calibrate(spec: ModelSpec, method: str, micro_batch: int, seq_len: int, lora_r: int = 16, steps: int = 2) -> dict:
    """Measured FLOP/s of training steps on this machine's default device (CPU unless CUDA is present)."""
    import torch

    small = calibration_spec(spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _build_model(small, method, lora_r).to(device)
    rows = max(1, min(micro_batch, MAX_CALIBRATION_TOKENS // seq_len))
    length = min(seq_len, MAX_CALIBRATION_TOKENS)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, small.vocab, (rows, length), device=device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    )
    timings = []
    for _ in range(steps + 1):  # the first step warms up kernels and allocates optimizer state
        start = time.perf_counter()
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    seconds = sum(timings[1:]) / steps
    flops = flops_per_token(small, method, length) * rows * length
    return {
        "device": device,
        "flops_per_second": flops / seconds,
        "seconds_per_step": seconds,
        "tokens_per_step": rows * length,
        "layers_used": small.layers,
        "layers": spec.layers,
        "steps": steps,
    }
