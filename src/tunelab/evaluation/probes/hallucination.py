"""Hallucination probe: the share of an output's content words and named entities found in neither the
source nor the reference. Meaningful where the output should be grounded in an input text
(summaries, headlines, extraction)."""

import re

from tunelab.evaluation.metrics import tokens

STOPWORDS = set(
    """a an the and or but if then else of to in on at by for with from as is are was were be been being it its
this that these those there here he she they we you i me my our your his her their them us not no nor so than too very
can could will would shall should may might must do does did done have has had having into over under about after before
up down out off again more most some any each few other such only own same just also all both who whom which what when
where why how s t""".split()
)
_ENTITY = re.compile(r"\b(?:[A-Z][a-zA-Z]+|\d[\d,.]*)\b")


def content_words(text: str) -> set[str]:
    return {w for w in tokens(text) if w not in STOPWORDS and len(w) > 2}


def entities(text: str) -> set[str]:
    """Capitalised words not opening a sentence, and numbers: a cheap stand-in for named entities."""
    found = set()
    for match in _ENTITY.finditer(text):
        before = text[: match.start()].rstrip()
        if match.group(0)[0].isdigit() or (before and before[-1] not in ".!?:\n"):
            found.add(match.group(0).lower().rstrip(".,"))
    return found


def unsupported_share(output: str, source: str, reference: str) -> tuple[float, float, int, int]:
    """(words unsupported, words total, entities unsupported, entities total) for one output."""
    known = (
        content_words(source)
        | content_words(reference)
        | {w.lower() for w in re.findall(r"\w+", source + " " + reference)}
    )
    words = content_words(output)
    ents = entities(output)
    return (len(words - known), len(words), len(ents - known), len(ents))


def hallucination_rates(outputs: list[str], sources: list[str], references: list[str]) -> dict:
    totals = [0, 0, 0, 0]
    for row in (unsupported_share(o, s, r) for o, s, r in zip(outputs, sources, references)):
        totals = [a + b for a, b in zip(totals, row)]
    return {
        "unsupported_word_share": totals[0] / totals[1] if totals[1] else 0.0,
        "unsupported_entity_share": totals[2] / totals[3] if totals[3] else 0.0,
        "content_words": totals[1],
        "entities": totals[3],
    }


def verdict(tuned: dict, base: dict | None) -> str:
    share = tuned["unsupported_word_share"]
    if base is None:
        return f"{share:.0%} of the tuned model's content words appear in neither the source nor the reference"
    before = base["unsupported_word_share"]
    trend = "fewer" if share < before - 0.02 else "more" if share > before + 0.02 else "about as many"
    return (
        f"{trend} unsupported words than the base model: {share:.0%} of content words appear in neither source "
        f"nor reference, vs {before:.0%} before tuning"
    )
