"""The fine-tuning workflow: data → method → training → evaluation → records.

The CLI, the Python API and the service all call `run(config)`. This module only sequences the
stages; each stage's logic lives in its area (data, methods, training, evaluation, cost, tracking).
"""

from pathlib import Path

from tunelab import __version__, paths
from tunelab.config import RunConfig, save_config
from tunelab.errors import ConfigError
from tunelab.progress import say
from tunelab.runs import MetricsLog, fingerprint, new_run_dir, read_config, write_json


def run(config: RunConfig, resume: Path | None = None, dry_run: bool = False, on_eval=None) -> dict:
    """Fine-tune, evaluate against the base model, and record everything in the run folder.

    `on_eval(step, record)` is called at each evaluation step (a sweep reports to Optuna and may prune there)."""
    backend = read_config(resume).backend if resume and (resume / "config.yaml").exists() else config.backend
    if backend == "openai":  # OpenAI's fine-tuning API (or a `tunelab serve`) instead of the local loop
        from tunelab.jobs import openai_backend

        return openai_backend.run(config.model_copy(update={"backend": "openai"}), resume=resume, dry_run=dry_run)
    import torch

    from tunelab.methods.registry import check_hardware, method_for
    from tunelab.training import distributed
    from tunelab.training.encode import training_tokenizer, warn_nothing_to_learn
    from tunelab.training.loop import LoopSettings

    parallel = distributed.current()
    asked_for = config.method
    if asked_for:  # a method that cannot run here is refused before any data is prepared
        check_hardware(method_for(config), parallel.device)
    config, run_dir = start_run(config, resume, parallel)
    data = prepare_once(config, run_dir, parallel)
    config = resolve(config, data)
    if not asked_for:
        check_hardware(method_for(config), parallel.device)
    if resume is None and parallel.is_main:
        save_config(config, run_dir / "config.yaml")
    tokenizer = training_tokenizer(config.model.name, config.model.trust_remote_code)
    train_examples, validation_examples = encode_splits(config, data, tokenizer, run_dir)
    warn_nothing_to_learn(train_examples, config.task)
    settings = LoopSettings.from_config(config, len(train_examples), parallel.device)
    if dry_run:
        from tunelab.jobs.dry_run import show

        return show(config, run_dir, tokenizer, train_examples, settings)
    torch.manual_seed(config.train.seed)
    return train_and_evaluate(
        config,
        run_dir,
        data,
        tokenizer,
        (train_examples, validation_examples),
        settings,
        resume is not None,
        parallel,
        on_eval=on_eval,
    )


def start_run(config: RunConfig, resume: Path | None, parallel) -> tuple[RunConfig, Path]:
    """A new run folder (made by the main process, shared with the others), or the one to resume."""
    if resume is None:
        run_dir = new_run_dir(config.out, config.method or "run", paths.runs_root()) if parallel.is_main else None
        if run_dir:
            write_json(run_dir / "request.json", {"fingerprint": fingerprint(config)})
        return config, Path(parallel.share(str(run_dir) if run_dir else None))
    return read_config(resume), resume


def prepare_once(config: RunConfig, run_dir: Path, parallel):
    """The main process prepares the data (and converts a bundled model); the others then read it."""
    from tunelab.data.for_run import data_for_run, read_prepared

    data = data_for_run(config, run_dir) if parallel.is_main else None
    folder = Path(parallel.share(str(data.folder) if data else None))
    return data or read_prepared(folder)


def resolve(config: RunConfig, data) -> RunConfig:
    """Fill every default that follows the data or the method (task, model, method, learning rate, the
    prepared data's folder), so the saved config holds each value the run uses."""
    from tunelab.methods.registry import default_method, method_named
    from tunelab.models.loading import default_model

    task = config.task or data.task
    if task != data.task:
        raise ConfigError(
            f"task {task} does not match the data, which is {data.task} ({data.manifest.get('schema')} records)",
            f"leave --task out, or pass data in the {task} format",
        )
    model_name = config.model.name or default_model(task)
    schema = data.manifest.get("schema")
    method = method_named(config.method or default_method(task, model_name, schema), config.weights)
    check_data_fits(method, schema)
    if method.recipe and method.recipe.schema == "reinforcement" and config.rl.grader is None:
        raise ConfigError(f"{method.name} needs a grader to score its samples", "pass --grader grader.json (rl.grader)")
    train = config.train
    rate = train.learning_rate or method.learning_rate
    return config.model_copy(
        update={
            "task": task,
            "method": method.name,
            "model": config.model.model_copy(update={"name": model_name}),
            "train": train.model_copy(update={"learning_rate": rate}),
            "data": config.data.model_copy(update={"path": [str(Path(data.folder).resolve())]}),
        }
    )


def check_data_fits(method, schema: str | None) -> None:
    """A preference or reinforcement recipe trains on its own kind of records, and supervised methods on theirs."""
    wanted = method.recipe.schema if method.recipe else None
    if schema in ("preference", "reinforcement") or wanted:
        if schema != wanted:
            raise ConfigError(
                f"method {method.name} trains on {wanted or 'supervised'} records; this data is {schema} records",
                "pick a method for this data (`tunelab methods`), or leave --method out to let the data choose",
            )


def encode_splits(config: RunConfig, data, tokenizer, run_dir: Path) -> tuple[list, list]:
    """Train examples (with any replay examples mixed in) and validation examples, as the method encodes them."""
    from tunelab.data.for_run import class_labels, replay_records
    from tunelab.methods.base import EncodeContext
    from tunelab.methods.registry import method_for
    from tunelab.training.encode import encode_split

    method = method_for(config)
    context = EncodeContext(config.task, config.model.max_length, config.train.loss_on, class_labels(data))
    train = method.encode(data.train, tokenizer, context, "train")
    validation = method.encode(data.validation, tokenizer, context, "validation")
    replay = replay_records(config, len(train), run_dir)
    if replay:
        train += encode_split(
            replay, tokenizer, config.task, max_length=context.max_length, loss_on="all", name="replay"
        )
    return train, validation


def train_and_evaluate(
    config, run_dir, data, tokenizer, examples, settings, resuming: bool, parallel, on_eval=None
) -> dict:
    from tunelab.cost.estimate import planned_vs_actual
    from tunelab.data.for_run import class_labels
    from tunelab.methods.base import BuildContext, ObjectiveContext
    from tunelab.methods.registry import build_model, method_for, parameter_counts, save_trained
    from tunelab.tracking import NoTracker, config_params, open_tracker
    from tunelab.training.checkpoint import latest_intact
    from tunelab.training.loop import train_loop
    from tunelab.training.memory import TrainingMemory

    method, labels, device = method_for(config), class_labels(data), parallel.device
    model = build_model(method, BuildContext(config, config.task, config.model.name, device), labels)
    counts = parameter_counts(model)
    say(
        f"{method.name} on {config.model.name}: {counts['trainable']:,} trainable of {counts['total']:,} parameters "
        f"({counts['trainable_percent']}%); {settings.total_steps} steps on {device}"
    )
    packing = config.train.packing and not method.virtual_tokens
    pad_id = tokenizer.pad_token_id or 0
    objective = method.objective(
        ObjectiveContext(
            config, config.task, device, labels, data.train, pad_id, packing, model, tokenizer, run_dir, examples
        )
    )
    log = MetricsLog(run_dir / "metrics.jsonl")
    resume_from = latest_intact(run_dir) if resuming else None
    if resume_from is None:  # a fresh start, also in a reused --out folder, keeps no earlier run's steps
        log.truncate_after(0)
    tracker = open_tracker(config, run_dir, data.manifest) if parallel.is_main else NoTracker()
    tracker.log_params(
        {**config_params(config), "trainable_parameters": counts["trainable"], "total_parameters": counts["total"]}
    )
    log.listeners.append(tracker.log_step)
    try:
        with TrainingMemory(device, [model, *objective.frozen_models]) as memory:
            result = train_loop(
                model,
                *examples,
                settings,
                objective,
                run_dir=run_dir,
                log=log,
                resume_from=resume_from,
                parallel=parallel,
                on_eval=on_eval,
            )
        if not parallel.is_main:
            return {"run_dir": str(run_dir), "status": "succeeded", "rank": parallel.rank}
        save_trained(model, tokenizer, run_dir / method.weights.folder, method, labels)
        cost = planned_vs_actual(config, result.steps, result.seconds, result.tokens_seen, memory, len(examples[0]))
        evaluation = evaluate(config, run_dir, model, tokenizer, data, device, cost)
    except BaseException:
        tracker.close("FAILED")
        raise
    summary = run_summary(config, run_dir, counts, result, data, evaluation)
    from tunelab.tracking.card import write_model_card

    write_model_card(run_dir, config, summary, evaluation, data.manifest)
    tracker.log_result(summary, evaluation, run_dir)
    tracker.close("FINISHED")
    return summary


def evaluate(config: RunConfig, run_dir: Path, model, tokenizer, data, device: str, cost: dict) -> dict:
    """Base vs tuned on the held-out split (eval.enabled), recorded with the run's cost beside its estimate."""
    from tunelab.data.for_run import class_labels
    from tunelab.inference.engine import LoadedModel, load_target
    from tunelab.jobs.evaluate import evaluate_and_record, held_out_records
    from tunelab.methods.registry import method_for

    if not config.eval.enabled:
        write_json(run_dir / "eval.json", {"cost": cost})
        return {"cost": cost}
    tuned = LoadedModel(model.eval(), tokenizer, config.task, str(run_dir), config.model.name, method_for(config))
    base = load_target(config.model.name, device, config.task, class_labels(data)) if config.eval.baseline else None
    eval_config = config.eval
    if eval_config.grader is None and config.rl.grader is not None:  # a grpo run is evaluated by its own grader
        eval_config = eval_config.model_copy(update={"grader": config.rl.grader})
    records = held_out_records(data, eval_config)
    return evaluate_and_record(tuned, base, records, eval_config, eval_config.split, run_dir, cost=cost)


def run_summary(config: RunConfig, run_dir: Path, counts: dict, result, data, evaluation: dict) -> dict:
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
    return summary
