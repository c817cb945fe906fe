"""`tunelab train --backend openai`: the prepared split, fine-tuned through OpenAI's fine-tuning API.

The train (and validation) split is converted to OpenAI chat JSONL, uploaded, and a supervised
job is created with the run's hyperparameters; its events are followed until it ends, and the
result metrics, fine-tuned model name and trained tokens are recorded in the run folder and the
tracking store. The client is the official `openai` package, so OPENAI_API_KEY and
OPENAI_BASE_URL choose the account and the endpoint (e.g. a `tunelab serve` at
http://127.0.0.1:8000/v1). `--resume RUN_DIR` follows a job already created for that run.

OpenAI is winding down self-serve fine-tuning: a job about to be created on OpenAI's own API is
preceded by a warning with the dates (from the price file, with their source) and the way out.
"""

import csv
import io
import json
import os
import re
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

from tunelab import __version__, paths
from tunelab.config import RunConfig, save_config
from tunelab.cost import prices as price_data
from tunelab.errors import ConfigError, TrainingError, TunelabError
from tunelab.methods.lora import LORA  # `tunelab serve` trains LoRA; learning_rate_multiplier 1.0 is its rate
from tunelab.progress import say
from tunelab.runs import MetricsLog, new_run_dir, read_config, read_json, write_json

POLL_SECONDS = 2.0
ENDED = ("succeeded", "failed", "cancelled")
JOB_FILE = "openai_job.json"
OPENAI_BASE_URL = "https://api.openai.com/v1"  # the openai client's default endpoint
WAY_OUT = (
    "To keep fine-tuning with the same client code, run `tunelab serve` and point OPENAI_BASE_URL at it "
    '(README.md, "Moving from OpenAI fine-tuning"); `tunelab models recommend --from-openai MODEL` picks an open base.'
)


def openai_messages(record: dict, task: str) -> dict:
    """One normalised record as an OpenAI chat training example."""
    if "messages" in record:
        kept = ("role", "content", "tool_calls", "tool_call_id", "weight")
        messages = [{k: m[k] for k in kept if m.get(k) is not None} for m in record["messages"]]
        return {"messages": messages} | {k: record[k] for k in ("tools", "parallel_tool_calls") if k in record}
    if task == "classification":
        return {
            "messages": [{"role": "user", "content": record["text"]}, {"role": "assistant", "content": record["label"]}]
        }
    if task == "seq2seq":
        return {
            "messages": [
                {"role": "user", "content": record["source"]},
                {"role": "assistant", "content": record["target"]},
            ]
        }
    raise ConfigError(
        "plain text records cannot be fine-tuned through OpenAI's chat fine-tuning",
        "give chat, instruction, classification or source/target records, or use --backend local",
    )


def write_openai_jsonl(records: list[dict], task: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(openai_messages(r, task), ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def hyperparameters(config: RunConfig) -> dict:
    """The run's settings in OpenAI's terms; a learning rate left at its default stays 'auto'."""
    epochs = max(1, round(config.train.epochs))
    rate = config.train.learning_rate
    return {
        "n_epochs": epochs,
        "batch_size": config.train.batch_size,
        "learning_rate_multiplier": round(rate / LORA.learning_rate, 6) if rate else "auto",
    }


def wind_down_warning(model: str, base_url: str | None, today: date) -> str | None:
    """The dated warning for a job about to be created on OpenAI's own API; None for another endpoint
    (a `tunelab serve`), where the wind-down does not apply."""
    host = urlparse(base_url or OPENAI_BASE_URL).hostname or ""
    if host != "openai.com" and not host.endswith(".openai.com"):
        return None
    prices = price_data.load_prices()
    closure = price_data.wind_down(prices)
    refused = "OpenAI will most likely refuse this job. " if closure.closed(today) else ""
    shutdown = price_data.base_shutdown(model, prices)
    base = f" {shutdown['model']}'s base snapshot shutdown: {shutdown['shutdown']}." if shutdown else ""
    return f"[yellow]warning:[/] {refused}{closure.summary(today)}.{base} {WAY_OUT}"


def warn_if_creating(model: str, run_dir: Path) -> None:
    """Warn about the wind-down when this run is about to create a job, not when it follows one it created."""
    if (run_dir / JOB_FILE).exists():
        return
    warning = wind_down_warning(model, os.environ.get("OPENAI_BASE_URL"), date.today())
    if warning:
        say(warning)


def client():
    try:
        from openai import OpenAI

        return OpenAI()
    except Exception as exc:  # openai.OpenAIError when no key is set
        raise ConfigError(
            f"cannot create the OpenAI client: {exc}",
            "set OPENAI_API_KEY (and OPENAI_BASE_URL for a `tunelab serve` endpoint)",
        ) from None


def api_call(what: str, function, *args, **kwargs):
    """An OpenAI request; its errors become one line naming what was being done."""
    import openai

    try:
        return function(*args, **kwargs)
    except openai.APIStatusError as exc:
        message = (exc.body or {}).get("message") if isinstance(exc.body, dict) else None
        raise TunelabError(
            f"OpenAI API refused to {what}: {exc.status_code} {message or exc.message}",
            "check the model name, the data and OPENAI_API_KEY",
        ) from None
    except openai.APIConnectionError:
        raise TunelabError(
            f"cannot reach the OpenAI API to {what}",
            "check OPENAI_BASE_URL and the network (is `tunelab serve` running?)",
        ) from None


def start(config: RunConfig, resume: Path | None) -> tuple[RunConfig, Path]:
    if resume is not None:
        return read_config(resume), resume
    if not config.model.name:
        raise ConfigError(
            "--backend openai needs --model (an OpenAI base model such as gpt-4.1-mini)",
            "pass --model gpt-4.1-mini, or a model id that OPENAI_BASE_URL's service lists",
        )
    return config, new_run_dir(config.out, "openai", paths.runs_root())


def create_job(api, config: RunConfig, run_dir: Path, data) -> dict:
    """Upload the splits and create the job; its id is saved at once so --resume can follow it."""
    folder = run_dir / "openai"
    train_path = write_openai_jsonl(data.train, data.task, folder / "train.jsonl")
    uploaded = {
        "training_file": api_call(
            "upload the training file", api.files.create, file=train_path.open("rb"), purpose="fine-tune"
        ).id
    }
    if data.validation:
        path = write_openai_jsonl(data.validation, data.task, folder / "validation.jsonl")
        uploaded["validation_file"] = api_call(
            "upload the validation file", api.files.create, file=path.open("rb"), purpose="fine-tune"
        ).id
    suffix = re.sub(r"[^a-zA-Z0-9-]", "-", run_dir.name)[-40:].strip("-") or "tunelab"
    job = api_call(
        "create the fine-tuning job",
        api.fine_tuning.jobs.create,
        model=config.model.name,
        suffix=suffix,
        seed=config.train.seed,
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters(config)}},
        **uploaded,
    )
    record = {"job_id": job.id, "base_url": str(api.base_url), **uploaded}
    write_json(run_dir / JOB_FILE, record)
    say(f"OpenAI fine-tuning job {job.id} created on {config.model.name} ({len(data.train)} train examples)")
    return record


def follow(api, job_id: str, poll_seconds: float = POLL_SECONDS):
    """Show the job's events as they come; return the job once it has ended."""
    seen: set[str] = set()
    while True:
        job = api_call("read the job", api.fine_tuning.jobs.retrieve, job_id)
        events = api_call("read the job's events", api.fine_tuning.jobs.list_events, job_id, limit=100).data
        for event in reversed(events):
            if event.id not in seen:
                seen.add(event.id)
                say(f"[dim]{job.status}[/] {event.message}")
        if job.status in ENDED:
            return job
        time.sleep(poll_seconds)


def result_metrics(api, job) -> list[dict]:
    """The per-step rows of the job's result file, as metrics.jsonl records (loss, eval_loss, accuracies)."""
    rows = []
    for file_id in job.result_files or []:
        text = api_call("download the result file", api.files.content, file_id).text
        for row in csv.DictReader(io.StringIO(text)):
            record = {key: float(value) for key, value in row.items() if key and value not in (None, "")}
            if "step" not in record:
                continue
            record["step"] = int(record["step"])
            if "train_loss" in record:
                record["loss"] = record.pop("train_loss")
            if "valid_loss" in record:
                record["eval_loss"] = record.pop("valid_loss")
            rows.append(record)
    return rows


def record_result(config: RunConfig, run_dir: Path, data, job, rows: list[dict]) -> dict:
    from tunelab.tracking import config_params, open_tracker

    log = MetricsLog(run_dir / "metrics.jsonl")
    log.truncate_after(0)
    tracker = open_tracker(config, run_dir, data.manifest)
    tracker.log_params({**config_params(config), "openai_job_id": job.id})
    for row in rows:
        log.append(row)
        tracker.log_step(row)
    losses = [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]
    summary = {
        "run_dir": str(run_dir),
        "status": job.status,
        "backend": "openai",
        "task": data.task,
        "method": "openai",
        "model": config.model.name,
        "openai_job_id": job.id,
        "fine_tuned_model": job.fine_tuned_model,
        "trained_tokens": job.trained_tokens,
        "steps": rows[-1]["step"] if rows else None,
        "train_seconds": (job.finished_at - job.created_at) if job.finished_at else None,
        "best_eval_loss": min(losses) if losses else None,
        "dataset_version": data.manifest.get("version"),
        "tunelab_version": __version__,
        "result_files": list(job.result_files or []),
        "error": job.error.model_dump() if job.error else None,
        "metrics": rows[-1] if rows else {},
    }
    write_json(run_dir / "summary.json", summary)
    if job.status == "succeeded":
        tracker.log_result(summary, {}, run_dir)
    tracker.close("FINISHED" if job.status == "succeeded" else "FAILED")
    return summary


def run(config: RunConfig, resume: Path | None = None, dry_run: bool = False) -> dict:
    from tunelab.data.for_run import data_for_run

    config, run_dir = start(config, resume)
    warn_if_creating(config.model.name, run_dir)
    data = data_for_run(config, run_dir)
    if resume is None:
        config = config.model_copy(
            update={
                "task": config.task or data.task,
                "backend": "openai",
                "data": config.data.model_copy(update={"path": [str(data.folder.resolve())]}),
            }
        )
        save_config(config, run_dir / "config.yaml")
    if dry_run:
        path = write_openai_jsonl(data.train, data.task, run_dir / "openai" / "train.jsonl")
        say(f"dry run: {len(data.train)} train examples written to {path}; hyperparameters {hyperparameters(config)}")
        return {
            "run_dir": str(run_dir),
            "status": "dry_run",
            "backend": "openai",
            "train_file": str(path),
            "hyperparameters": hyperparameters(config),
        }
    api = client()
    saved = read_json(run_dir / JOB_FILE) if (run_dir / JOB_FILE).exists() else None
    job_id = (saved or create_job(api, config, run_dir, data))["job_id"]
    job = follow(api, job_id)
    summary = record_result(config, run_dir, data, job, result_metrics(api, job) if job.status == "succeeded" else [])
    if job.status != "succeeded":
        reason = job.error.message if job.error else "no reason given"
        raise TrainingError(
            f"OpenAI fine-tuning job {job.id} {job.status}: {reason}",
            f"see {run_dir / 'summary.json'}; fix the cause and run again",
        )
    say(f"fine-tuned model: {job.fine_tuned_model} ({job.trained_tokens} trained tokens)")
    return summary
