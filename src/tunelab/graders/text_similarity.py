"""`text_similarity`: a similarity metric between the rendered input and the rendered reference, 0-1."""

from tunelab.graders.base import Grader, Outcome, Spec
from tunelab.graders.similarity import PAIR_METRICS
from tunelab.graders.templates import Sample, render

EVALUATION_METRICS = ("cosine", *PAIR_METRICS)


class TextSimilarityGrader(Grader):
    type = "text_similarity"
    keys = ("input", "reference", "evaluation_metric")

    def __init__(self, name: str, input: str, reference: str, evaluation_metric: str):
        super().__init__(name)
        self.input, self.reference, self.evaluation_metric = input, reference, evaluation_metric

    @classmethod
    def from_spec(cls, spec: Spec) -> "TextSimilarityGrader":
        metric = spec.choice("evaluation_metric", EVALUATION_METRICS)
        return cls(spec.name, spec.text("input"), spec.text("reference"), metric)

    def pairs(self, samples: list[Sample], items: list[dict]) -> tuple[list[str], list[str]]:
        texts = [render(self.input, sample, item) for sample, item in zip(samples, items)]
        return texts, [render(self.reference, sample, item) for sample, item in zip(samples, items)]

    def grade_batch(self, samples: list[Sample], items: list[dict]) -> list[Outcome]:
        """Cosine embeds the whole batch in one pass; the other metrics go pair by pair."""
        texts, references = self.pairs(samples, items)
        if self.evaluation_metric == "cosine":
            from tunelab.graders.embeddings import cosine_similarities

            return [Outcome(value) for value in cosine_similarities(texts, references)]
        metric = PAIR_METRICS[self.evaluation_metric]
        return [Outcome(float(metric(text, reference))) for text, reference in zip(texts, references)]
