"""Numerics of a step: autocast dtype, loss scaling, NEFTune noise.

On CPU fp32 is the default because bf16 autocast measured slower than fp32 on CPUs without AMX
(see BENCHMARKS.md); on GPUs bf16 where supported, else fp16 with a loss scaler.
"""

import contextlib
import math

import torch

from tunelab.errors import HardwareError


def resolve_precision(precision: str, device: str) -> str:
    cuda = device.startswith("cuda")
    if precision == "auto":
        return ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision == "fp16" and not cuda:
        raise HardwareError("train.precision fp16 needs a CUDA GPU", "use fp32 (or bf16) on the CPU")
    return precision


def autocast(precision: str, device: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


def loss_scaler(precision: str, device: str):
    """fp16 needs loss scaling against gradient underflow; bf16 and fp32 do not."""
    return torch.amp.GradScaler("cuda", enabled=precision == "fp16" and device.startswith("cuda"))


def add_neftune(model, alpha: float):
    """NEFTune: uniform noise of scale alpha/sqrt(length*dim) on input embeddings, in training only."""
    embeddings = model.get_input_embeddings()

    def noisy(module, inputs, output):
        if not module.training:
            return output
        scale = alpha / math.sqrt(output.shape[-2] * output.shape[-1])
        return output + torch.empty_like(output).uniform_(-scale, scale)

    return embeddings.register_forward_hook(noisy)
