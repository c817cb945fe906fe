"""The model catalogue: shapes agree with parameter counts, names resolve offline, local folders are read;
recommendations for a task and for leaving an OpenAI fine-tunable class."""

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from tunelab.errors import ModelError
from tunelab.models.catalogue import catalogue, lookup, shape_params, spec_from_folder

ISSUE_MODELS = [
    "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Llama-3.2-1B",
    "Qwen/Qwen2.5-7B",
    "mistralai/Mistral-7B-v0.1",
    "google/gemma-2-9b",
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "bert-base-uncased",
    "t5-base",
]


@pytest.mark.parametrize("name", ISSUE_MODELS)
def test_issue_models_are_known_offline(name):
    spec = lookup(name)
    assert spec.name == name and spec.params > 0 and spec.license and spec.context > 0


def test_decoder_shapes_match_published_parameter_counts():
    for spec in catalogue().values():
        if spec.architecture == "decoder":
            assert shape_params(spec) == pytest.approx(spec.params, rel=0.02), spec.name


def test_names_resolve_case_insensitively_and_by_alias():
    assert lookup("META-LLAMA/META-LLAMA-3-8B").name == "meta-llama/Meta-Llama-3-8B"
    assert lookup("smollm2").name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert lookup("google-t5/t5-base").name == "t5-base"
    assert lookup(None).bundled == "smollm2-135m-instruct"  # the default model


def test_unknown_model_names_the_fix():
    with pytest.raises(ModelError) as caught:
        lookup("nobody/nothing-7b")
    assert "nobody/nothing-7b" in caught.value.message and "meta-llama" not in caught.value.message
    assert "Qwen" in caught.value.hint or "SmolLM2" in caught.value.hint


def _folder(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_local_llama_folder_is_read(tmp_path):
    spec = spec_from_folder(
        _folder(
            tmp_path,
            {
                "model_type": "llama",
                "hidden_size": 2048,
                "num_hidden_layers": 16,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "intermediate_size": 8192,
                "vocab_size": 128256,
                "max_position_embeddings": 131072,
                "tie_word_embeddings": True,
                "hidden_act": "silu",
            },
        )
    )
    assert spec.params == pytest.approx(lookup("meta-llama/Llama-3.2-1B").params, rel=0.01)
    assert spec.local_path == str(tmp_path) and spec.architecture == "decoder"
    assert lookup(str(tmp_path)).params == spec.params


def test_local_bert_and_t5_folders_are_read(tmp_path):
    bert = spec_from_folder(
        _folder(
            tmp_path,
            {
                "model_type": "bert",
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "num_attention_heads": 12,
                "intermediate_size": 3072,
                "vocab_size": 30522,
                "max_position_embeddings": 512,
                "hidden_act": "gelu",
            },
        )
    )
    assert bert.architecture == "encoder" and bert.params == pytest.approx(109.5e6, rel=0.03)
    t5 = spec_from_folder(
        _folder(
            tmp_path,
            {
                "model_type": "t5",
                "d_model": 768,
                "num_layers": 12,
                "num_heads": 12,
                "d_ff": 3072,
                "d_kv": 64,
                "vocab_size": 32128,
                "is_encoder_decoder": True,
            },
        )
    )
    assert t5.architecture == "encoder-decoder" and t5.layers == 24


def test_models_list_shows_bundled_models_without_converting():
    from tunelab.cli.models import app

    result = CliRunner().invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
    assert rows["smollm2-135m-instruct"]["params"] == pytest.approx(134.5e6, rel=0.01)
    assert (
        rows["smollm2-135m-instruct"]["license"] == "Apache-2.0"
        and rows["all-minilm-l6-v2"]["architecture"] == "encoder"
    )


def test_recommend_ranks_with_reasons_and_filters():
    from tunelab.cost.recommend import parse_params, recommend

    result = recommend("chat", gpu="L4", license="permissive", max_params=parse_params("3B"))
    assert result["models"] and all(row["permissive"] and row["params"] <= 3e9 for row in result["models"])
    assert all(row["why"] and set(row["verdicts"]) == {"full", "lora", "qlora"} for row in result["models"])
    assert result["api_models"] == []  # OpenAI models are not permissively licensed
    anything = recommend("chat", gpu="H100-80GB", today=date(2026, 12, 2))
    api = {row["model"]: row for row in anything["api_models"]}
    assert api["gpt-4.1-mini"]["training_per_1m"] > 0 and api["gpt-4.1-mini"]["closed_to_new_jobs"] == "2027-01-06"
    assert api["gpt-4.1-mini"]["base_shutdown"] == "2027-01-14" and "2027-01-06" in api["gpt-4.1-mini"]["why"]
    assert "gpt-4.1-nano" not in api  # its base snapshot shut down on 2026-10-23
    assert recommend("chat", gpu="H100-80GB", today=date(2027, 1, 6))["api_models"] == []
    assert recommend("classification", gpu="cpu")["models"][0]["architecture"] in ("encoder", "decoder")


def test_recommend_rejects_unknown_task():
    from tunelab.cost.recommend import recommend
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown task"):
        recommend("poetry")
    with pytest.raises(ConfigError, match="neither --task nor --from-openai"):
        recommend(None)


def test_openai_classes_name_catalogued_models_and_known_methods():
    from tunelab.methods.registry import get_method
    from tunelab.models.catalogue import openai_classes

    classes = openai_classes()
    assert {"gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1", "gpt-4o", "gpt-3.5-turbo", "o4-mini"} <= set(
        classes
    )
    for name, entry in classes.items():
        assert entry["why"] and get_method(entry["method"]), name
        for model in [entry["pick"], *entry.get("also", [])]:
            assert lookup(model).name == model, (name, model)


WANTED = {  # OpenAI class -> the size of open model the brief asks for
    "gpt-4.1-nano": (100e6, 1e9),
    "gpt-3.5-turbo": (1e9, 4e9),
    "gpt-4o-mini": (1e9, 9e9),
    "gpt-4.1-mini": (1e9, 9e9),
    "gpt-4o": (9e9, 40e9),
    "gpt-4.1": (9e9, 40e9),
    "o4-mini": (4e9, 9e9),
}


@pytest.mark.parametrize("openai_class", sorted(WANTED))
def test_recommend_from_openai_says_why_for_each_class(openai_class):
    from tunelab.cost.recommend import recommend

    result = recommend(None, gpu="A100-80GB", from_openai=openai_class, today=date(2026, 12, 2))
    moving, first = result["from_openai"], result["models"][0]
    low, high = WANTED[openai_class]
    assert moving["class"] == openai_class and moving["recommended"] == first["model"] and moving["why"]
    assert low <= first["params"] <= high and first["architecture"] == "decoder"
    for row in result["models"]:
        why = row["why"]
        assert "B parameters" in why and "-token context" in why and row["license"] in why
        assert ("takes tools" in why) == row["tool_calling"] and "fits from" in why and "on A100-80GB" in why
    assert result["openai_fine_tuning"]["closed_to_new_jobs"] == "2027-01-06" and result["api_models"] == []


def test_recommend_from_openai_reinforcement_class_gets_a_reasoning_model():
    from tunelab.cost.recommend import recommend

    result = recommend(None, gpu="H100-80GB", from_openai="o4-mini-2025-04-16")
    assert result["from_openai"]["method"] == "grpo" and result["from_openai"]["class"] == "o4-mini"
    assert {row["family"] for row in result["models"]} == {"Qwen3", "DeepSeek-R1-Distill"}
    assert result["from_openai"]["base_shutdown"]["shutdown"] == "2026-10-23"


def test_recommend_from_openai_accepts_fine_tuned_ids_and_honours_filters():
    from tunelab.cost.recommend import recommend

    fine_tuned = recommend(None, gpu="L4", from_openai="ft:gpt-4o-mini-2024-07-18:acme:triage:AbC123")
    assert fine_tuned["from_openai"]["class"] == "gpt-4o-mini"
    permissive = recommend(None, gpu="L4", license="permissive", from_openai="gpt-4.1-mini")
    assert permissive["from_openai"]["recommended"] == "Qwen/Qwen2.5-7B-Instruct"  # the Llama pick is not permissive
    assert all(row["permissive"] for row in permissive["models"])
    small = recommend(None, gpu="cpu", max_params=2e9, from_openai="gpt-4o-mini")
    assert small["models"][0]["model"] == "Qwen/Qwen2.5-1.5B-Instruct"


def test_recommend_from_openai_cli_json_and_unknown_model(run_cli):
    code, out = run_cli("models", "recommend", "--from-openai", "gpt-4.1-nano", "--gpu", "cpu", "--json")
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["from_openai"]["recommended"].startswith("HuggingFaceTB/SmolLM2")
    assert result["models"][0]["smallest_gpu"] and "on CPU: trains with" in result["models"][0]["why"]
    code, out = run_cli("models", "recommend", "--from-openai", "gpt-5")
    assert code == 2 and "unknown OpenAI model 'gpt-5'" in out
    for known in ("gpt-4o-mini", "gpt-4.1-nano", "gpt-4.1", "o4-mini", "gpt-3.5-turbo"):
        assert known in out
