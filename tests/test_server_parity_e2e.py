"""OpenAI parity through a real `tunelab serve` and the official client, on a tiny Llama (slow: minutes on a CPU):
DPO and reinforcement jobs, epoch checkpoints that serve chat and can be shared with another project, the same
seed giving the same job, result files, real step totals, and signed webhooks verified by `client.webhooks.unwrap`."""

import http.server
import json
import os
import threading
import time

import openai
import pytest
from openai import OpenAI
from openai_spec import assert_conforms
from test_server_e2e import ServeProcess, wait_for_job
from tiny_models import tiny_llama

pytestmark = pytest.mark.slow
SECRET = "whsec_" + "cGFyaXR5LXRlc3Qtc2VjcmV0LXBhcml0eS10ZXN0"
GRADER = {
    "type": "string_check",
    "name": "digit",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
received: list[tuple[dict, str]] = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        received.append((dict(self.headers), self.rfile.read(int(self.headers["content-length"])).decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    root = tmp_path_factory.mktemp("parity")
    served = ServeProcess(
        root / "home",
        "--model",
        f"tiny={tiny_llama()}",
        "--api-key",
        "key-b:proj_b",
        "--webhook",
        f"http://127.0.0.1:{hook.server_address[1]}/hook",
        "--webhook-secret",
        SECRET,
    )
    served.start()
    yield served, root
    served.stop()
    hook.shutdown()


def upload(client, root, name: str, records: list[dict]):
    path = root / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return client.files.create(file=path.open("rb"), purpose="fine-tune")


def chat_records(n: int) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": f"Ticket {i}"}, {"role": "assistant", "content": f"Late #{i}"}]}
        for i in range(n)
    ]


def test_dpo_job(service):
    served, root = service
    client = served.client()
    pairs = [
        {
            "input": {"messages": [{"role": "user", "content": f"Ticket {i}: late parcel"}]},
            "preferred_output": [{"role": "assistant", "content": f"Sorry, parcel {i} ships today."}],
            "non_preferred_output": [{"role": "assistant", "content": "Not my problem."}],
        }
        for i in range(20)
    ]
    method = {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 1, "batch_size": 6}}}
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=upload(client, root, "dpo.jsonl", pairs).id, method=method
    )
    job = wait_for_job(client, job.id)
    assert job.status == "succeeded", (job, served.log_text()[-2000:])
    assert_conforms(job.model_dump(mode="json", exclude_unset=True), "FineTuningJob")
    assert job.method.dpo.hyperparameters.beta == 0.2 and job.method.dpo.hyperparameters.learning_rate_multiplier == 1
    steps = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.type == "metrics"]
    assert steps and all(e.message.startswith(f"Step {e.data['step']}/3:") for e in steps)  # 18 pairs / 6 per step
    assert job.trained_tokens > 0


def test_reinforcement_job(service):
    served, root = service
    client = served.client()
    prompts = [{"messages": [{"role": "user", "content": f"Say {i % 10}"}], "answer": str(i % 10)} for i in range(20)]
    method = {
        "type": "reinforcement",
        "reinforcement": {"grader": GRADER, "hyperparameters": {"n_epochs": 1, "batch_size": 4, "eval_samples": 2}},
    }
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=upload(client, root, "rft.jsonl", prompts).id, method=method
    )
    job = wait_for_job(client, job.id)
    assert job.status == "succeeded", (job, served.log_text()[-2000:])
    resolved = job.method.reinforcement.hyperparameters
    assert resolved.compute_multiplier == 1 and resolved.eval_samples == 2 and resolved.eval_interval >= 1
    metrics = [e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.type == "metrics"]
    assert metrics and all("train_mean_reward" in m for m in metrics)


def test_a_supervised_job_refuses_a_preference_file_at_validation(service):
    served, root = service
    client = served.client()
    prompts = [{"messages": [{"role": "user", "content": f"Say {i}"}], "answer": str(i)} for i in range(10)]
    job = client.fine_tuning.jobs.create(model="tiny", training_file=upload(client, root, "rl.jsonl", prompts).id)
    job = wait_for_job(client, job.id)
    assert job.status == "failed" and job.error.param == "training_file"
    assert "reinforcement records" in job.error.message and "create a reinforcement job" in job.error.message


def test_epoch_checkpoints_serve_and_share(service):
    served, root = service
    client, other = served.client(), OpenAI(base_url=served.base_url, api_key="key-b", max_retries=0)
    training = upload(client, root, "chat.jsonl", chat_records(9))  # 9 train examples: 3 steps of 3 per epoch
    validation = upload(client, root, "valid.jsonl", chat_records(4))
    hyperparameters = {"n_epochs": 3, "batch_size": 3}
    jobs = [
        client.fine_tuning.jobs.create(
            model="tiny",
            training_file=training.id,
            validation_file=validation.id,
            seed=11,
            suffix=f"s{i}",
            hyperparameters=hyperparameters,
        )
        for i in range(2)
    ]
    first, second = (wait_for_job(client, j.id) for j in jobs)
    assert first.status == second.status == "succeeded", served.log_text()[-2000:]
    checkpoints = client.fine_tuning.jobs.checkpoints.list(first.id).data
    assert [c.step_number for c in checkpoints] == [9, 6, 3]
    events = [e.data for e in client.fine_tuning.jobs.list_events(first.id, limit=100).data if e.type == "metrics"]
    assert all(0 <= e["train_mean_token_accuracy"] <= 1 for e in events)
    evaluated = [e for e in events if "valid_loss" in e]
    assert evaluated and all(0 <= e["valid_mean_token_accuracy"] <= 1 for e in evaluated)
    assert "full_valid_loss" in events[0] and events[0]["step"] == 9  # newest first: the last step
    assert checkpoints[0].metrics.full_valid_mean_token_accuracy is not None
    for checkpoint in checkpoints:
        assert_conforms(checkpoint.model_dump(mode="json", exclude_unset=True), "FineTuningJobCheckpoint")
    earlier = checkpoints[1].fine_tuned_model_checkpoint
    assert earlier == f"{first.fine_tuned_model}:ckpt-step-6"
    ask = {"max_tokens": 4, "temperature": 0, "messages": [{"role": "user", "content": "Ticket 3"}]}
    assert client.chat.completions.create(model=earlier, **ask).choices[0].message.content is not None
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.create(model=earlier, **ask)
    client.fine_tuning.checkpoints.permissions.create(earlier, project_ids=["proj_b"])
    assert other.chat.completions.create(model=earlier, **ask).choices[0].message.content is not None
    losses = [client.files.content(j.result_files[0]).text.splitlines() for j in (first, second)]
    assert losses[0][0].startswith("step,train_loss,train_mean_token_accuracy,valid_loss")
    assert [row.split(",")[1] for row in losses[0]] == [row.split(",")[1] for row in losses[1]]  # same seed, same job


def test_webhooks_verify_with_the_official_client(service):
    served, root = service
    client = served.client()
    job = client.fine_tuning.jobs.create(
        model="tiny", training_file=upload(client, root, "c.jsonl", chat_records(6)).id
    )
    client.fine_tuning.jobs.cancel(job.id)
    verifier = OpenAI(api_key="unused", webhook_secret=SECRET)
    deadline = time.time() + 30
    while job.id not in "".join(body for _, body in received) and time.time() < deadline:
        time.sleep(0.2)  # delivery runs on the service's own thread
    events = [verifier.webhooks.unwrap(body, headers) for headers, body in received]
    kinds = {(e.type, e.data.id) for e in events}
    assert ("fine_tuning.job.cancelled", job.id) in kinds
    assert any(kind == "fine_tuning.job.succeeded" for kind, _ in kinds)
    assert any(kind == "fine_tuning.job.failed" for kind, _ in kinds)


FIRST_REQUESTS = r"""
import json, sys, threading
from pathlib import Path
from fastapi.testclient import TestClient
from tunelab.server.app import create_app
from tunelab.server.config import ServeConfig

home, model = Path(sys.argv[1]), sys.argv[2]
app = create_app(ServeConfig(home=home, models={"tiny": model}))
chat = {"model": "tiny", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
line = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
answers, start = {}, threading.Barrier(2)
with TestClient(app) as client:
    file_id = client.post("/v1/files", files={"file": ("t.jsonl", (line + "\n") * 8)},
                          data={"purpose": "fine-tune"}).json()["id"]

    def first_chat():
        start.wait()
        answers["chat"] = client.post("/v1/chat/completions", json=chat).status_code

    def first_job():
        start.wait()
        answers["job"] = client.post("/v1/fine_tuning/jobs", json={"model": "tiny", "training_file": file_id}).status_code

    threads = [threading.Thread(target=first_chat), threading.Thread(target=first_job)]
    [t.start() for t in threads]
    [t.join() for t in threads]
print("ANSWERS " + json.dumps(answers))
"""


def test_first_chat_and_first_job_at_once_on_fresh_services(tmp_path):
    """The heavy ML imports happen before serving, so the first chat never meets a half-imported transformers."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_llama()

    def fresh_service(i: int) -> str:
        result = subprocess.run(
            [sys.executable, "-c", FIRST_REQUESTS, str(tmp_path / f"home{i}"), str(model)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TUNELAB_QUIET": "1"},
        )
        return next((line for line in result.stdout.splitlines() if line.startswith("ANSWERS ")), result.stderr[-800:])

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(fresh_service, range(20)))
    wrong = [o for o in outcomes if not o.startswith("ANSWERS ") or json.loads(o[8:]) != {"chat": 200, "job": 200}]
    assert not wrong, wrong[:3]
