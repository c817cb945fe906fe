"""`tunelab train` and `tunelab init`: flags override the config file, which overrides defaults."""

import json
import os
import sys
from pathlib import Path

import typer

from tunelab.errors import ConfigError
from tunelab.methods.registry import known_methods

DEMO_CONFIG = Path(__file__).parents[1] / "demo.yaml"  # what a bare `tunelab train` runs


def overrides_from_flags(
    data, model, task, method, out, epochs, max_steps, seed, save_steps, backend, sets, grader=None
) -> dict:
    """Command-line flags as dotted config keys; --set key.path=value for everything else."""
    overrides = {
        "data.path": [str(p) for p in data] if data else None,
        "model.name": model,
        "task": task,
        "method": method,
        "out": str(out) if out else None,
        "train.epochs": epochs,
        "train.max_steps": max_steps,
        "train.seed": seed,
        "train.save_steps": save_steps,
        "backend": backend,
        "rl.grader": str(grader) if grader else None,
    }
    from tunelab.config import parse_value

    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not key.path=value", "e.g. --set lora.r=8")
        overrides[key.strip()] = parse_value(value)
    return overrides


def train(
    config_file: Path | None = typer.Argument(None, help="YAML config (see `tunelab init`)."),
    data: list[Path] | None = typer.Option(
        None, "--data", help="Raw data files (prepared on the fly) or a prepared folder."
    ),
    model: str | None = typer.Option(None, "--model", help="Bundled name, model folder or hub id."),
    task: str | None = typer.Option(
        None, "--task", help="causal-lm, classification or seq2seq (default: from the data)."
    ),
    method: str | None = typer.Option(
        None, "--method", help=f"One of: {known_methods()} (`tunelab methods` describes them)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<time>-<method>)."),
    epochs: float | None = typer.Option(None, "--epochs"),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Cap on optimizer steps."),
    seed: int | None = typer.Option(None, "--seed"),
    save_steps: int | None = typer.Option(None, "--save-steps", help="Checkpoint every N steps (resumable)."),
    backend: str | None = typer.Option(None, "--backend", help="local (default) or openai."),
    grader: Path | None = typer.Option(
        None, "--grader", help="Grader JSON (OpenAI's grader objects) that scores grpo's samples and its evaluation."
    ),
    sets: list[str] | None = typer.Option(None, "--set", help="Override any key: --set train.learning_rate=1e-4."),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="Continue a run folder from its last good checkpoint; 'auto' picks the unfinished run of the same config.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Prepare and tokenise, show examples and totals, then stop."),
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle", help="Allow pickle weight files (loaded with weights_only=True)."
    ),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Run model code shipped with a hub model."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the results."),
    num_processes: int = typer.Option(
        1, "--num-processes", help="Processes (devices) in all; >1 launches through Accelerate."
    ),
    num_machines: int = typer.Option(1, "--num-machines", help="Machines taking part (multi-node)."),
    machine_rank: int = typer.Option(0, "--machine-rank", help="This machine's rank, 0 for the main one."),
    main_process_ip: str | None = typer.Option(None, "--main-process-ip", help="Address of machine rank 0."),
    main_process_port: int | None = typer.Option(None, "--main-process-port", help="Port on machine rank 0."),
    strategy: str = typer.Option("ddp", "--strategy", help="ddp, fsdp, deepspeed-zero2 or deepspeed-zero3."),
) -> None:
    """Fine-tune a model; with no arguments, the demo: ticket triage with LoRA on the bundled SmolLM2."""
    from tunelab import progress
    from tunelab.config import load_config
    from tunelab.jobs import finetune
    from tunelab.runs import unfinished_run_of

    if (num_processes > 1 or num_machines > 1) and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(
            launch(num_processes, num_machines, machine_rank, main_process_ip, main_process_port, strategy, out)
        )
    progress.set_quiet(False)
    if config_file is None and not data and resume is None:
        config_file = DEMO_CONFIG
    overrides = overrides_from_flags(
        data, model, task, method, out, epochs, max_steps, seed, save_steps, backend, sets, grader
    )
    overrides.update({"model.allow_pickle": allow_pickle or None, "model.trust_remote_code": trust_remote_code or None})
    config = load_config(config_file, overrides)
    if resume == Path("auto"):
        resume = unfinished_run_of(config)
        progress.say(
            f"--resume auto: continuing {resume}"
            if resume
            else "--resume auto: no unfinished run of this config; starting afresh"
        )
    summary = finetune.run(config, resume=resume, dry_run=dry_run)
    if summary.get("rank"):  # only the main process reports
        return
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        show_summary(summary)


LAUNCH_FLAGS = {
    "--num-processes",
    "--num-machines",
    "--machine-rank",
    "--main-process-ip",
    "--main-process-port",
    "--strategy",
}


def launch(num_processes, num_machines, machine_rank, main_process_ip, main_process_port, strategy, out) -> int:
    """Re-run this command under `accelerate launch`, one process per device, on this machine."""
    import shutil
    import subprocess

    from tunelab.training.distributed import STRATEGY_FLAGS, launch_command

    if strategy not in STRATEGY_FLAGS:
        raise ConfigError(f"--strategy {strategy} is not known", f"use one of {', '.join(STRATEGY_FLAGS)}")
    if strategy.startswith("deepspeed") and not shutil.which("deepspeed"):
        raise ConfigError(
            f"--strategy {strategy} needs DeepSpeed, which is not installed", "pip install deepspeed (GPU machines)"
        )
    if out is None:
        raise ConfigError(
            "a distributed run needs --out, so that every process writes to the same run folder", "add --out runs/NAME"
        )
    args, skip = [], False
    for arg in sys.argv[2:]:  # the train arguments as given, minus the launcher's own
        if skip:
            skip = False
        elif arg.split("=")[0] in LAUNCH_FLAGS:
            skip = "=" not in arg
        else:
            args.append(arg)
    command = launch_command(
        num_processes, num_machines, machine_rank, main_process_ip, main_process_port, strategy, args
    )
    command[0] = str(Path(sys.executable).with_name("accelerate"))
    return subprocess.call(command)


def show_summary(summary: dict) -> None:
    from rich.table import Table

    from tunelab.progress import console

    metrics = summary.get("metrics") or {}
    base, tuned = metrics.get("base") or {}, metrics.get("tuned") or {}
    if tuned:
        table = Table(title=f"base vs tuned (primary: {metrics.get('primary_metric')})")
        for column in ("metric", "base", "tuned"):
            table.add_column(column)
        for name, value in tuned.items():
            if isinstance(value, (int, float)):
                base_value = base.get(name)
                table.add_row(
                    name, f"{base_value:.4f}" if isinstance(base_value, (int, float)) else "-", f"{value:.4f}"
                )
        console.print(table)
    console.print(f"run folder: {summary['run_dir']} ({summary['status']})")


def init(
    path: Path = typer.Argument(Path("tunelab.yaml"), help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented config file with every key, its default and what it does."""
    from tunelab.config import commented_yaml
    from tunelab.progress import say

    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "pass --force to overwrite, or choose another path")
    path.write_text(
        "# tunelab run configuration. Flags on `tunelab train` override these values.\n" + commented_yaml() + "\n"
    )
    say(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("init")(init)
