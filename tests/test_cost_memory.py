"""Memory model: known verdicts, and the activation and trainable-parameter terms pinned against
what autograd and PEFT really hold for a tiny random-initialised Llama."""

from dataclasses import replace

import pytest

from tunelab.cost import prices as price_data
from tunelab.cost.estimate import FITS, NO_FIT, memory_verdict
from tunelab.cost.memory import GB, TrainSetup, activation_bytes_per_token, estimate_memory, trainable_params
from tunelab.models.catalogue import lookup, spec_from_config

TINY = {
    "model_type": "llama",
    "vocab_size": 1000,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
}


@pytest.fixture(scope="module")
def prices():
    return price_data.load_prices()


def verdict(name, method, gpu, prices, **setup):
    devices = price_data.all_gpus(prices)
    return memory_verdict(lookup(name), TrainSetup(method=method, **setup), price_data.find_gpu(gpu, prices), devices)


def test_llama3_8b_full_does_not_fit_one_80gb_gpu_but_qlora_and_lora_do(prices):
    full = verdict("meta-llama/Meta-Llama-3-8B", "full", "H100-80GB", prices)
    assert full.verdict == NO_FIT and full.checkpointed_memory_gb > 80 and full.fix
    assert verdict("meta-llama/Meta-Llama-3-8B", "qlora", "H100-80GB", prices).fits
    assert verdict("meta-llama/Meta-Llama-3-8B", "lora", "A100-80GB", prices).fits


def test_full_finetuning_states_are_16_bytes_per_parameter():
    spec = lookup("meta-llama/Meta-Llama-3-8B")
    memory = estimate_memory(spec, TrainSetup(method="full"))
    states = memory.weights + memory.master_weights + memory.gradients + memory.optimizer
    assert states == pytest.approx(16 * spec.params)


def test_qlora_weights_are_about_a_third_of_bf16(prices):
    spec = lookup("meta-llama/Meta-Llama-3-8B")
    qlora, lora = estimate_memory(spec, TrainSetup(method="qlora")), estimate_memory(spec, TrainSetup(method="lora"))
    assert 0.3 < qlora.weights / lora.weights < 0.45


def test_sharding_divides_states_and_checkpointing_cuts_activations():
    spec = lookup("meta-llama/Meta-Llama-3-8B")
    one = estimate_memory(spec, TrainSetup(method="full"))
    four = estimate_memory(spec, TrainSetup(method="full", gpus=4))
    assert four.optimizer == pytest.approx(one.optimizer / 4) and four.activations == one.activations
    checkpointed = estimate_memory(spec, TrainSetup(method="full", gradient_checkpointing=True))
    assert checkpointed.activations < one.activations / 5


def test_verdicts_name_the_cheapest_change(prices):
    small = verdict("meta-llama/Llama-3.2-1B", "full", "L4", prices, micro_batch=8, seq_len=1024)
    assert small.verdict != FITS and small.fix
    cpu_qlora = verdict("smollm2", "qlora", "cpu", prices)
    assert cpu_qlora.verdict == NO_FIT and "CUDA" in cpu_qlora.fix


def test_lora_trainable_parameters_equal_peft_count():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_config(LlamaConfig(**TINY)),
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"),
    )
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    spec = spec_from_config(TINY, "tiny")
    assert trainable_params(spec, TrainSetup(method="lora", lora_r=8)) == counted
    assert spec.params == sum(p.numel() for p in model.base_model.model.parameters() if not p.requires_grad)


def saved_activation_bytes(method: str, dropout: float, rows: int, length: int) -> int:
    """Bytes of the distinct tensors autograd keeps for backward (weights and logits excluded)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**TINY), attn_implementation="sdpa")
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear"))
    model.train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits = model(input_ids=torch.randint(0, 1000, (rows, length))).logits
    skip = weights | {logits.untyped_storage().data_ptr()}
    return sum(size for pointer, size in saved.items() if pointer not in skip)


@pytest.mark.parametrize("method,dropout", [("full", 0.05), ("lora", 0.05), ("lora", 0.0)])
def test_activation_term_matches_what_autograd_saves(method, dropout):
    rows, length = 2, 64
    setup = TrainSetup(
        method=method, micro_batch=rows, seq_len=length, lora_r=8, lora_dropout=dropout, compute_bytes=4, on_gpu=False
    )
    estimated = activation_bytes_per_token(spec_from_config(TINY, "tiny"), setup) * rows * length
    assert estimated == pytest.approx(saved_activation_bytes(method, dropout, rows, length), rel=0.10)


def test_prompt_and_adapter_methods_train_few_parameters():
    spec = lookup("meta-llama/Llama-3.2-1B")
    base = TrainSetup()
    for method in ("prompt-tuning", "prefix-tuning", "adapter", "ia3"):
        count = trainable_params(spec, replace(base, method=method))
        assert 0 < count < 0.01 * spec.params, method
    assert (
        estimate_memory(spec, replace(base, method="prompt-tuning")).total / GB
        < estimate_memory(spec, base).total / GB * 1.1
    )


def test_training_memory_counts_weights_and_the_rise_above_the_start():
    import torch

    from tunelab.training.memory import TrainingMemory

    model = torch.nn.Linear(1000, 1000)  # 4 MB of weights
    with TrainingMemory("cpu", [model, None]) as memory:
        held = torch.ones(50_000_000)  # 200 MB, written, so resident
        del held
    assert memory.measured_as.endswith("(VmHWM)")
    assert 0.190 <= memory.peak_gb - 0.004 <= 0.230  # a few pages resident at the start may be released meanwhile
