"""Distillation: the whole student trains towards a frozen teacher's softened distribution and the labels."""

from tunelab.methods.base import Method, ObjectiveContext
from tunelab.methods.full import FULL


def load_teacher(name: str | None, device: str):
    from tunelab.models.loading import default_model, load_model

    teacher = load_model(name or default_model("causal-lm"), "causal-lm", device=device).to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def distill_objective(context: ObjectiveContext):
    from tunelab.training.objectives import distillation

    settings = context.config.distill
    teacher = load_teacher(settings.teacher, context.device)
    return distillation(teacher, settings.temperature, settings.alpha, packing=context.packing, pad_id=context.pad_id)


DISTILL = Method(
    name="distill",
    settings=("distill",),
    summary="the whole model learns from a frozen teacher (distill.teacher, distill.temperature, distill.alpha)",
    apply=FULL.apply,
    trainable_params=FULL.trainable_params,
    weights=FULL.weights,
    learning_rate=FULL.learning_rate,
    trains_base=True,
    teacher=True,
    objective=distill_objective,
    lighter=FULL.lighter,
)
