"""Sentence embeddings for the `cosine` metric: the bundled all-MiniLM-L6-v2, mean-pooled and L2-normalised.

That is how sentence-transformers builds this model's embeddings (its 1_Pooling config asks for
mean pooling; the model card normalises them); done here with plain transformers so no further
dependency is needed. The encoder loads once per process, on first use.
"""

from functools import lru_cache

EMBEDDING_MODEL = "all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's own max_seq_length


@lru_cache(maxsize=2)
def encoder(name: str = EMBEDDING_MODEL):
    from transformers import AutoModel, AutoTokenizer

    from tunelab.models.loading import resolve_model_path

    path = resolve_model_path(name)
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def embed(texts: list[str], batch_size: int = 64):
    """One unit-length row per text (a numpy array)."""
    import numpy as np
    import torch

    tokenizer, model = encoder()
    rows = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        with torch.no_grad():
            hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 0))


def cosine_similarities(texts: list[str], references: list[str]) -> list[float]:
    """Cosine of each text with its reference, both embedded in one pass."""
    vectors = embed(texts + references)
    left, right = vectors[: len(texts)], vectors[len(texts) :]
    return [float(value) for value in (left * right).sum(1)]
