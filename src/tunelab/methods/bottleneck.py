"""Bottleneck adapters (Houlsby / Pfeiffer): down-projection, non-linearity, up-projection, residual.

The `adapters` library pins transformers 4.x, so this is a small injection of our own: each
adapter wraps a block's output module, is initialised to the identity (up-projection zero), and
saves as safetensors plus a JSON description that `load_adapters` re-applies to a fresh base.
"""

import json
from pathlib import Path

import torch
from torch import nn

ADAPTER_FILE = "bottleneck_adapter.safetensors"
ADAPTER_CONFIG = "bottleneck_adapter.json"
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
# Module-name suffixes of block outputs, per placement (covers LLaMA/Qwen/Gemma/Mistral, GPT-2, BERT, T5).
TARGETS = {
    "pfeiffer": ("mlp.down_proj", "mlp.c_proj", "output.dense", "DenseReluDense.wo", "fc2"),
    "houlsby": (
        "self_attn.o_proj",
        "attn.c_proj",
        "attention.output.dense",
        "SelfAttention.o",
        "out_proj",
        "mlp.down_proj",
        "mlp.c_proj",
        "output.dense",
        "DenseReluDense.wo",
        "fc2",
    ),
}


class BottleneckAdapter(nn.Module):
    """Wraps a module: y = f(x); return y + up(act(down(y)))."""

    def __init__(self, wrapped: nn.Module, hidden_size: int, bottleneck: int, activation: str):
        super().__init__()
        self.wrapped = wrapped
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, *args, **kwargs):
        hidden = self.wrapped(*args, **kwargs)
        return hidden + self.up(self.act(self.down(hidden.to(self.down.weight.dtype)))).to(hidden.dtype)


def _output_size(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.out_features
    weight = getattr(module, "weight", None)  # GPT-2 Conv1D stores (in, out)
    return weight.shape[-1] if weight is not None and weight.dim() == 2 else None


def target_names(model: nn.Module, placement: str) -> list[str]:
    return [
        name
        for name, module in model.named_modules()
        if name.endswith(TARGETS[placement])
        and _output_size(module)
        and not isinstance(module, BottleneckAdapter)
        and ".wrapped" not in name
    ]


def add_adapters(model: nn.Module, reduction_factor: int, placement: str, activation: str) -> list[str]:
    """Freeze the base, insert adapters after the chosen blocks; returns the wrapped module names."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    names = target_names(model, placement)
    if not names:
        raise ValueError(f"no block outputs found for {placement} adapters in {type(model).__name__}")
    for name in names:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        wrapped = getattr(parent, child_name)
        size = _output_size(wrapped)
        adapter = BottleneckAdapter(wrapped, size, max(1, size // reduction_factor), activation)
        adapter.to(device=next(wrapped.parameters()).device)
        setattr(parent, child_name, adapter)
    _unfreeze_heads(model)
    model._tunelab_adapter = {
        "names": names,
        "reduction_factor": reduction_factor,
        "placement": placement,
        "activation": activation,
    }
    return names


def _unfreeze_heads(model: nn.Module) -> None:
    """A fresh classification head must learn too."""
    for name, parameter in model.named_parameters():
        if name.startswith(("classifier", "score")):
            parameter.requires_grad_(True)


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def save_adapters(model: nn.Module, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(model), str(folder / ADAPTER_FILE))
    (folder / ADAPTER_CONFIG).write_text(json.dumps(model._tunelab_adapter, indent=2))


def load_adapters(model: nn.Module, folder: Path) -> nn.Module:
    from safetensors.torch import load_file

    settings = json.loads((folder / ADAPTER_CONFIG).read_text())
    add_adapters(model, settings["reduction_factor"], settings["placement"], settings["activation"])
    missing = set(adapter_state(model)) - set(state := load_file(str(folder / ADAPTER_FILE)))
    if missing:
        raise ValueError(f"adapter file lacks {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)
    return model


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).exists()
