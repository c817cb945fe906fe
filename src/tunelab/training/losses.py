"""Loss of one forward pass, as a sum over trained targets (the loop divides by the step's count).

Summing per pass and dividing once per optimizer step makes gradient accumulation exact: 8
examples in one pass or in 4 passes of 2 give the same loss. For causal LMs the vocabulary
projection runs only at positions that are trained (`logits_to_keep`), which skips most of the
largest matmul when the loss is on assistant tokens only.
"""

import torch
import torch.nn.functional as F

from tunelab.training.batches import IGNORE, trained_tokens


def lm_logits_at_targets(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets at trained positions only."""
    targets = batch["targets"]
    if targets.shape[0] == 1 and "position_ids" in batch:  # packed row: project only where trained
        keep = (targets[0] != IGNORE).nonzero().squeeze(-1)
        out = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False
        )
        return out.logits[0], targets[0, keep]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    logits = out.logits[:, -targets.shape[1] :]  # prompt tuning prepends virtual-token positions
    mask = targets != IGNORE
    return logits[mask], targets[mask]


def pass_loss(model, batch: dict, task: str, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Summed loss of one micro-batch."""
    if task == "classification":
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return F.cross_entropy(logits.float(), batch["targets"], weight=class_weights, reduction="sum")
    if task == "seq2seq":
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["targets"])
        return F.cross_entropy(
            out.logits.flatten(0, 1).float(), batch["targets"].flatten(), ignore_index=IGNORE, reduction="sum"
        )
    logits, targets = lm_logits_at_targets(model, batch)
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def distill_loss(student, teacher, batch: dict, temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(teacher || student) at temperature T + (1 - alpha) * hard-label CE, summed."""
    student_logits, targets = lm_logits_at_targets(student, batch)
    with torch.no_grad():
        teacher_logits, _ = lm_logits_at_targets(teacher, batch)
    hard = F.cross_entropy(student_logits.float(), targets, reduction="sum")
    soft = (
        F.kl_div(
            F.log_softmax(student_logits.float() / temperature, -1),
            F.log_softmax(teacher_logits.float() / temperature, -1),
            log_target=True,
            reduction="sum",
        )
        * temperature**2
    )
    return alpha * soft + (1 - alpha) * hard


def token_accuracy(model, batch: dict) -> tuple[int, int]:
    """Correct next-token predictions and trained targets in one causal-LM batch."""
    logits, targets = lm_logits_at_targets(model, batch)
    return int((logits.argmax(-1) == targets).sum()), int(targets.numel())


def mean_loss(model, passes, task: str, class_weights=None) -> float:
    """Mean loss per trained target over batches already on the model's device (no gradients; the
    model's train/eval mode is restored). Validation in the loop and evaluation of any model share it."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in passes:
            total += float(pass_loss(model, batch, task, class_weights))
            count += trained_tokens(batch)
    model.train(was_training)
    return total / max(count, 1)
