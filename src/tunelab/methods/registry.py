"""Methods transform a loaded base model and decide which parameters train; none adds a loop.

`build_model` loads the base with the task's head and applies the method; `save_trained` and
`load_trained` write and read each method's standard format (PEFT folders for PEFT methods, a
plain transformers folder for full fine-tuning, tunelab's own files for bottleneck adapters).
"""

import json
from pathlib import Path

from tunelab.errors import ConfigError, HardwareError
from tunelab.methods import bottleneck

PEFT_TASK_TYPES = {"causal-lm": "CAUSAL_LM", "classification": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}
PEFT_METHODS = ("lora", "qlora", "prompt-tuning", "prefix-tuning", "ia3")
LABELS_FILE = "labels.json"


def check_hardware(method: str, device: str) -> None:
    """QLoRA needs CUDA and bitsandbytes: say so before anything heavy is loaded."""
    if method != "qlora":
        return
    if device != "cuda":
        raise HardwareError(
            "qlora needs a CUDA GPU (4-bit NF4 weights via bitsandbytes); this machine has no CUDA device",
            "use --method lora here, or run on a machine with an NVIDIA GPU",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise HardwareError(
            "qlora needs the bitsandbytes package, which is not installed",
            "pip install bitsandbytes (CUDA machines only)",
        ) from None


def quantization_config():
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def peft_config(method: str, task: str, lora, prompt, model_name: str):
    import peft

    task_type = PEFT_TASK_TYPES[task]
    if method in ("lora", "qlora"):
        return peft.LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            use_dora=lora.use_dora,
            use_rslora=lora.use_rslora,
            task_type=task_type,
        )
    if method == "prompt-tuning":
        init = (
            {
                "prompt_tuning_init": "TEXT",
                "prompt_tuning_init_text": prompt.init_text,
                "tokenizer_name_or_path": model_name,
            }
            if prompt.init_text
            else {}
        )
        return peft.PromptTuningConfig(num_virtual_tokens=prompt.num_virtual_tokens, task_type=task_type, **init)
    if method == "prefix-tuning":
        return peft.PrefixTuningConfig(num_virtual_tokens=prompt.num_virtual_tokens, task_type=task_type)
    return peft.IA3Config(task_type=task_type)


def build_model(config, task: str, model_name: str, labels: list[str] | None, device: str):
    """The base model with the method applied, ready to train."""
    from tunelab.models.loading import load_model

    method = config.method
    check_hardware(method, device)
    model = load_model(
        model_name,
        task,
        dtype=config.model.dtype,
        device=device,
        labels=labels,
        trust_remote_code=config.model.trust_remote_code,
        allow_pickle=config.model.allow_pickle,
        quantization_config=quantization_config() if method == "qlora" else None,
    )
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.train.gradient_checkpointing)
    else:
        model.to(device)
    model = apply_method(model, config, task, model_name)
    if config.train.gradient_checkpointing and method != "qlora":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # frozen embeddings: recomputed blocks still need an input with grad
    return model


def apply_method(model, config, task: str, model_name: str):
    method = config.method
    if method in ("full", "distill"):
        return model
    if method == "adapter":
        try:
            bottleneck.add_adapters(
                model, config.adapter.reduction_factor, config.adapter.placement, config.adapter.activation
            )
        except ValueError as exc:
            raise ConfigError(f"method adapter: {exc}", "use lora for this architecture") from None
        return model
    from peft import get_peft_model

    try:
        return get_peft_model(model, peft_config(method, task, config.lora, config.prompt, model_name))
    except ValueError as exc:
        raise ConfigError(
            f"method {method}: {str(exc).splitlines()[0]}", "check lora.target_modules for this model"
        ) from None


def parameter_counts(model) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "trainable_percent": round(100 * trainable / max(total, 1), 4)}


def save_trained(model, tokenizer, folder: Path, labels: list[str] | None = None) -> None:
    """The method's standard format: PEFT adapter, bottleneck adapter files, or a full model folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "_tunelab_adapter"):
        bottleneck.save_adapters(model, folder)
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if labels:
        (folder / LABELS_FILE).write_text(json.dumps(labels))


def saved_labels(folder: Path) -> list[str] | None:
    path = Path(folder) / LABELS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def load_trained(folder: Path, task: str, base_name: str, device: str = "cpu"):
    """Read back what save_trained wrote, on top of a freshly loaded base where needed."""
    from tunelab.models.loading import load_model

    folder = Path(folder)
    labels = saved_labels(folder)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        base = load_model(base_name, task, labels=labels, device=device)
        return PeftModel.from_pretrained(base, str(folder)).to(device)
    if bottleneck.is_adapter_folder(folder):
        base = load_model(base_name, task, labels=labels, device=device)
        return bottleneck.load_adapters(base, folder).to(device)
    return load_model(str(folder), task, labels=labels, device=device).to(device)
