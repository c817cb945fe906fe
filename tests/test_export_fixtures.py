"""Run folders as the trainer writes them, built from the tiny random Llama (SmolLM2 tokenizer).

Imported by tests/test_export*.py, test_predict*.py and test_chat*.py; holds fixtures only. Each
adapter is initialised away from the identity so that merging has something to fold in.
"""

from pathlib import Path

import pytest
import yaml
from tiny_models import tiny_llama


def write_run(folder: Path, method: str, base: Path, task: str = "causal-lm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"task": task, "method": method, "model": {"name": str(base)}}))
    return folder


def _base_and_tokenizer():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_llama()
    return base, AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)


def _peft_run(folder: Path, config) -> Path:
    import peft
    import torch

    base, model, tokenizer = _base_and_tokenizer()
    torch.manual_seed(1)
    peft.get_peft_model(model, config).save_pretrained(folder / "adapter")
    tokenizer.save_pretrained(folder / "adapter")
    return write_run(folder, config.peft_type.value.lower(), base)


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory) -> Path:
    import peft

    config = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    return _peft_run(tmp_path_factory.mktemp("lora-run"), config)


@pytest.fixture(scope="session")
def prompt_run(tmp_path_factory) -> Path:
    import peft

    run = _peft_run(
        tmp_path_factory.mktemp("prompt-run"), peft.PromptTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")
    )
    return write_run(run, "prompt-tuning", tiny_llama())


@pytest.fixture(scope="session")
def full_run(tmp_path_factory) -> Path:
    """A full fine-tune: the tiny Llama with every weight moved, saved as run/model."""
    import torch

    folder = tmp_path_factory.mktemp("full-run")
    base, model, tokenizer = _base_and_tokenizer()
    torch.manual_seed(2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return write_run(folder, "full", base)


@pytest.fixture(scope="session")
def bottleneck_run(tmp_path_factory) -> Path:
    import torch

    from tunelab.methods import bottleneck

    folder = tmp_path_factory.mktemp("bottleneck-run")
    base, model, tokenizer = _base_and_tokenizer()
    bottleneck.add_adapters(model, reduction_factor=16, placement="pfeiffer", activation="relu")
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".up." in name:
                parameter.normal_(0, 0.05)
    bottleneck.save_adapters(model, folder / "adapter")
    tokenizer.save_pretrained(folder / "adapter")
    return write_run(folder, "adapter", base)
