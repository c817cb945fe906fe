"""Metric implementations against the reference libraries on fixed inputs, and the bootstrap's behaviour."""

import numpy as np
import pytest

from tunelab.evaluation import bootstrap
from tunelab.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    generation_metrics,
    language_model_metrics,
    normalise,
    per_class_report,
    token_f1,
)

PREDICTIONS = [
    "the cat sat on the mat",
    "a quick brown fox jumps",
    "hello world",
    "Paris is the capital of France",
    "no idea",
    "the dog ran in the park today",
]
REFERENCES = [
    "the cat is on the mat",
    "the quick brown fox jumped",
    "hello there world",
    "The capital of France is Paris",
    "I do not know",
    "a dog ran in the park",
]


def by_name(metrics):
    return {m.name: m for m in metrics}


def test_bleu_and_chrf_equal_sacrebleu():
    import sacrebleu

    found = by_name(generation_metrics(PREDICTIONS, REFERENCES))
    assert found["bleu"].value() == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score, abs=1e-9)
    assert found["chrf"].value() == pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score, abs=1e-9)


def test_bleu_on_a_resample_equals_sacrebleu_on_that_subset():
    import sacrebleu

    bleu = by_name(generation_metrics(PREDICTIONS, REFERENCES))["bleu"]
    weights = np.array([2, 0, 1, 0, 1, 2], dtype=float)
    subset = [i for i, w in enumerate(weights) for _ in range(int(w))]
    expected = sacrebleu.corpus_bleu([PREDICTIONS[i] for i in subset], [[REFERENCES[i] for i in subset]]).score
    assert bleu.value(weights) == pytest.approx(expected, abs=1e-9)


def test_rouge_equals_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    found = by_name(generation_metrics(PREDICTIONS, REFERENCES))
    for kind in ("rouge1", "rouge2", "rougeL"):
        expected = np.mean([scorer.score(r, p)[kind].fmeasure for p, r in zip(PREDICTIONS, REFERENCES)])
        assert found[kind].value() == pytest.approx(expected, abs=1e-12)


def test_exact_match_and_token_f1():
    assert normalise("  The  Cat. ", ["strip", "lower", "punctuation", "whitespace"]) == "the cat"
    found = by_name(generation_metrics(["Yes", "no ", "maybe"], ["yes", "No", "never"]))
    assert found["exact_match"].value() == pytest.approx(2 / 3)
    assert token_f1("the cat sat", "the cat") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_json_validity_and_field_accuracy():
    predictions = ['{"name": "Ann", "age": 3}', '{"name": "Bob", "age": 5}', "not json"]
    references = ['{"name": "Ann", "age": 4}', '{"name": "Bob", "age": 5}', '{"name": "Cy", "age": 1}']
    found = by_name(generation_metrics(predictions, references))
    assert found["json_valid"].value() == pytest.approx(2 / 3)
    assert found["field_name"].value() == pytest.approx(2 / 3)
    assert found["field_age"].value() == pytest.approx(1 / 3)
    assert "json_valid" not in by_name(generation_metrics(["a"], ["b"]))


def test_classification_equals_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
    from sklearn.metrics import confusion_matrix as sk_confusion

    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "d", "e"]
    references = list(rng.choice(labels[:4], 200))  # "e" is predicted but never true
    predictions = [r if rng.random() < 0.6 else rng.choice(labels) for r in references]
    found = by_name(classification_metrics(predictions, references, labels))
    assert found["accuracy"].value() == pytest.approx(accuracy_score(references, predictions))
    assert found["macro_f1"].value() == pytest.approx(
        f1_score(references, predictions, average="macro", zero_division=0)
    )
    assert found["weighted_f1"].value() == pytest.approx(
        f1_score(references, predictions, average="weighted", zero_division=0)
    )
    assert (
        confusion_matrix(predictions, references, labels)
        == sk_confusion(references, predictions, labels=labels).tolist()
    )
    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=labels, zero_division=0
    )
    report = per_class_report(predictions, references, labels)
    for i, label in enumerate(labels):
        assert report[label]["precision"] == pytest.approx(precision[i])
        assert report[label]["recall"] == pytest.approx(recall[i])
        assert report[label]["f1"] == pytest.approx(f1[i])
        assert report[label]["support"] == support[i]


def test_language_model_metrics_are_token_weighted():
    loss, perplexity, accuracy = language_model_metrics([10.0, 2.0], [5, 1], [1, 1])
    assert loss.value() == pytest.approx(2.0)
    assert perplexity.value() == pytest.approx(np.exp(2.0))
    assert accuracy.value() == pytest.approx(2 / 6)


def test_bootstrap_interval_covers_the_value_and_paired_difference_detects_a_gain():
    from tunelab.evaluation.metrics import mean_metric

    rng = np.random.default_rng(0)
    base = mean_metric("accuracy", rng.random(300) < 0.5)
    tuned = mean_metric("accuracy", rng.random(300) < 0.8)
    weights = bootstrap.resample_weights(300, 1000, seed=1)
    low, high = bootstrap.metric_interval(tuned, weights)
    assert low < tuned.value() < high and high - low < 0.15
    diff = bootstrap.paired_difference(base, tuned, weights)
    assert diff["significant"] and diff["ci_low"] > 0
    same = bootstrap.paired_difference(tuned, tuned, weights)
    assert same == {"delta": 0.0, "ci_low": 0.0, "ci_high": 0.0, "significant": False}
