"""Export a run (or model) for use without tunelab: a Hugging Face folder or a GGUF file + Modelfile.

`hf` writes what transformers and vLLM load directly: safetensors, config, tokenizer, chat
template, generation config and a model card. With `merge`, LoRA/IA3 weights are folded into the
base (PEFT's merge_and_unload), done in float32 before casting so the merged logits match the
adapter model's. Without it an adapter stays an adapter folder. `gguf` needs one set of weights,
so adapter runs must be merged first.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.errors import ModelError
from tunelab.progress import say, status

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
FORMATS = ("hf", "gguf")


@dataclass
class ExportResult:
    out: Path
    format: str
    merged: bool
    files: list[str]


def declared_method(target: Path):
    """The method a run folder's config.yaml names, or None for anything else."""
    from tunelab.methods.registry import method_for
    from tunelab.runs import read_config

    if not (target / "config.yaml").exists():
        return None
    return method_for(read_config(target))


def check_request(method, merge: bool, fmt: str) -> None:
    """Refuse what the method's weights cannot become: a merge of non-linear or virtual-token weights, or a
    GGUF (one set of plain weights) from an adapter that is not merged."""
    if merge and not method.mergeable:
        raise ModelError(
            f"--merge is not possible for {method.name}: {method.merge_refusal}",
            "export without --merge (the adapter files are kept as they are)",
        )
    if fmt == "gguf" and not method.saves_whole_model and not merge:
        if not method.mergeable:
            raise ModelError(
                f"GGUF holds one set of plain weights; {method.name} cannot be folded into them",
                "export with --format hf instead",
            )
        raise ModelError(
            f"GGUF holds one set of plain weights, and this run is a {method.name} adapter",
            "add --merge to fold the adapter into the base model",
        )


def merged_model(model):
    """PEFT weights folded into the base; a plain model is returned as it is."""
    if not getattr(model, "peft_config", None):
        return model
    return model.merge_and_unload(safe_merge=True)


def cast(model, dtype: str | None):
    if dtype is None:
        return model
    import torch

    model = model.to(getattr(torch, DTYPES[dtype]))
    model.config.dtype = DTYPES[dtype]
    return model


def check_options(fmt: str, dtype: str | None, quantize: str | None) -> None:
    """Refuse bad flag values before any model is loaded."""
    if fmt not in FORMATS:
        raise ModelError(f"unknown export format {fmt}", f"use one of {', '.join(FORMATS)}")
    if dtype is not None and dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype}", f"use one of {', '.join(DTYPES)}")
    if fmt == "hf" and quantize:
        raise ModelError("--quantize applies to --format gguf only", "drop --quantize, or add --format gguf")
    if fmt == "gguf" and quantize:
        from tunelab.inference.gguf_writer import check_weight_type

        check_weight_type(quantize)


def export(
    target: str,
    out: Path,
    *,
    merge: bool = False,
    dtype: str | None = None,
    fmt: str = "hf",
    quantize: str | None = None,
) -> ExportResult:
    """Export a run folder, model folder or model name; returns where the files went."""
    from tunelab.inference.engine import load_target
    from tunelab.methods.full import FULL

    out = Path(out)
    check_options(fmt, dtype, quantize)
    declared = declared_method(Path(target))
    if declared:  # refuse an impossible request before spending time on loading
        check_request(declared, merge, fmt)
    with status(f"Loading {target}"):
        loaded = load_target(str(target), device="cpu")
    method = loaded.method or FULL
    check_request(method, merge, fmt)
    if merge and not method.saves_whole_model:
        with status("Merging adapter weights into the base model (float32)"):
            loaded.model = merged_model(loaded.model.float())
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "gguf":
        return export_gguf(loaded, out, quantize or gguf_default(dtype, loaded.model))
    return export_hf(loaded, out, method, merge, dtype)


def gguf_default(dtype: str | None, model) -> str:
    """--dtype if given, else the loaded weights' own precision, so that the default export is lossless."""
    if dtype is None:
        dtype = {"torch.float32": "fp32", "torch.bfloat16": "bf16"}.get(str(next(model.parameters()).dtype), "fp16")
    return {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[dtype]


def export_hf(loaded, out: Path, method, merge: bool, dtype: str | None) -> ExportResult:
    model, tokenizer = loaded.model, loaded.tokenizer
    if not method.saves_whole_model and not merge:
        return export_unmerged(loaded, out, method)
    model = cast(model, dtype)
    with status(f"Writing a Hugging Face model folder to {out}"):
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        write_generation_config(model, tokenizer, out)
        (out / "README.md").write_text(model_card(loaded, method, merge, str(model.dtype).removeprefix("torch.")))
    return ExportResult(out, "hf", merge or method.saves_whole_model, sorted(p.name for p in out.iterdir()))


def export_unmerged(loaded, out: Path, method) -> ExportResult:
    """The adapter as saved by training, plus the tokenizer and a card saying how to load it."""
    from tunelab.methods.registry import save_trained

    save_trained(loaded.model, loaded.tokenizer, out, method)
    (out / "README.md").write_text(model_card(loaded, method, False, "as trained"))
    if method.weights.library == "tunelab":
        say(
            f"note: {method.merge_refusal}, so they cannot be merged; {out} holds tunelab adapter files "
            "that load with `tunelab chat`/`predict` over the base model"
        )
    return ExportResult(out, "hf", False, sorted(p.name for p in out.iterdir()))


def write_generation_config(model, tokenizer, out: Path) -> None:
    """Greedy-safe defaults with the ids generation needs, so a plain `generate()` stops at eos."""
    from transformers import GenerationConfig

    config = getattr(model, "generation_config", None) or GenerationConfig()
    config.eos_token_id = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    config.bos_token_id = config.bos_token_id if config.bos_token_id is not None else tokenizer.bos_token_id
    config.pad_token_id = config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id
    config.save_pretrained(out)


LOAD_SNIPPETS = {
    "transformers": "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
    "model = AutoModelForCausalLM.from_pretrained(path)\ntokenizer = AutoTokenizer.from_pretrained(path)",
    "peft": "from peft import AutoPeftModelForCausalLM\nmodel = AutoPeftModelForCausalLM.from_pretrained(path)",
    "tunelab": "# tunelab bottleneck adapter files: load them over the base model with tunelab\n"
    "# tunelab chat RUN_DIR   or   tunelab predict RUN_DIR --data FILE",
}


def model_card(loaded, method, merge: bool, dtype: str) -> str:
    library = "transformers" if merge else method.weights.library
    whole = "full fine-tune" if method.saves_whole_model else "kept as an adapter"
    state = "merged into the base weights" if merge else whole
    return (
        f"---\nlibrary_name: {'peft' if library == 'peft' else 'transformers'}\n"
        f"base_model: {loaded.base_name}\ntags: [tunelab, {method.name}]\n---\n\n"
        f"# Fine-tuned {Path(loaded.base_name).name}\n\n"
        f"Exported by tunelab from `{loaded.name}`.\n\n"
        f"- task: {loaded.task}\n- method: {method.name} ({state})\n- base model: {loaded.base_name}\n"
        f"- dtype: {dtype}\n\n## Load\n\n```python\n{LOAD_SNIPPETS[library]}\n```\n"
    )


def export_gguf(loaded, out: Path, weight_type: str) -> ExportResult:
    from tunelab.inference.gguf_writer import write_gguf

    if loaded.task != "causal-lm":
        raise ModelError(
            f"GGUF export is for text generation models; this is a {loaded.task} model", "export with --format hf"
        )
    path = out / "model.gguf"
    with status(f"Writing {path} ({weight_type})"):
        write_gguf(loaded.model, loaded.tokenizer, path, weight_type, name=Path(loaded.name).name)
    (out / "Modelfile").write_text(modelfile(loaded.tokenizer, path.name))
    return ExportResult(out, "gguf", True, sorted(p.name for p in out.iterdir()))


def modelfile(tokenizer, gguf_name: str) -> str:
    """An Ollama Modelfile: the GGUF, a Go template equivalent to the chat template, and stop tokens."""
    lines = [f"FROM ./{gguf_name}"]
    template = ollama_template(getattr(tokenizer, "chat_template", None) or "")
    if template:
        lines.append(f'TEMPLATE """{template}"""')
    for stop in stop_tokens(tokenizer):
        lines.append(f"PARAMETER stop {json.dumps(stop)}")
    return "\n".join(lines) + "\n"


def stop_tokens(tokenizer) -> list[str]:
    stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        if marker in tokenizer.get_vocab() and marker not in stops:
            stops.append(marker)
    return stops


def ollama_template(chat_template: str) -> str | None:
    """Ollama uses Go templates, not Jinja: translate the common ChatML and Llama-3 layouts."""
    if "<|im_start|>" in chat_template:
        return (
            "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
        )
    if "<|start_header_id|>" in chat_template:
        return (
            "<|begin_of_text|>{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
            "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
        )
    return None
