"""The metrics of OpenAI's `text_similarity` grader, each a 0-1 score of one (text, reference) pair.

Libraries where the project already depends on them: sacrebleu (BLEU, sentence level with
exponential smoothing), rouge-score (ROUGE-N and ROUGE-L F-measure, Porter stemming as in
evaluation/metrics.py), and nltk, which rouge-score depends on (Google-BLEU; METEOR). METEOR needs
WordNet for its synonym stage; the corpus is a separate download, so where it is missing METEOR
runs nltk's exact and stem stages only (alpha 0.9, beta 3, gamma 0.5). fuzzy_match is
rapidfuzz's `ratio` when rapidfuzz is installed, else difflib's `SequenceMatcher.ratio`, which
agree on most pairs (both are 2·matches / total length). cosine is the cosine of all-MiniLM-L6-v2
sentence embeddings (embeddings.py).
"""

import difflib
import re
from functools import lru_cache

TOKEN = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Words and punctuation marks: nltk's word_tokenize needs the punkt download, so a regex stands in."""
    return TOKEN.findall(text)


def fuzzy_match(text: str, reference: str) -> float:
    try:
        from rapidfuzz import fuzz
    except ImportError:
        return difflib.SequenceMatcher(None, text, reference).ratio()
    return fuzz.ratio(text, reference) / 100


def bleu(text: str, reference: str) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(text, [reference]).score / 100


def gleu(text: str, reference: str) -> float:
    """Google-BLEU: the smaller of n-gram precision and recall over n = 1..4 (Wu et al., 2016)."""
    from nltk.translate.gleu_score import sentence_gleu

    hypothesis, reference_words = words(text), words(reference)
    if not hypothesis or not reference_words:
        return float(hypothesis == reference_words)
    return sentence_gleu([reference_words], hypothesis)


class _NoWordNet:
    """Stands in for the WordNet corpus: no synonyms, so METEOR matches exact words and stems only."""

    def synsets(self, word):
        return []


@lru_cache(maxsize=1)
def _wordnet():
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        return _NoWordNet()
    from nltk.corpus import wordnet

    return wordnet


def meteor(text: str, reference: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    hypothesis, reference_words = words(text), words(reference)
    if not hypothesis or not reference_words:
        return float(hypothesis == reference_words)
    return meteor_score([reference_words], hypothesis, wordnet=_wordnet())


@lru_cache(maxsize=8)
def _rouge_scorer(kind: str):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=True)


def rouge(kind: str):
    """The F-measure of one ROUGE variant (`rouge1` ... `rouge5`, `rougeL`)."""

    def score(text: str, reference: str) -> float:
        return _rouge_scorer(kind).score(reference, text)[kind].fmeasure

    return score


PAIR_METRICS = {
    "fuzzy_match": fuzzy_match,
    "bleu": bleu,
    "gleu": gleu,
    "meteor": meteor,
    **{f"rouge_{n}": rouge(f"rouge{n}") for n in range(1, 6)},
    "rouge_l": rouge("rougeL"),
}
