"""Full fine-tuning: every weight trains. A lower default rate limits forgetting."""

from tunelab.methods.base import Method
from tunelab.methods.weights import MODEL_FOLDER

FULL = Method(
    name="full",
    summary="every weight of the base trains",
    apply=lambda model, context: model,
    trainable_params=lambda spec, setup: spec.params,
    weights=MODEL_FOLDER,
    learning_rate=2e-5,
    trains_base=True,
    lighter=("lora", "qlora"),
)
