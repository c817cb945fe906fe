"""What the loop optimises, handed to it from outside: a method chooses its objective.

An objective says how one optimizer step's examples become forward passes, the summed loss of a
pass (`objective(model, batch) -> (summed loss, trained targets)`), and the loss validation
reports. The loop divides a step's summed loss by the step's target count, which it reads from
the batches before the forward pass (`objective.targets`), so accumulation stays exact.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch

from tunelab.training.batches import Example, micro_batches, trained_tokens
from tunelab.training.losses import LMLoss, classification_loss, distill_loss, summed_token_loss

LossFn = Callable[[object, dict], torch.Tensor]


@dataclass(frozen=True)
class Objective:
    batches: Callable[[list[Example], int, int], list[dict]]  # (examples, micro_batch_size, token_budget) -> passes
    loss: LossFn
    validation_loss: LossFn
    targets: Callable[[dict], int] = trained_tokens
    frozen_models: tuple = field(default=())  # models the loss holds besides the trained one (a teacher)
    metrics: Callable[[], dict] | None = None  # the loss's own figures for the step just taken (logged beside loss)
    validation_batches: Callable[[list[Example], int, int], list[dict]] | None = None  # default: batches
    validation_targets: Callable[[dict], int] | None = None  # default: targets
    validation_metrics: Callable[[], dict] | None = None  # the validation loss's own figures (logged as eval_*)

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, int]:
        return self.loss(model, batch), self.targets(batch)


def collator(task: str, packing: bool, pad_id: int) -> Callable[[list[Example], int, int], list[dict]]:
    def batches(examples: list[Example], micro_batch_size: int, token_budget: int) -> list[dict]:
        return micro_batches(
            examples,
            task,
            packing=packing,
            token_budget=token_budget,
            micro_batch_size=micro_batch_size,
            pad_id=pad_id,
        )

    return batches


def supervised(task: str, *, packing: bool, pad_id: int, class_weights: torch.Tensor | None = None) -> Objective:
    """Cross-entropy on the trained targets (class-weighted for classification, where weights are given)."""
    if task == "classification":
        loss = partial(classification_loss, class_weights=class_weights)
        return Objective(collator(task, False, pad_id), loss, loss)
    loss, validation = LMLoss(), LMLoss()
    return Objective(
        collator(task, packing, pad_id),
        loss,
        validation,
        metrics=loss.pop_metrics,
        validation_metrics=validation.pop_metrics,
    )


def distillation(teacher, temperature: float, alpha: float, *, packing: bool, pad_id: int) -> Objective:
    """Soft targets from a frozen teacher mixed with the hard labels; validation reports the plain LM loss,
    so it stays comparable with the base model's."""
    loss = partial(distill_loss, teacher=teacher, temperature=temperature, alpha=alpha)
    return Objective(collator("causal-lm", packing, pad_id), loss, summed_token_loss, frozen_models=(teacher,))
