"""Reading the tracking store: list, show, compare and delete runs (what `tunelab runs` does).

Runs are found across all experiments; filters by tag, dataset version and metric become an
MLflow search filter, so a team's server does the filtering itself.
"""

import re
import warnings
from datetime import UTC, datetime

from tunelab.errors import TunelabError
from tunelab.tracking.mlflow_tracker import check_reachable, quiet_mlflow

METRIC_FILTER = re.compile(r"^\s*([\w.\-/]+)\s*(>=|<=|!=|=|>|<)\s*([-+0-9.eE]+)\s*$")
LIST_METRICS = ("best_eval_loss", "train_loss", "eval_loss")
HIDDEN_TAG_PREFIXES = ("mlflow.", "tunelab.libraries.", "tunelab.hardware.")


def open_store(uri: str | None = None):
    """(client, uri) for the store; a store that cannot be reached is a one-line error."""
    from tunelab import paths

    uri = uri or paths.tracking_uri()
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    try:
        check_reachable(uri)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as exc:
        raise TunelabError(
            f"tracking store {uri} cannot be read: {str(exc).splitlines()[0][:200] if str(exc) else exc!r}",
            "check --store / MLFLOW_TRACKING_URI, or start the tracking server",
        ) from None
    return client, uri


def quoted(key: str) -> str:
    return f"`{key}`"


def literal(value: str) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def search_filter(
    tags: list[str] | None = None, dataset_version: str | None = None, metrics: list[str] | None = None
) -> str:
    """An MLflow filter string from --tag key=value, --dataset-version PREFIX and --metric 'name>value'."""
    clauses = []
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TunelabError(f"--tag {item!r} is not key=value", "e.g. --tag study=lr-search")
        clauses.append(f"tags.{quoted(key.strip())} = {literal(value.strip())}")
    if dataset_version:
        clauses.append(f"tags.{quoted('tunelab.dataset_version')} LIKE {literal(dataset_version + '%')}")
    for item in metrics or []:
        match = METRIC_FILTER.match(item)
        if not match:
            raise TunelabError(
                f"--metric {item!r} is not name<op>value", "e.g. --metric 'tuned.rougeL>0.3' (ops: > >= < <= = !=)"
            )
        name, op, value = match.groups()
        clauses.append(f"metrics.{quoted(name)} {op} {float(value)}")
    return " and ".join(clauses)


def experiment_ids(client, experiment: str | None) -> list[str]:
    if experiment:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise TunelabError(
                f"no experiment named {experiment!r} in the store", "leave --experiment out to search all"
            )
        return [found.experiment_id]
    return [e.experiment_id for e in client.search_experiments()]


def find_runs(client, experiment: str | None = None, filter_string: str = "", limit: int = 100) -> list:
    ids = experiment_ids(client, experiment)
    if not ids:
        return []
    try:
        return client.search_runs(
            ids, filter_string=filter_string, max_results=limit, order_by=["attributes.start_time DESC"]
        )
    except Exception as exc:
        raise TunelabError(
            f"the store refused the filter {filter_string!r}: {str(exc).splitlines()[0][:200]}",
            "check the --tag/--metric names",
        ) from None


def iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None


def run_summary(run, experiments: dict | None = None) -> dict:
    """The fields `runs list` shows: identity, lineage, user tags and the key metrics."""
    info, tags, metrics = run.info, run.data.tags, run.data.metrics
    primary = tags.get("tunelab.primary_metric")
    key_metrics = {k: metrics[k] for k in LIST_METRICS if k in metrics}
    for model in ("base", "tuned"):
        if primary and f"{model}.{primary}" in metrics:
            key_metrics[f"{model}.{primary}"] = metrics[f"{model}.{primary}"]
    duration = (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None
    return {
        "run_id": info.run_id,
        "name": info.run_name,
        "experiment": (experiments or {}).get(info.experiment_id, info.experiment_id),
        "status": info.status,
        "start_time": iso(info.start_time),
        "duration_seconds": duration,
        "method": tags.get("tunelab.method"),
        "base_model": tags.get("tunelab.base_model"),
        "dataset_version": tags.get("tunelab.dataset_version"),
        "run_dir": tags.get("tunelab.run_dir"),
        "primary_metric": primary,
        "metrics": key_metrics,
        "tags": user_tags(tags),
    }


def user_tags(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if not k.startswith(HIDDEN_TAG_PREFIXES) and not k.startswith("tunelab.")}


def experiment_names(client) -> dict:
    return {e.experiment_id: e.name for e in client.search_experiments()}


def list_runs(client, experiment=None, tags=None, dataset_version=None, metrics=None, limit: int = 100) -> list[dict]:
    names = experiment_names(client)
    runs = find_runs(client, experiment, search_filter(tags, dataset_version, metrics), limit)
    return [run_summary(run, names) for run in runs]


def resolve_run(client, ident: str):
    """A run by id, unique id prefix, run name or run folder path."""
    from pathlib import Path

    from mlflow.exceptions import MlflowException

    if re.fullmatch(r"[0-9a-f]{32}", ident):
        try:
            return client.get_run(ident)
        except MlflowException:
            pass
    candidates = find_runs(client, None, "", 5000)
    folder = str(Path(ident).expanduser().resolve()) if Path(ident).expanduser().exists() else None
    matches = [
        r
        for r in candidates
        if r.info.run_id.startswith(ident)
        or r.info.run_name == ident
        or (folder and r.data.tags.get("tunelab.run_dir") == folder)
    ]
    if not matches:
        raise TunelabError(f"no run {ident!r} in the store", "see `tunelab runs list` for ids and names")
    if len({r.info.run_id for r in matches}) > 1:
        ids = ", ".join(r.info.run_id[:8] for r in matches[:5])
        raise TunelabError(f"{ident!r} matches {len(matches)} runs ({ids})", "give more of the run id")
    return matches[0]


def show_run(client, ident: str) -> dict:
    run = resolve_run(client, ident)
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    return {
        **run_summary(run, experiment_names(client)),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
        "artifact_uri": run.info.artifact_uri,
        "artifacts": artifacts,
    }


def compare_runs(client, idents: list[str]) -> dict:
    """Params that differ between the runs, and every final metric side by side."""
    if len(idents) < 2:
        raise TunelabError("compare needs at least two runs", "e.g. tunelab runs compare RUN_A RUN_B")
    runs = [resolve_run(client, ident) for ident in idents]
    ids = [r.info.run_id for r in runs]
    param_keys = sorted({k for r in runs for k in r.data.params})
    differing = {
        k: {r.info.run_id: r.data.params.get(k) for r in runs}
        for k in param_keys
        if len({r.data.params.get(k) for r in runs}) > 1
    }
    metric_keys = sorted({k for r in runs for k in r.data.metrics})
    metrics = {k: {r.info.run_id: r.data.metrics.get(k) for r in runs} for k in metric_keys}
    return {"runs": [run_summary(r) for r in runs], "run_ids": ids, "params_differing": differing, "metrics": metrics}


def delete_run(client, ident: str) -> dict:
    """Marks the run deleted (MLflow's soft delete; `mlflow gc` removes it for good)."""
    run = resolve_run(client, ident)
    client.delete_run(run.info.run_id)
    return {"deleted": run.info.run_id, "name": run.info.run_name}
