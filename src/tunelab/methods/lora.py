"""LoRA: low-rank updates beside the chosen linear layers (DoRA and rsLoRA as options)."""

from tunelab.methods.base import ADAPTER_BYTES, BuildContext, Method
from tunelab.methods.peft_methods import apply_peft, task_type
from tunelab.methods.weights import PEFT_ADAPTER


def lora_config(context: BuildContext):
    import peft

    lora = context.config.lora
    return peft.LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        use_dora=lora.use_dora,
        use_rslora=lora.use_rslora,
        task_type=task_type(context),
    )


def apply_lora(model, context: BuildContext):
    return apply_peft(model, lora_config(context), "lora")


def adapted_shapes(spec, setup) -> list[tuple[str, int, int]]:
    """The (name, in, out) linear layers of one block that lora.target_modules selects."""
    shapes = spec.linear_shapes()
    if "all-linear" in setup.lora_targets:
        return shapes
    return [s for s in shapes if any(t == s[0] or t.endswith("." + s[0]) for t in setup.lora_targets)]


def lora_trainable(spec, setup) -> float:
    return spec.layers * sum(setup.lora_r * (n_in + n_out) for _, n_in, n_out in adapted_shapes(spec, setup))


def lora_activations(spec, setup) -> float:
    """Per block: each adapted layer's saved fp32 input (a dropped-out copy and its mask when dropout is on)."""
    shapes = adapted_shapes(spec, setup)
    if setup.lora_dropout > 0:  # mask: bool on CUDA, float on CPU
        mask_bytes = 1 if setup.on_gpu else ADAPTER_BYTES
        return sum((ADAPTER_BYTES + mask_bytes) * n_in + setup.lora_r * ADAPTER_BYTES for _, n_in, _ in shapes)
    distinct_inputs = {n_in if name not in ("o_proj", "down_proj") else -n_in for name, n_in, _ in shapes}
    return sum(abs(n) for n in distinct_inputs) * ADAPTER_BYTES + len(shapes) * setup.lora_r * ADAPTER_BYTES


LORA = Method(
    name="lora",
    settings=("lora",),
    summary="low-rank adapters beside the linear layers (lora.use_dora, lora.use_rslora)",
    apply=apply_lora,
    trainable_params=lora_trainable,
    weights=PEFT_ADAPTER,
    activation_extra=lora_activations,
    lighter=("qlora",),
)
