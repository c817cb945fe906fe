"""`tunelab export`: a run as a plain Hugging Face folder or a GGUF file for llama.cpp/Ollama."""

from pathlib import Path
from typing import Annotated

import typer


def export_command(
    run_dir: Annotated[str, typer.Argument(help="Run folder (or model folder / bundled model name) to export.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    merge: Annotated[bool, typer.Option("--merge", help="Fold LoRA/IA3 weights into the base model.")] = False,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype", help="Weight dtype: bf16, fp16 or fp32 (default: the weights' own precision, lossless)."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="hf (transformers/vLLM folder) or gguf (llama.cpp/Ollama).")
    ] = "hf",
    quantize: Annotated[
        str | None,
        typer.Option(
            "--quantize", help="GGUF weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 (overrides --dtype)."
        ),
    ] = None,
) -> None:
    """Export a trained run for use without tunelab."""
    from tunelab.inference.export import export
    from tunelab.progress import say

    result = export(run_dir, out, merge=merge, dtype=dtype, fmt=fmt, quantize=quantize)
    kind = "merged model" if result.merged else "adapter"
    say(f"exported {kind} ({result.format}) to {result.out}: {', '.join(result.files)}")
    if result.format == "gguf":
        say(
            f"run it with: ollama create my-model -f {result.out / 'Modelfile'}  (or llama-cli -m {result.out / 'model.gguf'})"
        )


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
