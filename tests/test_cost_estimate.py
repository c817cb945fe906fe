"""`tunelab cost estimate`: JSON contract, GPU names, price overrides, exact token counts, FLOPs and calibration."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from tunelab.cost import prices as price_data
from tunelab.cost.compute import flops_per_token
from tunelab.cost.estimate import estimate
from tunelab.cost.tokens import openai_count
from tunelab.errors import ConfigError
from tunelab.models.catalogue import lookup

CHAT = [
    {
        "messages": [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"It is {2 * i}."},
        ]
    }
    for i in range(12)
]


def write_prepared(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "manifest.json").write_text("{}")
    return folder


def test_cli_json_has_the_contract_keys():
    from tunelab.cli.cost import app

    result = CliRunner().invoke(
        app, ["estimate", "--model", "meta-llama/Meta-Llama-3-8B", "--method", "full", "--gpu", "H100-80GB", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("train_tokens", "per_device_memory_gb", "fits", "gpu_hours", "cost_usd"):
        assert key in out
    assert (
        out["fits"] is False and out["token_count"] == "assumed" and "assumed 1,000 examples" in out["assumptions"][0]
    )
    assert out["cost_usd"]["low"] <= out["cost_usd"]["high"] and out["gpu_hours"]["low"] < out["gpu_hours"]["high"]


def test_gpu_names_are_case_insensitive_and_unknown_ones_list_the_valid():
    prices = price_data.load_prices()
    for alias in ("h100", "A100-80GB", "a100-40gb", "l4", "A10G", "t4", "rtx4090", "CPU"):
        assert price_data.find_gpu(alias, prices)
    with pytest.raises(ConfigError) as caught:
        estimate("smollm2", "lora", gpu="X100")
    assert "H100-80GB" in caught.value.hint and "RTX4090" in caught.value.hint


def test_unknown_gpu_is_one_line_and_exit_2():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tunelab.cli.main", "cost", "estimate", "--gpu", "X100", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "unknown GPU" in result.stderr and "Traceback" not in result.stderr


def test_every_price_has_a_source_and_date():
    prices = price_data.load_prices()
    for gpu in price_data.all_gpus(prices):
        assert gpu.source and gpu.as_of and gpu.price_low <= gpu.price_high and gpu.mfu_low <= gpu.mfu_high
    assert prices["openai"]["source"] and prices["openai"]["as_of"]
    for entry in prices["hosting"].values():
        assert entry["source"] and entry["as_of"]
    closure = price_data.wind_down(prices)
    assert str(closure.closed_to_new_jobs) == "2027-01-06" and str(closure.closed_for_inactive) == "2026-07-02"
    assert str(closure.closed_for_never_fine_tuned) == "2026-05-07" == str(closure.notice)
    assert closure.source.startswith("https://platform.openai.com/docs/deprecations") and closure.as_of
    for entry in prices["openai"]["base_shutdowns"]:
        assert entry["source"].startswith("https://platform.openai.com/docs/deprecations") and entry["as_of"]


def test_openai_names_resolve_to_their_base_model():
    prices = price_data.load_prices()
    assert price_data.openai_model("gpt-4o-mini-2024-07-18", prices)["name"] == "gpt-4o-mini"
    assert price_data.openai_model("ft:gpt-4.1-2025-04-14:acme:triage:AbC123", prices)["name"] == "gpt-4.1"
    assert price_data.openai_model("gpt-4o-mini-tts", prices) is None
    assert price_data.base_shutdown("gpt-4.1-nano-2025-04-14", prices)["shutdown"] == "2026-10-23"
    assert price_data.base_shutdown("gpt-3.5-turbo-0125", prices)["model"] == "gpt-3.5-turbo"
    assert price_data.base_shutdown("gpt-5.5", prices) is None


def test_a_user_file_may_quote_the_wind_down_dates(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"openai": {"fine_tuning_wind_down": {"closed_to_new_jobs": "2027-02-01"}}}))
    assert str(price_data.wind_down(price_data.load_prices(mine)).closed_to_new_jobs) == "2027-02-01"
    mine.write_text(yaml.safe_dump({"openai": {"fine_tuning_wind_down": {"closed_to_new_jobs": "soon"}}}))
    with pytest.raises(ConfigError, match="closed_to_new_jobs is not a date"):
        price_data.wind_down(price_data.load_prices(mine))


def test_user_price_file_overrides_the_package(tmp_path, tunelab_home):
    base = estimate("meta-llama/Llama-3.2-1B", "lora", gpu="H100-80GB", epochs=300)
    (tunelab_home / "prices.yaml").write_text(
        yaml.safe_dump({"gpus": {"H100-80GB": {"price_per_hour": {"low": 20.0, "high": 45.0}}}})
    )
    dearer = estimate("meta-llama/Llama-3.2-1B", "lora", gpu="H100-80GB", epochs=300)
    assert dearer["cost_usd"]["high"] == pytest.approx(base["cost_usd"]["high"] * 10, rel=0.05)
    explicit = tmp_path / "mine.yaml"
    explicit.write_text(yaml.safe_dump({"gpus": {"H100-80GB": {"memory_gb": 8}}}))
    assert estimate("meta-llama/Llama-3.2-1B", "lora", gpu="H100-80GB", prices_file=explicit)["fits"] is False


def test_token_count_equals_a_direct_tokenizer_count(tmp_path):
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    model = tiny_llama()
    data = write_prepared(tmp_path / "prepared", CHAT + [{"text": "plain text record"}])
    out = estimate(str(model), "lora", data=data, epochs=2, gpu="cpu")
    tokenizer = AutoTokenizer.from_pretrained(model)
    direct = sum(
        len(
            tokenizer(tokenizer.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)[
                "input_ids"
            ]
        )
        for r in CHAT
    )
    direct += len(tokenizer("plain text record", add_special_tokens=False)["input_ids"]) + 1  # + end of text
    assert out["token_count"] == "exact" and out["tokens_per_epoch"] == direct and out["train_tokens"] == 2 * direct


def test_openai_count_adds_the_documented_overhead(tmp_path, monkeypatch):
    from tunelab.cost import tokens

    monkeypatch.setattr(tokens, "_tiktoken_encoder", lambda encoding: (lambda text: len(text.split()), "exact"))
    data = write_prepared(tmp_path / "p", CHAT[:1])
    count = openai_count(data, price_data.load_prices()["openai"])
    words = 1 + 5 + 1 + 3  # user, "What is 0 plus 0?", assistant, "It is 0."
    assert count.tokens == words + 2 * 3 + 3


def test_openai_estimate_prices_training_tokens(tmp_path):
    data = write_prepared(tmp_path / "p", CHAT)
    out = estimate("gpt-4.1-mini", data=data, epochs=3)
    assert out["fits"] is True and out["gpu_hours"] == {"low": 0.0, "high": 0.0}
    assert out["cost_usd"]["low"] == pytest.approx(out["train_tokens"] / 1e6 * 5.00, abs=0.01)


def test_flops_are_6n_for_full_and_4n_for_frozen_base():
    spec = lookup("meta-llama/Llama-3.2-1B")
    full, lora = flops_per_token(spec, "full", 1), flops_per_token(spec, "lora", 1)
    assert full / lora == pytest.approx(1.5, rel=0.01)
    assert flops_per_token(spec, "full", 4096) > full  # the attention term grows with context


def test_calibration_measures_this_machine(tmp_path):
    config = {
        "model_type": "llama",
        "vocab_size": 512,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "hidden_act": "silu",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = estimate(str(tmp_path), "lora", seq_len=64, micro_batch=2, calibrate=True)
    assert out["gpu"] == "CPU" and out["calibration"]["flops_per_second"] > 0
    assert "calibrated" in " ".join(out["assumptions"])
    with pytest.raises(ConfigError, match="calibrate"):
        estimate(str(tmp_path), "lora", gpu="H100-80GB", calibrate=True)


def test_config_file_feeds_the_estimate(tmp_path):
    from tunelab.cli.cost import app

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"model": "Qwen/Qwen2.5-7B", "method": "qlora", "train": {"epochs": 1}}))
    result = CliRunner().invoke(app, ["estimate", str(config), "--gpu", "l4", "--json"])
    out = json.loads(result.stdout)
    assert out["model"] == "Qwen/Qwen2.5-7B" and out["method"] == "qlora" and out["epochs"] == 1 and out["gpu"] == "L4"
