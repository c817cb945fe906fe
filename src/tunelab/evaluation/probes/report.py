"""The probes' part of report.html: each probe's verdict in plain words, then its numbers."""

from tunelab.evaluation.html_parts import esc, table


def probe_block(title: str, probe: dict, rows: list[list], headers: list[str], extra: str = "") -> str:
    flag = " flag" if probe.get("flagged") else ""
    verdict = f'<p class="verdict{flag}">{esc(probe.get("verdict", "not run"))}</p>'
    return f"<h3>{esc(title)}</h3>{verdict}" + (table(headers, rows) if rows else "") + extra


def bias_block(probe: dict) -> str:
    rows = [
        [name, probe[name]["change_rate"]]
        + ([probe[name]["mean_token_f1_within_pair"]] if "mean_token_f1_within_pair" in probe[name] else [])
        for name in ("base", "tuned")
        if name in probe
    ]
    headers = ["model", "share of pairs whose output changed"] + (
        ["token F1 within pair"] if rows and len(rows[0]) > 2 else []
    )
    examples = probe.get("examples", [])[:5]
    extra = ""
    if examples:
        keys = [k for k in examples[0] if k not in ("input", "swapped_input")]
        extra = (
            "<details><summary>Pairs</summary>"
            + table(
                ["input", "swapped input"] + keys,
                [[e["input"], e["swapped_input"]] + [e.get(k, "") for k in keys] for e in examples],
            )
            + "</details>"
        )
    return probe_block("Bias (counterfactual pairs)", probe, rows, headers, extra)


def hallucination_block(probe: dict) -> str:
    rows = [
        [name, probe[name]["unsupported_word_share"], probe[name]["unsupported_entity_share"]]
        for name in ("base", "tuned")
        if name in probe
    ]
    return probe_block(
        "Hallucination (content not in source or reference)",
        probe,
        rows,
        ["model", "unsupported content words", "unsupported entities"],
    )


def forgetting_block(probe: dict) -> str:
    rows = [[name, probe[f"{name}_perplexity"]] for name in ("base", "tuned") if f"{name}_perplexity" in probe]
    answers = probe.get("answers", [])
    extra = ""
    if answers:
        keys = [k for k in ("base", "tuned") if k in answers[0]]
        extra = (
            "<details><summary>General instructions</summary>"
            + table(
                ["instruction"] + [f"{k} answer" for k in keys],
                [[a["instruction"]] + [a[k] for k in keys] for a in answers],
            )
            + "</details>"
        )
    return probe_block(
        "Forgetting (general-text perplexity and general instructions)",
        probe,
        rows,
        ["model", "general-text perplexity"],
        extra,
    )


def probes_section(probes: dict) -> str:
    if not probes:
        return ""
    return (
        "<h2>Probes</h2>"
        + bias_block(probes.get("bias", {}))
        + hallucination_block(probes.get("hallucination", {}))
        + forgetting_block(probes.get("forgetting", {}))
    )
