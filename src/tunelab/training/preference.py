"""Preference pairs as training examples, and the losses that learn from them (DPO, IPO, hinge, ORPO, SimPO).

A pair is two examples that share the prompt: prompt + chosen reply, prompt + rejected reply, with
the loss on the final reply only (earlier assistant turns of the prompt are context). One forward
pass scores both sides: the chosen rows come first in the batch, the rejected rows after them.
The reference policy of DPO is the base model itself: adapters are switched off for its pass, and
for full fine-tuning its log-probabilities are computed once before training (no second model).
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from tunelab.progress import track
from tunelab.training.batches import IGNORE, Example, collate_padded, encode_chat
from tunelab.training.losses import token_logps


@dataclass
class PairExample:
    chosen: Example
    rejected: Example
    reference: tuple[float, float] | None = None  # the reference policy's summed log-probabilities (full weights)

    @property
    def input_ids(self) -> list[int]:  # for token counts (dry run, planner): the longer side
        return max(self.chosen.input_ids, self.rejected.input_ids, key=len)


def encode_pair(record: dict, tokenizer, max_length: int) -> PairExample:
    prompt = [dict(m, weight=0) if m["role"] == "assistant" else m for m in record["prompt"]]
    return PairExample(
        encode_chat(tokenizer, prompt + [record["chosen"]], "assistant", max_length, record.get("tools")),
        encode_chat(tokenizer, prompt + [record["rejected"]], "assistant", max_length, record.get("tools")),
    )


def encode_pairs(records: list[dict], tokenizer, context, name: str) -> list[PairExample]:
    return [encode_pair(r, tokenizer, context.max_length) for r in track(records, f"Tokenising {name} pairs")]


def collate_pairs(pairs: list[PairExample], pad_id: int) -> dict:
    batch = collate_padded([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id, "causal-lm")
    if all(p.reference is not None for p in pairs):
        batch["reference"] = torch.tensor([p.reference[0] for p in pairs] + [p.reference[1] for p in pairs])
    return batch


def pair_batches(pad_id: int):
    """Forward passes of at most micro_batch_size pairs whose padded rows (both sides) stay within the token
    budget, so long pairs get smaller passes instead of a memory peak; similar lengths share a pass."""

    def batches(pairs: list[PairExample], micro_batch_size: int, token_budget: int) -> list[dict]:
        return [collate_pairs(group, pad_id) for group in _budgeted(pairs, micro_batch_size, token_budget)]

    return batches


def _budgeted(pairs: list[PairExample], micro_batch_size: int, token_budget: int) -> list[list[PairExample]]:
    groups, current, width = [], [], 0
    for pair in sorted(pairs, key=lambda p: len(p.input_ids)):
        longer = max(width, len(pair.input_ids))
        if current and (len(current) >= micro_batch_size or 2 * (len(current) + 1) * longer > token_budget):
            groups.append(current)
            current, longer = [], len(pair.input_ids)
        current.append(pair)
        width = longer
    return groups + [current] if current else groups


def pairs_in(batch: dict) -> int:
    return batch["input_ids"].shape[0] // 2


def sequence_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-probability of the trained tokens, and how many there are."""
    logps, rows = token_logps(model, batch)
    n_rows = batch["targets"].shape[0]
    summed = torch.zeros(n_rows, device=logps.device, dtype=logps.dtype).index_add(0, rows, logps)
    counts = torch.zeros(n_rows, device=rows.device, dtype=torch.long).index_add(0, rows, torch.ones_like(rows))
    return summed, counts.clamp(min=1)


@dataclass
class PairScores:
    """Chosen and rejected log-probabilities of one batch: summed, and per trained token."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_mean: torch.Tensor
    rejected_mean: torch.Tensor

    @classmethod
    def of(cls, summed: torch.Tensor, counts: torch.Tensor) -> "PairScores":
        half = summed.shape[0] // 2
        means = summed / counts
        return cls(summed[:half], summed[half:], means[:half], means[half:])


def reference_scores(reference_model, batch: dict) -> PairScores:
    """The reference policy's scores: precomputed (full weights) or the base with adapters switched off."""
    with torch.no_grad():
        if "reference" in batch:
            counts = (batch["targets"] != IGNORE).sum(1).clamp(min=1)
            return PairScores.of(batch["reference"].to(counts.device, torch.float32), counts)
        with reference_model.disable_adapter():
            return PairScores.of(*sequence_logps(reference_model, batch))


@dataclass
class StepMetrics:
    """Sums over the pairs of the current optimizer step; `pop()` gives their means and starts afresh."""

    sums: dict = field(default_factory=dict)
    pairs: int = 0

    def add(self, **values: torch.Tensor) -> None:
        if not torch.is_grad_enabled():  # validation passes are not training metrics
            return
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value.detach().float().sum()
        self.pairs += next(iter(values.values())).numel()

    def pop(self) -> dict:
        found = {name: float(total) / max(self.pairs, 1) for name, total in self.sums.items()}
        self.sums, self.pairs = {}, 0
        return found


def dpo_pair_losses(policy: PairScores, reference: PairScores, loss: str, beta: float) -> torch.Tensor:
    """Per pair: sigmoid (DPO), ipo (on per-token means, Azar et al.) or hinge (SLiC) on the reward margin."""
    if loss == "ipo":
        margin = (policy.chosen_mean - reference.chosen_mean) - (policy.rejected_mean - reference.rejected_mean)
        return (margin - 1 / (2 * beta)) ** 2
    margin = (policy.chosen - reference.chosen) - (policy.rejected - reference.rejected)
    if loss == "hinge":
        return torch.relu(1 - beta * margin)
    return -F.logsigmoid(beta * margin)


def orpo_pair_losses(policy: PairScores, weight: float) -> torch.Tensor:
    """NLL of the chosen reply plus the weighted log odds-ratio loss (Hong et al., 2024); no reference."""
    log_odds = _log_odds(policy.chosen_mean) - _log_odds(policy.rejected_mean)
    return -policy.chosen_mean - weight * F.logsigmoid(log_odds)


def _log_odds(mean_logp: torch.Tensor) -> torch.Tensor:
    return mean_logp - torch.log1p(-torch.exp(mean_logp).clamp(max=1 - 1e-6))


def simpo_pair_losses(policy: PairScores, beta: float, gamma: float) -> torch.Tensor:
    """Length-normalised reward margin against a target margin (Meng et al., 2024); no reference."""
    return -F.logsigmoid(beta * (policy.chosen_mean - policy.rejected_mean) - gamma)
