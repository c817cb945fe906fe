"""IA3: learned vectors that rescale keys, values and the MLP's inner activations."""

from tunelab.methods.base import BuildContext, Method
from tunelab.methods.peft_methods import apply_peft, task_type
from tunelab.methods.weights import PEFT_ADAPTER


def apply_ia3(model, context: BuildContext):
    import peft

    return apply_peft(model, peft.IA3Config(task_type=task_type(context)), "ia3")


IA3 = Method(
    name="ia3",
    summary="learned rescaling vectors on keys, values and MLP activations",
    apply=apply_ia3,
    trainable_params=lambda spec, setup: spec.layers * (2 * spec.kv_dim + spec.intermediate),
    weights=PEFT_ADAPTER,
    activation_extra=lambda spec, setup: (2 * spec.kv_dim + spec.intermediate) * setup.compute_bytes,
)
