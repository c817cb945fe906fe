"""Find and load base models: bundled names, local folders, or hub ids (where there is network).

The loader picks the head from the task, refuses a task the model cannot do, loads only
safetensors unless pickle is allowed, and never runs remote code unless asked to.
"""

import json
import pickle
from pathlib import Path

from tunelab.errors import ModelError
from tunelab.models.architectures import classify
from tunelab.models.bundled import DEFAULT_FOR_TASK, bundled_name, resolve_bundled

# Files that make a folder something tunelab can load from (a model, an adapter, or a tokenizer).
MODEL_FOLDER_MARKERS = (
    "config.json",
    "adapter_config.json",
    "bottleneck_adapter.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


def default_model(task: str) -> str:
    if task not in DEFAULT_FOR_TASK:
        raise ModelError(f"no bundled default model for task {task}", "pass --model with a model folder or hub id")
    return DEFAULT_FOR_TASK[task]


def resolve_model_path(name: str) -> str:
    """A bundled name → local folder; an existing folder → itself; else a hub id (needs network)."""
    if bundled_name(name):
        return str(resolve_bundled(name))
    path = Path(name).expanduser()
    if path.exists():
        if not any((path / marker).exists() for marker in MODEL_FOLDER_MARKERS):
            raise ModelError(
                f"{path} is not a model folder (no config.json)", "point --model at a Hugging Face model folder"
            )
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(
            f"model folder not found: {name}", "check the path, or use a bundled name (`tunelab models list`)"
        )
    return name


def read_model_config(path: str) -> dict:
    config_file = Path(path) / "config.json"
    if config_file.exists():
        return json.loads(config_file.read_text())
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path).to_dict()
    except OSError:
        raise ModelError(
            f"model not found: {path} (and the hub cannot be reached)",
            "use a bundled name (`tunelab models list`) or a local model folder",
        ) from None


# The loader's names for the architectures of models/architectures.py (they match the heads it loads).
KIND = {"encoder-decoder": "seq2seq", "encoder": "encoder", "decoder": "causal"}


def architecture_kind(model_config: dict) -> str:
    """'seq2seq', 'encoder' or 'causal' from a model's config."""
    return KIND[classify(model_config)]


def check_task_fits(task: str, kind: str, name: str) -> None:
    if task == "seq2seq" and kind != "seq2seq":
        raise ModelError(
            f"{name} is not an encoder-decoder model; task seq2seq needs one (T5, BART)",
            "pass --model with a T5/BART model, or use --task causal-lm",
        )
    if task == "causal-lm" and kind != "causal":
        raise ModelError(
            f"{name} is a {kind} model and cannot generate text for task causal-lm",
            "use --task classification for encoders, or pick a causal LM",
        )
    if task == "classification" and kind == "seq2seq":
        raise ModelError(
            f"{name} is an encoder-decoder model; use --task seq2seq with it", "or pick a BERT-family model"
        )


def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load a tokenizer from {path}: {str(exc).splitlines()[0]}",
            "the model folder needs tokenizer files (tokenizer.json or vocab)",
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def head_class(task: str):
    import transformers

    return {
        "causal-lm": transformers.AutoModelForCausalLM,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
        "classification": transformers.AutoModelForSequenceClassification,
    }[task]


def torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, dtype)


def refuse_pickle(path: str, allow_pickle: bool) -> None:
    """Safe loading: a folder whose weights exist only as pickle files is refused unless allowed."""
    folder = Path(path)
    if not folder.is_dir() or allow_pickle:
        return
    has_safe = any(folder.glob("*.safetensors"))
    pickled = [p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    if pickled and not has_safe:
        raise ModelError(
            f"{path} holds only pickle-based weights ({pickled[0]}), which can run code when loaded",
            "convert them to safetensors, or pass --allow-pickle if you trust the source",
        )


def load_model(
    name: str,
    task: str,
    *,
    dtype: str = "auto",
    device: str = "cpu",
    labels: list[str] | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    quantization_config=None,
):
    """The model with the head for `task`, checked against its architecture."""
    path = resolve_model_path(name)
    model_config = read_model_config(path)
    check_task_fits(task, architecture_kind(model_config), name)
    refuse_pickle(path, allow_pickle)
    kwargs = {
        "dtype": torch_dtype(dtype, device),
        "trust_remote_code": trust_remote_code,
        "use_safetensors": None if allow_pickle else True,
    }
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if task == "classification" and labels:
        kwargs.update(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )
    try:
        model = head_class(task).from_pretrained(path, **kwargs)
    except (OSError, ValueError, pickle.UnpicklingError) as exc:
        raise ModelError(f"cannot load {name}: {str(exc).splitlines()[0]}", "check the model folder or name") from None
    if model.config.pad_token_id is None and model.config.eos_token_id is not None:
        eos = model.config.eos_token_id
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    return model
