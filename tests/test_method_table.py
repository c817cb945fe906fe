"""Adding a method is one module plus one table entry: a method this test defines (only the RMSNorm scales
train, kept in a weights format of its own) is registered in METHODS and nothing else, then trains through
the real workflow, saves, loads back to the same logits, is planned by the cost estimator with its own
trainable-parameter count, and is listed by `tunelab methods`. Unknown names are refused with the list."""

import json

import pytest
import torch
from tiny_models import tiny_llama

from tunelab.config import load_config
from tunelab.errors import ConfigError
from tunelab.methods.base import BuildContext, Method, WeightsFormat
from tunelab.methods.registry import METHODS, get_method

NORMS_FILE = "norms.safetensors"
PROBE = ["code 3 please", "reply 1 done"]
CHAT = [
    {
        "messages": [
            {"role": "user", "content": f"code {i} please"},
            {"role": "assistant", "content": f"reply {i % 5} done"},
        ]
    }
    for i in range(32)
]


def probe_logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(PROBE, return_tensors="pt", padding=True)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(**batch).logits
    model.train(was_training)
    return out


# --- the whole method: what a new module under tunelab/methods/ would hold --------------------------------


def apply_norms_only(model, context: BuildContext):
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.endswith("norm.weight"))
    return model


def norms_trainable(spec, setup) -> float:
    return spec.layers * 2 * spec.hidden + spec.hidden  # input and post-attention norm per block, final norm


def norms_format(saved: dict) -> WeightsFormat:
    """The trained norm scales alone in one safetensors file, read back onto a freshly loaded base. `saved`
    receives the trained model's probe logits at save time (what the loaded model must reproduce)."""

    def save(model, folder):
        from safetensors.torch import save_file

        from tunelab.models.loading import load_tokenizer

        folder.mkdir(parents=True, exist_ok=True)
        trained = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(folder / NORMS_FILE))
        saved["logits"] = probe_logits(model, load_tokenizer(str(tiny_llama())))

    def load(folder, task, base_name, device):
        from safetensors.torch import load_file

        from tunelab.models.loading import load_model

        model = load_model(base_name, task, device=device)
        result = model.load_state_dict(load_file(str(folder / NORMS_FILE)), strict=False)
        assert not result.unexpected_keys
        return model.to(device)

    return WeightsFormat("adapter", "tunelab", save, load, lambda folder: (folder / NORMS_FILE).exists())


def norms_only(saved: dict) -> Method:
    return Method(
        name="norms-only",
        summary="only the RMSNorm scales train",
        apply=apply_norms_only,
        trainable_params=norms_trainable,
        weights=norms_format(saved),
        learning_rate=1e-2,
    )


# ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch) -> dict:
    """norms-only in the method table for this test only; returns what its save recorded."""
    saved = {}
    monkeypatch.setitem(METHODS, "norms-only", norms_only(saved))
    return saved


def test_a_registered_method_trains_saves_loads_and_is_planned(registered, tmp_path, run_cli):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from tunelab.cost.estimate import estimate, settings_from_config
    from tunelab.inference.engine import load_run
    from tunelab.jobs import finetune
    from tunelab.runs import read_config

    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in CHAT * 4))
    summary = finetune.run(
        load_config(
            None,
            {
                "model.name": str(tiny_llama()),
                "method": "norms-only",
                "data.path": [str(data)],
                "out": str(tmp_path / "run"),
                "train.max_steps": 2,
                "eval.probes": False,
                "eval.baseline": False,
                "eval.max_examples": 2,
                "eval.max_new_tokens": 4,
                "eval.bootstrap_samples": 100,
                "tracking.enabled": False,
                "data.near_dup_threshold": 1.0,
            },
        )
    )
    run_dir = tmp_path / "run"
    base = AutoModelForCausalLM.from_pretrained(tiny_llama())
    norms = {n for n, _ in base.named_parameters() if n.endswith("norm.weight")}
    assert summary["status"] == "succeeded" and summary["method"] == "norms-only" and summary["steps"] == 2
    assert summary["parameters"]["trainable"] == sum(p.numel() for n, p in base.named_parameters() if n in norms)
    config = read_config(run_dir)
    assert config.method == "norms-only" and config.train.learning_rate == 1e-2  # the method's default rate

    # saved in the method's own format: the norm scales, and only those, all trained away from the base's
    stored = load_file(str(run_dir / "adapter" / NORMS_FILE))
    assert set(stored) == norms and not (run_dir / "adapter" / "config.json").exists()
    assert all(not torch.equal(stored[n], dict(base.named_parameters())[n].detach()) for n in norms)

    # loaded back through the method table: the logits the trained model had when it was saved
    loaded = load_run(run_dir)
    assert loaded.method.name == "norms-only"
    assert torch.allclose(probe_logits(loaded.model, loaded.tokenizer), registered["logits"], atol=1e-5)
    assert not torch.allclose(probe_logits(base, loaded.tokenizer), registered["logits"], atol=1e-3)  # it trained
    base_weights = dict(base.named_parameters())
    for name, parameter in loaded.model.named_parameters():
        if name not in norms:
            assert torch.equal(parameter.detach(), base_weights[name].detach()), name
    assert json.loads((run_dir / "eval.json").read_text())["tuned"]

    # planned with its own count (the cost estimator asks the table, not a list of names)
    count = summary["parameters"]["trainable"]
    planned = estimate(model=str(tiny_llama()), method="norms-only", gpu="cpu")
    assert planned["method"] == "norms-only" and planned["trainable_params"] == count
    assert estimate(**settings_from_config(config))["trainable_params"] == count
    assert estimate(model=str(tiny_llama()), method="full", gpu="cpu")["trainable_params"] > 100 * count

    code, output = run_cli("methods", "--json")
    shown = next(line for line in reversed(output.splitlines()) if line.startswith('{"methods"'))
    listed = {row["method"]: row for row in json.loads(shown)["methods"]}
    assert code == 0 and listed["norms-only"]["summary"] == "only the RMSNorm scales train"


def test_an_unknown_method_is_refused_with_the_known_names(registered):
    with pytest.raises(ConfigError) as from_config:
        load_config(None, {"method": "no-such-method"})
    with pytest.raises(ConfigError) as from_table:
        get_method("no-such-method")
    for caught in (from_config, from_table):
        text = str(caught.value)
        assert "no-such-method" in text
        assert all(name in text for name in METHODS), text  # the registered norms-only included
    assert "norms-only" in str(from_table.value)


def test_cli_unknown_method_is_exit_2_with_the_list(run_cli):
    code, output = run_cli("train", "--method", "no-such-method")
    assert code == 2, output
    assert "no-such-method" in output and "Traceback" not in output and "error:" in output
    assert all(name in output for name in METHODS), output
