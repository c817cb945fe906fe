"""grpo: reinforcement fine-tuning with a grader (OpenAI's `reinforcement` method), on LoRA weights by default.

The loop stays the one loop: this recipe's objective builds each step's batches by sampling k
completions per prompt and scoring them (training/reinforcement.py), and its loss is the clipped
policy objective with a KL penalty to the reference. Validation is the held-out mean reward of
greedy answers (reported as eval_loss = -reward, so early stopping keeps the best-rewarded weights).
"""

from tunelab.errors import ConfigError
from tunelab.methods.base import ObjectiveContext, Recipe, with_recipe
from tunelab.methods.lora import LORA
from tunelab.progress import say


def grpo_objective(context: ObjectiveContext):
    from tunelab.graders.registry import load_grader
    from tunelab.training.objectives import Objective

    settings = context.config.rl
    if settings.grader is None:
        raise ConfigError("grpo needs a grader to score its samples", "pass --grader grader.json (or set rl.grader)")
    grader = load_grader(settings.grader)
    policy = context.model
    adapters_off = hasattr(policy, "disable_adapter")
    reference = policy if adapters_off else frozen_copy(policy)
    steps = GrpoSteps(context, grader, reference, adapters_off)
    return Objective(
        steps.batches,
        steps.loss,
        validation_loss=negative_reward,
        targets=completion_tokens,
        frozen_models=() if adapters_off else (reference,),
        metrics=steps.pop_metrics,
        validation_batches=steps.greedy_batches,
        validation_targets=rows_in,
    )


def frozen_copy(model):
    """Full weights: the reference policy is a frozen copy of the base (twice the weights' memory)."""
    import copy

    say("grpo on full weights: a frozen copy of the base model is the reference policy (twice the weights' memory)")
    reference = copy.deepcopy(model).eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


def completion_tokens(batch: dict) -> int:
    return int((batch["targets"] != -100).sum())


def rows_in(batch: dict) -> int:
    return int(batch["rewards"].numel())


def negative_reward(model, batch: dict):
    return -batch["rewards"].sum()


class GrpoSteps:
    """Sampling, scoring and the loss of each step, with the step's figures for the metrics log."""

    def __init__(self, context: ObjectiveContext, grader, reference, adapters_off: bool):
        self.settings, self.context, self.grader = context.config.rl, context, grader
        self.reference, self.adapters_off = reference, adapters_off
        self.figures: dict = {}

    def batches(self, prompts: list, micro_batch_size: int, token_budget: int) -> list[dict]:
        from tunelab.training.reinforcement import reference_token_logps, rollout_batch

        s, k = self.settings, self.settings.k
        rollouts = self._rollout(prompts, k, s.temperature)
        advantages = rollouts.advantages(k)
        rows = list(range(len(rollouts.group)))
        per_pass = max(1, micro_batch_size) * k
        batches = [
            rollout_batch(rollouts, rows[i : i + per_pass], advantages, self.context.pad_id)
            for i in range(0, len(rows), per_pass)
        ]
        device = next(self.context.model.parameters()).device
        for batch in batches:
            on_device = {name: value.to(device) for name, value in batch.items()}
            batch["reference_logps"] = reference_token_logps(
                self.reference, on_device, self.adapters_off, s.temperature
            )
        lengths = [len(ids) for ids in rollouts.completion_ids]
        self.figures = {
            "mean_reward": float(rollouts.rewards.mean()),
            "reward_std": float(rollouts.rewards.std()),
            "completion_length": sum(lengths) / len(lengths),
            "flat_groups": rollouts.flat_groups(k),
            "grader_errors": sum(rollouts.errors.values()),
        }
        return batches

    def greedy_batches(self, prompts: list, micro_batch_size: int, token_budget: int) -> list[dict]:
        import torch

        rollouts = self._rollout(prompts, 1, 0.0)
        return [{"input_ids": torch.zeros(len(prompts), 1, dtype=torch.long), "rewards": rollouts.rewards}]

    def _rollout(self, prompts: list, k: int, temperature: float):
        from tunelab.training.reinforcement import rollout

        model = self.context.model
        was_training = model.training
        model.eval()
        try:
            return rollout(
                model,
                self.context.tokenizer,
                prompts,
                self.grader,
                k=k,
                max_new_tokens=self.settings.max_new_tokens,
                temperature=temperature,
            )
        finally:
            model.train(was_training)

    def loss(self, model, batch: dict):
        from tunelab.training.losses import token_logps
        from tunelab.training.reinforcement import grpo_token_losses

        logps, rows = token_logps(model, batch, self.settings.temperature)
        advantages = batch["advantages"][rows]
        losses, kl = grpo_token_losses(
            logps, batch["reference_logps"], advantages, self.settings.clip, self.settings.kl_beta
        )
        if torch_grad_enabled():  # the step's KL, kept on the device until the step's figures are read
            self.figures["kl"] = self.figures.get("kl", 0.0) + kl.detach().sum()
            self.figures["_kl_tokens"] = self.figures.get("_kl_tokens", 0) + kl.numel()
        return losses.sum()

    def pop_metrics(self) -> dict:
        figures, self.figures = self.figures, {}
        figures["kl"] = float(figures.get("kl", 0.0)) / max(figures.pop("_kl_tokens", 0), 1)
        return figures


def torch_grad_enabled() -> bool:
    import torch

    return torch.is_grad_enabled()


def encode_prompts(records: list[dict], tokenizer, context, name: str) -> list:
    from tunelab.training.reinforcement import encode_prompts as encode

    return encode(records, tokenizer, context, name)


GRPO_RECIPE = Recipe(
    name="grpo",
    summary="reinforcement fine-tuning: k sampled answers per prompt scored by a grader (rl.grader, rl.k)",
    objective=grpo_objective,
    encode=encode_prompts,
    schema="reinforcement",
    learning_rate_scale=0.25,
    settings=("rl",),
    extra_forward=1.0,
    reference_copy=True,
    samples_online=True,
)
GRPO = with_recipe(LORA, GRPO_RECIPE)
