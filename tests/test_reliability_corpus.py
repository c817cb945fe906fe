"""The malformed-input corpus (tests/corpus/, written by generate.py): every file through the CLI gives
exit 0 or 2 and a message, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import tiny_llama

CORPUS = Path(__file__).parent / "corpus"
DATA = sorted((CORPUS / "data").iterdir())
CONFIGS = sorted((CORPUS / "configs").iterdir())
UPLOADS = sorted((CORPUS / "uploads").iterdir())
TUNELAB = Path(sys.executable).with_name("tunelab")


def data_argv(path: Path, out: Path, tokenizer: str = "whitespace") -> list[str]:
    """Whitespace token counts keep the fast test fast; the slow test uses the default tokenizer."""
    return ["data", "prepare", str(path), "--out", str(out)] + (["--model", tokenizer] if tokenizer else [])


def config_argv(path: Path, out: Path) -> list[str]:
    """No --data: a config's own data.path must be the one that fails (missing_data.yaml)."""
    return [
        "train",
        str(path),
        "--model",
        str(tiny_llama()),
        "--max-steps",
        "1",
        "--out",
        str(out),
        "--set",
        "tracking.enabled=false",
    ]


def upload_argv(path: Path, out: Path) -> list[str]:
    return ["data", "validate", str(path)]


CASES = (
    [pytest.param(data_argv, p, id=f"data/{p.name}") for p in DATA]
    + [pytest.param(config_argv, p, id=f"configs/{p.name}") for p in CONFIGS]
    + [pytest.param(upload_argv, p, id=f"uploads/{p.name}") for p in UPLOADS]
)


def test_corpus_is_complete():
    assert len(DATA) >= 40 and len(CONFIGS) >= 20 and len(UPLOADS) >= 5
    assert {p.suffix for p in DATA} >= {".jsonl", ".json", ".csv", ".tsv", ".parquet"}


@pytest.mark.parametrize("argv, path", CASES)
def test_corpus_through_the_cli_in_process(tmp_path, run_cli, argv, path):
    code, text = run_cli(*argv(path, tmp_path / "out"))
    assert code in (0, 2) and "Traceback" not in text, text[-2000:]
    if path.parent.name == "configs":
        assert code == 2 and "error:" in text, text[-1000:]
    assert not Path("/tmp/tunelab-pwned").exists()


@pytest.mark.parametrize("path", UPLOADS + [p for p in DATA if p.is_file()], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_as_service_uploads(tmp_path, path):
    """The service's upload check (tunelab.server.routes.files.check_upload) accepts a file or answers 400."""
    from tunelab.server.api_errors import ApiError
    from tunelab.server.routes.files import check_upload, safe_suffix

    upload = tmp_path / f"upload{safe_suffix(path.name)}"
    upload.write_bytes(path.read_bytes())
    try:
        check_upload(upload, path.name)
    except ApiError as exc:
        assert exc.status == 400 and exc.message


@pytest.mark.slow
def test_corpus_through_real_cli_processes(tmp_path):
    """The same corpus through real `tunelab` processes: exit 0 or 2, no traceback on stdout or stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    failures = []
    for case in CASES:
        argv, path = case.values
        out = tmp_path / f"{path.parent.name}-{path.name}"
        args = data_argv(path, out, tokenizer="") if argv is data_argv else argv(path, out)
        result = subprocess.run([str(TUNELAB), *args], capture_output=True, text=True, env=env, timeout=600)
        if result.returncode not in (0, 2) or "Traceback" in result.stdout + result.stderr:
            failures.append(f"{case.id}: exit {result.returncode}\n{(result.stdout + result.stderr)[-600:]}")
    assert not failures, "\n\n".join(failures)
