"""Hyperparameter sweeps with Optuna: TPE sampling, median pruning on validation loss, shared storage.

Every trial is an ordinary fine-tuning run (`jobs.finetune.run`) in its own folder under the study
folder, tracked in MLflow with tags {study, trial}. The study lives in an Optuna RDB storage (SQLite
in the study folder by default; PostgreSQL or MySQL to spread one study over machines). Workers on
any machine run trials until the study holds `trials` of them: a trial whose number comes after the
first `trials` valid ones is marked surplus and skipped, so a race between workers never runs an
extra trial, and a trial whose worker died (no heartbeat) is failed and retried once.
"""

import multiprocessing
import warnings
from datetime import UTC, datetime
from pathlib import Path

from tunelab import paths
from tunelab.config import RunConfig
from tunelab.errors import ConfigError, TunelabError
from tunelab.progress import say
from tunelab.search.space import apply_values, check_space, default_space, suggest

SWEEP_EVAL_STEPS = 10  # report validation loss this often when the config leaves train.eval_steps unset
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120


def quiet_optuna() -> None:
    """Heartbeats and retries are marked experimental in Optuna; the warning says nothing a user can act on."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage_for(url: str):
    """An RDB storage with heartbeats, so a trial whose worker died is failed and retried once."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    try:
        return RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        raise TunelabError(
            f"cannot open the Optuna storage {url}: {str(exc).splitlines()[0][:200]}",
            "pass a sqlite:///, postgresql:// or mysql:// URL to --storage (with its driver installed)",
        ) from None


def samplers(seed: int, startup_trials: int):
    import optuna

    return (
        optuna.samplers.TPESampler(seed=seed),
        optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0, interval_steps=1),
    )


def load_study(name: str, url: str, seed: int, startup_trials: int, create: bool = False):
    import optuna

    quiet_optuna()
    sampler, pruner = samplers(seed, startup_trials)
    storage = storage_for(url)
    if create:
        return optuna.create_study(
            study_name=name, storage=storage, direction="minimize", sampler=sampler, pruner=pruner, load_if_exists=True
        )
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)


def counted_trials(trials: list) -> list:
    """Trials that count towards the study's total: not surplus, and not a dead trial that was retried."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials} - {None}
    return [t for t in trials if not t.user_attrs.get("surplus") and t.number not in retried]


def is_surplus(study, number: int, total: int) -> bool:
    earlier = [t for t in counted_trials(study.get_trials(deepcopy=False)) if t.number < number]
    return len(earlier) >= total


def objective_for(study, config: RunConfig, space: dict, total: int, study_dir: Path):
    import optuna

    from tunelab.jobs import finetune

    def objective(trial) -> float:
        if is_surplus(study, trial.number, total):
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("surplus: the study already has its trials")
        values = suggest(trial, space)
        run_dir = study_dir / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        tags = {**config.tracking.tags, "study": study.study_name, "trial": str(trial.number)}
        trial_config = apply_values(config, values, {"out": str(run_dir), "tracking.tags": tags})
        say(
            f"[bold]trial {trial.number}[/] "
            + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        )

        def on_eval(step: int, record: dict) -> None:
            if record.get("eval_loss") is None:
                return
            trial.report(record["eval_loss"], step)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_step", step)
                say(f"trial {trial.number} pruned at step {step}: eval_loss {record['eval_loss']:.4f} above the median")
                raise optuna.TrialPruned(f"pruned at step {step}")

        summary = finetune.run(trial_config, on_eval=on_eval)
        if summary.get("best_eval_loss") is None:
            raise ConfigError("a sweep needs a validation split to score trials", "give data.split a validation share")
        trial.set_user_attr("steps", summary.get("steps"))
        return float(summary["best_eval_loss"])

    return objective


def work(
    config_json: dict, space: dict, name: str, url: str, total: int, study_dir: str, seed: int, startup_trials: int
) -> None:
    """One worker: run trials of the study until it holds `total` counted trials."""
    config = RunConfig.model_validate(config_json)
    study = load_study(name, url, seed, startup_trials)
    objective = objective_for(study, config, space, total, Path(study_dir))
    while len(counted_trials(study.get_trials(deepcopy=False))) < total:
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)


def _work_quietly(*args) -> None:
    from tunelab import progress

    progress.set_quiet(True)
    work(*args)


def prepared_config(config: RunConfig, study_dir: Path) -> RunConfig:
    """Prepare the data once for all trials; trials read the prepared folder."""
    from tunelab.data.for_run import data_for_run
    from tunelab.jobs.finetune import resolve

    config = resolve(config, data_for_run(config, study_dir))
    if config.train.eval_steps is None:
        return config.model_copy(update={"train": config.train.model_copy(update={"eval_steps": SWEEP_EVAL_STEPS})})
    return config


def study_folder(out: str | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(out) if out else paths.runs_root() / f"sweep-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def run_sweep(
    config: RunConfig,
    space: dict | None = None,
    trials: int = 20,
    storage: str | None = None,
    jobs: int = 1,
    study_name: str | None = None,
    out: str | None = None,
    seed: int = 0,
) -> dict:
    """Run (or join) a study; returns and writes the summary: trials table, importances, best config, report."""
    from tunelab.search.summary import summarise
    from tunelab.training.distributed import device_name

    if trials < 1 or jobs < 1:
        raise ConfigError("--trials and --jobs must be at least 1", "e.g. --trials 20 --jobs 2")
    study_dir = study_folder(out)
    name = study_name or study_dir.name
    url = storage or f"sqlite:///{(study_dir / 'optuna.db').resolve()}"
    config = prepared_config(config, study_dir)
    space = space or default_space(config, device_name() == "cuda")
    check_space(space, config)
    startup_trials = min(5, max(1, trials // 4))
    load_study(name, url, seed, startup_trials, create=True)
    say(f"study {name}: {trials} trials, {jobs} worker(s), storage {url}")
    args = [
        (config.model_dump(mode="json"), space, name, url, trials, str(study_dir), seed * 1000 + i, startup_trials)
        for i in range(jobs)
    ]
    if config.tracking.enabled:
        from tunelab.tracking.mlflow_tracker import prepare_store

        prepare_store(config)
    if jobs == 1:
        work(*args[0])
    else:
        run_workers(args)
    study = load_study(name, url, seed, startup_trials)
    return summarise(study, config, space, study_dir, url)


def run_workers(args: list[tuple]) -> None:
    """K worker processes on this machine sharing the study's storage."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_work_quietly, args=a, name=f"tunelab-sweep-{i}") for i, a in enumerate(args)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [w.name for w in workers if w.exitcode != 0]
    if failed:
        say(
            f"[yellow]warning:[/] sweep workers {failed} ended with an error; the summary shows the trials they finished"
        )
