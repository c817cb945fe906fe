"""Metrics as per-example sufficient statistics plus a function from their sum to the score.

Writing every metric this way lets one bootstrap serve them all: resampling examples is
re-weighting rows of the statistics, so corpus-level scores (BLEU, chrF, macro F1) get intervals
that are exactly the library's score on each resample, not an average of sentence scores.
Scales follow the reference libraries: BLEU and chrF 0-100 (sacrebleu), everything else 0-1.
"""

import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Metric:
    """`stats[i]` holds example i's statistics; `score(stats.sum(0))` is the metric on the set."""

    name: str
    stats: np.ndarray
    score: Callable[[np.ndarray], float]
    per_example: bool = False  # a mean of per-example scores (stats columns: score, 1)

    def value(self, weights: np.ndarray | None = None) -> float:
        total = self.stats.sum(0) if weights is None else weights @ self.stats
        return float(self.score(total))


def _ratio(total: np.ndarray) -> float:
    return float(total[0] / total[1]) if total[1] else 0.0


def mean_metric(name: str, scores) -> Metric:
    scores = np.asarray(scores, dtype=float)
    return Metric(name, np.stack([scores, np.ones_like(scores)], axis=1), _ratio, per_example=True)


# ---- text normalisation (configurable for exact match) -------------------------------------------

NORMALISERS = {
    "strip": str.strip,
    "lower": str.lower,
    "punctuation": lambda s: s.translate(str.maketrans("", "", string.punctuation)),
    "articles": lambda s: re.sub(r"\b(a|an|the)\b", " ", s),
    "whitespace": lambda s: " ".join(s.split()),
}


def normalise(text: str, steps: list[str]) -> str:
    for step in steps:
        text = NORMALISERS[step](text)
    return text


def tokens(text: str) -> list[str]:
    return normalise(text, ["lower", "punctuation", "whitespace"]).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-tokens F1 after lower-casing and removing punctuation."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ---- generation ------------------------------------------------------------------------------------


def sacrebleu_metric(name: str, predictions: list[str], references: list[str]) -> Metric:
    from sacrebleu.metrics import BLEU, CHRF

    # Private sacrebleu methods: chrF has no public per-sentence statistics, so pyproject bounds sacrebleu <3.
    scorer = BLEU() if name == "bleu" else CHRF()
    stats = np.array(scorer._extract_corpus_statistics(predictions, [references]), dtype=float)
    return Metric(name, stats, lambda total: scorer._compute_score_from_stats(total.astype(int).tolist()).score)


def rouge_metrics(predictions: list[str], references: list[str]) -> list[Metric]:
    from rouge_score import rouge_scorer

    kinds = ["rouge1", "rouge2", "rougeL"]
    scorer = rouge_scorer.RougeScorer(kinds, use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return [mean_metric(kind, [s[kind].fmeasure for s in scores]) for kind in kinds]


def parse_json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def references_are_json(references: list[str]) -> bool:
    return bool(references) and all(parse_json_object(r) is not None for r in references)


def json_metrics(predictions: list[str], references: list[str]) -> list[Metric]:
    """JSON validity, and per-field accuracy over the fields the references hold."""
    parsed = [parse_json_object(p) for p in predictions]
    gold = [parse_json_object(r) for r in references]
    metrics = [mean_metric("json_valid", [p is not None for p in parsed])]
    fields = sorted({key for ref in gold for key in ref})
    for field in fields:
        rows = [(p or {}, g) for p, g in zip(parsed, gold)]
        hits = [[float(field in g and p.get(field) == g[field]), float(field in g)] for p, g in rows]
        metrics.append(Metric(f"field_{field}", np.array(hits, dtype=float).reshape(-1, 2), _ratio))
    return metrics


def generation_metrics(
    predictions: list[str], references: list[str], normalisation: list[str] = ("strip", "lower", "whitespace")
) -> list[Metric]:
    exact = [
        normalise(p, list(normalisation)) == normalise(r, list(normalisation)) for p, r in zip(predictions, references)
    ]
    metrics = [
        mean_metric("exact_match", exact),
        sacrebleu_metric("bleu", predictions, references),
        sacrebleu_metric("chrf", predictions, references),
        *rouge_metrics(predictions, references),
        mean_metric("token_f1", [token_f1(p, r) for p, r in zip(predictions, references)]),
    ]
    if references_are_json(references):
        metrics += json_metrics(predictions, references)
    return metrics


# ---- classification --------------------------------------------------------------------------------


def confusion_matrix(predictions: list[str], references: list[str], labels: list[str]) -> list[list[int]]:
    """Rows are true labels, columns predicted labels, in `labels` order (as scikit-learn)."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for pred, ref in zip(predictions, references):
        matrix[index[ref], index[pred]] += 1
    return matrix.tolist()


def _f1_parts(total: np.ndarray, n_classes: int):
    tp, predicted, actual = total[:n_classes], total[n_classes : 2 * n_classes], total[2 * n_classes :]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1, actual


def classification_metrics(predictions: list[str], references: list[str], labels: list[str]) -> list[Metric]:
    """accuracy, macro F1 (over labels seen in references or predictions, like scikit-learn), weighted F1."""
    present = [label for label in labels if label in set(references) | set(predictions)]
    index = {label: i for i, label in enumerate(present)}
    n, c = len(predictions), len(present)
    stats = np.zeros((n, 3 * c))
    for row, (pred, ref) in enumerate(zip(predictions, references)):
        stats[row, index[pred]] += pred == ref
        stats[row, c + index[pred]] = 1
        stats[row, 2 * c + index[ref]] = 1

    def macro(total):
        return float(_f1_parts(total, c)[2].mean()) if c else 0.0

    def weighted(total):
        _, _, f1, actual = _f1_parts(total, c)
        return float((f1 * actual).sum() / actual.sum()) if actual.sum() else 0.0

    return [
        mean_metric("accuracy", [p == r for p, r in zip(predictions, references)]),
        Metric("macro_f1", stats, macro),
        Metric("weighted_f1", stats, weighted),
    ]


def per_class_report(predictions: list[str], references: list[str], labels: list[str]) -> dict:
    """{label: {precision, recall, f1, support}} for every label that occurs."""
    metric = classification_metrics(predictions, references, labels)[1]
    present = [label for label in labels if label in set(references) | set(predictions)]
    precision, recall, f1, support = _f1_parts(metric.stats.sum(0), len(present))
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(present, precision, recall, f1, support)
    }


# ---- language modelling ----------------------------------------------------------------------------


def language_model_metrics(nll_sums, token_counts, correct_counts) -> list[Metric]:
    """eval_loss (mean token NLL), perplexity and next-token accuracy from per-example sums."""
    stats = np.stack(
        [np.asarray(nll_sums, float), np.asarray(token_counts, float), np.asarray(correct_counts, float)], 1
    )
    return [
        Metric("eval_loss", stats, lambda t: t[0] / t[1] if t[1] else 0.0),
        Metric("perplexity", stats, lambda t: math.exp(min(t[0] / t[1], 50.0)) if t[1] else 0.0),
        Metric("token_accuracy", stats, lambda t: t[2] / t[1] if t[1] else 0.0),
    ]


LOWER_IS_BETTER = {"eval_loss", "perplexity"}
UNBOUNDED = {"bleu", "chrf", "eval_loss", "perplexity"}  # not on a 0-1 scale
