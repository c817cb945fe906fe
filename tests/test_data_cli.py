"""The `tunelab data` commands: one JSON object on stdout with --json, exit 2 on unusable data, diff."""

import json

from typer.testing import CliRunner

from tunelab.cli.data import app
from tunelab.errors import DataError

runner = CliRunner()


def chat_file(path, n: int, offset: int = 0):
    path.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"question {i} about item {i * 3} and its many features today"},
                        {"role": "assistant", "content": f"the answer for {i} is {i * 7} with detail {i % 11}"},
                    ]
                }
            )
            + "\n"
            for i in range(offset, offset + n)
        )
    )
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=True)


def test_prepare_json_stats_and_diff(tmp_path):
    src = chat_file(tmp_path / "a.jsonl", 150)
    result = invoke(
        "prepare", src, "--out", tmp_path / "v1", "--model", "whitespace", "--json", "--split", "0.8,0.1,0.1"
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout.strip())
    assert manifest["counts"]["kept"] == 150 and manifest["version"]
    stats = invoke("stats", tmp_path / "v1", "--json")
    assert json.loads(stats.stdout)["version"] == manifest["version"]
    chat_file(tmp_path / "b.jsonl", 150, offset=20)
    assert invoke("prepare", tmp_path / "b.jsonl", "--out", tmp_path / "v2", "--model", "whitespace").exit_code == 0
    diff = json.loads(invoke("diff", tmp_path / "v1", tmp_path / "v2", "--json").stdout)
    assert diff["overall"]["added"] == 20 and diff["overall"]["removed"] == 20 and not diff["same_version"]


def test_validate_reports_and_refuses_unusable(tmp_path):
    (tmp_path / "bad.jsonl").write_text('nope\n{"messages": "x"}\n')
    result = invoke("validate", tmp_path / "bad.jsonl", "--json")
    assert isinstance(result.exception, DataError)  # main() turns it into one line and exit 2
    report = json.loads(result.stdout.strip())
    assert report["usable"] == 0 and report["reject_reasons"]["invalid_json"] == 1


def test_bad_options_are_config_errors(tmp_path):
    src = chat_file(tmp_path / "a.jsonl", 10)
    for args in (["--split", "0.5,0.1,0.1"], ["--map", "nonsense"], ["--near-dup-threshold", "2"]):
        result = invoke("prepare", src, "--out", tmp_path / "o", *args)
        assert result.exception is not None and "Traceback" not in result.output
        assert getattr(result.exception, "exit_code", None) == 2, args
