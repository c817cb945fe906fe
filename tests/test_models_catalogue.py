"""The model catalogue: shapes agree with parameter counts, names resolve offline, local folders are read."""

import json

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
    anything = recommend("chat", gpu="H100-80GB")
    assert any(row["model"] == "gpt-4.1-mini" and row["training_per_1m"] > 0 for row in anything["api_models"])
    assert recommend("classification", gpu="cpu")["models"][0]["architecture"] in ("encoder", "decoder")


def test_recommend_rejects_unknown_task():
    from tunelab.cost.recommend import recommend
    from tunelab.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown task"):
        recommend("poetry")
