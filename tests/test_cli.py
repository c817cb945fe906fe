"""The command-line contract: defaults, the run folder, --json, and one clear line (exit 2) for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_models import tiny_llama

TUNELAB = str(Path(sys.executable).with_name("tunelab"))


def tunelab(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([TUNELAB, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def chat_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "chat.jsonl"
    with open(path, "w") as handle:
        for i in range(120):
            handle.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": f"Question {i}: where is order {1000 + i * 7}?"},
                            {"role": "assistant", "content": f"Order {1000 + i * 7} ships in {i % 5 + 1} days."},
                        ]
                    }
                )
                + "\n"
            )
    return path


@pytest.fixture(scope="module")
def finished_run(chat_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    result = tunelab(
        "train",
        "--data",
        chat_file,
        "--model",
        tiny_llama(),
        "--max-steps",
        "3",
        "--out",
        out,
        "--json",
        "--set",
        "eval.probes=false",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_help_is_instant_and_lists_the_workflow():
    result = tunelab("--help")
    assert result.returncode == 0
    for command in ("train", "init", "data", "eval", "export", "serve", "cost", "models", "runs", "sweep"):
        assert command in result.stdout


def test_run_folder_contract(finished_run):
    out, summary = finished_run
    assert summary["status"] == "succeeded" and summary["run_dir"] == str(out)
    for name in ("config.yaml", "metrics.jsonl", "eval.json", "README.md", "report.html"):
        assert (out / name).exists(), name
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert all({"step", "epoch", "loss", "learning_rate", "tokens_per_second"} <= set(s) for s in steps)
    assert "eval_loss" in steps[-1]
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["primary_metric"] in evaluation["tuned"]
    assert (
        set(evaluation["base"]) == set(evaluation["tuned"])
        and evaluation["split"] == "test"
        and evaluation["n_examples"] > 0
    )
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["task"] == "causal-lm" and resolved["method"] == "lora"  # defaults followed the data and model


def test_run_reports_its_cost_beside_the_estimate(finished_run):
    out, _ = finished_run
    cost = json.loads((out / "eval.json").read_text())["cost"]
    assert cost["estimate"]["per_device_memory_gb"] > 0 and cost["estimate"]["train_tokens"] > 0
    assert cost["actual"]["peak_memory_gb"] > 0 and cost["actual"]["hours"] > 0 and cost["actual"]["train_tokens"] > 0
    assert "Cost: estimate vs actual" in (out / "report.html").read_text()
    again = tunelab("eval", out, "--data", out / "data", "--no-probes", "--no-baseline", "--max-examples", "4")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "eval.json").read_text())["cost"] == cost  # re-evaluating keeps what training measured


def test_adapter_loads_with_plain_peft(finished_run):
    """Plain PEFT, knowing nothing of tunelab, loads the saved adapter to the outputs tunelab's loader gives."""
    import torch
    from peft import AutoPeftModelForCausalLM

    from tunelab.inference.engine import load_run

    out, _ = finished_run
    model = AutoPeftModelForCausalLM.from_pretrained(out / "adapter", dtype=torch.float32).eval()
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)  # trained, not the init
    ours = load_run(out)
    batch = ours.tokenizer(["Question 3: where is order 1021?", "Order"], return_tensors="pt", padding=True)
    with torch.no_grad():
        plain, tunelab_loaded = model(**batch).logits, ours.model(**batch).logits
    assert plain.shape == tunelab_loaded.shape and torch.allclose(plain, tunelab_loaded, atol=1e-5)


def test_init_writes_a_config_that_loads(tmp_path):
    from tunelab.config import load_config

    path = tmp_path / "tunelab.yaml"
    assert tunelab("init", path).returncode == 0
    text = path.read_text()
    assert "learning_rate" in text and "# " in text
    assert load_config(path).lora.r == 16
    assert tunelab("init", path).returncode == 2  # no silent overwrite


@pytest.mark.parametrize(
    "args, words",
    [
        (["--data", "no/such/file.jsonl"], "not found"),
        (["--model", "./no/such/model"], "not found"),
        (["--set", "train.learning_rate=-1"], "train.learning_rate"),
        (["--set", "lora.r=0"], "lora.r"),
        (["--set", "nonsense.key=3"], "nonsense"),
        (["--method", "magic"], "method"),
    ],
)
def test_bad_input_is_one_clear_line(args, words, chat_file, tmp_path):
    base = ["train", "--data", chat_file] if "--data" not in args else ["train"]
    result = tunelab(*base, *args, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and words in result.stderr
    assert "error:" in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--batch-size", "8"], "No such option: --batch-size"),
        (["train", "--epochs", "three"], "--epochs"),
        (["trian"], "No such command 'trian'"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args, words):
    result = tunelab(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and words in result.stderr


def test_qlora_refuses_without_cuda(chat_file, tmp_path):
    result = tunelab(
        "train", "--data", chat_file, "--model", tiny_llama(), "--method", "qlora", "--out", tmp_path / "q"
    )
    assert result.returncode == 2 and "CUDA" in result.stderr and "Traceback" not in result.stderr


def test_example_configs_are_valid():
    from tunelab.config import load_config

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_dry_run_shows_trained_tokens_and_estimate(chat_file, tmp_path):
    result = tunelab(
        "train", "--data", chat_file, "--model", tiny_llama(), "--dry-run", "--json", "--out", tmp_path / "d"
    )
    assert result.returncode == 0, result.stderr[-1500:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "dry-run" and 0 < summary["trained_tokens"] < summary["train_tokens"]
    assert summary["estimate"]["per_device_memory_gb"] > 0
    assert not (tmp_path / "d" / "adapter").exists()


def test_config_reference_is_up_to_date():
    script = Path(__file__).parents[1] / "scripts" / "config_reference.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, "docs/config-reference.md is stale: run python scripts/config_reference.py"


def test_a_nearly_full_disk_is_refused_before_training(tmp_path, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    from tunelab.errors import TunelabError
    from tunelab.runs import new_run_dir

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 10**7, 10**7))
    with pytest.raises(TunelabError, match="MB free"):
        new_run_dir(str(tmp_path / "run"), "lora", tmp_path)
