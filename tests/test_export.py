"""Export round trips: merged HF folders equal the adapter model; GGUF reads back to the same greedy output."""

import pytest
from test_export_fixtures import bottleneck_run, full_run, lora_run, prompt_run  # noqa: F401

from tunelab.errors import ModelError
from tunelab.inference.export import export

PROMPTS = ["code 3 and more words", "reply", "Hello, how are you today?"]


def _logits(model, tokenizer, texts):
    import torch

    tokenizer.padding_side = "right"
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits


def _greedy(model, tokenizer, text, steps=8):
    import torch

    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return model.generate(**batch, max_new_tokens=steps, do_sample=False, pad_token_id=tokenizer.pad_token_id)[
            0
        ].tolist()


def _adapter_model(run):
    import torch
    import yaml
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        yaml.safe_load((run / "config.yaml").read_text())["model"]["name"], dtype=torch.float32
    )
    return PeftModel.from_pretrained(base, str(run / "adapter")).eval()


def test_lora_merged_hf_folder_matches_the_adapter_model(lora_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    result = export(str(lora_run), tmp_path / "merged", merge=True, dtype="fp32")
    assert result.merged and {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "generation_config.json",
        "README.md",
    } <= set(result.files)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    adapter = _adapter_model(lora_run)
    difference = (_logits(merged, tokenizer, PROMPTS) - _logits(adapter, tokenizer, PROMPTS)).abs().max().item()
    assert difference < 1e-4
    assert GenerationConfig.from_pretrained(tmp_path / "merged").eos_token_id == tokenizer.eos_token_id
    assert "lora" in (tmp_path / "merged" / "README.md").read_text()


def test_lora_gguf_reads_back_with_the_same_greedy_output(lora_run, tmp_path):
    import torch
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export(str(lora_run), tmp_path / "merged", merge=True, dtype="fp32")
    result = export(str(lora_run), tmp_path / "gguf", merge=True, fmt="gguf", dtype="fp32")
    assert set(result.files) == {"model.gguf", "Modelfile"}
    reader = GGUFReader(tmp_path / "gguf" / "model.gguf")
    fields = {
        name: field.contents()
        for name, field in reader.fields.items()
        if name.startswith(("general.a", "tokenizer.ggml.m", "tokenizer.chat"))
    }
    assert fields["general.architecture"] == "llama" and fields["tokenizer.ggml.model"] == "gpt2"
    assert "<|im_start|>" in fields["tokenizer.chat_template"]
    assert len(reader.tensors) == 2 * 9 + 2  # tied output: no output.weight
    source = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "gguf", gguf_file="model.gguf", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    for prompt in PROMPTS:
        assert _greedy(loaded, tokenizer, prompt) == _greedy(source, tokenizer, prompt)
    embedded = AutoTokenizer.from_pretrained(tmp_path / "gguf", gguf_file="model.gguf")
    for text in ["Hello world, how are you?", "<|im_start|>user\nhi<|im_end|>"]:
        assert embedded(text).input_ids == tokenizer(text).input_ids
    modelfile = (tmp_path / "gguf" / "Modelfile").read_text()
    assert (
        modelfile.startswith("FROM ./model.gguf")
        and "TEMPLATE" in modelfile
        and 'PARAMETER stop "<|im_end|>"' in modelfile
    )


def test_full_fine_tune_exports_to_hf_and_quantized_gguf(full_run, tmp_path):
    import torch
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = export(str(full_run), tmp_path / "hf", dtype="fp32")
    assert result.merged
    source = AutoModelForCausalLM.from_pretrained(full_run / "model", dtype=torch.float32).eval()
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert torch.equal(_logits(source, tokenizer, PROMPTS), _logits(exported, tokenizer, PROMPTS))
    export(str(full_run), tmp_path / "q8", fmt="gguf", quantize="q8_0")
    types = {t.name: t.tensor_type.name for t in GGUFReader(tmp_path / "q8" / "model.gguf").tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "q8", gguf_file="model.gguf", dtype=torch.float32).eval()
    difference = (_logits(loaded, tokenizer, PROMPTS) - _logits(source, tokenizer, PROMPTS)).abs().max().item()
    assert difference < 0.05


def test_fp16_export_casts_the_weights(full_run, tmp_path):
    import json

    export(str(full_run), tmp_path / "half", dtype="fp16")
    assert json.loads((tmp_path / "half" / "config.json").read_text())["dtype"] == "float16"


def test_unmerged_lora_export_is_a_peft_folder(lora_run, tmp_path):
    import torch
    from peft import AutoPeftModelForCausalLM

    result = export(str(lora_run), tmp_path / "adapter")
    assert not result.merged and "adapter_config.json" in result.files and "tokenizer.json" in result.files
    model = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "adapter", dtype=torch.float32)
    assert model.peft_config


@pytest.mark.parametrize(
    ("fixture", "options", "words"),
    [
        ("lora_run", {"fmt": "gguf"}, "--merge"),
        ("bottleneck_run", {"merge": True}, "non-linear"),
        ("prompt_run", {"merge": True}, "virtual tokens"),
        ("prompt_run", {"fmt": "gguf"}, "--format hf"),
        ("full_run", {"fmt": "gguf", "quantize": "q4_k_m"}, "llama-quantize"),
        ("full_run", {"dtype": "fp8"}, "bf16, fp16, fp32"),
        ("full_run", {"quantize": "q8_0"}, "--format gguf"),
    ],
)
def test_impossible_exports_say_why_in_one_line(fixture, options, words, request, tmp_path):
    with pytest.raises(ModelError) as error:
        export(str(request.getfixturevalue(fixture)), tmp_path / "out", **options)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_bottleneck_adapter_exports_unmerged_with_a_note(bottleneck_run, tmp_path, capsys):
    result = export(str(bottleneck_run), tmp_path / "out")
    assert not result.merged and "bottleneck_adapter.safetensors" in result.files


def test_gguf_refuses_other_architectures():
    from types import SimpleNamespace

    from tunelab.inference.gguf_writer import check_architecture

    with pytest.raises(ModelError, match="supports llama"):
        check_architecture(SimpleNamespace(model_type="gpt2"))


def test_rotary_permutation_is_what_transformers_undoes():
    import numpy as np
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from tunelab.inference.gguf_writer import permute_rotary

    weights = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    undone = LlamaTensorProcessor()._reverse_permute_weights(permute_rotary(weights, 2), 4, 2)
    assert np.array_equal(undone, weights)
