"""Every method trains, saves in its standard format, and loads back to the same outputs; the
guards (early stopping, NaN stop, class weights, NEFTune, checkpointing, distillation) behave."""

import json

import pytest
import torch
from tiny_models import tiny_bert, tiny_llama, tiny_t5

from tunelab.config import load_config
from tunelab.errors import HardwareError, TrainingError
from tunelab.jobs.finetune import encode_split, load_tokenizer_for, loop_settings
from tunelab.methods.registry import build_model, load_trained, parameter_counts, save_trained
from tunelab.runs import MetricsLog
from tunelab.training.loop import train_loop

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
    tmp_path.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer_for(config)
    examples = encode_split(records, tokenizer, config, labels, "train")
    settings = loop_settings(config, len(examples), tokenizer.pad_token_id or 0)
    torch.manual_seed(0)
    model = build_model(config, config.task, config.model.name, labels, "cpu")
    result = train_loop(
        model, examples, examples[:8], settings, run_dir=tmp_path, log=MetricsLog(tmp_path / "m.jsonl"), **loop_kwargs
    )
    return model, tokenizer, result


def logits(model, tokenizer, task="causal-lm"):
    batch = tokenizer(["code 3 please", "reply"], return_tensors="pt", padding=True)
    with torch.no_grad():
        if task == "seq2seq":
            return model(**batch, decoder_input_ids=batch["input_ids"][:, :3]).logits
        return model(**batch).logits


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_saves_and_round_trips(method, tmp_path):
    config = config_for(tiny_llama(), method, **({"train.learning_rate": 0.05} if method != "full" else {}))
    model, tokenizer, result = train_briefly(config, CHAT, tmp_path)
    counts = parameter_counts(model)
    assert result.steps == 3 and 0 < counts["trainable"] <= counts["total"]
    if method != "full":
        assert counts["trainable"] < counts["total"] / 10
    before = logits(model.eval(), tokenizer)
    save_trained(model, tokenizer, tmp_path / "saved")
    after = logits(load_trained(tmp_path / "saved", "causal-lm", config.model.name).eval(), tokenizer)
    assert torch.allclose(before, after, atol=1e-5), (before - after).abs().max()


def test_classification_with_class_weights_and_label_mapping(tmp_path):
    records = [
        {"text": f"my {topic} issue number {i}", "label": topic}
        for i, topic in enumerate(["billing"] * 24 + ["shipping"] * 8)
    ]
    labels = ["billing", "shipping"]
    config = config_for(tiny_bert(), "full", "classification", **{"train.learning_rate": 1e-3})
    weights = torch.tensor([0.5, 1.5])
    model, tokenizer, result = train_briefly(config, records, tmp_path, labels, class_weights=weights)
    save_trained(model, tokenizer, tmp_path / "saved", labels)
    loaded = load_trained(tmp_path / "saved", "classification", config.model.name)
    assert loaded.config.id2label == {0: "billing", 1: "shipping"}
    assert json.loads((tmp_path / "saved" / "labels.json").read_text()) == labels


def test_seq2seq_lora_on_tiny_t5(tmp_path):
    records = [{"source": f"add {a} and {b}", "target": str(a + b)} for a, b in zip(range(20), range(20, 40))]
    config = config_for(tiny_t5(), "lora", "seq2seq", **{"lora.target_modules": ["q", "v"]})
    model, tokenizer, result = train_briefly(config, records, tmp_path)
    before = logits(model.eval(), tokenizer, "seq2seq")
    save_trained(model, tokenizer, tmp_path / "saved")
    after = logits(load_trained(tmp_path / "saved", "seq2seq", config.model.name).eval(), tokenizer, "seq2seq")
    assert result.steps == 3 and torch.allclose(before, after, atol=1e-5)


def test_head_mismatch_is_refused():
    from tunelab.errors import ModelError
    from tunelab.models.loading import load_model

    with pytest.raises(ModelError, match="encoder-decoder"):
        load_model(str(tiny_llama()), "seq2seq")
    with pytest.raises(ModelError, match="cannot generate"):
        load_model(str(tiny_bert()), "causal-lm")


def test_qlora_needs_cuda():
    from tunelab.methods.registry import check_hardware

    with pytest.raises(HardwareError, match="CUDA"):
        check_hardware("qlora", "cpu")


def test_early_stopping_restores_the_best_weights(tmp_path):
    config = config_for(
        tiny_llama(),
        "lora",
        **{
            "train.learning_rate": 0.5,
            "train.max_steps": 12,
            "train.eval_steps": 1,
            "train.early_stopping_patience": 2,
            "train.warmup_ratio": 0,
        },
    )
    model, tokenizer, result = train_briefly(config, CHAT, tmp_path)
    evals = [r["eval_loss"] for r in MetricsLog(tmp_path / "m.jsonl").read()]
    assert result.best_eval_loss == pytest.approx(min(evals))
    if result.stopped_early:
        assert result.steps < 12


def test_nan_loss_stops_with_the_step(tmp_path):
    config = config_for(tiny_llama(), "full")
    tokenizer = load_tokenizer_for(config)
    examples = encode_split(CHAT, tokenizer, config, None, "train")
    model = build_model(config, "causal-lm", config.model.name, None, "cpu")
    with torch.no_grad():
        model.model.embed_tokens.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="step 1"):
        train_loop(
            model,
            examples,
            [],
            loop_settings(config, len(examples), 0),
            run_dir=tmp_path,
            log=MetricsLog(tmp_path / "m.jsonl"),
        )


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
    from transformers import AutoModelForCausalLM

    config = config_for(tiny_llama(), "distill", **{"train.learning_rate": 1e-3, "distill.teacher": str(tiny_llama())})
    teacher = AutoModelForCausalLM.from_pretrained(tiny_llama()).eval()
    model, _, result = train_briefly(config, CHAT, tmp_path, teacher=teacher)
    losses = [r["loss"] for r in MetricsLog(tmp_path / "m.jsonl").read()]
    assert result.steps == 3 and all(torch.isfinite(torch.tensor(losses)))


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
