"""Preference (dpo, orpo, simpo) and reinforcement (grpo) methods: the losses against hand computations, pair
encoding and scoring on a tiny model, each method through the real fine-tuning workflow, DPO's reference policy
(precomputed for full weights, adapters switched off for LoRA), the direction each learns in, clear errors, and
the cost planner's figures for them."""

import json
import math
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_llama

from tunelab.config import load_config
from tunelab.errors import ConfigError
from tunelab.methods.base import BuildContext, EncodeContext, ObjectiveContext
from tunelab.methods.registry import build_model, get_method, method_for, method_named
from tunelab.runs import MetricsLog, read_config
from tunelab.training.batches import IGNORE
from tunelab.training.preference import (
    PairScores,
    collate_pairs,
    dpo_pair_losses,
    encode_pair,
    orpo_pair_losses,
    pairs_in,
    sequence_logps,
    simpo_pair_losses,
)
from tunelab.training.reinforcement import ADVANTAGE_EPS, Rollouts, grpo_token_losses

try:
    from tunelab.graders.registry import load_grader  # noqa: F401  (graders are being finished elsewhere)

    GRADERS, GRADERS_MISSING = True, ""
except ImportError as exc:  # pragma: no cover - only while tunelab.graders is incomplete
    GRADERS, GRADERS_MISSING = False, f"tunelab.graders does not import yet ({exc}); grpo needs a grader"
needs_graders = pytest.mark.skipif(not GRADERS, reason=GRADERS_MISSING)

PREFERENCE_METHODS = ["dpo", "orpo", "simpo"]
EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
# a continuous reward (no sandbox needed): random completions of a tiny model differ in it within every group
SIMILAR = {
    "type": "text_similarity",
    "name": "similar",
    "input": "{{sample.output_text}}",
    "reference": "Reply with the number {{item.answer}}.",
    "evaluation_metric": "fuzzy_match",
}
FAST = {"train.batch_size": 4, "eval.probes": False, "tracking.enabled": False}
STEP_FIGURES = {
    "dpo": {"preference_accuracy", "reward_margin", "chosen_logp", "rejected_logp"},
    "orpo": {"preference_accuracy", "reward_margin"},
    "simpo": {"preference_accuracy", "reward_margin"},
    "grpo": {"mean_reward", "reward_std", "kl", "completion_length", "flat_groups", "grader_errors"},
}


def openai_pairs(n: int = 40) -> list[dict]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": f"Ticket {i}: my order {i} is late."}]},
            "preferred_output": [{"role": "assistant", "content": f"Sorry about order {i}; it ships today."}],
            "non_preferred_output": [{"role": "assistant", "content": "Not my problem."}],
        }
        for i in range(n)
    ]


def prompts(n: int = 40) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"Reply with the number {i}."}], "answer": str(i % 5)}
        for i in range(n)
    ]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("preference-data")
    chat = [
        {"messages": [{"role": "user", "content": f"Where is {i}?"}, {"role": "assistant", "content": f"At {i}."}]}
        for i in range(40)
    ]
    return {
        "preference": write_jsonl(folder / "pairs.jsonl", openai_pairs()),
        "reinforcement": write_jsonl(folder / "prompts.jsonl", prompts()),
        "chat": write_jsonl(folder / "chat.jsonl", chat),
    }


def pair_records(n: int = 40) -> list[dict]:
    """The OpenAI DPO records in the prepared shape (prompt, chosen, rejected), as training reads them."""
    from tunelab.data.preference import normalise_pair

    return [normalise_pair(r, strict=True) for r in openai_pairs(n)]


@pytest.fixture(scope="module")
def tokenizer():
    from tunelab.training.encode import training_tokenizer

    return training_tokenizer(str(tiny_llama()))


def tiny_base():
    from tunelab.models.loading import load_model

    return load_model(str(tiny_llama()), "causal-lm").eval()


def snapshot(model) -> dict[str, tuple[bool, torch.Tensor]]:
    return {name: (p.requires_grad, p.detach().clone()) for name, p in model.named_parameters()}


@pytest.fixture
def loop_spy(monkeypatch):
    """What the workflow hands train_loop (model, objective, examples) and the weights before the first step."""
    from tunelab.training import loop

    seen: dict = {}
    real = loop.train_loop

    def spy(model, train, validation, settings, objective, **kwargs):
        seen.update(model=model, before=snapshot(model), train=train, validation=validation, objective=objective)
        return real(model, train, validation, settings, objective, **kwargs)

    monkeypatch.setattr(loop, "train_loop", spy)
    return seen


def workflow(tmp_path: Path, method: str, data: Path, **overrides) -> Path:
    from tunelab.jobs import finetune

    config = load_config(
        None,
        {
            "model.name": str(tiny_llama()),
            "method": method,
            "data.path": [str(data)],
            "train.max_steps": 2,
            "out": str(tmp_path / method),
            **FAST,
            **overrides,
        },
    )
    summary = finetune.run(config)
    assert summary["status"] == "succeeded"
    return Path(summary["run_dir"])


def steps_of(run_dir: Path) -> list[dict]:
    return MetricsLog(run_dir / "metrics.jsonl").read()


def direct_setup(method: str, train_records: list[dict], tmp_path: Path, validation_records=(), **overrides):
    """The method's model, examples and objective built as the workflow builds them, for tests that drive
    train_loop (or the objective) directly."""
    from tunelab.training.encode import training_tokenizer
    from tunelab.training.loop import LoopSettings

    config = load_config(None, {"model.name": str(tiny_llama()), "method": method, "task": "causal-lm", **overrides})
    trains = method_for(config)
    rate = config.train.learning_rate or trains.learning_rate
    config = config.model_copy(update={"train": config.train.model_copy(update={"learning_rate": rate})})
    tokenizer = training_tokenizer(config.model.name)
    context = EncodeContext("causal-lm", config.model.max_length)
    train = trains.encode(train_records, tokenizer, context, "train")
    validation = trains.encode(list(validation_records), tokenizer, context, "validation")
    torch.manual_seed(0)
    model = build_model(trains, BuildContext(config, "causal-lm", config.model.name, "cpu"), None)
    pad = tokenizer.pad_token_id or 0
    objective = trains.objective(
        ObjectiveContext(
            config, "causal-lm", "cpu", None, train_records, pad, False, model, tokenizer, tmp_path, (train, validation)
        )
    )
    return model, tokenizer, train, validation, objective, LoopSettings.from_config(config, len(train))


# ---------------------------------------------------------------------------------------------------------------
# 1. losses against hand computations (pure tensors)


def scores(chosen, rejected, chosen_mean=None, rejected_mean=None) -> PairScores:
    chosen, rejected = torch.tensor(chosen), torch.tensor(rejected)
    return PairScores(
        chosen,
        rejected,
        torch.tensor(chosen_mean) if chosen_mean is not None else chosen / 4,
        torch.tensor(rejected_mean) if rejected_mean is not None else rejected / 4,
    )


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


POLICY = dict(chosen=[-10.0, -20.0, -5.0], rejected=[-12.0, -15.0, -5.0], chosen_mean=[-1.0, -2.0, -0.5])
POLICY["rejected_mean"] = [-3.0, -1.5, -0.25]
REFERENCE = dict(chosen=[-11.0, -18.0, -5.0], rejected=[-11.0, -18.0, -6.0], chosen_mean=[-1.1, -1.8, -0.5])
REFERENCE["rejected_mean"] = [-2.75, -1.8, -0.3]


def margins(mean: bool = False) -> list[float]:
    c, r = ("chosen_mean", "rejected_mean") if mean else ("chosen", "rejected")
    return [(pc - rc) - (pr - rr) for pc, rc, pr, rr in zip(POLICY[c], REFERENCE[c], POLICY[r], REFERENCE[r])]


def test_pair_scores_split_chosen_first_and_average_per_trained_token():
    found = PairScores.of(torch.tensor([-6.0, -8.0, -3.0, -9.0]), torch.tensor([3, 4, 1, 3]))
    assert found.chosen.tolist() == [-6.0, -8.0] and found.rejected.tolist() == [-3.0, -9.0]
    assert found.chosen_mean.tolist() == [-2.0, -2.0] and found.rejected_mean.tolist() == [-3.0, -3.0]


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_sigmoid_ipo_and_hinge_losses_match_hand_computation(beta):
    policy, reference = scores(**POLICY), scores(**REFERENCE)
    sigmoid = dpo_pair_losses(policy, reference, "sigmoid", beta)
    assert sigmoid.tolist() == pytest.approx([-log_sigmoid(beta * m) for m in margins()], rel=1e-6)
    hinge = dpo_pair_losses(policy, reference, "hinge", beta)
    assert hinge.tolist() == pytest.approx([max(0.0, 1 - beta * m) for m in margins()], rel=1e-6, abs=1e-7)
    ipo = dpo_pair_losses(policy, reference, "ipo", beta)  # on per-token means, against the target 1/(2 beta)
    assert ipo.tolist() == pytest.approx([(m - 1 / (2 * beta)) ** 2 for m in margins(mean=True)], rel=1e-5)
    # policy == reference: sigmoid gives log 2 for every pair, hinge 1, ipo (1/(2 beta))^2
    same = dpo_pair_losses(reference, reference, "sigmoid", beta)
    assert same.tolist() == pytest.approx([math.log(2)] * 3)
    assert dpo_pair_losses(reference, reference, "hinge", beta).tolist() == pytest.approx([1.0] * 3)
    assert dpo_pair_losses(reference, reference, "ipo", beta).tolist() == pytest.approx([1 / (4 * beta**2)] * 3)


def test_hinge_is_zero_past_the_margin_and_sigmoid_falls_with_it():
    reference = scores([-10.0], [-10.0])
    wide, narrow = scores([-1.0], [-30.0]), scores([-9.0], [-11.0])
    assert dpo_pair_losses(wide, reference, "hinge", 0.1).item() == 0.0  # beta * margin = 2.9 > 1
    assert dpo_pair_losses(narrow, reference, "hinge", 0.1).item() == pytest.approx(0.8)
    assert dpo_pair_losses(wide, reference, "sigmoid", 0.1) < dpo_pair_losses(narrow, reference, "sigmoid", 0.1)


@pytest.mark.parametrize("weight", [0.1, 1.0])
def test_orpo_loss_is_chosen_nll_plus_weighted_log_odds_ratio(weight):
    policy = scores(**POLICY)
    expected = []
    for c, r in zip(POLICY["chosen_mean"], POLICY["rejected_mean"]):
        log_odds = (c - math.log(1 - math.exp(c))) - (r - math.log(1 - math.exp(r)))
        expected.append(-c - weight * log_sigmoid(log_odds))
    assert orpo_pair_losses(policy, weight).tolist() == pytest.approx(expected, rel=1e-5)


def test_orpo_stays_finite_when_the_chosen_reply_is_certain():
    certain = scores([0.0], [-5.0], [0.0], [-1.0])  # mean log-probability 0: odds 1 / 0
    assert torch.isfinite(orpo_pair_losses(certain, 0.1)).all()


@pytest.mark.parametrize("beta, gamma", [(2.0, 1.0), (2.5, 0.0)])
def test_simpo_loss_is_length_normalised_margin_against_a_target(beta, gamma):
    policy = scores(**POLICY)
    expected = [-log_sigmoid(beta * (c - r) - gamma) for c, r in zip(POLICY["chosen_mean"], POLICY["rejected_mean"])]
    assert simpo_pair_losses(policy, beta, gamma).tolist() == pytest.approx(expected, rel=1e-5)
    # no reference: the summed log-probabilities do not enter
    other_sums = PairScores(policy.chosen * 7, policy.rejected * 3, policy.chosen_mean, policy.rejected_mean)
    assert torch.equal(simpo_pair_losses(other_sums, beta, gamma), simpo_pair_losses(policy, beta, gamma))


def test_grpo_token_loss_at_ratio_one_is_minus_advantage_plus_k3_kl():
    logps = torch.tensor([-1.0, -2.0, -0.5, -3.0], requires_grad=True)
    reference = torch.tensor([-1.2, -2.0, -0.1, -2.5])
    advantages = torch.tensor([0.7, -0.7, 1.5, -1.5])
    beta = 0.04
    losses, kl = grpo_token_losses(logps, reference, advantages, 0.2, beta)
    log_ratio = reference - logps.detach()
    k3 = torch.exp(log_ratio) - log_ratio - 1
    assert torch.allclose(kl, k3) and (kl >= 0).all()
    assert torch.allclose(losses, -advantages + beta * k3)
    losses.sum().backward()  # d/dlogp: -A (ratio 1) + beta * (1 - exp(ref - logp))
    assert torch.allclose(logps.grad, -advantages + beta * (1 - torch.exp(log_ratio)))
    # the policy equal to its reference: no KL, the loss is the advantage alone
    same, kl = grpo_token_losses(reference.clone(), reference, advantages, 0.2, beta)
    assert torch.equal(kl, torch.zeros(4)) and torch.allclose(same, -advantages)


class StalePolicy(torch.Tensor):
    """Log-probabilities whose detached copy (the sampling policy's, in grpo_token_losses) is `shift` lower:
    the probability ratio becomes exp(shift), as after the policy has moved away from the one that sampled."""

    shift = 0.5

    def detach(self):
        return super().detach() - self.shift


@pytest.mark.parametrize("shift, clip", [(0.5, 0.2), (-0.5, 0.2), (0.1, 0.3)])
def test_grpo_clipping_bites_once_the_ratio_leaves_the_range(shift, clip):
    base = torch.tensor([-1.0, -2.0, -1.5, -0.5], requires_grad=True)
    advantages = torch.tensor([1.0, -1.0, 2.0, -2.0])
    StalePolicy.shift = shift
    try:
        logps = base.as_subclass(StalePolicy)
        losses, _ = grpo_token_losses(logps, torch.zeros(4), advantages, clip, 0.0)
        losses.sum().backward()
    finally:
        StalePolicy.shift = 0.5
    ratio = math.exp(shift)
    clipped = min(max(ratio, 1 - clip), 1 + clip)
    expected = [-min(ratio * a, clipped * a) for a in advantages.tolist()]
    assert torch.as_tensor(losses).tolist() == pytest.approx(expected, rel=1e-5)
    # PPO's pessimistic bound: where the clipped term is the minimum, no gradient flows through it
    bites = [clipped * a < ratio * a for a in advantages.tolist()]
    if ratio > 1 + clip or ratio < 1 - clip:
        assert any(bites)
    for grad, a, bite in zip(base.grad.tolist(), advantages.tolist(), bites):
        assert grad == pytest.approx(0.0 if bite else -a * ratio, rel=1e-5)


def test_grpo_clip_setting_is_inert_within_one_update():
    """The sampling policy is the current one (one update per rollout), so the ratio is exactly 1 and rl.clip
    changes neither the loss nor its gradient."""
    logps = torch.tensor([-1.0, -2.0, -0.3], requires_grad=True)
    reference, advantages = torch.tensor([-1.1, -1.9, -0.3]), torch.tensor([2.0, -0.5, -1.5])
    found = []
    for clip in (0.05, 0.2, 0.9):
        logps.grad = None
        losses, _ = grpo_token_losses(logps, reference, advantages, clip, 0.04)
        losses.sum().backward()
        found.append((losses.detach(), logps.grad.clone()))
    for losses, grad in found[1:]:
        assert torch.equal(losses, found[0][0]) and torch.equal(grad, found[0][1])


def rollouts_with(rewards: list[float]) -> Rollouts:
    n = len(rewards)
    return Rollouts([[1]] * n, [[2]] * n, list(range(n)), torch.tensor(rewards))


def test_advantages_are_normalised_within_each_group():
    k = 4
    rewards = [1.0, 0.0, 0.0, 1.0, 0.3, 0.3, 0.3, 0.3, 5.0, 1.0, 2.0, 0.0]
    advantages = rollouts_with(rewards).advantages(k).view(-1, k)
    grouped = torch.tensor(rewards).view(-1, k)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + ADVANTAGE_EPS)
    assert torch.allclose(advantages, expected)
    assert torch.allclose(advantages.sum(1), torch.zeros(3), atol=1e-5)  # group mean 0
    assert advantages[0].std().item() == pytest.approx(1.0, abs=1e-3)  # unit (sample) standard deviation
    assert advantages[2].std().item() == pytest.approx(1.0, abs=1e-3)
    assert torch.equal(advantages[1], torch.zeros(k))  # a flat group teaches nothing
    assert advantages[0].tolist() == pytest.approx([0.866, -0.866, -0.866, 0.866], abs=1e-3)
    # a group is its own scale: rewards 10x larger give the same advantages
    scaled = rollouts_with([r * 10 for r in rewards]).advantages(k).view(-1, k)
    assert torch.allclose(scaled[0], advantages[0], atol=1e-3)


def test_flat_groups_is_the_share_of_groups_with_equal_rewards():
    rollouts = rollouts_with([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.25])
    assert rollouts.flat_groups(2) == pytest.approx(0.5)
    assert rollouts.flat_groups(4) == 0.0
    assert rollouts_with([0.0] * 6).flat_groups(3) == 1.0


# ---------------------------------------------------------------------------------------------------------------
# 2. pair encoding and scoring on a tiny model


def by_hand_logp(model, ids: list[int], labels: list[int]) -> tuple[float, int]:
    """Summed log-probability of the labelled tokens of one unpadded sequence, from log_softmax of all logits."""
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    trained = [t for t in range(1, len(ids)) if labels[t] != IGNORE]
    return sum(logps[t - 1, ids[t]].item() for t in trained), len(trained)


def test_sequence_logps_match_log_softmax_over_full_logits_on_a_padded_pair_batch(tokenizer):
    records = pair_records(3)
    records[1]["chosen"] = {"role": "assistant", "content": "Sorry about order 1; it ships today, tracking to follow."}
    pairs = [encode_pair(r, tokenizer, 1024) for r in records]
    batch = collate_pairs(pairs, tokenizer.pad_token_id or 0)
    assert len({len(p.chosen.input_ids) for p in pairs} | {len(p.rejected.input_ids) for p in pairs}) > 1  # padded
    model = tiny_base()
    with torch.no_grad():
        summed, counts = sequence_logps(model, batch)
    rows = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    for row, example in enumerate(rows):
        expected, n = by_hand_logp(model, example.input_ids, example.labels)
        assert n > 0 and counts[row].item() == n
        assert summed[row].item() == pytest.approx(expected, abs=1e-3, rel=1e-5)


def test_collate_pairs_puts_the_chosen_rows_first(tokenizer):
    pairs = [encode_pair(r, tokenizer, 1024) for r in pair_records(3)]
    pad = tokenizer.pad_token_id or 0
    batch = collate_pairs(pairs, pad)
    assert batch["input_ids"].shape[0] == 6 and "reference" not in batch
    for row, example in enumerate([p.chosen for p in pairs] + [p.rejected for p in pairs]):
        n = len(example.input_ids)
        assert batch["input_ids"][row, :n].tolist() == example.input_ids
        assert batch["attention_mask"][row].sum().item() == n
        assert (batch["input_ids"][row, n:] == pad).all()
    for pair, value in zip(pairs, [(-1.0, -2.0), (-3.0, -4.0), (-5.0, -6.0)]):
        pair.reference = value
    assert collate_pairs(pairs, pad)["reference"].tolist() == [-1.0, -3.0, -5.0, -2.0, -4.0, -6.0]
    pairs[1].reference = None  # references for only some of the pairs are not used
    assert "reference" not in collate_pairs(pairs, pad)


def trained_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t in example.labels if t != IGNORE])


def test_encode_pair_trains_only_the_final_reply(tokenizer):
    record = {
        "prompt": [
            {"role": "user", "content": "Where is order 7?"},
            {"role": "assistant", "content": "Let me check order seven for you."},
            {"role": "user", "content": "Any news?"},
        ],
        "chosen": {"role": "assistant", "content": "It ships today."},
        "rejected": {"role": "assistant", "content": "No idea, go away."},
    }
    original = json.dumps(record, sort_keys=True)
    pair = encode_pair(record, tokenizer, 1024)
    assert json.dumps(record, sort_keys=True) == original  # the record is not changed by encoding
    chosen, rejected = trained_text(tokenizer, pair.chosen), trained_text(tokenizer, pair.rejected)
    assert "It ships today." in chosen and "No idea, go away." in rejected
    for text in (chosen, rejected):
        assert "Let me check" not in text and "Where is order" not in text and "Any news" not in text
    assert "ships" not in rejected and "go away" not in chosen
    # both sides share the prompt tokens, untrained
    first_trained = next(i for i, t in enumerate(pair.chosen.labels) if t != IGNORE)
    assert pair.chosen.input_ids[:first_trained] == pair.rejected.input_ids[:first_trained]
    assert set(pair.rejected.labels[:first_trained]) == {IGNORE}
    assert pair.input_ids == max(pair.chosen.input_ids, pair.rejected.input_ids, key=len)


# ---------------------------------------------------------------------------------------------------------------
# 3. every method through the real workflow


def assert_only_trainable_moved(before: dict, model, moved_expected: bool = True) -> None:
    after = dict(model.named_parameters())
    assert set(after) == set(before)
    frozen_moved = [n for n, (trains, old) in before.items() if not trains and not torch.equal(after[n].detach(), old)]
    still = [n for n, (trains, old) in before.items() if trains and torch.equal(after[n].detach(), old)]
    assert any(trains for trains, _ in before.values())
    assert not frozen_moved, f"frozen parameters that moved: {frozen_moved[:5]}"
    if moved_expected:
        assert not still, f"trainable parameters that did not move: {still[:5]}"


def assert_saved_run_holds_the_trained_weights(run_dir: Path, seen: dict) -> None:
    """load_run gives the base's frozen weights (as they were before training) and the trained adapters."""
    from tunelab.inference.engine import load_run

    loaded = dict(load_run(run_dir).model.named_parameters())
    trained = dict(seen["model"].named_parameters())
    assert set(loaded) == set(seen["before"])
    for name, (trains, old) in seen["before"].items():
        expected = trained[name].detach() if trains else old
        assert torch.allclose(loaded[name].detach(), expected), name


@pytest.mark.parametrize("method", [*PREFERENCE_METHODS, pytest.param("grpo", marks=[pytest.mark.slow, needs_graders])])
def test_method_trains_through_the_workflow(method, files, tmp_path, loop_spy):
    reinforcement = method == "grpo"
    extra = {"rl.grader": EXACT, "rl.k": 2, "rl.max_new_tokens": 8, "eval.max_new_tokens": 8} if reinforcement else {}
    run_dir = workflow(tmp_path, method, files["reinforcement" if reinforcement else "preference"], **extra)
    steps = steps_of(run_dir)
    assert [s["step"] for s in steps] == [1, 2]
    for step in steps:
        assert STEP_FIGURES[method] <= set(step), set(step)
        assert all(math.isfinite(step[name]) for name in STEP_FIGURES[method])
    if reinforcement:
        assert all(s["completion_length"] <= 8 and 0 <= s["flat_groups"] <= 1 for s in steps)
        taught = any(s["flat_groups"] < 1 for s in steps)
        for step in steps:  # an all-flat step has zero advantages and, with policy == reference, no gradient
            if step["flat_groups"] == 1 and step["step"] == 1:
                assert step["loss"] == 0.0 and step["grad_norm"] == 0.0 and step["reward_std"] == 0.0
        assert_only_trainable_moved(loop_spy["before"], loop_spy["model"], moved_expected=taught)
    else:
        assert all(0 <= s["preference_accuracy"] <= 1 for s in steps)
        if method == "dpo":  # its rewards are against the reference, which LoRA starts as
            assert steps[0]["reward_margin"] == pytest.approx(0.0, abs=1e-6)
            assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
        assert_only_trainable_moved(loop_spy["before"], loop_spy["model"])
    assert_saved_run_holds_the_trained_weights(run_dir, loop_spy)
    assert loop_spy["objective"].frozen_models == ()  # LoRA: the reference is the base with adapters off

    evaluation = json.loads((run_dir / "eval.json").read_text())
    if reinforcement:
        assert evaluation["family"] == "reinforcement" and evaluation["primary_metric"] == "mean_reward"
        for model in ("base", "tuned"):
            assert 0 <= evaluation[model]["mean_reward"] <= 1
            low, high = evaluation["intervals"][model]["mean_reward"]
            assert low <= evaluation[model]["mean_reward"] <= high
    else:
        assert evaluation["family"] == "preference" and evaluation["primary_metric"] == "preference_accuracy"
        assert 0 <= evaluation["tuned"]["preference_accuracy"] <= 1
        implicit = evaluation["preference"]
        assert 0 <= implicit["implicit_reward_accuracy"] <= 1
        low, high = implicit["intervals"]["implicit_reward_accuracy"]
        assert 0 <= low <= implicit["implicit_reward_accuracy"] <= high <= 1

    config = read_config(run_dir)
    recipe = get_method(method).recipe
    assert config.method == method and config.weights is None
    assert config.train.learning_rate == pytest.approx(get_method("lora").learning_rate * recipe.learning_rate_scale)
    assert config.train.learning_rate == pytest.approx(get_method(method).learning_rate)
    assert (run_dir / "adapter" / "adapter_config.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# 4. DPO's reference policy


def test_dpo_on_full_weights_scores_the_reference_once_and_holds_no_second_model(files, tmp_path, loop_spy):
    from tunelab.data.for_run import read_prepared
    from tunelab.evaluation.preference import pair_logps
    from tunelab.inference.engine import load_target
    from tunelab.methods.preference import REFERENCE_FILE

    run_dir = workflow(tmp_path, "dpo", files["preference"], weights="full")
    data = read_prepared(run_dir / "data")
    saved = [json.loads(line) for line in (run_dir / REFERENCE_FILE).read_text().splitlines()]
    assert len(saved) == len(data.train) + len(data.validation) == len(loop_spy["train"]) + len(loop_spy["validation"])
    base = pair_logps(load_target(str(tiny_llama())), data.train + data.validation)
    assert torch.allclose(torch.tensor(saved), torch.from_numpy(base).float(), atol=1e-3)

    objective, model = loop_spy["objective"], loop_spy["model"]
    assert objective.frozen_models == () and not hasattr(model, "disable_adapter")
    assert all(pair.reference is not None for pair in loop_spy["train"] + loop_spy["validation"])
    batch = objective.batches(loop_spy["train"][:3], 3, 4096)[0]
    assert "reference" in batch and batch["reference"].shape == (6,)
    first = steps_of(run_dir)[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)  # step 0: the policy is the reference
    assert first["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    assert_only_trainable_moved(loop_spy["before"], model)
    assert all(trains for trains, _ in loop_spy["before"].values())  # full weights: everything trains
    config = read_config(run_dir)
    assert config.weights == "full" and (run_dir / "model").is_dir() and not (run_dir / "adapter").exists()
    assert config.train.learning_rate == pytest.approx(get_method("full").learning_rate * 0.25)


def test_dpo_lora_workflow_starts_at_log_two_and_writes_no_reference_file(files, tmp_path, loop_spy):
    from tunelab.methods.preference import REFERENCE_FILE

    run_dir = workflow(tmp_path, "dpo", files["preference"], **{"train.max_steps": 1, "eval.enabled": False})
    assert steps_of(run_dir)[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert not (run_dir / REFERENCE_FILE).exists()
    assert hasattr(loop_spy["model"], "disable_adapter") and loop_spy["objective"].frozen_models == ()


def test_dpo_lora_reference_pass_switches_the_adapters_off(tmp_path):
    from tunelab.training.preference import reference_scores

    model, tokenizer, train, _, objective, _ = direct_setup("dpo", pair_records(8), tmp_path)
    batch = objective.batches(train[:4], 4, 4096)[0]
    assert "reference" not in batch
    with torch.no_grad():
        assert (objective.loss(model, batch) / pairs_in(batch)).item() == pytest.approx(math.log(2), abs=1e-6)
        base = PairScores.of(*sequence_logps(tiny_base(), batch))
        torch.manual_seed(1)
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)  # the adapters now change the model's outputs
        policy = PairScores.of(*sequence_logps(model, batch))
        reference = reference_scores(model, batch)
        assert not torch.allclose(policy.chosen, base.chosen, atol=1e-3)
        assert torch.allclose(reference.chosen, base.chosen, atol=1e-4)
        assert torch.allclose(reference.rejected, base.rejected, atol=1e-4)
        assert abs((objective.loss(model, batch) / pairs_in(batch)).item() - math.log(2)) > 1e-4
    assert not (tmp_path / "reference_logps.jsonl").exists()


@needs_graders
def test_grpo_on_full_weights_holds_a_frozen_reference_copy(tmp_path):
    model, _, _, _, objective, _ = direct_setup("grpo", prompts(4), tmp_path, weights="full", **{"rl.grader": EXACT})
    (reference,) = objective.frozen_models
    assert reference is not model and not reference.training
    assert not any(p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in model.parameters())
    for (name, mine), (_, theirs) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.equal(mine, theirs) and mine.data_ptr() != theirs.data_ptr(), name


def test_precompute_references_attaches_base_scores_without_a_run_dir(tokenizer):
    """Full weights scored by a direct caller with no run folder: every pair still gets the base's scores."""
    from tunelab.methods.preference import precompute_references

    pairs = [encode_pair(r, tokenizer, 1024) for r in pair_records(3)]
    base = tiny_base()
    config = load_config(None, {"model.name": str(tiny_llama()), "method": "dpo", "weights": "full"})
    context = ObjectiveContext(
        config, "causal-lm", "cpu", None, [], 0, False, base, tokenizer, None, (pairs[:2], pairs[2:])
    )
    precompute_references(context)
    for pair in pairs:
        chosen, _ = by_hand_logp(base, pair.chosen.input_ids, pair.chosen.labels)
        rejected, _ = by_hand_logp(base, pair.rejected.input_ids, pair.rejected.labels)
        assert pair.reference == pytest.approx((chosen, rejected), abs=1e-3)


def test_dpo_loss_with_sft_weight_adds_the_chosen_nll(tmp_path):
    with_sft = {"preference.sft_weight": 0.5}
    model, _, train, _, objective, _ = direct_setup("dpo", pair_records(4), tmp_path, **with_sft)
    batch = objective.batches(train, 4, 4096)[0]
    with torch.no_grad():
        policy = PairScores.of(*sequence_logps(model, batch))
        expected = (math.log(2) - 0.5 * policy.chosen_mean).sum()
        assert objective.loss(model, batch).item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# 5. DPO moves the implicit reward the right way


def test_dpo_raises_the_chosen_minus_rejected_margin_over_the_base(tmp_path):
    from tunelab.methods.preference import score_pairs
    from tunelab.training.loop import train_loop

    records = pair_records(16)
    overrides = {"train.max_steps": 6, "train.learning_rate": 1e-3, "train.batch_size": 4, "train.eval_steps": 100}
    model, tokenizer, train, _, objective, settings = direct_setup("dpo", records, tmp_path, **overrides)
    pad = tokenizer.pad_token_id or 0
    before = torch.tensor(score_pairs(model, train, pad))
    train_loop(model, train, [], settings, objective, run_dir=tmp_path, log=MetricsLog(tmp_path / "m.jsonl"))
    after = torch.tensor(score_pairs(model, train, pad))
    margin_gain = (after[:, 0] - before[:, 0]) - (after[:, 1] - before[:, 1])  # the implicit reward / beta
    assert margin_gain.mean() > 0, margin_gain
    assert (margin_gain > 0).float().mean() >= 0.75
    steps = MetricsLog(tmp_path / "m.jsonl").read()
    assert steps[-1]["loss"] < steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert steps[-1]["reward_margin"] > 0


# ---------------------------------------------------------------------------------------------------------------
# 6. GRPO learns from a reward it can reach


@pytest.mark.slow
@needs_graders
def test_grpo_learns_from_groups_with_different_rewards(files, tmp_path, loop_spy):
    overrides = {"rl.grader": SIMILAR, "rl.k": 4, "rl.max_new_tokens": 8, "train.max_steps": 3}
    run_dir = workflow(tmp_path, "grpo", files["reinforcement"], **overrides, **{"eval.enabled": False})
    steps = steps_of(run_dir)
    assert any(s["flat_groups"] < 1 for s in steps)
    assert all(s["reward_std"] > 0 and s["grader_errors"] == 0 for s in steps)
    for step in steps:  # groups to learn from give a gradient (the surrogate's value is ~0 by construction)
        if step["flat_groups"] < 1:
            assert step["grad_norm"] > 0
    later = steps[1:]  # once the policy has moved from the reference, KL and with it the loss are non-zero
    assert all(s["kl"] > 0 for s in later) and any(s["loss"] != 0 for s in later)
    assert_only_trainable_moved(loop_spy["before"], loop_spy["model"])


@needs_graders
def test_grpo_step_moves_probability_towards_the_better_samples(tmp_path):
    """One plain gradient step on the GRPO loss: completions with a positive advantage gain log-probability
    relative to those with a negative one (sum_i A_i * delta log p_i > 0 to first order)."""
    from tunelab.training.losses import token_logps

    overrides = {"rl.grader": SIMILAR, "rl.k": 4, "rl.max_new_tokens": 8}
    model, _, train, _, objective, _ = direct_setup("grpo", prompts(4), tmp_path, **overrides)
    torch.manual_seed(0)
    (batch,) = objective.batches(train, 4, 4096)
    advantages = batch["advantages"]
    assert advantages.abs().sum() > 0

    def row_logps():
        with torch.no_grad():
            logps, rows = token_logps(model, batch)
        return torch.zeros(len(advantages)).index_add(0, rows, logps)

    before = row_logps()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    (objective.loss(model, batch) / objective.targets(batch)).backward()
    optimizer.step()
    change = row_logps() - before
    assert (advantages * change).sum() > 0, (advantages, change)


# ---------------------------------------------------------------------------------------------------------------
# 7. clear errors


def test_dpo_on_plain_chat_data_is_a_config_error(files, tmp_path, run_cli):
    code, output = run_cli(
        "train", "--data", files["chat"], "--model", tiny_llama(), "--method", "dpo", "--out", tmp_path / "r"
    )
    assert code == 2 and "Traceback" not in output
    assert "dpo trains on preference records" in output and "chat" in output


@needs_graders
def test_grpo_without_a_grader_is_a_config_error(files, tmp_path, run_cli):
    code, output = run_cli(
        "train", "--data", files["reinforcement"], "--model", tiny_llama(), "--method", "grpo", "--out", tmp_path / "r"
    )
    assert code == 2 and "Traceback" not in output
    assert "grpo needs a grader" in output and "--grader" in output


def test_weights_on_a_supervised_method_is_a_config_error(files, tmp_path, run_cli):
    with pytest.raises(ConfigError, match="weights: full applies to preference and reinforcement methods"):
        method_named("lora", "full")
    code, output = run_cli(
        "train",
        *("--data", files["chat"], "--model", tiny_llama(), "--method", "lora"),
        *("--set", "weights=full", "--out", tmp_path / "r"),
    )
    assert code == 2 and "Traceback" not in output and "weights: full applies to" in output
    assert not (tmp_path / "r" / "data").exists()  # refused before any data is prepared


@pytest.mark.parametrize("name", ["magic", "dpo", "distill"])
def test_unknown_weights_name_is_a_config_error(name, files, tmp_path, run_cli):
    with pytest.raises(ConfigError, match="weights"):
        load_config(None, {"method": "dpo", "weights": name})
    code, output = run_cli(
        "train", "--data", files["preference"], "--method", "dpo", "--set", f"weights={name}", "--out", tmp_path / "r"
    )
    assert code == 2 and "Traceback" not in output and "weights" in output and "'lora'" in output


# ---------------------------------------------------------------------------------------------------------------
# 8. the cost planner


def test_cost_planner_plans_every_new_method():
    from tunelab.cost.estimate import estimate

    model = str(tiny_llama())
    plans = {m: estimate(model=model, method=m) for m in ["lora", "full", *PREFERENCE_METHODS, "grpo"]}
    plans["dpo-full"] = estimate(model=model, method="dpo", weights="full")
    for name, plan in plans.items():
        assert plan["flops"] > 0 and plan["per_device_memory_gb"] > 0 and plan["hours"]["high"] > 0, name
    assert plans["dpo"]["flops"] > plans["lora"]["flops"]  # the reference pass with adapters off
    assert plans["grpo"]["flops"] > plans["lora"]["flops"]
    assert plans["orpo"]["flops"] == plans["lora"]["flops"] == plans["simpo"]["flops"]  # reference-free
    for name in [*PREFERENCE_METHODS, "grpo"]:
        assert plans[name]["trainable_params"] == plans["lora"]["trainable_params"]
        assert plans[name]["per_device_memory_gb"] == plans["lora"]["per_device_memory_gb"]
    # full weights: the reference is scored once, so the per-token cost is full fine-tuning's
    assert plans["dpo-full"]["trainable_params"] == plans["full"]["trainable_params"]
    assert plans["dpo-full"]["flops"] == plans["full"]["flops"]
    with pytest.raises(ConfigError, match="weights"):
        estimate(model=model, method="lora", weights="full")


# ---------------------------------------------------------------------------------------------------------------
# The planner and the dry run describe each recipe as it really runs.


def test_planner_counts_grpos_frozen_reference_copy_on_full_weights():
    from tunelab.cost.estimate import estimate

    full = estimate(model="meta-llama/Meta-Llama-3-8B", method="full", gpu="H100-80GB")
    grpo = estimate(model="meta-llama/Meta-Llama-3-8B", method="grpo", weights="full", gpu="H100-80GB")
    assert grpo["per_device_memory_gb"] > full["per_device_memory_gb"]  # + a second copy of the weights
    assert grpo["flops"] > full["flops"]  # + the reference's forward pass every step


def test_planners_fix_for_a_recipe_keeps_the_recipe():
    from tunelab.cost.estimate import estimate

    plan = estimate(model="meta-llama/Meta-Llama-3-8B", method="dpo", weights="full", gpu="H100-80GB")
    assert not plan["fits"]
    assert "method lora" not in plan["fix"]  # following it would train supervised LoRA, not DPO


def test_planner_counts_both_sides_of_each_preference_pair(tmp_path, tokenizer):
    from tunelab.cost.estimate import estimate

    records = pair_records(8)
    train = write_jsonl(tmp_path / "train.jsonl", records)
    trained = sum(
        len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in (encode_pair(r, tokenizer, 1024) for r in records)
    )
    plan = estimate(model=str(tiny_llama()), method="dpo", data=str(train), epochs=1)
    assert plan["tokens_per_epoch"] >= 0.9 * trained  # each pair is two sequences: prompt + chosen, prompt + rejected


@needs_graders
def test_dry_run_of_grpo_on_full_weights_does_not_claim_a_precomputed_reference(files, tmp_path, capsys):
    from tunelab.jobs import finetune

    config = load_config(
        None,
        {
            "model.name": str(tiny_llama()),
            "method": "grpo",
            "weights": "full",
            "rl.grader": EXACT,
            "data.path": [str(files["reinforcement"])],
            "out": str(tmp_path / "dry"),
            "tracking.enabled": False,
        },
    )
    assert finetune.run(config, dry_run=True)["status"] == "dry-run"
    said = " ".join(capsys.readouterr().err.split())  # as one line, however the console wrapped it
    assert "no second model is held" not in said
