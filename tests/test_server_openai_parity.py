"""The service in-process against OpenAI's spec: projects that cannot see each other on any route, checkpoint
permissions, DPO and reinforcement job creation, graders, metadata and integrations, files' fields, webhooks
signed so the official client verifies them. Response bodies are checked against ../shared/openai-openapi."""

import http.server
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI
from openai_spec import assert_conforms, spec_errors

from tunelab.server.app import create_app
from tunelab.server.config import ServeConfig
from tunelab.server.webhooks import Webhooks
from tunelab.server.worker import step_metrics

A, B = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
STRING_CHECK = {
    "type": "string_check",
    "name": "digit",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}


def lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


CHAT = lines(
    [
        {"messages": [{"role": "user", "content": f"Ticket {i}"}, {"role": "assistant", "content": f"OK {i}"}]}
        for i in range(12)
    ]
)
DPO = lines(
    [
        {
            "input": {"messages": [{"role": "user", "content": f"Ticket {i}: late parcel"}]},
            "preferred_output": [{"role": "assistant", "content": f"Sorry, parcel {i} ships today."}],
            "non_preferred_output": [{"role": "assistant", "content": "Not my problem."}],
        }
        for i in range(12)
    ]
)
RFT = lines([{"messages": [{"role": "user", "content": f"Say {i % 10}"}], "answer": str(i % 10)} for i in range(12)])


@pytest.fixture
def served(tmp_path):
    config = ServeConfig(home=tmp_path / "home", api_keys=["key-a:proj_a", "key-b:proj_b"], models={"tiny": "tiny"})
    app = create_app(config)
    return TestClient(app), app.state.service


def upload(client, content: bytes, headers=A, **form) -> dict:
    response = client.post(
        "/v1/files", headers=headers, files={"file": ("train.jsonl", content)}, data={"purpose": "fine-tune", **form}
    )
    assert response.status_code == 200, response.text
    return response.json()


def create(client, body: dict, headers=A):
    return client.post("/v1/fine_tuning/jobs", headers=headers, json={"model": "tiny", **body})


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert_conforms(response.json(), "ErrorResponse")
    return response.json()["error"]


def finished_job(service, project: str = "proj_a") -> dict:
    """A succeeded job with a final model and one epoch checkpoint, written as the worker would."""
    job = service.store.insert(
        "jobs",
        {
            "id": f"ftjob-{project}",
            "created_at": 1,
            "model": "tiny",
            "base_name": "tiny",
            "training_file": "file-x",
            "seed": 1,
            "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1.0},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
            "status": "succeeded",
            "fine_tuned_model": f"ft:tiny::ftjob-{project}",
            "project": project,
        },
    )
    metrics = step_metrics({"step": 3, "loss": 1.5})
    service.store.add_checkpoint(job["id"], 3, metrics, f"{job['fine_tuned_model']}:ckpt-step-3", "/nowhere")
    service.store.add_checkpoint(job["id"], 6, step_metrics({"step": 6, "loss": 1.0}), job["fine_tuned_model"], None)
    return job


def test_objects_conform_to_openai_schemas(served):
    client, service = served
    uploaded = upload(client, CHAT)
    assert_conforms(uploaded, "OpenAIFile")
    assert_conforms(client.get("/v1/files", headers=A).json(), "ListFilesResponse")
    job = create(client, {"training_file": uploaded["id"], "seed": 3, "metadata": {"team": "a"}}).json()
    assert_conforms(job, "FineTuningJob")
    assert_conforms(client.get("/v1/fine_tuning/jobs", headers=A).json(), "ListPaginatedFineTuningJobsResponse")
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=A).json()
    assert_conforms(events, "ListFineTuningJobEventsResponse")
    done = finished_job(service)
    checkpoints = client.get(f"/v1/fine_tuning/jobs/{done['id']}/checkpoints", headers=A).json()
    assert_conforms(checkpoints, "ListFineTuningJobCheckpointsResponse")
    assert [c["fine_tuned_model_checkpoint"] for c in checkpoints["data"]] == [
        done["fine_tuned_model"],
        done["fine_tuned_model"] + ":ckpt-step-3",
    ]
    models = client.get("/v1/models", headers=A).json()
    assert_conforms(models, "ListModelsResponse")
    assert {done["fine_tuned_model"], done["fine_tuned_model"] + ":ckpt-step-3"} <= {m["id"] for m in models["data"]}
    assert_conforms(client.get(f"/v1/models/{done['fine_tuned_model']}", headers=A).json(), "Model")
    paused = client.post(f"/v1/fine_tuning/jobs/{job['id']}/pause", headers=A).json()
    errors = spec_errors(paused, "FineTuningJob")
    assert paused["status"] == "paused" and len(errors) == 1 and errors[0].startswith('status: "paused" is not one of')
    # OpenAI's API reports paused jobs as `paused`; its published enum has not caught up (the README says so)
    for action in ("resume", "cancel"):
        assert_conforms(client.post(f"/v1/fine_tuning/jobs/{job['id']}/{action}", headers=A).json(), "FineTuningJob")
    assert_conforms(client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=A).json(), "FineTuningJob")
    assert_conforms(client.delete(f"/v1/files/{uploaded['id']}", headers=A).json(), "DeleteFileResponse")


def test_projects_see_nothing_of_each_other(served):
    client, service = served
    file_a = upload(client, CHAT)["id"]
    job_a = create(client, {"training_file": file_a}).json()["id"]
    model_a = finished_job(service)["fine_tuned_model"]
    for method, path in [
        ("get", f"/v1/files/{file_a}"),
        ("get", f"/v1/files/{file_a}/content"),
        ("delete", f"/v1/files/{file_a}"),
        ("get", f"/v1/fine_tuning/jobs/{job_a}"),
        ("get", f"/v1/fine_tuning/jobs/{job_a}/events"),
        ("get", f"/v1/fine_tuning/jobs/{job_a}/checkpoints"),
        ("post", f"/v1/fine_tuning/jobs/{job_a}/cancel"),
        ("post", f"/v1/fine_tuning/jobs/{job_a}/pause"),
        ("post", f"/v1/fine_tuning/jobs/{job_a}/resume"),
        ("get", f"/v1/models/{model_a}"),
        ("delete", f"/v1/models/{model_a}"),
        ("get", f"/v1/fine_tuning/checkpoints/{model_a}/permissions"),
    ]:
        error_of(getattr(client, method)(path, headers=B), 404)
    error_of(create(client, {"training_file": file_a}, headers=B), 404)
    chat = {"model": model_a, "messages": [{"role": "user", "content": "hi"}]}
    assert error_of(client.post("/v1/chat/completions", headers=B, json=chat), 404)["code"] == "model_not_found"
    assert client.get("/v1/files", headers=B).json()["data"] == []
    assert client.get("/v1/fine_tuning/jobs", headers=B).json()["data"] == []
    assert model_a not in {m["id"] for m in client.get("/v1/models", headers=B).json()["data"]}
    assert client.get(f"/v1/files/{file_a}", headers=A).status_code == 200  # still there for its owner


def test_checkpoint_permissions_share_one_checkpoint(served):
    client, service = served
    job = finished_job(service)
    checkpoint = job["fine_tuned_model"] + ":ckpt-step-3"
    granted = client.post(
        f"/v1/fine_tuning/checkpoints/{checkpoint}/permissions", headers=A, json={"project_ids": ["proj_b"]}
    ).json()
    assert_conforms(granted, "ListFineTuningCheckpointPermissionResponse")
    listed = client.get(f"/v1/fine_tuning/checkpoints/{checkpoint}/permissions", headers=A).json()
    assert_conforms(listed, "ListFineTuningCheckpointPermissionResponse")
    assert [p["project_id"] for p in listed["data"]] == ["proj_b"]
    seen_by_b = {m["id"] for m in client.get("/v1/models", headers=B).json()["data"]}
    assert checkpoint in seen_by_b and job["fine_tuned_model"] not in seen_by_b
    error_of(client.get(f"/v1/fine_tuning/checkpoints/{checkpoint}/permissions", headers=B), 404)
    permission = granted["data"][0]["id"]
    revoked = client.delete(f"/v1/fine_tuning/checkpoints/{checkpoint}/permissions/{permission}", headers=A).json()
    assert_conforms(revoked, "DeleteFineTuningCheckpointPermissionResponse")
    assert checkpoint not in {m["id"] for m in client.get("/v1/models", headers=B).json()["data"]}


def test_deleting_a_fine_tuned_model(served):
    client, service = served
    model = finished_job(service)["fine_tuned_model"]
    error_of(client.delete("/v1/models/tiny", headers=A), 403)
    deleted = client.delete(f"/v1/models/{model}", headers=A).json()
    assert_conforms(deleted, "DeleteModelResponse")
    assert model not in {m["id"] for m in client.get("/v1/models", headers=A).json()["data"]}
    error_of(client.get(f"/v1/models/{model}", headers=A), 404)


def test_dpo_and_reinforcement_jobs_keep_auto_until_validated(served):
    client, _ = served
    dpo = create(
        client,
        {
            "training_file": upload(client, DPO)["id"],
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
        },
    ).json()
    assert_conforms(dpo, "FineTuningJob")
    assert dpo["method"]["dpo"]["hyperparameters"] == {
        "n_epochs": "auto",
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
        "beta": 0.2,
    }
    method = {"type": "reinforcement", "reinforcement": {"grader": STRING_CHECK, "hyperparameters": {"n_epochs": 1}}}
    rft = create(client, {"training_file": upload(client, RFT)["id"], "method": method}).json()
    assert_conforms(rft, "FineTuningJob")
    assert rft["method"]["reinforcement"]["grader"] == STRING_CHECK
    assert rft["method"]["reinforcement"]["hyperparameters"]["reasoning_effort"] == "default"


@pytest.mark.parametrize(
    ("method", "param"),
    [
        ({"type": "dpo", "dpo": {"hyperparameters": {"beta": 3}}}, "hyperparameters.beta"),
        ({"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 0}}}, "hyperparameters.n_epochs"),
        ({"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": True}}}, "hyperparameters.n_epochs"),
        ({"type": "dpo", "dpo": {"hyperparameters": {"eval_interval": 2}}}, "hyperparameters.eval_interval"),
        ({"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 300}}}, "hyperparameters.batch_size"),
        ({"type": "reinforcement"}, "method.reinforcement"),
        (
            {"type": "reinforcement", "reinforcement": {"grader": {**STRING_CHECK, "operation": "same"}}},
            "method.reinforcement.grader.operation",
        ),
        (
            {
                "type": "reinforcement",
                "reinforcement": {"grader": STRING_CHECK, "hyperparameters": {"reasoning_effort": "max"}},
            },
            "hyperparameters.reasoning_effort",
        ),
    ],
)
def test_bad_method_settings_are_refused_naming_the_parameter(served, method, param):
    client, _ = served
    file_id = upload(client, CHAT)["id"]
    assert error_of(create(client, {"training_file": file_id, "method": method}), 400)["param"] == param


def test_metadata_limits_filter_and_integrations(served):
    client, _ = served
    file_id = upload(client, CHAT)["id"]
    ops = create(client, {"training_file": file_id, "metadata": {"team": "ops", "tier": "1"}}).json()["id"]
    create(client, {"training_file": file_id, "metadata": {"team": "ml"}})
    bare = create(client, {"training_file": file_id}).json()["id"]
    listed = client.get("/v1/fine_tuning/jobs", headers=A, params={"metadata[team]": "ops"}).json()
    assert [j["id"] for j in listed["data"]] == [ops]
    assert [j["id"] for j in client.get("/v1/fine_tuning/jobs?metadata=null", headers=A).json()["data"]] == [bare]
    too_many = {f"k{i}": "v" for i in range(17)}
    assert error_of(create(client, {"training_file": file_id, "metadata": too_many}), 400)["param"] == "metadata"
    error_of(create(client, {"training_file": file_id, "metadata": {"k": "v" * 513}}), 400)
    wandb = [{"type": "wandb", "wandb": {"project": "p"}}]
    refused = error_of(create(client, {"training_file": file_id, "integrations": wandb}), 400)
    assert refused["param"] == "integrations[0].type" and "mlflow" in refused["message"]
    tracked = create(client, {"training_file": file_id, "integrations": [{"type": "mlflow"}]}).json()
    assert tracked["integrations"] == [{"type": "mlflow"}]


def test_file_expiry(served):
    client, service = served
    kept = upload(client, CHAT, **{"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"})
    assert kept["expires_at"] == kept["created_at"] + 3600
    assert_conforms(kept, "OpenAIFile")
    response = client.post(
        "/v1/files",
        headers=A,
        files={"file": ("t.jsonl", CHAT)},
        data={"purpose": "fine-tune", "expires_after[anchor]": "created_at", "expires_after[seconds]": "5"},
    )
    assert error_of(response, 400)["param"] == "expires_after.seconds"
    service.store.update("files", kept["id"], expires_at=int(time.time()) - 1)
    error_of(client.get(f"/v1/files/{kept['id']}", headers=A), 404)
    assert not list(service.config.files_dir.glob(kept["id"] + "*"))


def test_uploads_of_dpo_and_reinforcement_files_are_accepted(served):
    client, _ = served
    assert upload(client, DPO)["status"] == "processed" and upload(client, RFT)["status"] == "processed"


@pytest.mark.parametrize(
    ("grader", "sample", "item", "reward"),
    [
        (STRING_CHECK, "4", {"answer": "4"}, 1.0),
        (STRING_CHECK, "5", {"answer": "4"}, 0.0),
        (
            {
                "type": "text_similarity",
                "name": "close",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "evaluation_metric": "fuzzy_match",
            },
            "shipped",
            {"answer": "shipped"},
            1.0,
        ),
        (
            {
                "type": "python",
                "name": "json",
                "source": "def grade(sample, item):\n    return 1.0 if sample['output_text'].startswith('{') else 0.0",
            },
            '{"a": 1}',
            {},
            1.0,
        ),
        (
            {
                "type": "multi",
                "name": "both",
                "graders": {"exact": STRING_CHECK, "also": {**STRING_CHECK, "name": "also"}},
                "calculate_output": "0.5 * exact + 0.5 * also",
            },
            "4",
            {"answer": "4"},
            1.0,
        ),
    ],
)
def test_graders_validate_and_run(served, grader, sample, item, reward):
    client, _ = served
    validated = client.post("/v1/fine_tuning/alpha/graders/validate", headers=A, json={"grader": grader}).json()
    assert validated == {"grader": grader}
    if grader["type"] != "multi":  # the spec types multi's `graders` as one grader; its docs and example use several
        assert_conforms(validated, "ValidateGraderResponse")
    body = {"grader": grader, "model_sample": sample, "item": item}
    ran = client.post("/v1/fine_tuning/alpha/graders/run", headers=A, json=body).json()
    assert_conforms(ran, "RunGraderResponse")
    assert ran["reward"] == pytest.approx(reward)


def test_a_bad_grader_is_refused_naming_its_key(served):
    client, _ = served
    bad = {**STRING_CHECK, "operation": "same"}
    error = error_of(client.post("/v1/fine_tuning/alpha/graders/validate", headers=A, json={"grader": bad}), 400)
    assert error["param"] == "grader.operation"


class Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []
    failures_left = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if Receiver.failures_left > 0:
            Receiver.failures_left -= 1
            self.send_response(503)
        else:
            Receiver.received.append((dict(self.headers), body.decode()))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_retried_and_verify_with_the_official_client(monkeypatch):
    import tunelab.server.webhooks as webhooks_module

    monkeypatch.setattr(webhooks_module, "FIRST_WAIT_SECONDS", 0.05)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received, Receiver.failures_left = [], 2
    hooks = Webhooks(f"http://127.0.0.1:{server.server_address[1]}/hook", SECRET)
    hooks.job_finished("succeeded", "ftjob-1")
    hooks.job_finished("cancelled", "ftjob-2")
    hooks.job_finished("running", "ftjob-3")  # not an event OpenAI sends
    deadline = time.time() + 10
    while len(Receiver.received) < 2 and time.time() < deadline:
        time.sleep(0.05)
    server.shutdown()
    client = OpenAI(api_key="unused", webhook_secret=SECRET)
    events = [client.webhooks.unwrap(body, headers) for headers, body in Receiver.received]
    assert [(e.type, e.data.id) for e in events] == [
        ("fine_tuning.job.succeeded", "ftjob-1"),
        ("fine_tuning.job.cancelled", "ftjob-2"),
    ]
    tampered = Receiver.received[0][1].replace("ftjob-1", "ftjob-9")
    with pytest.raises(Exception, match="signature"):
        client.webhooks.unwrap(tampered, Receiver.received[0][0])


@pytest.mark.slow
def test_model_graders_run_with_a_local_judge(served):
    """score_model and label_model judge with a model tunelab loads (here the bundled SmolLM2)."""
    client, _ = served
    messages = [{"role": "user", "content": "Is '{{sample.output_text}}' a polite reply? Answer yes or no."}]
    graders = [
        {"type": "score_model", "name": "polite", "model": "smollm2-135m-instruct", "input": messages, "range": [0, 1]},
        {
            "type": "label_model",
            "name": "label",
            "model": "smollm2-135m-instruct",
            "input": messages,
            "labels": ["yes", "no"],
            "passing_labels": ["yes"],
        },
    ]
    for grader in graders:
        body = {"grader": grader, "model_sample": "Thank you so much for waiting!", "item": {}}
        ran = client.post("/v1/fine_tuning/alpha/graders/run", headers=A, json=body).json()
        assert_conforms(ran, "RunGraderResponse")
        assert 0.0 <= ran["reward"] <= 1.0 and ran["metadata"]["type"] == grader["type"]


def test_auto_hyperparameters_resolve_from_the_split_sizes():
    from tunelab.server.job_methods import REINFORCEMENT, auto_epochs

    assert [auto_epochs(n) for n in (10, 30, 100, 10_000, 30_000)] == [10, 4, 3, 2, 1]  # OpenAI's rule
    given = REINFORCEMENT.given({"batch_size": 2})
    resolved = REINFORCEMENT.resolved(given, train_size=24, validation_size=3)
    assert resolved == {
        "n_epochs": 5,
        "batch_size": 2,
        "learning_rate_multiplier": 1.0,
        "compute_multiplier": 1.0,
        "eval_interval": 12,  # once an epoch of 24 prompts at 2 a step
        "eval_samples": 3,
        "reasoning_effort": "default",
    }
