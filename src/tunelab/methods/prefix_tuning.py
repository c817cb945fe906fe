"""Prefix tuning: learned key/value prefixes in every layer; the base stays frozen."""

from tunelab.methods.base import BuildContext, Method
from tunelab.methods.peft_methods import apply_peft, task_type
from tunelab.methods.weights import PEFT_ADAPTER


def apply_prefix_tuning(model, context: BuildContext):
    import peft

    config = peft.PrefixTuningConfig(
        num_virtual_tokens=context.config.prompt.num_virtual_tokens, task_type=task_type(context)
    )
    return apply_peft(model, config, "prefix-tuning")


PREFIX_TUNING = Method(
    name="prefix-tuning",
    settings=("prompt",),
    summary="learned key/value prefixes in every layer (prompt.num_virtual_tokens)",
    apply=apply_prefix_tuning,
    trainable_params=lambda spec, setup: setup.virtual_tokens * spec.layers * 2 * spec.kv_dim,
    weights=PEFT_ADAPTER,
    virtual_tokens=True,
    merge_refusal="prefix tuning adds learned key/value prefixes to every layer, not weight deltas",
)
