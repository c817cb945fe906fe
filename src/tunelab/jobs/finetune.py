"""The fine-tuning workflow: data → base evaluation → method → training → evaluation → records.

The CLI, the Python API and the service all call `run(config)`; this is the only place the
stages are sequenced.
"""

import math
from dataclasses import dataclass
from pathlib import Path

from tunelab import __version__, paths
from tunelab.config import RunConfig, load_config, save_config
from tunelab.errors import ConfigError, DataError
from tunelab.progress import say, track
from tunelab.runs import MetricsLog, new_run_dir, write_json
from tunelab.tracking import NoTracker, open_tracker
from tunelab.training.memory import TrainingMemory

ENCODER_FULL_LIMIT = 500_000_000


@dataclass
class Prepared:
    train: list[dict]
    validation: list[dict]
    test: list[dict]
    manifest: dict
    task: str
    folder: Path


def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_data(config: RunConfig, run_dir: Path) -> Prepared:
    """A prepared folder is read as is; raw files (or the demo data) are prepared into run_dir/data."""
    from tunelab.data import prepare

    inputs = [Path(p) for p in config.data.path]
    if len(inputs) == 1 and prepare.is_prepared(inputs[0]):
        return read_prepared(inputs[0])
    if not inputs:
        from tunelab.data.demo import write_demo_data

        inputs = [write_demo_data(run_dir / "data" / "raw" / "tickets.jsonl", config.data.demo_size, config.data.seed)]
    for path in inputs:
        if not path.exists():
            raise DataError(f"data file not found: {path}", "check the path given to --data")
    # Training on small data is the user's explicit choice: warn instead of refusing as `data prepare` does.
    # Token statistics use the model that will train, when one is named.
    data_config = config.data.model_copy(
        update={"force": True, "tokenizer": config.data.tokenizer or config.model.name}
    )
    prepare.prepare_dataset(inputs, run_dir / "data", data_config)
    data = read_prepared(run_dir / "data")
    usable = data.manifest.get("counts", {}).get("kept", 0)
    if usable < prepare.TOO_SMALL_DATA and not config.data.force:
        say(f"[yellow]warning:[/] only {usable} usable examples: expect overfitting and little real learning")
    return data


def default_method(task: str, model_name: str) -> str:
    """LoRA for generative models; full fine-tuning for encoders small enough to train whole."""
    if task != "classification":
        return "lora"
    from tunelab.models.loading import read_model_config, resolve_model_path

    model_config = read_model_config(resolve_model_path(model_name))
    hidden, layers = model_config.get("hidden_size", 768), model_config.get("num_hidden_layers", 12)
    approx_params = 12 * layers * hidden * hidden + model_config.get("vocab_size", 30000) * hidden
    return "full" if approx_params < ENCODER_FULL_LIMIT else "lora"


def resolve(config: RunConfig, data: Prepared) -> RunConfig:
    """Fill the defaults that follow the data: task, model, method."""
    from tunelab.models.loading import default_model

    task = config.task or data.task
    if task != data.task:
        raise ConfigError(
            f"task {task} does not match the data, which is {data.task} ({data.manifest.get('schema')} records)",
            f"leave --task out, or pass data in the {task} format",
        )
    model_name = config.model.name or default_model(task)
    method = config.method or default_method(task, model_name)
    return config.model_copy(
        update={"task": task, "method": method, "model": config.model.model_copy(update={"name": model_name})}
    )


def encode_split(records: list[dict], tokenizer, config: RunConfig, labels: list[str] | None, name: str) -> list:
    from tunelab.training.batches import encode_record

    label_ids = {label: i for i, label in enumerate(labels)} if labels else None
    return [
        encode_record(
            r,
            tokenizer,
            config.task,
            max_length=config.model.max_length,
            loss_on=config.train.loss_on,
            label_ids=label_ids,
        )
        for r in track(records, f"Tokenising {name}")
    ]


def nothing_to_learn(examples: list, task: str) -> list[int]:
    """Indexes of examples whose labels are all masked: they would teach the model nothing."""
    from tunelab.training.batches import IGNORE

    if task == "classification":
        return []
    return [i for i, e in enumerate(examples) if all(label == IGNORE for label in e.labels[1:])]


def loop_settings(config: RunConfig, n_train: int, pad_id: int, device: str = "cpu"):
    from tunelab.training.loop import LoopSettings
    from tunelab.training.precision import resolve_precision

    t = config.train
    steps_per_epoch = math.ceil(n_train / t.batch_size)
    total = math.ceil(steps_per_epoch * t.epochs)
    if t.max_steps:
        total = min(total, t.max_steps)
    warmup = t.warmup_steps if t.warmup_steps is not None else math.ceil(t.warmup_ratio * total)
    packing = t.packing and config.method not in ("prompt-tuning", "prefix-tuning")
    return LoopSettings(
        task=config.task,
        total_steps=total,
        batch_size=t.batch_size,
        micro_batch_size=t.micro_batch_size or t.batch_size,
        packing=packing,
        token_budget=max(t.tokens_per_batch, config.model.max_length),
        learning_rate=config.learning_rate(),
        scheduler=t.scheduler,
        warmup_steps=warmup,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        eval_steps=t.eval_steps or steps_per_epoch,
        logging_steps=t.logging_steps,
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        early_stopping_patience=t.early_stopping_patience,
        pad_id=pad_id,
        distill_temperature=config.distill.temperature,
        distill_alpha=config.distill.alpha,
        precision=resolve_precision(t.precision, device),
        device=device,
        neftune_alpha=t.neftune_alpha,
    )


def load_tokenizer_for(config: RunConfig):
    from tunelab.data.templates import check_template
    from tunelab.models.loading import load_tokenizer
    from tunelab.training.batches import ensure_chat_template

    tokenizer = load_tokenizer(config.model.name, config.model.trust_remote_code)
    ensure_chat_template(tokenizer)
    check_template(tokenizer)  # a template that cannot render (or tries to escape its sandbox) stops here
    return tokenizer


def class_labels(data: Prepared) -> list[str] | None:
    if data.task != "classification":
        return None
    return sorted({r["label"] for split in (data.train, data.validation, data.test) for r in split})


def class_weight_tensor(config: RunConfig, data: Prepared, labels: list[str] | None, device: str):
    """Class-weighted cross-entropy against imbalance: auto = inverse train frequency."""
    import torch

    from tunelab.data.prepare import class_weights

    if not labels or config.train.class_weights == "none":
        return None
    weights = class_weights(data.train) if config.train.class_weights == "auto" else config.train.class_weights
    unknown = set(weights) - set(labels)
    if unknown:
        raise ConfigError(
            f"train.class_weights names labels not in the data: {sorted(unknown)[:5]}", f"labels are {labels[:10]}"
        )
    say("class weights: " + ", ".join(f"{k}={weights.get(k, 1.0):.2f}" for k in labels))
    return torch.tensor([float(weights.get(label, 1.0)) for label in labels], device=device)


def start_run(config: RunConfig, resume: Path | None, parallel) -> tuple[RunConfig, Path]:
    """A new run folder (made by the main process, shared with the others), or the one to resume."""
    if resume is None:
        run_dir = new_run_dir(config.out, config.method or "run", paths.runs_root()) if parallel.is_main else None
        if run_dir:
            write_json(run_dir / "request.json", {"fingerprint": fingerprint(config)})
        return config, Path(parallel.share(str(run_dir) if run_dir else None))
    if not (resume / "config.yaml").exists():
        raise ConfigError(
            f"{resume} is not a run folder (no config.yaml)", "pass the --out folder of an earlier run to --resume"
        )
    return load_config(resume / "config.yaml"), resume


def fingerprint(config: RunConfig) -> str:
    """The identity of a run request (the config as asked for, before defaults follow the data)."""
    import hashlib

    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def unfinished_run_of(config: RunConfig) -> Path | None:
    """`--resume auto`: the newest unfinished run folder started with the same config, if any."""
    import json

    root = Path(config.out).parent if config.out else paths.runs_root()
    wanted = fingerprint(config)
    candidates = [
        request.parent
        for request in root.glob("*/request.json")
        if json.loads(request.read_text()).get("fingerprint") == wanted
        and not (request.parent / "summary.json").exists()
    ]
    return max(candidates, key=lambda folder: folder.stat().st_mtime, default=None)


def run(config: RunConfig, resume: Path | None = None, dry_run: bool = False, on_eval=None) -> dict:
    """Fine-tune, evaluate against the base model, and record everything in the run folder.

    `on_eval(step, record)` is called at each evaluation step (a sweep reports to Optuna and may prune there)."""
    backend = (
        load_config(resume / "config.yaml").backend if resume and (resume / "config.yaml").exists() else config.backend
    )
    if backend == "openai":  # OpenAI's fine-tuning API (or a `tunelab serve`) instead of the local loop
        from tunelab.jobs import openai_backend

        return openai_backend.run(config.model_copy(update={"backend": "openai"}), resume=resume, dry_run=dry_run)
    import torch

    from tunelab.methods.registry import check_hardware
    from tunelab.training import distributed

    parallel = distributed.current()
    if config.method:
        check_hardware(config.method, device_name())
    config, run_dir = start_run(config, resume, parallel)
    data = prepare_once(config, run_dir, parallel)
    config = resolve(config, data)
    check_hardware(config.method, device_name())
    if resume is None and parallel.is_main:
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"path": [str(data.folder.resolve())]})}
        )
        save_config(config, run_dir / "config.yaml")
    tokenizer = load_tokenizer_for(config)
    labels = class_labels(data)
    train_examples = encode_split(data.train, tokenizer, config, labels, "train")
    validation_examples = encode_split(data.validation, tokenizer, config, labels, "validation")
    warn_nothing_to_learn(train_examples, config.task)
    train_examples += replay_examples(config, tokenizer, len(train_examples), run_dir)
    settings = loop_settings(
        config,
        len(train_examples),
        tokenizer.pad_token_id or 0,
        str(parallel.accelerator.device) if parallel.world > 1 else device_name(),
    )
    if dry_run:
        from tunelab.jobs.dry_run import show

        return show(config, run_dir, tokenizer, train_examples, settings)
    torch.manual_seed(config.train.seed)
    return train_and_evaluate(
        config,
        run_dir,
        data,
        tokenizer,
        labels,
        train_examples,
        validation_examples,
        settings,
        resume is not None,
        parallel,
        on_eval=on_eval,
    )


def prepare_once(config: RunConfig, run_dir: Path, parallel) -> Prepared:
    """The main process prepares the data (and converts a bundled model); the others then read it."""
    data = prepare_data(config, run_dir) if parallel.is_main else None
    folder = Path(parallel.share(str(data.folder) if data else None))
    return data or read_prepared(folder)


def read_prepared(folder: Path) -> Prepared:
    from tunelab.data.prepare import load_prepared

    data = load_prepared(folder)
    if not data.train:
        raise DataError(f"the train split in {folder} is empty", "give more examples or change data.split")
    return Prepared(data.train, data.validation, data.test, data.manifest, data.task, folder)


def replay_examples(config: RunConfig, tokenizer, n_train: int, run_dir: Path) -> list:
    """General examples mixed into training (replay_fraction of the result) against catastrophic forgetting."""
    import random

    fraction = config.train.replay_fraction
    if not fraction:
        return []
    if config.task != "causal-lm" or not config.train.replay_data:
        raise ConfigError(
            "train.replay_fraction needs train.replay_data (general text or chat examples) and task causal-lm",
            "set train.replay_data to a file or prepared folder, or replay_fraction to 0",
        )
    replay_config = config.model_copy(
        update={"data": config.data.model_copy(update={"path": [config.train.replay_data]})}
    )
    replay = prepare_data(replay_config, run_dir / "replay")
    records = replay.train + replay.validation + replay.test
    wanted = round(fraction / (1 - fraction) * n_train)
    chosen = random.Random(config.train.seed).choices(records, k=wanted)
    say(f"replay: mixing {wanted} general examples into {n_train} train examples ({fraction:.0%})")
    return encode_split(
        chosen,
        tokenizer,
        config.model_copy(update={"train": config.train.model_copy(update={"loss_on": "all"})}),
        None,
        "replay",
    )


def warn_nothing_to_learn(examples: list, task: str) -> None:
    empty = nothing_to_learn(examples, task)
    if empty:
        say(
            f"[yellow]warning:[/] {len(empty)} train examples have every label masked (nothing to learn), "
            f"e.g. train.jsonl lines {[i + 1 for i in empty[:5]]}; check the chat template and loss_on"
        )


def train_and_evaluate(
    config,
    run_dir,
    data,
    tokenizer,
    labels,
    train_examples,
    validation_examples,
    settings,
    resuming: bool,
    parallel,
    on_eval=None,
) -> dict:
    from tunelab.methods.registry import build_model, parameter_counts, save_trained
    from tunelab.training.checkpoint import latest_intact
    from tunelab.training.loop import train_loop

    device = str(parallel.accelerator.device) if parallel.world > 1 else device_name()
    model = build_model(config, config.task, config.model.name, labels, device)
    counts = parameter_counts(model)
    say(
        f"{config.method} on {config.model.name}: {counts['trainable']:,} trainable of {counts['total']:,} parameters "
        f"({counts['trainable_percent']}%); {settings.total_steps} steps on {device}"
    )
    teacher = load_teacher(config, device) if config.method == "distill" else None
    log = MetricsLog(run_dir / "metrics.jsonl")
    resume_from = latest_intact(run_dir) if resuming else None
    if resuming and resume_from is None:
        log.truncate_after(0)
    tracker = open_tracker(config, run_dir, data.manifest) if parallel.is_main else NoTracker()
    tracker.log_params(
        {**config_params(config), "trainable_parameters": counts["trainable"], "total_parameters": counts["total"]}
    )
    log.listeners.append(tracker.log_step)
    try:
        with TrainingMemory(device, [model, teacher]) as memory:
            result = train_loop(
                model,
                train_examples,
                validation_examples,
                settings,
                run_dir=run_dir,
                log=log,
                class_weights=class_weight_tensor(config, data, labels, device),
                teacher=teacher,
                resume_from=resume_from,
                parallel=parallel,
                on_eval=on_eval,
            )
        if not parallel.is_main:
            return {"run_dir": str(run_dir), "status": "succeeded", "rank": parallel.rank}
        weights_dir = run_dir / ("model" if config.method in ("full", "distill") else "adapter")
        save_trained(model, tokenizer, weights_dir, labels)
        cost = planned_vs_actual(config, result, memory, len(train_examples))
        if config.eval.enabled:
            evaluation = evaluate(config, run_dir, model, tokenizer, data, device, cost)
        else:
            evaluation = {"cost": cost}
            write_json(run_dir / "eval.json", evaluation)
    except BaseException:
        tracker.close("FAILED")
        raise
    summary = {
        "run_dir": str(run_dir),
        "status": "succeeded",
        "task": config.task,
        "method": config.method,
        "model": config.model.name,
        "parameters": counts,
        "steps": result.steps,
        "trained_tokens": result.trained_tokens,
        "train_seconds": round(result.seconds, 1),
        "best_eval_loss": result.best_eval_loss,
        "stopped_early": result.stopped_early,
        "dataset_version": data.manifest.get("version"),
        "tunelab_version": __version__,
        "metrics": {k: evaluation.get(k) for k in ("primary_metric", "base", "tuned")},
    }
    write_json(run_dir / "summary.json", summary)
    from tunelab.tracking.card import write_model_card

    write_model_card(run_dir, config, summary, evaluation, data.manifest)
    tracker.log_result(summary, evaluation, run_dir)
    tracker.close("FINISHED")
    return summary


def config_params(config: RunConfig) -> dict:
    """Every resolved config value as a flat {dotted.key: value} mapping."""
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        else:
            flat[prefix] = value

    walk("", config.model_dump(mode="json"))
    return flat


def planned_vs_actual(config: RunConfig, result, memory: TrainingMemory, n_train: int) -> dict:
    """The cost planner's estimate for the steps this run took, beside what the run measured."""
    from tunelab.cost.estimate import actual_next_to_estimate, estimate, settings_from_config

    epochs_run = min(config.train.epochs, result.steps * config.train.batch_size / max(n_train, 1))
    planned = estimate(**{**settings_from_config(config), "epochs": epochs_run})
    return actual_next_to_estimate(
        planned, result.seconds, round(memory.peak_gb, 3), result.tokens_seen, memory.measured_as
    )


def load_teacher(config: RunConfig, device: str):
    from tunelab.models.loading import default_model, load_model

    teacher = load_model(config.distill.teacher or default_model("causal-lm"), "causal-lm", device=device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def evaluate(config: RunConfig, run_dir: Path, model, tokenizer, data: Prepared, device: str, cost: dict) -> dict:
    """Base vs tuned on the held-out split; writes eval.json and report.html (with the run's cost beside its estimate)."""
    from tunelab.evaluation.report import write_report
    from tunelab.evaluation.run import evaluate_run
    from tunelab.inference.engine import LoadedModel, load_target

    records = getattr(data, config.eval.split, None) or data.test or data.validation
    if config.eval.max_examples:
        records = records[: config.eval.max_examples]
    tuned = LoadedModel(model.eval(), tokenizer, config.task, str(run_dir), config.model.name)
    labels = class_labels(data)
    base = load_target(config.model.name, device, config.task, labels) if config.eval.baseline else None
    evaluation = evaluate_run(tuned, base, records, config.task, config.eval, split=config.eval.split)
    evaluation["cost"] = cost
    write_json(run_dir / "eval.json", evaluation)
    write_report(run_dir)
    return evaluation
