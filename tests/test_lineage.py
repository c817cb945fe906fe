"""Lineage: the weights hash (cached by path, size and mtime), the git commit of the working folder, versions."""

import hashlib
import subprocess

from tunelab.tracking import lineage


def test_weights_hash_is_cached_and_follows_the_bytes(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"weights-v1")
    (tmp_path / "pytorch_model.bin").write_bytes(b"a copy, ignored beside safetensors")
    first = lineage.weights_hash(tmp_path)
    expected = hashlib.sha256(b"model.safetensors" + b"weights-v1").hexdigest()
    assert first == expected
    calls, real_sha256 = [], hashlib.sha256
    monkeypatch.setattr(lineage.hashlib, "sha256", lambda: calls.append(1) or real_sha256())
    assert lineage.weights_hash(tmp_path) == first and not calls  # from the cache in the tunelab home
    (tmp_path / "model.safetensors").write_bytes(b"weights-v2, longer")
    assert lineage.weights_hash(tmp_path) != first and calls


def test_no_weights_no_hash(tmp_path):
    assert lineage.weights_hash(tmp_path) is None


def test_git_commit_of_the_working_folder(tmp_path):
    assert lineage.git_commit(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("x")
    subprocess.run([*git, "add", "a.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert lineage.git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert lineage.git_commit(tmp_path) == head + "+dirty"


def test_collect_names_versions_hardware_and_seed(tmp_path):
    from tiny_models import tiny_llama

    from tunelab.config import load_config

    config = load_config(None, {"model.name": str(tiny_llama()), "train.seed": 7, "method": "lora"})
    found = lineage.collect(config, {"version": "v1", "splits": {"train": 3}})
    assert found["dataset_version"] == "v1" and found["seed"] == 7
    assert len(found["base_model_weights_sha256"]) == 64
    assert {"tunelab", "torch", "transformers", "peft"} <= set(found["libraries"])
    assert found["hardware"]["cpu_count"] >= 1
    tags = lineage.lineage_tags(found)
    assert tags["tunelab.dataset_version"] == "v1" and "tunelab.libraries.torch" in tags
