"""evaluate_run on tiny random models: the eval.json contract for each task family, and the probes."""

import json

import pytest
from test_eval_fixtures import tiny_classifier_pair, tiny_lm_pair, word_tokenizer  # noqa: F401  (fixtures)

from tunelab.evaluation.config import EvalConfig
from tunelab.evaluation.run import evaluate_run

FAST = EvalConfig(max_new_tokens=6, bootstrap_samples=200, probe_max_new_tokens=4, probe_examples=3, batch_size=4)
WORDS = "cat dog man woman king queen red blue".split()


def chat_records(answer_json: bool = False):
    def answer(word):
        return json.dumps({"name": word, "colour": "red"}) if answer_json else f"{word} sat"

    return [
        {
            "messages": [
                {"role": "user", "content": f"the {w} sat on the mat and he ran"},
                {"role": "assistant", "content": answer(w)},
            ]
        }
        for w in WORDS
    ]


def check_contract(result: dict, with_base: bool = True):
    primary = result["primary_metric"]
    assert primary in result["tuned"] and result["n_examples"] > 0 and result["split"] == "test"
    assert set(result["tuned"]) == set(result["intervals"]["tuned"])
    for _name, (low, high) in result["intervals"]["tuned"].items():
        assert low <= high
    if with_base:
        assert set(result["base"]) == set(result["tuned"]) == set(result["difference"])
        assert {"delta", "ci_low", "ci_high", "significant"} <= set(result["difference"][primary])
    assert result["samples"] and {"input", "reference", "tuned"} <= set(result["samples"][0])
    for probe in ("bias", "hallucination", "forgetting"):
        assert result["probes"][probe]["verdict"]
    json.dumps(result)  # eval.json must serialise without a default


def test_generation_contract_and_probes(tiny_lm_pair):
    tuned, base = tiny_lm_pair
    result = evaluate_run(tuned, base, chat_records(), "causal-lm", FAST)
    check_contract(result)
    assert result["primary_metric"] == "rougeL"
    assert {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "token_f1", "exact_match", "eval_loss", "perplexity"} <= set(
        result["tuned"]
    )
    assert result["probes"]["bias"]["pairs"] == 3 and "change_rate" in result["probes"]["bias"]["tuned"]
    assert "unsupported_word_share" in result["probes"]["hallucination"]["tuned"]
    forgetting = result["probes"]["forgetting"]
    assert forgetting["base_perplexity"] > 0 and len(forgetting["answers"]) == 10
    kinds = [s["kind"] for s in result["samples"]]
    assert kinds == sorted(kinds, key=["regression", "win", "same"].index)


def test_json_references_make_exact_match_primary(tiny_lm_pair):
    tuned, _ = tiny_lm_pair
    result = evaluate_run(
        tuned,
        None,
        chat_records(answer_json=True),
        "causal-lm",
        FAST.model_copy(update={"baseline": False, "probes": False}),
    )
    assert result["primary_metric"] == "exact_match"
    assert {"json_valid", "field_name", "field_colour"} <= set(result["tuned"])
    assert result["base"] is None and result["difference"] == {}


def test_classification_contract(tiny_classifier_pair):
    tuned, base = tiny_classifier_pair
    labels = ["news", "sport", "world", "business"]
    records = [{"text": f"the {w} ran fast and he sat", "label": labels[i % 4]} for i, w in enumerate(WORDS * 3)]
    result = evaluate_run(tuned, base, records, "classification", FAST)
    check_contract(result)
    assert result["primary_metric"] == "accuracy"
    predictions = [row["tuned"] for row in result["predictions"]]
    accuracy = sum(p == r["label"] for p, r in zip(predictions, records)) / len(records)
    assert result["tuned"]["accuracy"] == pytest.approx(accuracy)
    assert len(result["confusion_matrix"]["tuned"]) == len(result["labels"])
    assert result["probes"]["forgetting"]["verdict"].startswith("not run")


def test_language_modelling_and_metric_selection(tiny_lm_pair):
    tuned, base = tiny_lm_pair
    records = [{"text": f"the {w} ran fast and he sat on the mat"} for w in WORDS]
    config = FAST.model_copy(update={"metrics": ["perplexity", "eval_loss"], "probes": False})
    result = evaluate_run(tuned, base, records, "causal-lm", config)
    assert result["primary_metric"] == "perplexity" and set(result["tuned"]) == {"perplexity", "eval_loss"}
    assert result["lower_is_better"] == ["eval_loss", "perplexity"]


def test_unknown_metric_is_a_config_error(tiny_lm_pair):
    from tunelab.errors import ConfigError

    tuned, _ = tiny_lm_pair
    with pytest.raises(ConfigError, match="bleurt"):
        evaluate_run(
            tuned,
            None,
            chat_records(),
            "causal-lm",
            FAST.model_copy(update={"metrics": ["bleurt"], "probes": False, "baseline": False}),
        )


def test_eval_loss_matches_training(tiny_lm_pair):
    """The per-example statistics add up to the training code's own eval loss."""
    from tunelab.training import batches

    tuned, _ = tiny_lm_pair
    records = chat_records()
    result = evaluate_run(
        tuned,
        None,
        records,
        "causal-lm",
        FAST.model_copy(update={"probes": False, "baseline": False, "metrics": ["eval_loss"]}),
    )
    expected = batches.eval_loss(tuned.model, tuned.tokenizer, records, "causal-lm", max_length=1024, batch_size=8)
    assert result["tuned"]["eval_loss"] == pytest.approx(expected, rel=1e-4)
