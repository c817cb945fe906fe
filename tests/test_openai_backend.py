"""`tunelab train --backend openai`: conversion and mapping, the wind-down warning, and end to end against a
real `tunelab serve`."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.errors import ConfigError
from tunelab.jobs import openai_backend


def chat_file(path: Path, n: int = 24) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"Ticket {i}: my parcel {i} is late."},
                        {"role": "assistant", "content": f"TRIAGE shipping/late #{i}"},
                    ]
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    return path


def test_records_become_openai_chat_examples():
    chat = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ]
    }
    assert openai_backend.openai_messages(chat, "causal-lm") == chat
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    tools = {
        "messages": [
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": None, "tool_calls": [call], "weight": 1},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"},
            {"role": "assistant", "content": "a"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parallel_tool_calls": False,
    }
    sent = openai_backend.openai_messages(tools, "causal-lm")
    assert sent["messages"][1] == {"role": "assistant", "tool_calls": [call], "weight": 1}
    assert sent["messages"][2]["tool_call_id"] == "c1" and sent["tools"] == tools["tools"]
    assert openai_backend.openai_messages({"text": "card lost", "label": "lost_card"}, "classification")["messages"][
        1
    ] == {"role": "assistant", "content": "lost_card"}
    assert openai_backend.openai_messages({"source": "a", "target": "b"}, "seq2seq")["messages"][0] == {
        "role": "user",
        "content": "a",
    }
    with pytest.raises(ConfigError):
        openai_backend.openai_messages({"text": "plain"}, "causal-lm")


def test_hyperparameters_map_to_openai_terms():
    config = load_config(None, {"train.epochs": 2, "train.batch_size": 4, "train.learning_rate": 1e-4})
    assert openai_backend.hyperparameters(config) == {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    assert openai_backend.hyperparameters(load_config())["learning_rate_multiplier"] == "auto"


def test_wind_down_warning_gives_the_dates_the_source_and_the_way_out():
    warning = openai_backend.wind_down_warning("gpt-4.1-mini-2025-04-14", None, date(2026, 12, 2))
    for text in ("2026-05-07", "2026-07-02", "no organisation can create new jobs from 2027-01-06", "2027-01-14"):
        assert text in warning
    assert "https://platform.openai.com/docs/deprecations" in warning
    assert "`tunelab serve`" in warning and "Moving from OpenAI fine-tuning" in warning
    closed = openai_backend.wind_down_warning("gpt-4o-mini", "https://api.openai.com/v1", date(2027, 1, 6))
    assert "job creation closed for every organisation on 2027-01-06" in closed and "refuse this job" in closed


def test_no_wind_down_warning_for_another_endpoint():
    assert openai_backend.wind_down_warning("tiny", "http://127.0.0.1:8000/v1", date(2027, 2, 1)) is None
    assert openai_backend.wind_down_warning("gpt-4o", "https://eu.api.openai.com/v1", date(2027, 2, 1))


def test_needs_a_model_and_dry_run_stays_offline(tmp_path, monkeypatch, capsys):
    from tunelab.jobs import finetune

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    overrides = {
        "backend": "openai",
        "data.path": [str(chat_file(tmp_path / "train.jsonl"))],
        "data.force": True,
        "data.tokenizer": "whitespace",
        "out": str(tmp_path / "run"),
        "tracking.enabled": False,
    }
    with pytest.raises(ConfigError, match="needs --model"):
        finetune.run(load_config(None, overrides))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    capsys.readouterr()
    summary = finetune.run(load_config(None, {**overrides, "model.name": "gpt-4.1-mini"}), dry_run=True)
    lines = Path(summary["train_file"]).read_text().splitlines()
    assert (
        summary["status"] == "dry_run"
        and len(lines) >= 18
        and json.loads(lines[0])["messages"][1]["role"] == "assistant"
    )
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "2027-01-06" in captured.err and "2027-01-06" not in captured.out


@pytest.mark.slow
def test_train_through_tunelab_serve(tmp_path):
    from test_server_e2e import KEY, ServeProcess
    from tiny_models import tiny_llama

    served = ServeProcess(tmp_path / "home", "--model", f"tiny={tiny_llama()}").start()
    try:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": served.base_url,
            "OPENAI_API_KEY": KEY,
            "TUNELAB_HOME": str(tmp_path / "client"),
        }
        command = [
            str(Path(sys.executable).with_name("tunelab")),
            "train",
            "--backend",
            "openai",
            "--model",
            "tiny",
            "--data",
            str(chat_file(tmp_path / "train.jsonl")),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--set",
            "train.batch_size=12",
            "--set",
            "data.force=true",
            "--set",
            "data.tokenizer=whitespace",
            "--json",
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:] + served.log_text()[-2000:]
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["status"] == "succeeded" and summary["fine_tuned_model"].startswith("ft:tiny:")
        assert summary["trained_tokens"] > 0 and summary["steps"] == 2
        assert "Fine-tuning job started" in result.stderr  # the followed events
        recorded = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert recorded["fine_tuned_model"] == summary["fine_tuned_model"]
        steps = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert [s["step"] for s in steps] == [1, 2] and steps[-1]["eval_loss"] > 0
        from mlflow.tracking import MlflowClient

        runs = MlflowClient(f"sqlite:///{tmp_path / 'client' / 'mlflow.db'}").search_runs(
            [
                e.experiment_id
                for e in MlflowClient(f"sqlite:///{tmp_path / 'client' / 'mlflow.db'}").search_experiments()
            ]
        )
        assert runs and runs[0].data.metrics.get("trained_tokens") == summary["trained_tokens"]
    finally:
        served.stop()
