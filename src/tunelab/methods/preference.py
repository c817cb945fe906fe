"""Preference tuning: dpo (with sigmoid, ipo or hinge loss), and the reference-free orpo and simpo.

Each is a Recipe (a loss over preference pairs) on LoRA weights by default; `weights: full` (or
qlora, ...) moves it onto another method's weights. DPO's reference policy is the base model:
for adapter weights the adapters are switched off for the reference pass (no second copy in
memory); for full weights the reference log-probabilities are computed once before training and
kept in the run folder (reference_logps.jsonl), so no second model is held during training.
"""

import json

from tunelab.errors import ConfigError
from tunelab.methods.base import ObjectiveContext, Recipe, with_recipe
from tunelab.methods.lora import LORA
from tunelab.progress import say, track

REFERENCE_FILE = "reference_logps.jsonl"


def preference_objective(pair_loss, context: ObjectiveContext):
    """An Objective over pairs: `pair_loss(policy, batch) -> (per-pair losses, per-pair rewards (chosen, rejected))`."""
    from tunelab.training.objectives import Objective
    from tunelab.training.preference import PairScores, StepMetrics, pair_batches, pairs_in, sequence_logps

    step = StepMetrics()

    def loss(model, batch: dict):
        policy = PairScores.of(*sequence_logps(model, batch))
        losses, (chosen_reward, rejected_reward) = pair_loss(policy, batch)
        step.add(
            preference_accuracy=(chosen_reward > rejected_reward).float(),
            reward_margin=chosen_reward - rejected_reward,
            chosen_logp=policy.chosen,
            rejected_logp=policy.rejected,
        )
        return losses.sum()

    return Objective(pair_batches(context.pad_id), loss, loss, targets=pairs_in, metrics=step.pop)


def dpo_objective(context: ObjectiveContext):
    from tunelab.training.preference import dpo_pair_losses, reference_scores

    settings = context.config.preference
    reference_model = context.model
    if not hasattr(reference_model, "disable_adapter"):  # full weights: score the reference once, now
        precompute_references(context)

    def pair_loss(policy, batch: dict):
        reference = reference_scores(reference_model, batch)
        losses = dpo_pair_losses(policy, reference, settings.loss, settings.beta)
        if settings.sft_weight:
            losses = losses - settings.sft_weight * policy.chosen_mean
        rewards = (
            settings.beta * (policy.chosen - reference.chosen),
            settings.beta * (policy.rejected - reference.rejected),
        )
        return losses, rewards

    return preference_objective(pair_loss, context)


def orpo_objective(context: ObjectiveContext):
    from tunelab.training.preference import orpo_pair_losses

    weight = context.config.preference.orpo_lambda

    def pair_loss(policy, batch: dict):
        return orpo_pair_losses(policy, weight), (weight * policy.chosen_mean, weight * policy.rejected_mean)

    return preference_objective(pair_loss, context)


def simpo_objective(context: ObjectiveContext):
    from tunelab.training.preference import simpo_pair_losses

    beta, gamma = context.config.preference.simpo_beta, context.config.preference.simpo_gamma

    def pair_loss(policy, batch: dict):
        return simpo_pair_losses(policy, beta, gamma), (beta * policy.chosen_mean, beta * policy.rejected_mean)

    return preference_objective(pair_loss, context)


def precompute_references(context: ObjectiveContext) -> None:
    """Full weights: the untrained model's log-probabilities of every pair, attached to the pairs and kept in
    the run folder (a resumed run reads them back instead of scoring a model that has already moved)."""
    pairs = [pair for split in context.examples for pair in split]
    saved = context.run_dir / REFERENCE_FILE if context.run_dir else None
    if saved and saved.exists():
        values = [tuple(json.loads(line)) for line in saved.read_text().splitlines()]
    else:
        values = score_pairs(context.model, pairs, context.pad_id)
        if saved:
            saved.write_text("".join(json.dumps(v) + "\n" for v in values))
    if len(values) != len(pairs):
        raise ConfigError(
            f"{saved} holds {len(values)} reference scores for {len(pairs)} pairs", "delete it and resume"
        )
    for pair, value in zip(pairs, values):
        pair.reference = value
    say(f"reference log-probabilities of {len(pairs)} pairs computed once; no reference model is held in training")


def score_pairs(model, pairs: list, pad_id: int, batch_size: int = 8) -> list[tuple[float, float]]:
    """Summed log-probabilities (chosen, rejected) of each pair under `model`, without gradients."""
    import torch

    from tunelab.training.preference import collate_pairs, sequence_logps

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    values = []
    batches = [collate_pairs(pairs[i : i + batch_size], pad_id) for i in range(0, len(pairs), batch_size)]  # in order
    with torch.no_grad():
        for batch in track(batches, "Scoring reference pairs"):
            summed, _ = sequence_logps(model, {k: v.to(device) for k, v in batch.items() if k != "reference"})
            half = summed.shape[0] // 2
            values += list(zip(summed[:half].tolist(), summed[half:].tolist()))
    model.train(was_training)
    return values


def encode_pairs(records: list[dict], tokenizer, context, name: str) -> list:
    from tunelab.training.preference import encode_pairs as encode

    return encode(records, tokenizer, context, name)


DPO_RECIPE = Recipe(
    name="dpo",
    summary="direct preference optimisation on chosen/rejected pairs (preference.loss, preference.beta)",
    objective=dpo_objective,
    encode=encode_pairs,
    schema="preference",
    learning_rate_scale=0.25,
    settings=("preference",),
    extra_forward=1.0,
)
ORPO_RECIPE = Recipe(
    name="orpo",
    summary="odds-ratio preference optimisation, reference-free (preference.orpo_lambda)",
    objective=orpo_objective,
    encode=encode_pairs,
    schema="preference",
    learning_rate_scale=0.25,
    settings=("preference",),
)
SIMPO_RECIPE = Recipe(
    name="simpo",
    summary="simple preference optimisation on length-normalised rewards, reference-free (preference.simpo_*)",
    objective=simpo_objective,
    encode=encode_pairs,
    schema="preference",
    learning_rate_scale=0.25,
    settings=("preference",),
)
DPO, ORPO, SIMPO = (with_recipe(LORA, recipe) for recipe in (DPO_RECIPE, ORPO_RECIPE, SIMPO_RECIPE))
