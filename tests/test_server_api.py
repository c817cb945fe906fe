"""The service in-process (no worker, no model): authentication, OpenAI error shapes, uploads, job bookkeeping, restart recovery."""

import json

import pytest
from fastapi.testclient import TestClient

from tunelab.server.app import create_app
from tunelab.server.config import ServeConfig
from tunelab.server.streaming import _until_stop
from tunelab.server.worker import Worker

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def chat_lines(n: int = 24) -> bytes:
    return "".join(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Ticket {i}: parcel {i} is late."},
                    {"role": "assistant", "content": f"TRIAGE shipping/late #{i}"},
                ]
            }
        )
        + "\n"
        for i in range(n)
    ).encode()


@pytest.fixture
def served(tmp_path):
    """A client on an app whose worker is not started (jobs stay where the API puts them)."""
    config = ServeConfig(
        home=tmp_path / "home", api_keys=[KEY], max_upload_bytes=20_000, models={"tiny": str(tmp_path)}
    )
    app = create_app(config)
    return TestClient(app), app.state.service


def upload(client, content: bytes, name: str = "train.jsonl"):
    return client.post("/v1/files", headers=AUTH, files={"file": (name, content)}, data={"purpose": "fine-tune"})


def assert_openai_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code:
        assert error["code"] == code
    return error


def test_every_request_needs_the_key(served):
    client, _ = served
    for path in ("/v1/models", "/v1/files", "/v1/fine_tuning/jobs", "/openapi.json", "/no/such/path"):
        assert_openai_error(client.get(path), 401, "invalid_api_key")
        assert_openai_error(client.get(path, headers={"Authorization": "Bearer wrong"}), 401)
    models = client.get("/v1/models", headers=AUTH).json()
    assert models["object"] == "list" and {"smollm2-135m-instruct", "tiny"} <= {m["id"] for m in models["data"]}


def test_malformed_upload_is_refused_with_the_reason(served):
    client, service = served
    error = assert_openai_error(
        upload(client, b'{"messages": [{"role": "user"\nnot json at all\n'), 400, "invalid_file_format"
    )
    assert "invalid_json" in error["message"] and error["param"] == "file"
    assert_openai_error(upload(client, b'{"messages": []}\n'), 400, "invalid_file_format")
    assert_openai_error(upload(client, chat_lines(500)), 413, "file_too_large")
    error = assert_openai_error(
        upload(client, b"text\tlabel\nhello\tgreeting\n", "labels.tsv"), 400, "invalid_file_format"
    )
    assert "classification records cannot fine-tune a chat model" in error["message"]
    error = assert_openai_error(upload(client, b"PAR1 not parquet", "x.parquet"), 400, "invalid_file_format")
    assert str(service.config.home) not in error["message"] and "x.parquet" in error["message"]
    assert_openai_error(
        client.post("/v1/files", headers=AUTH, files={"file": ("a.jsonl", chat_lines(2))}, data={"purpose": "batch"}),
        400,
    )
    assert client.get("/v1/files", headers=AUTH).json()["data"] == []
    assert not [p for p in service.config.files_dir.rglob("*") if p.is_file()]


def test_stored_names_are_generated(served):
    client, service = served
    response = upload(client, chat_lines(3), name="../../etc/evil.jsonl")
    assert response.status_code == 200, response.text
    created = response.json()
    assert (
        created["object"] == "file" and created["filename"] == "evil.jsonl" and created["bytes"] == len(chat_lines(3))
    )
    stored = [p for p in service.config.files_dir.iterdir() if p.is_file()]
    assert [p.name for p in stored] == [created["id"] + ".jsonl"]
    assert client.get(f"/v1/files/{created['id']}/content", headers=AUTH).content == chat_lines(3)
    assert client.delete(f"/v1/files/{created['id']}", headers=AUTH).json() == {
        "id": created["id"],
        "object": "file",
        "deleted": True,
    }
    assert_openai_error(client.get(f"/v1/files/{created['id']}", headers=AUTH), 404, "file_not_found")


def test_jobs_unknown_ids_pagination_and_cancel(served):
    client, service = served
    file_id = upload(client, chat_lines(4)).json()["id"]
    assert_openai_error(
        client.post("/v1/fine_tuning/jobs", headers=AUTH, json={"model": "nope", "training_file": file_id}),
        404,
        "model_not_found",
    )
    assert_openai_error(
        client.post("/v1/fine_tuning/jobs", headers=AUTH, json={"model": "tiny", "training_file": "file-x"}),
        404,
        "file_not_found",
    )
    assert_openai_error(client.get("/v1/fine_tuning/jobs/ftjob-x", headers=AUTH), 404)
    assert_openai_error(client.post("/v1/fine_tuning/jobs", headers=AUTH, json={"model": "tiny"}), 400)
    ids = []
    for epochs in (1, "auto", 2):
        body = {
            "model": "tiny",
            "training_file": file_id,
            "suffix": "s",
            "hyperparameters": {"n_epochs": epochs},
            "metadata": {"team": "ops"},
        }
        job = client.post("/v1/fine_tuning/jobs", headers=AUTH, json=body).json()
        assert (
            job["object"] == "fine_tuning.job"
            and job["status"] == "validating_files"
            and job["metadata"] == {"team": "ops"}
        )
        ids.append(job["id"])
    assert job["hyperparameters"] == {"n_epochs": 2, "batch_size": "auto", "learning_rate_multiplier": "auto"}
    first = client.get("/v1/fine_tuning/jobs?limit=2", headers=AUTH).json()
    assert [j["id"] for j in first["data"]] == ids[:0:-1] and first["has_more"]
    rest = client.get(f"/v1/fine_tuning/jobs?limit=2&after={ids[1]}", headers=AUTH).json()
    assert [j["id"] for j in rest["data"]] == ids[:1] and not rest["has_more"]
    cancelled = client.post(f"/v1/fine_tuning/jobs/{ids[0]}/cancel", headers=AUTH).json()
    assert cancelled["status"] == "cancelled"
    assert_openai_error(client.post(f"/v1/fine_tuning/jobs/{ids[0]}/cancel", headers=AUTH), 409)
    assert client.post(f"/v1/fine_tuning/jobs/{ids[1]}/pause", headers=AUTH).json()["status"] == "paused"
    assert client.post(f"/v1/fine_tuning/jobs/{ids[1]}/resume", headers=AUTH).json()["status"] == "validating_files"
    events = client.get(f"/v1/fine_tuning/jobs/{ids[0]}/events", headers=AUTH).json()
    assert (
        events["data"][0]["message"] == "Job cancelled by request"
        and events["data"][0]["object"] == "fine_tuning.job.event"
    )


def test_chat_with_unknown_model_is_404(served):
    client, _ = served
    body = {"model": "ft:nope", "messages": [{"role": "user", "content": "hi"}]}
    assert_openai_error(client.post("/v1/chat/completions", headers=AUTH, json=body), 404, "model_not_found")
    assert_openai_error(client.post("/v1/chat/completions", headers=AUTH, json={"model": "tiny", "messages": []}), 400)


def test_openapi_document_has_openai_errors(served):
    client, _ = served
    schema = client.get("/openapi.json", headers=AUTH).json()
    assert {"/v1/files", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", "/v1/chat/completions"} <= set(
        schema["paths"]
    )
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert (
                "422" not in operation["responses"]
                and "400" in operation["responses"]
                and "401" in operation["responses"]
            )


def test_restart_requeues_running_jobs_or_fails_them(served):
    _, service = served
    store = service.store
    for job_id, attempts in (("ftjob-a", 1), ("ftjob-b", 3)):
        store.insert(
            "jobs",
            {
                "id": job_id,
                "created_at": 0,
                "model": "tiny",
                "base_name": "tiny",
                "training_file": "file-x",
                "seed": 1,
                "hyperparameters": {},
                "method": {},
                "status": "running",
                "attempts": attempts,
            },
        )
    Worker(service.config, store, service.worker.webhooks).recover()
    resumed, given_up = store.get("jobs", "ftjob-a"), store.get("jobs", "ftjob-b")
    assert resumed["status"] == "queued" and resumed["resume"] == 1
    assert (
        given_up["status"] == "failed"
        and given_up["error"]["code"] == "interrupted"
        and "3 times" in given_up["error"]["message"]
    )


def test_stream_holds_back_a_stop_sequence():
    assert "".join(_until_stop(iter(["Hel", "lo EN", "D more"]), ["END"])) == "Hello "
    assert "".join(_until_stop(iter(["a", "b"]), None)) == "ab"
