"""Bottleneck adapters (Houlsby / Pfeiffer) after the blocks' outputs; see bottleneck.py for the modules."""

from tunelab.errors import ConfigError
from tunelab.methods.base import ADAPTER_BYTES, BuildContext, Method
from tunelab.methods.weights import BOTTLENECK_ADAPTER

BLOCKS_PER_PLACEMENT = {"pfeiffer": 1, "houlsby": 2}  # adapted outputs per transformer block


def apply_adapter(model, context: BuildContext):
    from tunelab.methods import bottleneck

    settings = context.config.adapter
    try:
        bottleneck.add_adapters(model, settings.reduction_factor, settings.placement, settings.activation)
    except ValueError as exc:
        raise ConfigError(f"method adapter: {exc}", "use lora for this architecture") from None
    return model


def adapter_trainable(spec, setup) -> float:
    size = max(1, spec.hidden // setup.adapter_reduction)
    return spec.layers * setup.adapter_blocks * (2 * spec.hidden * size + size + spec.hidden)


def adapter_activations(spec, setup) -> float:
    size = max(1, spec.hidden // setup.adapter_reduction)
    return setup.adapter_blocks * (spec.hidden + 2 * size) * ADAPTER_BYTES


ADAPTER = Method(
    name="adapter",
    settings=("adapter",),
    summary="bottleneck adapters after attention and/or MLP (adapter.placement, adapter.reduction_factor)",
    apply=apply_adapter,
    trainable_params=adapter_trainable,
    weights=BOTTLENECK_ADAPTER,
    activation_extra=adapter_activations,
    merge_refusal="bottleneck adapters are non-linear modules (down, activation, up), not weight deltas",
)
