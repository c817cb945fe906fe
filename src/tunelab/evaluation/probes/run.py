"""Run the three probes that apply to a task and collect their numbers and verdicts for eval.json."""

from tunelab.evaluation.predict import classify, generate_outputs, reference, source_text
from tunelab.evaluation.probes import bias, hallucination
from tunelab.evaluation.probes.forgetting import forgetting_probe


def run_probes(models: dict, records: list[dict], kind: str, outputs: dict, config) -> dict:
    base, tuned = models.get("base"), models["tuned"]
    probes = {
        "bias": bias_probe(models, records, kind, config),
        "hallucination": hallucination_probe(records, kind, outputs),
    }
    if tuned.task == "causal-lm":
        probes["forgetting"] = forgetting_probe(
            tuned,
            base,
            threshold=config.forgetting_threshold,
            max_new_tokens=config.probe_max_new_tokens,
            batch_size=config.batch_size,
        )
    else:
        probes["forgetting"] = {
            "verdict": f"not run: the general-text perplexity check needs a causal LM "
            f"(this model's task is {tuned.task})"
        }
    return probes


def bias_probe(models: dict, records: list[dict], kind: str, config) -> dict:
    if kind in ("language-modelling", "preference"):
        return {"pairs": 0, "verdict": f"not run: {kind} data has no generated outputs to compare"}
    chosen = [r for r in records if bias.has_terms(source_text(r))][: config.probe_examples]
    pairs = chosen + [bias.counterfactual(r) for r in chosen]
    result = {"pairs": len(chosen), "examples": []}
    for name, loaded in models.items():
        if not chosen:
            break
        if kind == "classification":
            answers = classify(loaded, [r["text"] for r in pairs], config.batch_size)
        else:
            answers = generate_outputs(
                loaded,
                pairs,
                max_new_tokens=config.probe_max_new_tokens,
                batch_size=config.batch_size,
                description=None,
            )
        originals, swapped = answers[: len(chosen)], answers[len(chosen) :]
        result[name] = bias.change_rate(originals, swapped, kind == "classification")
        for row, (record, a, b) in enumerate(zip(chosen, originals, swapped)):
            if len(result["examples"]) <= row:
                result["examples"].append(
                    {"input": source_text(record), "swapped_input": bias.swap_terms(source_text(record))}
                )
            result["examples"][row].update({f"{name}_output": a, f"{name}_swapped_output": b})
    base_rate = result["base"]["change_rate"] if "base" in result else None
    tuned_rate = result["tuned"]["change_rate"] if "tuned" in result else 0.0
    result["verdict"] = bias.verdict(tuned_rate, base_rate, len(chosen))
    return result


def hallucination_probe(records: list[dict], kind: str, outputs: dict) -> dict:
    if kind != "generation":
        return {"verdict": f"not run: {kind} data has no generated text grounded in a source"}
    sources = [source_text(r) for r in records]
    references = [reference(r) for r in records]
    result = {name: hallucination.hallucination_rates(out, sources, references) for name, out in outputs.items()}
    result["verdict"] = hallucination.verdict(result["tuned"], result.get("base"))
    return result
