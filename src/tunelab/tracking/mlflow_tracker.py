"""The MLflow tracker: params, step metrics, final metrics, artifacts, lineage tags and the registry.

It talks to the store through MlflowClient with an explicit run id (never the fluent "active run"),
so several runs in one process do not collide. Step metrics are buffered and sent with log_batch.
Any failure of the store is said once and turns the tracker into a no-op: training goes on, and
metrics.jsonl in the run folder still has everything.
"""

import functools
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from tunelab import paths
from tunelab.progress import say
from tunelab.tracking import lineage as lineage_mod

FLUSH_EVERY = 10  # step records buffered before a log_batch
PARAM_VALUE_LIMIT = 6000  # MLflow's maximum length of a param value
BATCH_PARAMS, BATCH_METRICS = 100, 1000  # MLflow's per-call limits of log_batch
ARTIFACT_WEIGHTS_LIMIT = 200 * 2**20  # weights folders up to this size are copied into the store
RUN_FILES = ("config.yaml", "summary.json", "eval.json", "report.html", "README.md", "lineage.json", "metrics.jsonl")
STEP_METRIC_NAMES = {"loss": "train_loss"}
KILLED_BY = ("TrialPruned", "KeyboardInterrupt")


def quiet_mlflow() -> None:
    """MLflow and alembic log schema migrations at INFO when a store is first created; keep stderr for people.

    MLflow configures its logger when imported, so this runs after the import."""
    import mlflow  # noqa: F401

    for name in ("mlflow", "alembic", "alembic.runtime.migration", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def store_uri(config) -> str:
    return config.tracking.uri or paths.tracking_uri()


def artifact_root(uri: str) -> str | None:
    """For a SQLite store, artifacts go in a folder beside the database (not ./mlruns under the cwd)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def experiment_id(client, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(uri))
    except Exception:  # another process created it a moment ago
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def check_reachable(uri: str) -> None:
    """A quick look at an HTTP server, so an unreachable store costs seconds, not minutes of retries."""
    if uri.startswith(("http://", "https://")):
        import urllib.request

        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()


def guarded(method):
    """Run a tracker call; on the first failure say so once and stop tracking."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.client is None:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return method(self, *args, **kwargs)
        except Exception as exc:
            self.disable(exc)
            return None

    return wrapper


def text_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:PARAM_VALUE_LIMIT]


def numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def evaluation_metrics(evaluation: dict) -> dict[str, float]:
    """tuned.<m>, base.<m>, their 95% interval ends, and the paired difference tuned − base."""
    found = {}
    for model in ("base", "tuned"):
        for name, value in (evaluation.get(model) or {}).items():
            if numeric(value):
                found[f"{model}.{name}"] = float(value)
        for name, ends in ((evaluation.get("intervals") or {}).get(model) or {}).items():
            if isinstance(ends, list) and len(ends) == 2 and all(numeric(v) for v in ends):
                found[f"{model}.{name}.ci_low"], found[f"{model}.{name}.ci_high"] = float(ends[0]), float(ends[1])
    for name, diff in (evaluation.get("difference") or {}).items():
        if isinstance(diff, dict) and numeric(diff.get("delta")):
            found[f"difference.{name}"] = float(diff["delta"])
    return found


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class MLflowTracker:
    def __init__(self, client, run_id: str, run_dir: Path, config):
        self.client, self.run_id, self.run_dir, self.config = client, run_id, Path(run_dir), config
        self.pending = []

    @classmethod
    def start(cls, config, run_dir: Path, manifest: dict):
        """A new MLflow run tagged with the run folder and its lineage; lineage.json is written either way."""
        tracker = cls(None, "", run_dir, config)
        try:
            lineage = lineage_mod.collect(config, manifest)
            lineage_mod.write_lineage(run_dir, lineage)
            tracker.client, tracker.run_id = open_run_retrying(config, run_dir, lineage)
        except Exception as exc:
            tracker.client = object()  # so disable() reports it
            tracker.disable(exc)
        return tracker

    def disable(self, exc: Exception) -> None:
        if self.client is not None:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            say(f"[yellow]tracking unavailable:[/] {reason}; continuing, metrics.jsonl has everything")
        self.client = None

    @guarded
    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(key, text_value(value)) for key, value in params.items()]
        for i in range(0, len(items), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=items[i : i + BATCH_PARAMS])

    def log_step(self, record: dict) -> None:
        if self.client is None:
            return
        self.pending.append(record)
        if len(self.pending) >= FLUSH_EVERY or record.get("eval_loss") is not None:
            self.flush()

    @guarded
    def flush(self) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(STEP_METRIC_NAMES.get(key, key), float(value), stamp, int(record.get("step", 0)))
            for record in self.pending
            for key, value in record.items()
            if key != "step" and numeric(value)
        ]
        self.pending = []
        for i in range(0, len(metrics), BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH_METRICS])

    @guarded
    def log_result(self, summary: dict, evaluation: dict, run_dir: Path) -> None:
        from mlflow.entities import Metric, RunTag

        self.flush()
        stamp, step = int(time.time() * 1000), int(summary.get("steps") or 0)
        found = evaluation_metrics(evaluation or {})
        for key in ("train_seconds", "trained_tokens", "best_eval_loss"):
            if numeric(summary.get(key)):
                found[key] = float(summary[key])
        metrics = [Metric(key, value, stamp, step) for key, value in found.items()]
        tags = [RunTag("tunelab.primary_metric", str((evaluation or {}).get("primary_metric")))]
        self.client.log_batch(self.run_id, metrics=metrics[:BATCH_METRICS], tags=tags)
        self.log_artifacts(Path(run_dir))
        if self.config.tracking.register_as:
            self.register(self.config.tracking.register_as, Path(run_dir))

    def log_artifacts(self, run_dir: Path) -> None:
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        manifest = run_dir / "data" / "manifest.json"
        if manifest.is_file():
            self.client.log_artifact(self.run_id, str(manifest), "data")
        weights = self.weights_dir(run_dir)
        if weights and folder_size(weights) <= ARTIFACT_WEIGHTS_LIMIT:
            self.client.log_artifacts(self.run_id, str(weights), weights.name)

    @staticmethod
    def weights_dir(run_dir: Path) -> Path | None:
        return next((run_dir / name for name in ("adapter", "model") if (run_dir / name).is_dir()), None)

    def register(self, name: str, run_dir: Path) -> None:
        """A new version of registered model `name`, pointing at the weights logged with this run."""
        from mlflow.exceptions import MlflowException

        weights = self.weights_dir(run_dir)
        if weights is None:
            return
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
        logged = folder_size(weights) <= ARTIFACT_WEIGHTS_LIMIT
        source = f"{artifact_uri}/{weights.name}" if logged else weights.resolve().as_uri()
        version = self.client.create_model_version(
            name, source, run_id=self.run_id, tags={"tunelab.run_dir": str(run_dir.resolve())}
        )
        say(f"registered {name} version {version.version}")

    def close(self, status: str) -> None:
        """End the run; a pruned trial or Ctrl-C ends it KILLED rather than FAILED."""
        exc = sys.exc_info()[1]
        if status == "FAILED" and exc is not None and type(exc).__name__ in KILLED_BY:
            status = "KILLED"
        self.flush()
        self._terminate(status)

    @guarded
    def _terminate(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)


def open_run_retrying(config, run_dir: Path, lineage: dict, attempts: int = 3):
    """Another process creating the same SQLite store (sweep workers) can make a first attempt fail."""
    for attempt in range(attempts):
        try:
            return open_run(config, run_dir, lineage)
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)


def prepare_store(config) -> None:
    """Create the store and experiment once, before several processes log to it; failures are left to the runs."""
    try:
        quiet_mlflow()
        from mlflow.tracking import MlflowClient

        uri = store_uri(config)
        check_reachable(uri)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            experiment_id(MlflowClient(tracking_uri=uri), config.tracking.experiment, uri)
    except Exception:
        pass


def open_run(config, run_dir: Path, lineage: dict):
    """(client, run id) of a new run in the configured experiment."""
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    uri = store_uri(config)
    check_reachable(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = MlflowClient(tracking_uri=uri)
        experiment = experiment_id(client, config.tracking.experiment, uri)
        tags = {
            "tunelab.run_dir": str(Path(run_dir).resolve()),
            "tunelab.task": str(config.task),
            **lineage_mod.lineage_tags(lineage),
            **config.tracking.tags,
        }
        run = client.create_run(experiment, tags=tags, run_name=Path(run_dir).name)
    return client, run.info.run_id
