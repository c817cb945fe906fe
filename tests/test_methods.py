"""Every method trains, saves in its standard format, and loads back to the same outputs; the
guards (early stopping, NaN stop, class weights, NEFTune, checkpointing, distillation) behave."""

import json

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_bert, tiny_llama, tiny_t5
from training_helpers import losses_of, run_loop, setup_for

from tunelab.config import load_config
from tunelab.errors import HardwareError, TrainingError
from tunelab.methods.registry import check_hardware, get_method, load_trained, parameter_counts, save_trained
from tunelab.runs import MetricsLog
from tunelab.training import checkpoint
from tunelab.training.batches import IGNORE, collate_padded
from tunelab.training.loop import evaluation_loss

CHAT = [
    {
        "messages": [
            {"role": "user", "content": f"code {i} please"},
            {"role": "assistant", "content": f"reply {i % 5} done"},
        ]
    }
    for i in range(32)
]
METHODS = ["full", "lora", "prompt-tuning", "prefix-tuning", "adapter", "ia3"]


def config_for(model, method, task="causal-lm", **overrides):
    return load_config(
        None,
        {
            "model.name": str(model),
            "method": method,
            "task": task,
            "train.max_steps": 3,
            "train.batch_size": 8,
            **overrides,
        },
    )


def train_briefly(config, records, tmp_path, labels=None, **loop_kwargs):
    setup = setup_for(config, records, labels)
    model = setup.model()
    result = run_loop(setup, model, tmp_path, **loop_kwargs)
    return model, setup.tokenizer, result


def snapshot(model) -> dict[str, tuple[bool, torch.Tensor]]:
    return {name: (p.requires_grad, p.detach().clone()) for name, p in model.named_parameters()}


def assert_only_trainable_moved(before: dict, model) -> None:
    """Every trainable parameter changed in training; every frozen one is bit for bit what it was."""
    after = dict(model.named_parameters())
    assert set(after) == set(before)
    still = [name for name, (trains, old) in before.items() if trains and torch.equal(after[name].detach(), old)]
    moved = [
        name for name, (trains, old) in before.items() if not trains and not torch.equal(after[name].detach(), old)
    ]
    assert any(trains for trains, _ in before.values())
    assert not still, f"trainable parameters that did not move: {still[:5]}"
    assert not moved, f"frozen parameters that moved: {moved[:5]}"


def logits(model, tokenizer, task="causal-lm"):
    batch = tokenizer(["code 3 please", "reply"], return_tensors="pt", padding=True)
    with torch.no_grad():
        if task == "seq2seq":
            return model(**batch, decoder_input_ids=batch["input_ids"][:, :3]).logits
        return model(**batch).logits


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_saves_and_round_trips(method, tmp_path):
    config = config_for(tiny_llama(), method, **({"train.learning_rate": 0.05} if method != "full" else {}))
    setup = setup_for(config, CHAT)
    model = setup.model()
    before_training = snapshot(model)
    result = run_loop(setup, model, tmp_path)
    counts = parameter_counts(model)
    assert result.steps == 3 and 0 < counts["trainable"] <= counts["total"]
    if method != "full":
        assert counts["trainable"] < counts["total"] / 10
    assert_only_trainable_moved(before_training, model)
    before = logits(model.eval(), setup.tokenizer)
    save_trained(model, setup.tokenizer, tmp_path / "saved", setup.method)
    loaded = load_trained(tmp_path / "saved", setup.method, "causal-lm", config.model.name)
    after = logits(loaded.eval(), setup.tokenizer)
    assert torch.allclose(before, after, atol=1e-5), (before - after).abs().max()


def test_classification_with_class_weights_and_label_mapping(tmp_path):
    records = [
        {"text": f"my {topic} issue number {i}", "label": topic}
        for i, topic in enumerate(["billing"] * 24 + ["shipping"] * 8)
    ]
    labels = ["billing", "shipping"]
    config = config_for(
        tiny_bert(),
        "full",
        "classification",
        **{"train.learning_rate": 1e-3, "train.class_weights": {"billing": 0.5, "shipping": 1.5}},
    )
    setup = setup_for(config, records, labels)
    model = setup.model()
    before_training = snapshot(model)
    run_loop(setup, model, tmp_path)
    assert_only_trainable_moved(before_training, model)
    save_trained(model, setup.tokenizer, tmp_path / "saved", setup.method, labels)
    loaded = load_trained(tmp_path / "saved", setup.method, "classification", config.model.name)
    assert loaded.config.id2label == {0: "billing", 1: "shipping"}
    assert json.loads((tmp_path / "saved" / "labels.json").read_text()) == labels
    batch = collate_padded(setup.examples[:6], setup.tokenizer.pad_token_id or 0, "classification")
    with torch.no_grad():
        assert torch.allclose(model.eval()(**batch_inputs(batch)).logits, loaded.eval()(**batch_inputs(batch)).logits)


def batch_inputs(batch: dict) -> dict:
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def test_class_weights_weigh_each_example_by_its_label():
    """The objective's loss is sum_i w[y_i] * CE_i with w the inverse train frequency (auto), normalised to mean 1;
    without weights it is the plain summed CE."""
    from tunelab.training.class_weights import class_weight_tensor
    from tunelab.training.losses import classification_loss

    records = [{"text": f"my {t} issue {i}", "label": t} for i, t in enumerate(["billing"] * 24 + ["shipping"] * 8)]
    labels = ["billing", "shipping"]
    setup = setup_for(config_for(tiny_bert(), "full", "classification"), records, labels)
    weights = class_weight_tensor("auto", records, labels, "cpu")
    assert weights.tolist() == pytest.approx([0.5, 1.5])  # 1/24 and 1/8, over their mean 1/12
    assert class_weight_tensor("none", records, labels, "cpu") is None
    model = setup.model().eval()
    examples = setup.examples[20:28]  # 4 billing, 4 shipping
    batch = collate_padded(examples, setup.tokenizer.pad_token_id or 0, "classification")
    assert batch["targets"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    with torch.no_grad():
        per_example = F.cross_entropy(model(**batch_inputs(batch)).logits.float(), batch["targets"], reduction="none")
        by_hand = (per_example * weights[batch["targets"]]).sum()
        weighted = classification_loss(model, batch, weights)
        plain = classification_loss(model, batch)
        through_the_method = setup.objective.loss(model, batch)  # train.class_weights defaults to auto
    assert weighted.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert plain.item() == pytest.approx(per_example.sum().item(), rel=1e-6)
    assert through_the_method.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert abs(weighted.item() - plain.item()) > 1e-3  # the weights do change the loss


def test_seq2seq_lora_on_tiny_t5(tmp_path):
    records = [{"source": f"add {a} and {b}", "target": str(a + b)} for a, b in zip(range(20), range(20, 40))]
    config = config_for(tiny_t5(), "lora", "seq2seq", **{"lora.target_modules": ["q", "v"]})
    setup = setup_for(config, records)
    model = setup.model()
    before_training = snapshot(model)
    result = run_loop(setup, model, tmp_path)
    assert_only_trainable_moved(before_training, model)
    before = logits(model.eval(), setup.tokenizer, "seq2seq")
    save_trained(model, setup.tokenizer, tmp_path / "saved", setup.method)
    loaded = load_trained(tmp_path / "saved", setup.method, "seq2seq", config.model.name)
    after = logits(loaded.eval(), setup.tokenizer, "seq2seq")
    assert result.steps == 3 and torch.allclose(before, after, atol=1e-5)


def test_head_mismatch_is_refused():
    from tunelab.errors import ModelError
    from tunelab.models.loading import load_model

    with pytest.raises(ModelError, match="encoder-decoder"):
        load_model(str(tiny_llama()), "seq2seq")
    with pytest.raises(ModelError, match="cannot generate"):
        load_model(str(tiny_bert()), "causal-lm")


def test_qlora_needs_cuda():
    with pytest.raises(HardwareError, match="CUDA"):
        check_hardware(get_method("qlora"), "cpu")


def test_early_stopping_restores_the_best_weights(tmp_path):
    """A rate too high to settle (full fine-tuning, constant 0.1): validation improves, then gets worse twice."""
    config = config_for(
        tiny_llama(),
        "full",
        **{
            "train.learning_rate": 0.1,
            "train.scheduler": "constant",
            "train.max_steps": 12,
            "train.eval_steps": 1,
            "train.early_stopping_patience": 2,
            "train.warmup_ratio": 0,
        },
    )
    setup = setup_for(config, CHAT)
    model = setup.model()
    at_eval = {}

    def capture(step, record):  # the trainable weights at each evaluation, as the loop saw them
        at_eval[step] = (record["eval_loss"], checkpoint.trainable_state(model))

    result = run_loop(setup, model, tmp_path, on_eval=capture)
    evals = [r["eval_loss"] for r in MetricsLog(tmp_path / "m.jsonl").read()]
    assert result.best_eval_loss == pytest.approx(min(evals))
    best_step = min(at_eval, key=lambda step: (at_eval[step][0], step))
    assert result.stopped_early and result.steps == best_step + 2 < 12  # two evaluations without improvement
    restored, best = checkpoint.trainable_state(model), at_eval[best_step][1]
    assert set(restored) == set(best) and all(torch.equal(restored[k], best[k]) for k in best)
    assert not all(torch.equal(restored[k], at_eval[result.steps][1][k]) for k in best)  # not the last weights
    assert evaluation_loss(model, setup.examples[:8], setup.settings, setup.objective) == pytest.approx(
        result.best_eval_loss, rel=1e-6
    )


def test_early_stopping_restores_the_best_weights_after_a_resume(tmp_path):
    """The best evaluation comes before the checkpoint the run resumes from: its weights travel with the checkpoint."""
    settings = {
        "train.learning_rate": 0.1,
        "train.scheduler": "constant",
        "train.eval_steps": 1,
        "train.early_stopping_patience": 2,
        "train.warmup_ratio": 0,
        "train.save_steps": 1,
    }
    uninterrupted = setup_for(config_for(tiny_llama(), "full", **{**settings, "train.max_steps": 12}), CHAT)
    reference = run_loop(uninterrupted, uninterrupted.model(), tmp_path / "a")
    best_step = [r["eval_loss"] for r in MetricsLog(tmp_path / "a" / "m.jsonl").read()].index(reference.best_eval_loss)
    assert reference.stopped_early and best_step + 1 < reference.steps
    first = setup_for(config_for(tiny_llama(), "full", **{**settings, "train.max_steps": best_step + 2}), CHAT)
    run_loop(first, first.model(), tmp_path / "b")  # "killed" one step after the best evaluation
    resumed_model = uninterrupted.model()
    result = run_loop(
        uninterrupted, resumed_model, tmp_path / "b", resume_from=checkpoint.latest_intact(tmp_path / "b")
    )
    assert result.stopped_early and result.best_eval_loss == pytest.approx(reference.best_eval_loss, rel=1e-6)
    restored = evaluation_loss(
        resumed_model, uninterrupted.examples[:8], uninterrupted.settings, uninterrupted.objective
    )
    assert restored == pytest.approx(reference.best_eval_loss, rel=1e-6)


def test_nan_loss_stops_with_the_step(tmp_path):
    setup = setup_for(config_for(tiny_llama(), "full"), CHAT)
    model = setup.model()
    with torch.no_grad():
        model.model.embed_tokens.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="step 1"):
        run_loop(setup, model, tmp_path, validation=[])


def test_neftune_noise_only_in_training():
    from transformers import AutoModelForCausalLM

    from tunelab.training.precision import add_neftune

    model = AutoModelForCausalLM.from_pretrained(tiny_llama())
    ids = torch.tensor([[1, 2, 3, 4]])
    clean = model.get_input_embeddings()(ids)
    handle = add_neftune(model, 5.0)
    model.train()
    noisy = model.get_input_embeddings()(ids)
    model.eval()
    assert not torch.equal(noisy, clean) and torch.equal(model.get_input_embeddings()(ids), clean)
    assert (noisy - clean).abs().max() <= 5.0 / (4 * clean.shape[-1]) ** 0.5 + 1e-6
    handle.remove()


def test_gradient_checkpointing_gives_the_same_losses(tmp_path):
    plain = train_briefly(config_for(tiny_llama(), "lora", **{"lora.dropout": 0}), CHAT, tmp_path / "a")
    checkpointed = train_briefly(
        config_for(tiny_llama(), "lora", **{"lora.dropout": 0, "train.gradient_checkpointing": True}),
        CHAT,
        tmp_path / "b",
    )
    a, b = (MetricsLog(p / "m.jsonl").read() for p in (tmp_path / "a", tmp_path / "b"))
    assert plain[2].steps == checkpointed[2].steps == 3
    assert all(abs(x["loss"] - y["loss"]) < 1e-5 for x, y in zip(a, b))


def test_distillation_from_a_teacher(tmp_path):
    config = config_for(tiny_llama(), "distill", **{"train.learning_rate": 1e-3, "distill.teacher": str(tiny_llama())})
    setup = setup_for(config, CHAT)
    assert len(setup.objective.frozen_models) == 1
    teacher = setup.objective.frozen_models[0]
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    model = setup.model()
    result = run_loop(setup, model, tmp_path)
    losses = losses_of(tmp_path)
    assert result.steps == 3 and len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))


def other_teacher(folder):
    """A tiny Llama of the same shape and tokenizer as tiny_llama() but other (seeded) random weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(7)
    teacher = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_llama()))
    with torch.no_grad():  # a sharper distribution than a fresh init's near-uniform one
        teacher.model.norm.weight.mul_(8)
    teacher.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_llama()).save_pretrained(folder)
    return folder


def kl_teacher_student(teacher, student, batch) -> float:
    """KL(teacher || student) per trained target of a padded batch, at temperature 1, from full logits."""
    inputs = batch_inputs(batch)
    mask = batch["targets"] != IGNORE
    with torch.no_grad():
        t = F.log_softmax(teacher(**inputs).logits[mask].float(), -1)
        s = F.log_softmax(student(**inputs).logits[mask].float(), -1)
    return float((t.exp() * (t - s)).sum(-1).mean())


def test_distillation_moves_the_student_toward_the_teacher(tmp_path):
    teacher_dir = other_teacher(tmp_path / "teacher")
    config = config_for(
        tiny_llama(),
        "distill",
        **{
            "train.learning_rate": 1e-2,
            "train.scheduler": "constant",
            "train.max_steps": 6,
            "train.warmup_ratio": 0,
            "distill.teacher": str(teacher_dir),
            "distill.alpha": 1.0,
            "distill.temperature": 1.0,
        },
    )
    setup = setup_for(config, CHAT)
    teacher = setup.objective.frozen_models[0]
    student = setup.model().eval()
    batch = collate_padded(setup.examples[:16], setup.tokenizer.pad_token_id or 0, "causal-lm")
    before = kl_teacher_student(teacher, student, batch)
    run_loop(setup, student, tmp_path / "run")
    after = kl_teacher_student(teacher, student.eval(), batch)
    assert before > 0.1, "the teacher must differ from the student for the test to mean anything"
    assert after < 0.8 * before, (before, after)  # measured: 1.13 -> 0.74


@pytest.mark.parametrize("method", ["prompt-tuning", "prefix-tuning"])
def test_virtual_token_methods_evaluate_end_to_end(method, tmp_path):
    """Prompt tuning prepends virtual positions to the logits: evaluation must line them up too."""
    from tunelab.jobs import finetune

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in CHAT * 4))
    summary = finetune.run(
        load_config(
            None,
            {
                "model.name": str(tiny_llama()),
                "method": method,
                "data.path": [str(data)],
                "out": str(tmp_path / "run"),
                "train.max_steps": 2,
                "eval.probes": False,
                "tracking.enabled": False,
                "data.near_dup_threshold": 1.0,
            },
        )
    )
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert summary["status"] == "succeeded" and evaluation["tuned"]["eval_loss"] > 0


def test_a_fresh_run_in_a_used_out_folder_keeps_no_earlier_steps(tmp_path):
    """Metrics (and so curves, reports and the service's events) describe only the run that wrote them."""
    from tunelab.jobs import finetune

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in CHAT * 4))
    overrides = {
        "model.name": str(tiny_llama()),
        "method": "lora",
        "data.path": [str(data)],
        "eval.enabled": False,
        "tracking.enabled": False,
        "out": str(tmp_path / "run"),
    }
    finetune.run(load_config(None, {**overrides, "train.max_steps": 3}))
    finetune.run(load_config(None, {**overrides, "train.max_steps": 1}))
    steps = [r["step"] for r in MetricsLog(tmp_path / "run" / "metrics.jsonl").read()]
    assert steps == [1]
