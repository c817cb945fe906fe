"""Safe loading: pickle weights are refused unless allowed, and even then a malicious pickle never runs."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from tiny_models import tiny_llama

from tunelab.errors import ModelError, TrainingError
from tunelab.models.loading import load_model
from tunelab.runs import sha256_file
from tunelab.training import checkpoint


class Payload:
    """Unpickling this calls open(marker, 'w'): proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_only_model(folder: Path, weights: dict | None = None) -> Path:
    """The tiny Llama with its weights as pytorch_model.bin instead of safetensors."""
    shutil.copytree(tiny_llama(), folder)
    from safetensors.torch import load_file

    state = weights if weights is not None else load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def test_pickle_only_folder_is_refused_by_default(tmp_path):
    folder = pickle_only_model(tmp_path / "model")
    with pytest.raises(ModelError, match="pickle-based weights .*pytorch_model.bin") as caught:
        load_model(str(folder), "causal-lm")
    assert "--allow-pickle" in caught.value.hint


def test_allow_pickle_loads_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    folder = pickle_only_model(tmp_path / "model")
    model = load_model(str(folder), "causal-lm", allow_pickle=True)
    reference = load_file(str(tiny_llama() / "model.safetensors"))
    loaded = model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in reference.items() if name in loaded)


def test_malicious_pickle_does_not_run_even_when_allowed(tmp_path):
    marker = tmp_path / "pwned"
    folder = pickle_only_model(tmp_path / "model", weights={"model.embed_tokens.weight": Payload(marker)})
    assert not marker.exists()
    with pytest.raises(Exception, match="Weights only load failed|cannot load"):
        load_model(str(folder), "causal-lm", allow_pickle=True)
    assert not marker.exists(), "unpickling ran code: weights_only=True was not used"


def test_malicious_pickle_is_a_clear_model_error(tmp_path):
    folder = pickle_only_model(tmp_path / "model", weights={"model.embed_tokens.weight": Payload(tmp_path / "pwned")})
    with pytest.raises(ModelError, match="cannot load"):
        load_model(str(folder), "causal-lm", allow_pickle=True)


def test_malicious_checkpoint_does_not_run_on_resume(tmp_path):
    """An attacker who rewrites a checkpoint (checksums included) still cannot run code through optimizer.pt."""
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    folder = checkpoint.save_checkpoint(tmp_path, 3, model, optimizer, {}, keep=2)
    marker = tmp_path / "pwned"
    torch.save({"optimizer": Payload(marker), "rng": {}}, folder / "optimizer.pt")
    sums = json.loads((folder / checkpoint.CHECKSUMS).read_text())
    sums["optimizer.pt"] = sha256_file(folder / "optimizer.pt")
    (folder / checkpoint.CHECKSUMS).write_text(json.dumps(sums))
    assert checkpoint.latest_intact(tmp_path) == folder
    with pytest.raises(TrainingError, match="cannot read checkpoint step-0000003"):
        checkpoint.load_checkpoint(folder, model, optimizer)
    assert not marker.exists()


def chat_file(path: Path) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": f"a {i % 3}"}]}
            )
            + "\n"
            for i in range(110)
        )
    )
    return path


@pytest.mark.slow
def test_cli_refuses_pickle_weights_with_the_flag_named(tmp_path, run_cli):
    folder = pickle_only_model(tmp_path / "model")
    code, output = run_cli(
        "train",
        "--data",
        chat_file(tmp_path / "chat.jsonl"),
        "--model",
        folder,
        "--max-steps",
        "1",
        "--out",
        tmp_path / "run",
        "--set",
        "tracking.enabled=false",
    )
    assert code == 2 and "Traceback" not in output
    assert "pickle-based weights" in output and "--allow-pickle" in output


@pytest.mark.slow
def test_trust_remote_code_is_recorded_in_the_run_config(tmp_path, run_cli):
    data = chat_file(tmp_path / "chat.jsonl")
    for flag, expected in (([], False), (["--trust-remote-code"], True)):
        out = tmp_path / f"run-{expected}"
        code, output = run_cli("train", "--data", data, "--model", tiny_llama(), "--dry-run", "--out", out, *flag)
        assert code == 0, output
        saved = yaml.safe_load((out / "config.yaml").read_text())
        assert saved["model"]["trust_remote_code"] is expected and saved["model"]["allow_pickle"] is False


def test_trust_remote_code_is_recorded_in_lineage():
    from tunelab.config import load_config
    from tunelab.tracking.lineage import collect

    config = load_config(None, {"model.name": str(tiny_llama()), "model.trust_remote_code": True})
    lineage = collect(config, {})
    assert lineage.get("trust_remote_code") is True


def test_trust_remote_code_is_off_unless_set():
    from tunelab.config import load_config

    assert load_config(None, {}).model.trust_remote_code is False
    assert os.environ.get("TRUST_REMOTE_CODE") is None or load_config(None, {}).model.trust_remote_code is False
