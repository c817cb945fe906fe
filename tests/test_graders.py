"""Graders: OpenAI's grader objects on hand-made samples with exact expected values, their validation
errors, the python grader's sandbox against hostile code, and `tunelab grade` end to end."""

import json
import math
import socket
import time
from pathlib import Path

import pytest

from tunelab.errors import ConfigError
from tunelab.graders import SandboxLimits, load_grader, render, score_all, validate_grader
from tunelab.graders.model_judge import LabelModelGrader, ScoreModelGrader
from tunelab.graders.sandbox import REFUSED
from tunelab.graders.templates import Sample


def string_check(operation, reference="{{item.answer}}"):
    return {
        "type": "string_check",
        "name": "check",
        "input": "{{sample.output_text}}",
        "reference": reference,
        "operation": operation,
    }


def similarity(metric):
    return {
        "type": "text_similarity",
        "name": "sim",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ref}}",
        "evaluation_metric": metric,
    }


def python_grader(source: str, timeout_s: float = 5.0, mechanism: str = "auto"):
    grader = load_grader({"type": "python", "name": "py", "source": source})
    grader.configure(SandboxLimits(timeout_s=timeout_s), mechanism)
    return grader


# ---- templates -------------------------------------------------------------------------------------


def test_templates_read_item_fields_nested_fields_and_output_json():
    item = {"answer": "3", "meta": {"city": {"name": "Oslo"}}, "messages": [{"content": "hi"}], "n": 4}
    sample = Sample('{"total": 7, "tags": ["a", "b"]}')
    text = (
        "{{item.answer}}|{{ item.meta.city.name }}|{{item.messages[0].content}}|{{item.messages.0.content}}|"
        "{{item.n}}|{{sample.output_json.total}}|{{sample.output_json.tags[1]}}|{{sample.output_json.tags}}"
    )
    assert render(text, sample, item) == '3|Oslo|hi|hi|4|7|b|["a", "b"]'


def test_missing_fields_render_empty_and_non_json_output_is_none():
    sample = Sample("not json")
    assert sample.output_json is None
    assert (
        render("[{{item.nope}}][{{item.meta.x.y}}][{{sample.output_json.x}}][{{item.list.9}}]", sample, {"list": []})
        == "[][][][]"
    )
    assert render("{{sample.output_text}}", sample, {}) == "not json"
    assert Sample('```json\n{"a": 1}\n```').output_json == {"a": 1}


# ---- string_check and text_similarity ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "output", "reference", "expected"),
    [
        ("eq", "3", "3", 1.0),
        ("eq", "3 ", "3", 0.0),
        ("ne", "4", "3", 1.0),
        ("ne", "3", "3", 0.0),
        ("like", "the answer is Paris.", "Paris", 1.0),
        ("like", "the answer is paris.", "Paris", 0.0),
        ("ilike", "the answer is PARIS.", "paris", 1.0),
        ("ilike", "London", "paris", 0.0),
    ],
)
def test_string_check_operations(operation, output, reference, expected):
    assert load_grader(string_check(operation)).score({"output_text": output}, {"answer": reference}) == expected


REFERENCE = "the cat sat on the mat"


@pytest.mark.parametrize(
    ("metric", "output", "reference", "expected"),
    [
        ("fuzzy_match", "abcd", "abce", 0.75),  # 2 * 3 matching characters / 8
        ("fuzzy_match", "abc", "abc", 1.0),
        ("bleu", REFERENCE, REFERENCE, 1.0),
        ("bleu", "the cat sat", REFERENCE, math.exp(1 - 6 / 3)),  # every n-gram matches; brevity penalty only
        ("bleu", "dog", REFERENCE, 0.0),
        ("rouge_1", "the cat sat", REFERENCE, 2 * 1 * 0.5 / 1.5),  # precision 3/3, recall 3/6
        ("rouge_2", "the cat sat", REFERENCE, 2 * 1 * 0.4 / 1.4),  # 2 of 2 bigrams, of 5 in the reference
        ("rouge_l", "the cat sat", REFERENCE, 2 / 3),
        ("rouge_l", "mat the", REFERENCE, 2 * 0.5 * (1 / 6) / (0.5 + 1 / 6)),  # LCS 1
        ("gleu", "the cat sat", REFERENCE, 1 / 3),  # min(6 matched / 6 hypothesis n-grams, 6 / 18 reference)
        ("gleu", REFERENCE, REFERENCE, 1.0),
        # METEOR: F-mean (P=1, R=1/2, alpha 0.9) times 1 - 0.5 * (1 chunk / 3 matches)^3
        ("meteor", "the cat sat", "the cat sat on a mat", 0.5 / 0.95 * (1 - 0.5 / 27)),
        ("meteor", REFERENCE, REFERENCE, 1 - 0.5 / 6**3),
    ],
)
def test_text_similarity_known_values(metric, output, reference, expected):
    grader = load_grader(similarity(metric))
    assert grader.score(output, {"ref": reference}) == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_cosine_of_identical_text_is_one_and_of_unrelated_text_is_low():
    report = score_all(
        load_grader(similarity("cosine")), [REFERENCE, "hello"], [{"ref": REFERENCE}, {"ref": "tax law"}]
    )
    assert report.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert report.scores[1] < 0.5


# ---- multi --------------------------------------------------------------------------------------------


def multi(formula):
    return {
        "type": "multi",
        "name": "combined",
        "calculate_output": formula,
        "graders": {"exact": string_check("eq"), "contains": string_check("ilike"), "fuzzy": similarity("fuzzy_match")},
    }


def test_multi_formula_combines_named_graders():
    item = {"answer": "abcd", "ref": "abce"}
    assert load_grader(multi("0.5 * exact + 0.5 * fuzzy")).score("abcd", item) == pytest.approx(0.5 + 0.375)
    assert load_grader(multi("max(exact, contains) - abs(-fuzzy) / 2")).score("xabcdx", item) == pytest.approx(
        1 - (2 * 3 / 10) / 2
    )
    assert load_grader(multi("sqrt(4) * floor(1.7) + ceil(0.2) + exp(0) + log(1) + 2 ** 2")).score("", {}) == 8.0


def test_multi_formula_error_scores_zero_and_is_reported():
    report = score_all(load_grader(multi("exact / (exact - exact)")), ["abcd"], [{"answer": "abcd", "ref": "x"}])
    assert report.scores == [0.0] and report.errors == {"formula": 1}


def test_multi_accepts_the_list_form_of_openais_spec():
    grader = load_grader(
        {"type": "multi", "name": "m", "calculate_output": "exact", "graders": [string_check("eq") | {"name": "exact"}]}
    )
    assert grader.score("3", {"answer": "3"}) == 1.0


# ---- model judges (parsing here; the bundled SmolLM2 in the slow test) ------------------------------


def judge(kind, **fields):
    messages = [
        {"role": "developer", "content": "You grade."},
        {"role": "user", "content": [{"type": "input_text", "text": "Answer: {{sample.output_text}}"}]},
    ]
    return load_grader({"type": kind, "name": "judge", "model": "smollm2", "input": messages, **fields})


def test_score_model_takes_the_first_number_clamped_to_its_range():
    grader = judge("score_model", range=[1, 5])
    assert isinstance(grader, ScoreModelGrader) and grader.messages[0]["role"] == "system"
    assert grader.parse("Score: 4.5 out of 5").score == 4.5
    assert grader.parse("7").score == 5.0
    assert grader.parse("-2").score == 1.0
    assert grader.parse("no idea").error == "unparsable"


def test_label_model_takes_the_label_that_appears_first():
    grader = judge("label_model", labels=["positive", "neutral", "negative"], passing_labels=["positive"])
    assert isinstance(grader, LabelModelGrader)
    assert grader.parse("Negative, not positive.").score == 0.0
    assert grader.parse("The sentiment is POSITIVE").score == 1.0
    assert grader.parse("unclear").error == "unparsable"


@pytest.mark.slow
def test_model_judges_run_on_the_bundled_smollm2_loaded_once():
    from tunelab.graders.model_judge import _load_judge

    _load_judge.cache_clear()
    score = score_all(judge("score_model"), ["4", "banana"], [{}, {}])
    labels = score_all(judge("label_model", labels=["yes", "no"], passing_labels=["yes"]), ["4", "5"], [{}, {}])
    for report in (score, labels):
        assert report.n == 2 and all(0.0 <= value <= 1.0 for value in report.scores)
        assert set(report.errors) <= {"unparsable"}
    assert _load_judge.cache_info().misses == 1  # "smollm2" both times: one model in memory


# ---- validation -------------------------------------------------------------------------------------


SCORE_MODEL = {"type": "score_model", "model": "m", "input": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(
    ("obj", "names"),
    [
        ({"type": "exact_match"}, ["grader.type", "string_check", "multi"]),
        ({"name": "x"}, ["grader.type", "missing"]),
        ({"type": "string_check", "input": "a", "operation": "eq"}, ["grader.reference", "missing"]),
        (string_check("equals"), ["grader.operation", "eq, ne, like, ilike"]),
        (string_check("eq") | {"referense": "x"}, ["grader.referense", "unknown key"]),
        (string_check("eq", reference="{{answer}}"), ["grader.reference", "{{answer}}", "item."]),
        (similarity("cider"), ["grader.evaluation_metric", "rouge_l"]),
        (multi("exact + typo"), ["grader.calculate_output", "'typo'", "contains, exact, fuzzy"]),
        (multi("__import__('os')"), ["grader.calculate_output"]),
        (multi("exact.real"), ["grader.calculate_output", "Attribute"]),
        ({**multi("exact"), "graders": {"exact": {"type": "string_check"}}}, ["grader.graders.exact.input"]),
        ({"type": "python", "source": "def grade(sample, item)\n  return 1"}, ["grader.source", "line 1"]),
        ({"type": "python", "source": "def score(sample, item):\n    return 1"}, ["grader.source", "grade()"]),
        (
            {
                "type": "label_model",
                "model": "m",
                "input": [{"role": "user", "content": "x"}],
                "labels": ["a"],
                "passing_labels": ["b"],
            },
            ["grader.passing_labels"],
        ),
        (
            {"type": "score_model", "model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            ["grader.input[0].content", "input_image"],
        ),
        (
            {"type": "score_model", "model": "m", "input": [{"role": "user", "content": "x"}], "range": [1, 0]},
            ["grader.range"],
        ),
        (
            {**SCORE_MODEL, "sampling_params": {"temperature": "hot"}},
            ["grader.sampling_params.temperature", "number"],
        ),
        ({**SCORE_MODEL, "sampling_params": {"temp": 1}}, ["grader.sampling_params.temp", "top_p"]),
    ],
)
def test_validation_errors_name_the_key_and_the_fix(obj, names):
    with pytest.raises(ConfigError) as caught:
        validate_grader(obj)
    for name in names:
        assert name in str(caught.value)
    assert caught.value.hint


def test_a_grader_file_with_bad_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "grader.json"
    path.write_text('{\n  "type": "string_check",\n  "name": \n}')
    with pytest.raises(ConfigError, match=r"grader\.json:4"):
        load_grader(path)
    with pytest.raises(ConfigError, match="grader file not found"):
        load_grader(tmp_path / "missing.json")


# ---- the python grader's sandbox ---------------------------------------------------------------------


@pytest.fixture
def listener():
    """A loopback server standing for the service's own API; no grader may reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def network_source(port):
    connect = f"socket.create_connection(('127.0.0.1', {port}), timeout=2)"
    return f"import socket\ndef grade(sample, item):\n    {connect}\n    return 1.0\n"


def reading_source(path):
    return f"def grade(sample, item):\n    return float(len(open({str(path)!r}).read()))\n"


EXACT = "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['answer'] else 0.0\n"


def test_a_good_python_grader_scores_like_string_check():
    grader = python_grader(EXACT)
    outputs, items = ["3", "4", "1"], [{"answer": "3"}, {"answer": "3"}, {"answer": "1"}]
    report = score_all(grader, outputs, items)
    grader.close()
    assert report.scores == [1.0, 0.0, 1.0] and report.errors == {} and report.sandbox
    json_source = "def grade(sample, item):\n    return float(sample['output_json']['n'] == item['n'])\n"
    assert python_grader(json_source).score('{"n": 2}', {"n": 2}) == 1.0


def test_python_grader_cannot_reach_a_loopback_listener(listener):
    report = score_all(python_grader(network_source(listener)), ["a", "b"], [{}, {}])
    assert report.scores == [0.0, 0.0] and report.errors == {"exception": 2}
    assert (
        "OSError" in report.error_examples()["exception"] or "PermissionError" in report.error_examples()["exception"]
    )


def test_python_grader_cannot_read_the_services_files(tmp_path, monkeypatch):
    database = tmp_path / "service.sqlite"
    database.write_text("api keys")
    home_file = tmp_path / "home" / "store.json"
    home_file.parent.mkdir()
    home_file.write_text("{}")
    monkeypatch.setenv("TUNELAB_HOME", str(home_file.parent))
    for path in (database, home_file, "/etc/passwd"):
        report = score_all(python_grader(reading_source(path)), ["a"], [{}])
        assert report.scores == [0.0] and report.errors == {"exception": 1}, path


def test_python_grader_sees_no_environment_and_only_its_own_folder(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    source = (
        "import os\ndef grade(sample, item):\n"
        "    assert 'OPENAI_API_KEY' not in os.environ and 'TUNELAB_HOME' not in os.environ\n"
        "    open('scratch.txt', 'w').write('ok')\n"
        "    return float(open('scratch.txt').read() == 'ok')\n"
    )
    assert score_all(python_grader(source), ["a"], [{}]).scores == [1.0]


def test_an_endless_loop_times_out_and_the_next_sample_gets_a_fresh_worker():
    source = "def grade(sample, item):\n    while item.get('loop'):\n        pass\n    return 1.0\n"
    start = time.monotonic()
    report = score_all(python_grader(source, timeout_s=1.0), ["a", "b", "c"], [{"loop": True}, {}, {"loop": True}])
    assert report.scores == [0.0, 1.0, 0.0] and report.errors == {"timeout": 2}
    assert time.monotonic() - start < 2 * 1.0 + 5


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("x = bytearray(10 * 2**30)\n    return 1.0", "memory"),
        ("import os\n    os.fork()\n    return 1.0", "exception"),
        ("import subprocess\n    subprocess.run(['true'])\n    return 1.0", "exception"),
        ("open('big', 'wb').write(b'0' * 100 * 2**20)\n    return 1.0", "exception"),  # over the 64 MB file limit
        ("return 'yes'", "non_number"),
        ("return float('nan')", "non_number"),
        ("raise ValueError('bad sample')", "exception"),
        ("import os\n    os._exit(3)", "crashed"),
    ],
)
def test_hostile_or_broken_code_scores_zero_and_is_counted(body, kind):
    grader = python_grader(f"def grade(sample, item):\n    {body}\n")
    report = score_all(grader, ["a", "b"], [{}, {}])
    grader.close()
    assert report.scores == [0.0, 0.0] and report.errors == {kind: 2}


def test_source_that_fails_to_load_fails_every_sample_once_loaded():
    report = score_all(
        python_grader("import no_such_module\ndef grade(sample, item):\n    return 1.0\n"), ["a", "b"], [{}, {}]
    )
    assert report.scores == [0.0, 0.0] and report.errors == {"exception": 2}
    assert "no_such_module" in report.error_examples()["exception"]


def test_the_sandbox_limits_its_processes_and_leaves_root():
    """Under the strongest mechanism the code runs as a fresh unprivileged user, with no process to spare, and
    sees none of the project's files (only the Python installation is mounted, wherever the checkout lives)."""
    tests_dir = str(Path(__file__).resolve().parent)
    source = (
        "import os, resource\ndef grade(sample, item):\n"
        "    return float(os.getuid() != 0 and resource.getrlimit(resource.RLIMIT_NPROC) == (0, 0)"
        f" and os.getcwd() == '/sandbox' and not os.path.exists('/proc/self') and not os.path.exists({tests_dir!r}))\n"
    )
    grader = python_grader(source, mechanism="namespaces")
    report = score_all(grader, ["a"], [{}])
    if REFUSED.get("namespaces"):
        pytest.skip(f"mount and network namespaces refused here: {REFUSED['namespaces']}")
    assert report.sandbox == "namespaces" and report.scores == [1.0], report.error_examples()


@pytest.mark.parametrize("mechanism", ["user-namespaces", "audit-hook"])
def test_weaker_mechanisms_hold_against_the_network_and_outside_files(mechanism, listener, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("service key")
    reports = [
        score_all(python_grader(source, mechanism=mechanism), ["3"], [{"answer": "3"}])
        for source in (network_source(listener), reading_source(secret), EXACT)
    ]
    if REFUSED.get(mechanism):
        pytest.skip(f"{mechanism} refused here: {REFUSED[mechanism]}")
    assert [r.scores for r in reports] == [[0.0], [0.0], [1.0]]
    assert all(r.sandbox == mechanism for r in reports)


# ---- tunelab grade ---------------------------------------------------------------------------------


@pytest.fixture
def graded_files(tmp_path):
    """The acceptance check's files: 40 records, every odd prediction right (20 of 40)."""
    data, predictions = tmp_path / "rl.jsonl", tmp_path / "preds.jsonl"
    records = [
        {"messages": [{"role": "user", "content": f"Reply with the number {i % 5}."}], "answer": str(i % 5)}
        for i in range(40)
    ]
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    predictions.write_text(
        "".join(json.dumps({"output_text": str(i % 5) if i % 2 else "wrong"}) + "\n" for i in range(40))
    )
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps(string_check("eq") | {"name": "exact"}))
    return grader, data, predictions


def test_tunelab_grade_reports_mean_reward_with_interval(run_cli, graded_files):
    grader, data, predictions = graded_files
    code, output = run_cli("grade", "--grader", grader, "--data", data, "--predictions", predictions, "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["grader"] == "exact" and report["type"] == "string_check" and report["n"] == 40
    assert report["mean_reward"] == 0.5 and report["errors"] == {} and len(report["scores"]) == 40
    low, high = report["reward_ci95"]
    assert 0.2 < low < 0.5 < high < 0.8


def test_tunelab_grade_accepts_prediction_and_output_keys_and_prints_a_table(run_cli, graded_files, tmp_path):
    grader, data, _ = graded_files
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({("prediction" if i % 3 else "output"): str(i % 5)}) + "\n" for i in range(40)))
    code, output = run_cli("grade", "--grader", grader, "--data", data, "--predictions", other)
    assert code == 0 and "1.0000" in output and "mean reward" in output


def test_tunelab_grade_refuses_mismatched_counts_naming_both_files(run_cli, graded_files, tmp_path):
    grader, data, predictions = graded_files
    short = tmp_path / "short.jsonl"
    short.write_text("".join(predictions.read_text().splitlines(keepends=True)[:39]))
    code, output = run_cli("grade", "--grader", grader, "--data", data, "--predictions", short)
    assert code == 2 and "short.jsonl has 39" in output and "rl.jsonl has 40" in output and "Traceback" not in output


def test_tunelab_grade_names_a_bad_prediction_line(run_cli, graded_files, tmp_path):
    grader, data, _ = graded_files
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"text": "3"} if i == 6 else {"output_text": "3"}) + "\n" for i in range(40)))
    code, output = run_cli("grade", "--grader", grader, "--data", data, "--predictions", bad)
    assert code == 2 and "bad.jsonl:7" in output and "output_text" in output


def test_tunelab_grade_holds_the_sandbox_like_the_acceptance_check(run_cli, graded_files, tmp_path, listener):
    """Section 4 of ../shared/acceptance/preference-rft: a grader trying the network, then a secret file."""
    _, data, predictions = graded_files
    secret = tmp_path / "secret.txt"
    secret.write_text("service key")
    source = (
        "def grade(sample, item):\n    import socket\n    try:\n"
        f"        socket.create_connection(('127.0.0.1', {listener}), timeout=2); return 1.0\n"
        "    except OSError:\n        pass\n    try:\n"
        f"        open({str(secret)!r}).read(); return 1.0\n"
        "    except OSError:\n        return 0.0\n"
    )
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps({"type": "python", "name": "evil", "source": source}))
    code, output = run_cli("grade", "--grader", evil, "--data", data, "--predictions", predictions, "--json")
    assert code == 0 and "Traceback" not in output
    report = json.loads(output)
    assert report["mean_reward"] == 0.0 and report["n"] == 40 and report["sandbox"]
