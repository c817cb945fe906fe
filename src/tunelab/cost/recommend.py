"""`tunelab models recommend`: rank catalogued models for a task on the user's hardware.

Each row scores task fit, the memory verdict per method on the chosen GPU, model size (a proxy for
quality once it fits), license and whether the model is already on disk, and says why.
"""

import math
import os
from pathlib import Path

from tunelab import paths
from tunelab.cost import prices as price_data
from tunelab.cost.compute import inference_tokens_per_second
from tunelab.cost.estimate import detect_device, memory_verdict
from tunelab.cost.memory import TrainSetup
from tunelab.errors import ConfigError
from tunelab.models.catalogue import ModelSpec, catalogue

TASKS = {
    "causal-lm": "causal-lm",
    "chat": "causal-lm",
    "code": "causal-lm",
    "classification": "classification",
    "seq2seq": "seq2seq",
    "summarization": "seq2seq",
    "summarisation": "seq2seq",
    "translation": "seq2seq",
}
METHODS_TRIED = ("full", "lora", "qlora")


def on_disk(spec: ModelSpec) -> str:
    """'bundled', 'cached' (converted in the tunelab cache or in the Hugging Face cache) or ''."""
    if spec.bundled:
        return "bundled"
    hub_cache = Path(os.environ.get("HF_HUB_CACHE") or Path.home() / ".cache" / "huggingface" / "hub")
    if (hub_cache / f"models--{spec.name.replace('/', '--')}").is_dir() or (
        paths.model_cache() / spec.name.split("/")[-1]
    ).is_dir():
        return "cached"
    return ""


def task_fit(spec: ModelSpec, task: str) -> float:
    if task in spec.tasks:
        return 3.0
    if task == "seq2seq" and "causal-lm" in spec.tasks:
        return 1.5  # decoder models summarise and translate well when prompted
    return 0.0


def _row(spec: ModelSpec, task: str, gpu: price_data.Gpu, devices: list) -> dict:
    verdicts = {
        m: memory_verdict(spec, TrainSetup(method=m, micro_batch=4, seq_len=512), gpu, devices) for m in METHODS_TRIED
    }
    fitting = [m for m in METHODS_TRIED if verdicts[m].fits]
    weight_bytes = 4 if gpu.is_cpu else 2
    tps = inference_tokens_per_second(spec.params, weight_bytes, gpu.bandwidth_gbs, gpu.peak_tflops)
    disk = on_disk(spec)
    score = task_fit(spec, task) + (2.0 if {"full", "lora"} & set(fitting) else 1.0 if fitting else -3.0)
    score += 0.5 * math.log2(spec.params / 1e8) + (0.5 if spec.permissive else 0.0) + (1.0 if disk else 0.0)
    score -= 1.0 if tps < 5 else 0.0
    why = [
        f"{'made for' if task in spec.tasks else 'usable for'} {task}",
        f"trains here with {', '.join(fitting)}"
        if fitting
        else f"does not fit {gpu.name} ({verdicts['qlora'].fix or verdicts['lora'].fix})",
        f"~{tps:,.0f} tokens/s generation on {gpu.name}",
        spec.license + (" (permissive)" if spec.permissive else ""),
        *([disk + ", works offline"] if disk else []),
    ]
    return {
        "model": spec.name,
        "family": spec.family,
        "params": int(spec.params),
        "context": spec.context,
        "license": spec.license,
        "permissive": spec.permissive,
        "languages": list(spec.languages),
        "architecture": spec.architecture,
        "use": spec.use,
        "on_disk": disk,
        "verdicts": {m: verdicts[m].verdict for m in METHODS_TRIED},
        "inference_tokens_per_second": round(tps, 1),
        "score": round(score, 2),
        "why": "; ".join(why),
    }


def recommend(
    task: str,
    gpu: str | None = None,
    license: str = "any",
    max_params: float | None = None,
    prices_file=None,
    top: int = 10,
) -> dict:
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'", "use one of: " + ", ".join(TASKS))
    if license not in ("permissive", "any"):
        raise ConfigError(
            f"--license must be permissive or any (got {license!r})", "pass --license permissive or --license any"
        )
    prices = price_data.load_prices(prices_file)
    chosen = price_data.find_gpu(gpu, prices) if gpu else detect_device(prices)
    devices = price_data.all_gpus(prices)
    wanted = TASKS[task]
    candidates = [
        spec
        for spec in catalogue().values()
        if task_fit(spec, wanted) > 0
        and (license == "any" or spec.permissive)
        and (max_params is None or spec.params <= max_params)
    ]
    rows = sorted((_row(spec, wanted, chosen, devices) for spec in candidates), key=lambda r: -r["score"])
    api = (
        []
        if license == "permissive" or wanted == "classification"
        else [
            {
                "model": name,
                "backend": "openai",
                "training_per_1m": p["training"],
                "input_per_1m": p["input"],
                "output_per_1m": p["output"],
                "context": p["context"],
                "why": f"no hardware needed; ${p['training']:g}/1M training tokens, ${p['input']:g}/${p['output']:g} per 1M input/output",
            }
            for name, p in price_data.openai_models(prices).items()
        ]
    )
    return {
        "task": task,
        "gpu": chosen.name,
        "license": license,
        "max_params": max_params,
        "models": rows[:top],
        "api_models": api,
        "prices_as_of": prices["openai"]["as_of"],
    }


def parse_params(text: str | None) -> float | None:
    """'1.5B', '500M', '7e9' or a plain number of parameters."""
    if text is None:
        return None
    value = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}.get(value[-1:], 1.0)
    try:
        return float(value[:-1] if scale != 1.0 else value) * scale
    except ValueError:
        raise ConfigError(
            f"--max-params {text!r} is not a number", "e.g. --max-params 3B or --max-params 500M"
        ) from None
