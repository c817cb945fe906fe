"""Turn normalised records into (input, reference) pairs and get a model's outputs for them.

Record shapes: chat {"messages"} (the reference is the last assistant message, its tool calls written as
data/tools.py writes them), seq2seq {"source", "target"}, classification {"text", "label"}, language
modelling {"text"}.
"""

from tunelab.data.tools import assistant_text, plain_messages
from tunelab.errors import DataError
from tunelab.inference.generate import chat_prompt, generate
from tunelab.progress import track


def family(records: list[dict]) -> str:
    """Which metrics apply, read from the records' shape."""
    if not records:
        raise DataError("the evaluation split is empty", "give the data a test split (or pass --split validation)")
    first = records[0]
    if "label" in first:
        return "classification"
    if {"prompt", "chosen", "rejected"} <= set(first):
        return "preference"
    if "messages" in first and not any(m.get("role") == "assistant" for m in first["messages"]):
        return "reinforcement"  # prompts only: scored by a grader
    if "messages" in first or "source" in first:
        return "generation"
    if "text" in first:
        return "language-modelling"
    raise DataError(
        f"cannot evaluate records with keys {sorted(first)}", "prepare the data with `tunelab data prepare`"
    )


def source_text(record: dict) -> str:
    """The human-readable input: the source, the text, or the conversation before the answer."""
    if "prompt" in record and "chosen" in record:
        return "\n".join(str(m.get("content") or "") for m in record["prompt"] if m["role"] != "system")
    if "messages" in record:
        messages = record["messages"]
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]
        return "\n".join(m["content"] for m in plain_messages(messages) if m["role"] != "system") or ""
    return record.get("source", record.get("text", ""))


def reference(record: dict) -> str:
    if "chosen" in record:
        return str(record["chosen"].get("content") or "")
    if "messages" in record:
        answers = [assistant_text(m) for m in record["messages"] if m["role"] == "assistant"]
        return answers[-1] if answers else ""
    return str(record.get("target", record.get("label", "")))


def model_prompt(record: dict, tokenizer) -> str:
    if "messages" in record:
        return chat_prompt(tokenizer, record["messages"], record.get("tools"))
    return record["source"]


def generate_outputs(
    loaded,
    records: list[dict],
    *,
    max_new_tokens: int,
    batch_size: int,
    description: str,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: list[str] | None = None,
) -> list[str]:
    prompts = [model_prompt(r, loaded.tokenizer) for r in records]
    return generate(
        loaded.model,
        loaded.tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=stop,
        batch_size=batch_size,
        description=description,
        encoder_decoder=loaded.encoder_decoder,
    )


def label_names(model) -> dict[int, str]:
    id2label = getattr(model.config, "id2label", None) or {}
    return {int(k): str(v) for k, v in id2label.items()}


def classify(
    loaded, texts: list[str], batch_size: int = 32, description: str | None = None, max_length: int = 512
) -> list[str]:
    """Predicted label names: the classifier head's argmax, in batches, mapped through id2label."""
    import torch

    names = label_names(loaded.model)
    tokenizer, model = loaded.tokenizer, loaded.model
    tokenizer.padding_side = "right"
    starts = range(0, len(texts), batch_size)
    predictions: list[str] = []
    model.eval()
    for start in track(starts, description) if description else starts:
        encoded = tokenizer(
            texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=max_length
        ).to(model.device)
        with torch.no_grad():
            logits = model(**encoded).logits
        predictions += [names.get(int(i), str(int(i))) for i in logits.argmax(-1).tolist()]
    return predictions


def language_model_stats(
    model,
    tokenizer,
    records: list[dict],
    task: str,
    batch_size: int = 8,
    max_length: int = 1024,
    description: str | None = None,
) -> tuple[list[float], list[int], list[int]]:
    """Per record: summed next-token NLL over the tokens training puts loss on, their count, and how many the
    model's argmax predicts. Encoding and masking come from training, so the ratio is training's eval loss."""
    import torch

    from tunelab.training.batches import collate_padded, encode_record, ensure_chat_template
    from tunelab.training.losses import token_statistics

    ensure_chat_template(tokenizer)
    lm_task = "seq2seq" if task == "seq2seq" else "causal-lm"
    examples = [encode_record(r, tokenizer, lm_task, max_length=max_length) for r in records]
    nll, counts, correct = [], [], []
    starts = range(0, len(examples), batch_size)
    model.eval()
    for start in track(starts, description) if description else starts:
        batch = collate_padded(examples[start : start + batch_size], tokenizer.pad_token_id, lm_task)
        with torch.no_grad():
            stats = token_statistics(model, {k: v.to(model.device) for k, v in batch.items()})
        nll += stats.loss.tolist()
        counts += stats.count.tolist()
        correct += stats.correct.long().tolist()
    return nll, counts, correct
