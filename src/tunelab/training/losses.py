"""Losses of one forward pass, as sums over trained targets (the loop divides by the step's count).

Summing per pass and dividing once per optimizer step makes gradient accumulation exact: 8
examples in one pass or in 4 passes of 2 give the same loss. For causal LMs the vocabulary
projection runs only at positions that are trained (`logits_to_keep`), which skips most of the
largest matmul when the loss is on assistant tokens only.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tunelab.training.batches import IGNORE


def lm_logits_at_targets(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits and targets at trained positions only, and the batch row each position belongs to."""
    targets = batch["targets"]
    if getattr(_unwrapped(model).config, "is_encoder_decoder", False):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=targets).logits
    elif targets.shape[0] == 1 and "position_ids" in batch:  # packed row: project only where trained
        keep = (targets[0] != IGNORE).nonzero().squeeze(-1)
        out = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False
        )
        return out.logits[0], targets[0, keep], torch.zeros_like(keep)
    elif _prepends_virtual_tokens(model):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
        logits = out.logits[:, -targets.shape[1] :]  # prompt tuning prepends virtual-token positions
    else:  # padded rows: project only the span of positions that any row trains (long prompts cost no logits)
        mask = targets != IGNORE
        trained = mask.any(0).nonzero().squeeze(-1)
        if trained.numel() == 0:
            trained = torch.zeros(1, dtype=torch.long, device=targets.device)
        span = torch.arange(int(trained[0]), int(trained[-1]) + 1, device=targets.device)
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=span, use_cache=False
        )
        kept = mask[:, span]
        return out.logits[kept], targets[:, span][kept], kept.nonzero()[:, 0]
    mask = targets != IGNORE
    return logits[mask], targets[mask], mask.nonzero()[:, 0]


def _unwrapped(model):
    """The model under a data-parallel wrapper (DDP/FSDP keep it as .module): its config says what it is."""
    return getattr(model, "module", model)


def _prepends_virtual_tokens(model) -> bool:
    """PEFT prompt learning (prompt or prefix tuning) changes what the logits line up with."""
    config = getattr(_unwrapped(model), "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def token_logps(model, batch: dict, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the trained tokens (logits over `temperature`, for losses that score a sampling
    distribution), flattened, and the batch row of each. Preference and reinforcement losses share it."""
    logits, targets, rows = lm_logits_at_targets(model, batch)
    scaled = logits.float() / temperature if temperature > 0 else logits.float()
    return torch.log_softmax(scaled, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1), rows


@dataclass
class TokenStats:
    """Per batch row: summed next-token loss over trained targets, their count, and correct argmax predictions."""

    loss: torch.Tensor
    count: torch.Tensor
    correct: torch.Tensor


def token_statistics(model, batch: dict) -> TokenStats:
    """The one place trained-token statistics are computed: loop validation, evaluation and the service's
    accuracies all read them, so prompt tuning's virtual-token offset and packing are handled once."""
    logits, targets, rows = lm_logits_at_targets(model, batch)
    n_rows = batch["targets"].shape[0]
    losses = F.cross_entropy(logits.float(), targets, reduction="none")
    hits = (logits.argmax(-1) == targets).to(losses.dtype)
    per_row = torch.zeros(n_rows, device=losses.device, dtype=losses.dtype)
    return TokenStats(
        loss=per_row.index_add(0, rows, losses),
        count=torch.zeros(n_rows, device=rows.device, dtype=torch.long).index_add(0, rows, torch.ones_like(rows)),
        correct=per_row.index_add(0, rows, hits),
    )


def summed_token_loss(model, batch: dict) -> torch.Tensor:
    """Validation's LM loss: the same sum over trained targets, read from the shared statistics."""
    return token_statistics(model, batch).loss.sum()


class LMLoss:
    """Summed next-token cross-entropy of causal-LM or seq2seq micro-batches, counting the step's correctly predicted
    targets on the way (one argmax of logits already computed), so every step's record carries its token accuracy
    (OpenAI's train_mean_token_accuracy)."""

    def __init__(self):
        self.correct, self.count = 0, 0

    def __call__(self, model, batch: dict) -> torch.Tensor:
        logits, targets, _ = lm_logits_at_targets(model, batch)
        with torch.no_grad():
            self.correct = self.correct + (logits.argmax(-1) == targets).sum()  # a tensor: no device sync per pass
        self.count += targets.numel()
        return F.cross_entropy(logits.float(), targets, reduction="sum")

    def pop_metrics(self) -> dict:
        accuracy = float(self.correct) / self.count if self.count else None
        self.correct, self.count = 0, 0
        return {"mean_token_accuracy": accuracy}


def classification_loss(model, batch: dict, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Summed (optionally class-weighted) cross-entropy of one classification micro-batch."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return F.cross_entropy(logits.float(), batch["targets"], weight=class_weights, reduction="sum")


def distill_loss(student, batch: dict, *, teacher, temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(teacher || student) at temperature T + (1 - alpha) * hard-label CE, summed."""
    student_logits, targets, _ = lm_logits_at_targets(student, batch)
    with torch.no_grad():
        teacher_logits, _, _ = lm_logits_at_targets(teacher, batch)
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


def mean_loss(model, passes, loss, targets) -> float:
    """Mean of `loss(model, batch)` per `targets(batch)` over batches already on the model's device (no
    gradients; the model's train/eval mode is restored). Validation in the loop and evaluation of any
    model share it."""
    was_training = model.training
    model.eval()
    total, count = None, 0
    with torch.no_grad():
        for batch in passes:
            summed = loss(model, batch).detach()
            total = summed if total is None else total + summed
            count += targets(batch)
    model.train(was_training)
    return float(total) / max(count, 1) if total is not None else 0.0
