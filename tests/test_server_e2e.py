"""`tunelab serve` as a real process driven by the official openai client, on a tiny Llama (slow: minutes on a CPU)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from tiny_models import tiny_llama

pytestmark = pytest.mark.slow


KEY = "e2e-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    def __init__(self, home: Path, *args: str):
        self.home, self.args, self.port, self.process = home, args, None, None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 240) -> "ServeProcess":
        self.port = free_port()
        tunelab = Path(sys.executable).with_name("tunelab")
        self.log = open(self.home.parent / f"serve-{self.port}.log", "w")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNELAB_QUIET": "1"}
        self.process = subprocess.Popen(
            [str(tunelab), "serve", "--port", str(self.port), "--api-key", KEY, "--home", str(self.home), *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tunelab serve exited with {self.process.returncode}: {self.log_text()[-2000:]}")
            try:
                request = urllib.request.Request(self.base_url + "/models", headers={"Authorization": f"Bearer {KEY}"})
                urllib.request.urlopen(request, timeout=2)
                return self
            except OSError:
                time.sleep(1)
        raise RuntimeError("tunelab serve did not answer in time: " + self.log_text()[-2000:])

    def client(self):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=KEY, max_retries=0, timeout=600)

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def runner_alive(job_dir: Path) -> bool:
    pid_file = job_dir / "runner.pid"
    if not pid_file.exists():
        return False
    status = Path(f"/proc/{int(pid_file.read_text())}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def wait_for_job(client, job_id: str, timeout: float = 900, until=("succeeded", "failed", "cancelled")):
    deadline = time.time() + timeout
    job = client.fine_tuning.jobs.retrieve(job_id)
    while job.status not in until and time.time() < deadline:
        time.sleep(2)
        job = client.fine_tuning.jobs.retrieve(job_id)
    return job


def write_chat_file(path, n: int = 24):
    path.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"Ticket {i}: my parcel {i} is late."},
                        {"role": "assistant", "content": f"TRIAGE shipping/late #{i}"},
                    ]
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    served = ServeProcess(root / "home", "--model", f"tiny={tiny_llama()}", "--job-set", "train.max_steps=2")
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def finished_job(server, tmp_path_factory):
    client = server.client()
    uploaded = client.files.create(
        file=write_chat_file(tmp_path_factory.mktemp("data") / "train.jsonl").open("rb"), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model="tiny",
        training_file=uploaded.id,
        suffix="e2e",
        hyperparameters={"n_epochs": 1, "batch_size": 12, "learning_rate_multiplier": 2},
    )
    return wait_for_job(client, job.id)


def test_fine_tune_then_chat(server, finished_job):
    client, job = server.client(), finished_job
    assert job.status == "succeeded", (job, server.log_text()[-2000:])
    assert job.fine_tuned_model == f"ft:tiny:e2e:{job.id}" and job.trained_tokens > 0 and job.finished_at
    assert job.fine_tuned_model in [m.id for m in client.models.list().data]
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
    assert messages[0] == "The job has successfully completed" and any(m.startswith("Step 2/") for m in messages)
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    final = checkpoints[0]
    assert final.fine_tuned_model_checkpoint == job.fine_tuned_model and final.step_number == 2
    assert (
        final.metrics.train_loss > 0
        and final.metrics.valid_loss > 0
        and 0 <= final.metrics.valid_mean_token_accuracy <= 1
    )
    result = client.files.content(job.result_files[0]).text.splitlines()
    assert result[0].startswith("step,train_loss") and len(result) == 3
    reply = client.chat.completions.create(
        model=job.fine_tuned_model,
        max_tokens=6,
        temperature=0,
        messages=[{"role": "user", "content": "Ticket 99: my parcel 99 is late."}],
    )
    assert reply.object == "chat.completion" and reply.usage.completion_tokens <= 6 and reply.usage.prompt_tokens > 5
    sampled = client.chat.completions.create(
        model=job.fine_tuned_model,
        max_tokens=6,
        seed=1,
        n=2,
        messages=[{"role": "user", "content": "Ticket 99: my parcel 99 is late."}],
    )
    assert len(sampled.choices) == 2 and all(c.message.content for c in sampled.choices)
    stream = client.chat.completions.create(
        model=job.fine_tuned_model,
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Ticket 99: my parcel 99 is late."}],
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == reply.choices[0].message.content and chunks[-1].usage.completion_tokens >= 1
    text = client.completions.create(model="tiny", prompt="Ticket 5:", max_tokens=4, temperature=0)
    assert text.object == "text_completion" and text.choices[0].finish_reason in ("length", "stop")


def test_cancel_a_second_job(server, finished_job):
    client = server.client()
    job = client.fine_tuning.jobs.create(model="tiny", training_file=finished_job.training_file)
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    time.sleep(3)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)


def test_pause_and_resume(server, finished_job):
    client = server.client()
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=finished_job.training_file, hyperparameters={"batch_size": 4}
    )
    assert wait_for_job(client, job.id, 300, until=("running", "succeeded", "failed")).status == "running"
    paused = client.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    time.sleep(3)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "paused" and not runner_alive(
        server.home / "jobs" / job.id
    )
    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    ended = wait_for_job(client, job.id)
    assert ended.status == "succeeded", ended
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
    assert any("resuming from the last checkpoint" in m for m in messages), messages


def test_bad_input_errors(server):
    client = server.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="ft:nope", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model="tiny", training_file="file-missing")
    from openai import OpenAI

    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()


def test_concurrent_chats_and_jobs_in_order(server, finished_job):
    client = server.client()
    targets = ["tiny", finished_job.fine_tuned_model]

    def ask(i: int) -> str:
        reply = client.chat.completions.create(
            model=targets[i % 2], max_tokens=5, temperature=0, messages=[{"role": "user", "content": f"Ticket {i % 4}"}]
        )
        return reply.choices[0].message.content

    expected = {i: ask(i) for i in range(4)}  # one answer per (model, prompt) pair, asked alone
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert answers == [expected[i % 4] for i in range(20)]

    def submit(i: int):
        return client.fine_tuning.jobs.create(
            model="tiny",
            training_file=finished_job.training_file,
            suffix=f"load{i}",
            hyperparameters={"n_epochs": 1, "batch_size": 24},
        )

    with ThreadPoolExecutor(max_workers=5) as pool:
        submitted = list(pool.map(submit, range(5)))
    jobs = sorted((wait_for_job(client, j.id) for j in submitted), key=lambda j: j.created_at)
    assert [j.status for j in jobs] == ["succeeded"] * 5
    listed = [j.id for j in client.fine_tuning.jobs.list(limit=100).data]
    order = sorted(jobs, key=lambda j: listed.index(j.id), reverse=True)  # the queue's order: oldest first
    for earlier, later in zip(order, order[1:]):
        assert later.finished_at >= earlier.finished_at


def test_schemathesis_finds_no_server_error(server):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(
        server.base_url.removesuffix("/v1") + "/openapi.json", headers={"Authorization": "Bearer e2e-key"}
    )
    failures, calls = [], []
    for operation in schema.get_all_operations():
        operation = operation.ok()
        if operation.path in ("/v1/chat/completions", "/v1/completions"):
            continue  # bodies with a real model id would only spend minutes generating; their errors are covered above

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            calls.append(case.path)
            response = case.call(
                base_url=server.base_url.removesuffix("/v1"), headers={"Authorization": "Bearer e2e-key"}
            )
            try:
                case.validate_response(response, checks=(not_a_server_error,))
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:400])  # noqa: B023 (called at once)

        check()
    assert not failures, failures
    assert len(set(calls)) >= 10, sorted(set(calls))


def test_sigkill_while_a_job_runs_then_restart(tmp_path):
    served = ServeProcess(
        tmp_path / "home", "--model", f"tiny={tiny_llama()}", "--job-set", "train.max_steps=5"
    ).start()
    try:
        client = served.client()
        uploaded = client.files.create(file=write_chat_file(tmp_path / "train.jsonl").open("rb"), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="tiny", training_file=uploaded.id, hyperparameters={"batch_size": 4})
        deadline = time.time() + 600
        while time.time() < deadline and not any(
            e.message.startswith("Step 2/") for e in client.fine_tuning.jobs.list_events(job.id).data
        ):
            time.sleep(1)
        assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
        assert runner_alive(served.home / "jobs" / job.id)
        served.kill()
        time.sleep(2)
        assert not runner_alive(served.home / "jobs" / job.id)  # the training child died with the service
        served.start()
        client = served.client()
        ended = wait_for_job(client, job.id)
        assert ended.status == "succeeded" or (ended.status == "failed" and ended.error.message), ended
        messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
        assert any("restarted while this job ran; it resumes from its checkpoint at step" in m for m in messages), (
            messages
        )
        assert uploaded.id in [f.id for f in client.files.list().data]
        if ended.status == "succeeded":
            assert client.chat.completions.create(
                model=ended.fine_tuned_model, max_tokens=3, messages=[{"role": "user", "content": "hi"}]
            ).choices
    finally:
        served.stop()
