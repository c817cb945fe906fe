"""Group-relative policy optimisation (GRPO): what OpenAI calls reinforcement fine-tuning.

For each prompt of a step the policy samples k completions; a grader scores them; each reward
is normalised within its group (minus the group mean, over the group's standard deviation), so
the policy learns which of its own answers were better than its average. The loss per completion
token is the clipped policy-gradient term plus a KL penalty to the reference policy (the base:
adapters switched off, or a frozen copy for full weights). Groups whose k rewards are all equal
teach nothing and are counted.
"""

from dataclasses import dataclass, field

import torch

from tunelab.data.tools import render
from tunelab.progress import track
from tunelab.training.batches import IGNORE, Example, collate_padded
from tunelab.training.losses import token_logps

ADVANTAGE_EPS = 1e-4


@dataclass
class PromptExample:
    input_ids: list[int]  # the prompt rendered for generation (the assistant turn opened)
    record: dict  # the item graders read as {{item.*}}


def encode_prompts(records: list[dict], tokenizer, context, name: str) -> list[PromptExample]:
    examples = []
    for record in track(records, f"Tokenising {name} prompts"):
        text = render(tokenizer, record["messages"], record.get("tools"), add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        examples.append(PromptExample(ids[-context.max_length :], record))
    return examples


@dataclass
class Rollouts:
    """One step's sampled completions: token ids per completion, their prompts' indexes, texts and rewards."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    group: list[int]
    rewards: torch.Tensor
    errors: dict = field(default_factory=dict)

    def advantages(self, k: int) -> torch.Tensor:
        grouped = self.rewards.view(-1, k)
        return ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + ADVANTAGE_EPS)).flatten()

    def flat_groups(self, k: int) -> float:
        """Share of groups whose rewards are all equal (nothing to learn from them)."""
        grouped = self.rewards.view(-1, k)
        return float((grouped.max(1).values == grouped.min(1).values).float().mean())


def rollout(
    model, tokenizer, prompts: list[PromptExample], grader, *, k: int, max_new_tokens: int, temperature: float
) -> Rollouts:
    """k sampled completions per prompt (k=1 and greedy when temperature is 0), scored by the grader."""
    from tunelab.graders.report import score_all
    from tunelab.inference.generate import sample_completions

    completions = sample_completions(
        model, tokenizer, [p.input_ids for p in prompts], k=k, max_new_tokens=max_new_tokens, temperature=temperature
    )
    group = [i for i in range(len(prompts)) for _ in range(k)]
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in completions]
    report = score_all(grader, texts, [prompts[i].record for i in group])
    return Rollouts(
        [prompts[i].input_ids for i in group], completions, group, torch.tensor(report.scores), report.errors
    )


def rollout_batch(rollouts: Rollouts, rows: list[int], advantages: torch.Tensor, pad_id: int) -> dict:
    """Prompt + completion rows with the loss on the completion tokens only, and each row's advantage."""
    examples = []
    for i in rows:
        prompt, completion = rollouts.prompt_ids[i], rollouts.completion_ids[i]
        ids = prompt + completion
        examples.append(Example(ids, [IGNORE] * len(prompt) + completion))
    batch = collate_padded(examples, pad_id, "causal-lm")
    batch["advantages"] = advantages[rows].float()
    return batch


def reference_token_logps(reference_model, batch: dict, adapters_off: bool, temperature: float = 1.0) -> torch.Tensor:
    with torch.no_grad():
        if adapters_off:
            with reference_model.disable_adapter():
                return token_logps(reference_model, batch, temperature)[0]
        return token_logps(reference_model, batch, temperature)[0]


def grpo_token_losses(
    logps: torch.Tensor, reference: torch.Tensor, advantages: torch.Tensor, clip: float, kl_beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per completion token: the clipped surrogate (the sampling policy is the current one, so the ratio
    starts at 1) plus kl_beta times the k3 estimate of KL(policy || reference); returns (losses, kl)."""
    ratio = torch.exp(logps - logps.detach())
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    log_ratio = reference - logps
    kl = torch.exp(log_ratio) - log_ratio - 1
    return -surrogate + kl_beta * kl, kl
