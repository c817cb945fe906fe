"""`tunelab models recommend`: rank catalogued models for a task on the user's hardware.

Each row scores task fit, the memory verdict per method on the chosen GPU, model size (a proxy for
quality once it fits), license and whether the model is already on disk, and says why.
`--from-openai MODEL` instead lists the open models that replace an OpenAI fine-tunable class
(`models/openai_classes.yaml`), the recommended one first, each with the reasons that matter when
moving off OpenAI's fine-tuning (size, context, licence, tool calling, which GPUs it trains on).
"""

import math
import os
from datetime import date
from pathlib import Path

from tunelab import paths
from tunelab.cost import prices as price_data
from tunelab.cost.compute import inference_tokens_per_second
from tunelab.cost.estimate import NO_FIT, detect_device, memory_verdict
from tunelab.cost.memory import TrainSetup
from tunelab.errors import ConfigError
from tunelab.models.catalogue import ModelSpec, catalogue, lookup, openai_classes

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
    task: str | None,
    gpu: str | None = None,
    license: str = "any",
    max_params: float | None = None,
    prices_file=None,
    top: int = 10,
    from_openai: str | None = None,
    today: date | None = None,
) -> dict:
    """Ranked base models for a task, or with `from_openai` the open models that replace an OpenAI class."""
    if from_openai:
        return recommend_from_openai(from_openai, gpu, license, max_params, prices_file, top, today)
    if task not in TASKS:
        raise ConfigError(
            f"unknown task '{task}'" if task else "nothing to recommend: neither --task nor --from-openai given",
            "pass --task (one of: " + ", ".join(TASKS) + ") or --from-openai MODEL",
        )
    _check_license(license)
    prices = price_data.load_prices(prices_file)
    chosen, devices = _devices(gpu, prices)
    wanted = TASKS[task]
    candidates = [
        spec for spec in catalogue().values() if task_fit(spec, wanted) > 0 and _allowed(spec, license, max_params)
    ]
    rows = sorted((_row(spec, wanted, chosen, devices) for spec in candidates), key=lambda r: -r["score"])
    api = [] if license == "permissive" or wanted == "classification" else api_models(prices, today or date.today())
    return {
        "task": task,
        "gpu": chosen.name,
        "license": license,
        "max_params": max_params,
        "models": rows[:top],
        "api_models": api,
        "prices_as_of": prices["openai"]["as_of"],
    }


def _check_license(license: str) -> None:
    if license not in ("permissive", "any"):
        raise ConfigError(
            f"--license must be permissive or any (got {license!r})", "pass --license permissive or --license any"
        )


def _devices(gpu: str | None, prices: dict) -> tuple[price_data.Gpu, list]:
    """The GPU asked for (else this machine's) and every catalogued device."""
    return (price_data.find_gpu(gpu, prices) if gpu else detect_device(prices)), price_data.all_gpus(prices)


def _allowed(spec: ModelSpec, license: str, max_params: float | None) -> bool:
    return (license == "any" or spec.permissive) and (max_params is None or spec.params <= max_params)


def api_models(prices: dict, today: date) -> list[dict]:
    """OpenAI's fine-tunable models with prices, while they can still be fine-tuned: none once job creation has
    closed, and none whose base snapshot has shut down."""
    closure = price_data.wind_down(prices)
    if closure.closed(today):
        return []
    rows = []
    for name, p in price_data.openai_models(prices).items():
        shutdown = price_data.base_shutdown(name, prices)
        if shutdown and date.fromisoformat(shutdown["shutdown"]) <= today:
            continue
        ends = f"; closes to new jobs on {closure.closed_to_new_jobs}" + (
            f", base snapshot shuts down on {shutdown['shutdown']}" if shutdown else ""
        )
        rows.append(
            {
                "model": name,
                "backend": "openai",
                "training_per_1m": p["training"],
                "input_per_1m": p["input"],
                "output_per_1m": p["output"],
                "context": p["context"],
                "closed_to_new_jobs": str(closure.closed_to_new_jobs),
                "base_shutdown": shutdown["shutdown"] if shutdown else None,
                "why": f"no hardware needed; ${p['training']:g}/1M training tokens, "
                f"${p['input']:g}/${p['output']:g} per 1M input/output{ends}",
            }
        )
    return rows


def recommend_from_openai(
    name: str, gpu: str | None, license: str, max_params: float | None, prices_file, top: int, today: date | None
) -> dict:
    """The catalogued open models that replace an OpenAI fine-tunable class, the recommended one first."""
    _check_license(license)
    classes = openai_classes()
    openai_class = price_data.openai_base(name, classes)
    if openai_class is None:
        raise ConfigError(
            f"unknown OpenAI model '{name}'",
            "use one of: " + ", ".join(classes) + " (their dated snapshots and ft: model ids work too)",
        )
    entry = classes[openai_class]
    specs = [
        spec for spec in map(lookup, [entry["pick"], *entry.get("also", [])]) if _allowed(spec, license, max_params)
    ]
    if not specs:
        raise ConfigError(
            f"no replacement for {openai_class} passes --license {license} and --max-params", "drop one of the filters"
        )
    prices = price_data.load_prices(prices_file)
    chosen, devices = _devices(gpu, prices)
    rows = [_migration_row(spec, entry["method"], chosen, devices) for spec in specs[:top]]
    closure = price_data.wind_down(prices)
    return {
        "task": "chat",
        "gpu": chosen.name,
        "license": license,
        "max_params": max_params,
        "from_openai": {
            "model": name,
            "class": openai_class,
            "why": entry["why"],
            "method": entry["method"],
            "recommended": rows[0]["model"],
            "base_shutdown": price_data.base_shutdown(name, prices),
        },
        "models": rows,
        "api_models": [],
        "openai_fine_tuning": {**closure.as_dict(), "summary": closure.summary(today or date.today())},
        "prices_as_of": prices["openai"]["as_of"],
    }


def _migration_row(spec: ModelSpec, method: str, gpu: price_data.Gpu, devices: list) -> dict:
    """A row as for --task, whose reason is what matters when replacing an OpenAI class: size, context,
    licence, tool calling, the smallest GPU the class's method fits on, and what trains on this GPU."""
    row = _row(spec, "causal-lm", gpu, devices)
    smallest = smallest_gpu(spec, method, devices)
    here = [m for m in METHODS_TRIED if row["verdicts"][m] != NO_FIT]
    why = [
        f"{spec.params / 1e9:.3g}B parameters",
        f"{spec.context:,}-token context",
        spec.license + (" (permissive)" if spec.permissive else ""),
        "chat template takes tools" if spec.tool_calling else "no tool-calling template",
        f"{method} fits from {smallest.name} ({smallest.memory_gb:g} GB)"
        if smallest
        else f"{method} fits no single catalogued GPU",
        f"on {gpu.name}: trains with {', '.join(here)}" if here else f"does not train on {gpu.name}",
    ]
    return {
        **row,
        "tool_calling": spec.tool_calling,
        "method": method,
        "smallest_gpu": smallest.name if smallest else None,
        "why": "; ".join(why),
    }


def smallest_gpu(spec: ModelSpec, method: str, devices: list) -> price_data.Gpu | None:
    """The catalogued GPU with the least memory on which the planner says `method` training fits."""
    setup = TrainSetup(method=method, micro_batch=4, seq_len=512)
    fitting = [g for g in devices if not g.is_cpu and memory_verdict(spec, setup, g, devices).fits]
    return min(fitting, key=lambda g: (g.memory_gb, g.price_low), default=None)


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
