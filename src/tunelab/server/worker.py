"""The job queue: a validator thread prepares data, N runner threads train one job each in a child process.

Statuses move validating_files → queued → running → succeeded | failed | cancelled (or paused).
Queued jobs start oldest first. On start, a job left "running" by a crash is queued again to
resume from its last checkpoint, or failed with the reason once it has been interrupted too often.
Validation also checks that the file's records suit the job's method and resolves its "auto"
hyperparameters from the split sizes; a job's end is announced to the webhook.
"""

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tunelab.runs import read_json, write_json
from tunelab.server import datasets
from tunelab.server.job_methods import JOB_METHODS, run_overrides
from tunelab.server.store import Store, new_id, now

POLL_SECONDS = 1.0


def fine_tuned_name(job: dict) -> str:
    return f"ft:{job['model']}:{job['suffix'] or ''}:{job['id']}"


class Worker:
    def __init__(self, config, store: Store, webhooks):
        self.config, self.store, self.webhooks = config, store, webhooks
        self.wakeup = threading.Condition()
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self.threads: list[threading.Thread] = []

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        targets = [self.validate_loop] + [self.run_loop] * self.config.workers
        for i, target in enumerate(targets):
            thread = threading.Thread(target=target, name=f"tunelab-worker-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def shutdown(self) -> None:
        """Stop children; their jobs stay resumable and are queued again at the next start."""
        self.stopping = True
        self.wake()
        for job_id in list(self.processes):
            self.stop_job(job_id, wait=True)

    def wake(self) -> None:
        with self.wakeup:
            self.wakeup.notify_all()

    def wait(self) -> None:
        with self.wakeup:
            self.wakeup.wait(POLL_SECONDS)

    def stop_job(self, job_id: str, wait: bool = False) -> None:
        process = self.processes.get(job_id)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10 if wait else 0.5)
        except subprocess.TimeoutExpired:
            if wait:
                process.kill()
            else:
                threading.Timer(10, lambda: process.poll() is None and process.kill()).start()

    def recover(self) -> None:
        """Jobs a crash left running: queue them to resume, or fail them once interrupted too often."""
        from tunelab.training.checkpoint import latest_intact

        (self.config.files_dir / ".incoming").mkdir(parents=True, exist_ok=True)
        for partial in (self.config.files_dir / ".incoming").iterdir():
            partial.unlink(missing_ok=True)
        for job in self.store.jobs_with_status("running"):
            job_dir = self.config.jobs_dir / job["id"]
            kill_stray_runner(job_dir)
            if job["attempts"] >= self.config.max_attempts:
                self.fail(
                    job, "interrupted", f"the service stopped while the job ran, {job['attempts']} times; giving up"
                )
                continue
            checkpoint = latest_intact(job_dir / "run") if (job_dir / "run").exists() else None
            where = (
                f"its checkpoint at step {int(checkpoint.name.split('-')[-1])}"
                if checkpoint
                else "the beginning (no checkpoint yet)"
            )
            self.store.update("jobs", job["id"], ("running",), status="queued", resume=1, estimated_finish=None)
            self.store.add_event(
                job["id"], f"The service restarted while this job ran; it resumes from {where}", "warn"
            )

    # validation ----------------------------------------------------------------------------
    def validate_loop(self) -> None:
        while not self.stopping:
            job = self.store.claim_next("validating_files", "validating_files")
            if job is None:
                self.wait()
                continue
            self.validate(job)

    def validate(self, job: dict) -> None:
        from tunelab.errors import TunelabError

        paths = {}
        for param in ("training_file", "validation_file"):
            row = self.store.get("files", job[param]) if job[param] else None
            if job[param] and row is None:
                return self.fail(
                    job, "invalid_" + param, f"file {job[param]} was deleted before the job started", param
                )
            paths[param] = self.config.files_dir / row["stored_name"] if row else None
        folder = self.config.jobs_dir / job["id"] / "data"
        try:
            manifest = datasets.prepare_job_data(
                paths["training_file"], paths["validation_file"], folder, job["seed"], job["base_name"]
            )
        except TunelabError as exc:
            return self.fail(job, "invalid_training_file", f"the training data cannot be used: {exc}", "training_file")
        except Exception as exc:  # noqa: BLE001 - any failure ends the job with a reason
            return self.fail(job, "server_error", f"preparing the data failed: {type(exc).__name__}: {exc}")
        method_type = job["method"]["type"]
        if manifest["schema"] not in JOB_METHODS[method_type].schemas:
            return self.fail(
                job, "invalid_training_file", schema_mismatch(manifest["schema"], method_type), "training_file"
            )
        method = resolved_method(job["method"], manifest["splits"])
        hyperparameters = {k: method[method_type]["hyperparameters"][k] for k in job["hyperparameters"]}
        datasets.keep_validation(folder, method[method_type]["hyperparameters"].get("eval_samples"))
        if self.store.update(
            "jobs", job["id"], ("validating_files",), status="queued", method=method, hyperparameters=hyperparameters
        ):
            splits = manifest["splits"]
            self.store.add_event(
                job["id"],
                f"Files validated ({splits['train']} train, {splits['validation']} validation "
                "examples), moving job to queued state",
            )
            self.wake()

    # training ------------------------------------------------------------------------------
    def run_loop(self) -> None:
        while not self.stopping:
            job = self.store.claim_next("queued", "running", started_at=now(), error=None, estimated_finish=None)
            if job is None:
                self.wait()
                continue
            self.store.update("jobs", job["id"], attempts=job["attempts"] + 1)
            try:
                self.train(job)
            except Exception as exc:  # noqa: BLE001 - never let one job stop the queue
                self.fail(job, "server_error", f"{type(exc).__name__}: {exc}")

    def spec(self, job: dict) -> dict:
        job_dir = self.config.jobs_dir / job["id"]
        method_type = job["method"]["type"]
        settings = job["method"][method_type]
        hp = settings["hyperparameters"]
        per_epoch = math.ceil(datasets.train_size(job_dir / "data") / hp["batch_size"])
        overrides = {
            "data.path": [str(job_dir / "data")],
            "model.name": job["base_name"],
            "out": str(job_dir / "run"),
            **run_overrides(method_type, hp, settings.get("grader")),
            "train.seed": job["seed"],
            "data.force": True,
            "tracking.enabled": any(i.get("type") == "mlflow" for i in job["integrations"] or []),
            "eval.enabled": False,
            **self.config.job_overrides,
        }
        max_steps = overrides.get("train.max_steps")
        total = min(per_epoch * hp["n_epochs"], max_steps or math.inf)
        every = checkpoint_interval(per_epoch, total)
        overrides |= {"train.save_steps": every, "train.save_total_limit": total // every + 1}
        return {
            "overrides": overrides,
            "resume": bool(job["resume"]),
            "total_steps": total,
            "steps_per_epoch": per_epoch,
        }

    def train(self, job: dict) -> None:
        job_dir = self.config.jobs_dir / job["id"]
        spec = self.spec(job)
        write_json(job_dir / "spec.json", spec)
        for stale in ("result.json", "error.json"):
            (job_dir / stale).unlink(missing_ok=True)
        self.store.add_event(
            job["id"], "Fine-tuning job started" + (" (resuming from the last checkpoint)" if job["resume"] else "")
        )
        with open(job_dir / "train.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tunelab.server.runner", str(job_dir), str(os.getpid())],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.processes[job["id"]] = process
        try:
            self.follow(job, process, spec["total_steps"])
        finally:
            self.processes.pop(job["id"], None)
        self.finish(self.store.get("jobs", job["id"]), process.returncode, job_dir)

    def follow(self, job: dict, process: subprocess.Popen, total_steps: int) -> None:
        """Turn new metrics.jsonl records into events and an estimated finish while the child runs."""
        run_dir = self.config.jobs_dir / job["id"] / "run"
        began, first_step, last_step = time.time(), None, job["last_step"]
        while True:
            done = process.poll() is not None
            for record in datasets.read_metrics(run_dir):
                step = record.get("step", 0)
                if step <= last_step:
                    continue
                first_step = step - 1 if first_step is None else first_step
                last_step = step
                self.metrics_event(job["id"], record, total_steps)
                per_step = (time.time() - began) / max(step - first_step, 1)
                self.store.update(
                    "jobs",
                    job["id"],
                    ("running",),
                    last_step=step,
                    estimated_finish=int(time.time() + per_step * max(total_steps - step, 0)),
                )
            if done:
                return
            time.sleep(POLL_SECONDS)

    def metrics_event(self, job_id: str, record: dict, total_steps: int) -> None:
        data = step_metrics(record) | {"step": record["step"], "total_steps": total_steps}
        if record["step"] == total_steps:  # the end: the loop's last evaluation covers the whole validation split
            data |= drop_none(
                {
                    "full_valid_loss": record.get("eval_loss"),
                    "full_valid_mean_token_accuracy": record.get("eval_mean_token_accuracy"),
                }
            )
        message = f"Step {record['step']}/{total_steps}: training loss={record.get('loss', float('nan')):.4f}"
        if record.get("eval_loss") is not None:
            message += f", validation loss={record['eval_loss']:.4f}"
        self.store.add_event(job_id, message, type="metrics", data=data)

    def finish(self, job: dict, returncode: int, job_dir: Path) -> None:
        if job["status"] != "running":  # cancelled or paused while it ran: the child was stopped on purpose
            if job["status"] == "paused":
                self.store.update("jobs", job["id"], resume=1)
            return
        if self.stopping:
            return  # queued again at the next start, from the last checkpoint
        if returncode == 0 and (job_dir / "result.json").exists():
            return self.succeed(job, read_json(job_dir / "result.json"), job_dir)
        error = (
            read_json(job_dir / "error.json")
            if (job_dir / "error.json").exists()
            else {
                "code": "training_failed",
                "message": f"the training process ended with code {returncode}; see {job_dir / 'train.log'}",
            }
        )
        self.fail(job, error["code"], error["message"])

    def succeed(self, job: dict, result: dict, job_dir: Path) -> None:
        name = fine_tuned_name(job)
        records = {r["step"]: r for r in datasets.read_metrics(job_dir / "run")}
        accuracy = result.get("accuracy") or {}
        result_id = self.add_result_file(job, datasets.results_csv(list(records.values()), accuracy))
        final_step = result["summary"]["steps"]
        for saved in result.get("checkpoints", []):
            metrics = step_metrics(records.get(saved["step"], {}))
            self.store.add_checkpoint(
                job["id"], saved["step"], metrics, f"{name}:ckpt-step-{saved['step']}", saved["adapter_dir"]
            )
        final = step_metrics(records.get(final_step, {})) | {
            "full_valid_loss": records.get(final_step, {}).get("eval_loss"),
            "train_mean_token_accuracy": accuracy.get("train"),
            "valid_mean_token_accuracy": accuracy.get("validation"),
            "full_valid_mean_token_accuracy": accuracy.get("validation"),
        }
        self.store.add_checkpoint(job["id"], final_step, drop_none(final), name, None)
        self.store.update(
            "jobs",
            job["id"],
            ("running",),
            status="succeeded",
            fine_tuned_model=name,
            finished_at=now(),
            trained_tokens=billed_tokens(job, job_dir, final_step, read_json(job_dir / "spec.json")),
            estimated_finish=None,
            result_files=[result_id],
        )
        self.store.add_event(job["id"], f"New fine-tuned model created: {name}")
        self.store.add_event(job["id"], "The job has successfully completed")
        self.webhooks.job_finished("succeeded", job["id"])

    def add_result_file(self, job: dict, text: str) -> str:
        file_id = new_id("file")
        stored_name = f"{file_id}.csv"
        from tunelab.runs import atomic_write_text

        atomic_write_text(self.config.files_dir / stored_name, text)
        self.store.insert(
            "files",
            {
                "id": file_id,
                "filename": "step_metrics.csv",
                "bytes": len(text.encode()),
                "created_at": now(),
                "purpose": "fine-tune-results",
                "status": "processed",
                "stored_name": stored_name,
                "project": job["project"],
            },
        )
        return file_id

    def fail(self, job: dict, code: str, message: str, param: str | None = None) -> None:
        if self.store.update(
            "jobs",
            job["id"],
            ("validating_files", "queued", "running"),
            status="failed",
            finished_at=now(),
            estimated_finish=None,
            error={"code": code, "message": message, "param": param},
        ):
            self.store.add_event(job["id"], f"Fine-tuning job failed: {message}", "error")
            self.webhooks.job_finished("failed", job["id"])


def schema_mismatch(schema: str, method_type: str) -> str:
    suited = next((m.type for m in JOB_METHODS.values() if schema in m.schemas), None)
    wanted = ", ".join(JOB_METHODS[method_type].schemas)
    advice = f"; create a {suited} job for it" if suited else ""
    return f"the training file holds {schema} records, but a {method_type} job trains on {wanted} records{advice}"


def resolved_method(method: dict, splits: dict) -> dict:
    """The job's method with every "auto" hyperparameter replaced by the value used."""
    job_method = JOB_METHODS[method["type"]]
    settings = method[method["type"]]
    values = job_method.resolved(settings["hyperparameters"], splits["train"], splits["validation"])
    return method | {method["type"]: settings | {"hyperparameters": values}}


def checkpoint_interval(steps_per_epoch: int, total_steps: int) -> int:
    """Save often enough to resume (about ten times a job) at steps that include every epoch's end."""
    target = max(1, total_steps // 10)
    return max(d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0 and d <= target)


def drop_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def step_metrics(record: dict) -> dict:
    """A metrics.jsonl record in the names of OpenAI's metric events (missing figures are left out, not null)."""
    return drop_none(
        {
            "step": float(record["step"]) if "step" in record else None,
            "train_loss": record.get("loss"),
            "train_mean_token_accuracy": record.get("mean_token_accuracy"),
            "valid_loss": record.get("eval_loss"),
            "valid_mean_token_accuracy": record.get("eval_mean_token_accuracy"),
            "train_mean_reward": record.get("mean_reward"),
        }
    )


def billed_tokens(job: dict, job_dir: Path, steps_done: int, spec: dict) -> int:
    """What OpenAI reports as trained_tokens: every token of the training file, times the epochs trained."""
    file_tokens = read_json(job_dir / "data" / "manifest.json")["token_stats"]["total"]
    epochs = job["method"][job["method"]["type"]]["hyperparameters"]["n_epochs"]
    planned = spec["steps_per_epoch"] * epochs
    return round(file_tokens * epochs * min(1.0, steps_done / planned))


def kill_stray_runner(job_dir: Path) -> None:
    """A child that outlived a killed service (where PDEATHSIG is unavailable) must not train twice."""
    try:
        pid = int((job_dir / "runner.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if "tunelab.server.runner" in cmdline and str(job_dir) in cmdline:
        os.kill(pid, signal.SIGKILL)
