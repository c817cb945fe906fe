"""The end of a sweep: a table of trials, parameter importances, the best config, and a report with
the optimisation history (sweep.json, best_config.yaml and sweep_report.html in the study folder)."""

import html
from pathlib import Path

from tunelab.config import save_config
from tunelab.progress import say
from tunelab.runs import atomic_write_text, write_json
from tunelab.search.space import apply_values


def trial_rows(study) -> list[dict]:
    from tunelab.search.sweep import counted_trials

    rows = []
    for t in counted_trials(study.get_trials(deepcopy=False)):
        steps = sorted(t.intermediate_values)
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": dict(t.params),
                "last_step": steps[-1] if steps else None,
                "pruned_at_step": t.user_attrs.get("pruned_at_step"),
                "run_dir": t.user_attrs.get("run_dir"),
                "seconds": t.duration.total_seconds() if t.duration else None,
            }
        )
    return sorted(rows, key=lambda r: r["number"])


def importances(study) -> dict:
    """fANOVA importances over completed trials; empty when there are too few to say."""
    import optuna

    try:
        return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}


def history_plot(rows: list[dict]) -> str | None:
    """Objective per trial (pruned trials at their last reported value) and the best so far."""
    from tunelab.evaluation.figures import _pyplot, img_tag

    done = [(r["number"], r["value"]) for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    if not done:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 3.4))
    axis.plot(*zip(*done), "o", label="completed trial", color="#1f77b4")
    best, line = float("inf"), []
    for number, value in done:
        best = min(best, value)
        line.append((number, best))
    axis.step(*zip(*line), where="post", label="best so far", color="#d62728")
    pruned = [r["number"] for r in rows if r["state"] == "PRUNED"]
    for number in pruned:
        axis.axvline(number, color="#999999", alpha=0.4, linestyle=":")
    axis.set_xlabel("trial")
    axis.set_ylabel("validation loss")
    axis.set_title(f"Optimisation history ({len(pruned)} pruned, dotted)")
    axis.grid(alpha=0.3)
    axis.legend()
    return img_tag(figure, "optimisation history")


def write_report(path: Path, name: str, rows: list[dict], ranked: dict, best: dict | None) -> None:
    keys = sorted({k for r in rows for k in r["params"]})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["trial", "state", "validation loss", "last step", *keys])
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c))}</td>"
            for c in [
                r["number"],
                r["state"],
                _fmt(r["value"]),
                r["last_step"],
                *[_fmt(r["params"].get(k)) for k in keys],
            ]
        )
        + "</tr>"
        for r in rows
    )
    importance = (
        "".join(f"<li>{html.escape(k)}: {v:.3f}</li>" for k, v in ranked.items()) or "<li>too few completed trials</li>"
    )
    best_text = (
        f"trial {best['number']}, validation loss {best['value']:.4f}: {html.escape(str(best['params']))}"
        if best
        else "no trial completed"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {html.escape(name)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}"
        "table{border-collapse:collapse}</style></head><body>"
        f"<h1>Sweep {html.escape(name)}</h1><p>Best: {best_text}</p>"
        f"<h2>Optimisation history</h2>{history_plot(rows) or '<p>no completed trials</p>'}"
        f"<h2>Parameter importances</h2><ul>{importance}</ul>"
        f"<h2>Trials</h2><table><tr>{head}</tr>{body}</table></body></html>"
    )
    atomic_write_text(path, page)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def summarise(study, config, space: dict, study_dir: Path, url: str) -> dict:
    rows = trial_rows(study)
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    best = min(complete, key=lambda r: r["value"]) if complete else None
    best_config = None
    if best:
        best_config = study_dir / "best_config.yaml"
        save_config(apply_values(config, best["params"], {"out": None}), best_config)
    ranked = importances(study) if len(complete) >= 2 else {}
    write_report(study_dir / "sweep_report.html", study.study_name, rows, ranked, best)
    result = {
        "study": study.study_name,
        "storage": url,
        "study_dir": str(study_dir),
        "space": space,
        "n_trials": len(rows),
        "states": {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")},
        "best": best,
        "best_config": str(best_config) if best_config else None,
        "importances": ranked,
        "report": str(study_dir / "sweep_report.html"),
        "trials": rows,
    }
    write_json(study_dir / "sweep.json", result)
    say(
        f"study {study.study_name}: {result['states']}; best "
        + (f"trial {best['number']} loss {best['value']:.4f}" if best else "none")
    )
    return result
