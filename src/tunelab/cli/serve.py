"""`tunelab serve`: the OpenAI-compatible service (files, fine-tuning jobs, chat) on this machine."""

from pathlib import Path

import typer

from tunelab.errors import ConfigError


def pairs(items: list[str] | None, flag: str, example: str) -> dict[str, str]:
    parsed = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} {item!r} is not NAME=VALUE", f"e.g. {flag} {example}")
        parsed[key.strip()] = value.strip()
    return parsed


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback unless told otherwise)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    api_keys: list[str] | None = typer.Option(
        None,
        "--api-key",
        envvar="TUNELAB_API_KEY",
        help="Bearer key clients must send, as KEY or KEY:PROJECT (repeatable); none = open.",
    ),
    keys_file: Path | None = typer.Option(
        None, "--api-keys-file", help="File of KEY[:PROJECT] lines (keeps keys off the command line)."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="Service state: jobs.db, files/, jobs/ (default TUNELAB_HOME/serve)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, max=16, help="Fine-tuning jobs that run at the same time."),
    models: list[str] | None = typer.Option(None, "--model", help="Extra base model NAME=PATH_OR_NAME (repeatable)."),
    max_upload_mb: float = typer.Option(100, "--max-upload-mb", help="Largest accepted upload, in MiB."),
    job_sets: list[str] | None = typer.Option(
        None, "--job-set", help="Run-config key for every job: --job-set train.max_steps=50."
    ),
    webhook: str | None = typer.Option(
        None, "--webhook", help="URL that receives signed fine_tuning.job.succeeded|failed|cancelled events."
    ),
    webhook_secret: str | None = typer.Option(
        None, "--webhook-secret", envvar="TUNELAB_WEBHOOK_SECRET", help="Signing secret (whsec_...) for --webhook."
    ),
) -> None:
    """Serve OpenAI's files, fine-tuning and chat APIs over the local trainer (use the official openai client)."""
    import uvicorn

    from tunelab import paths
    from tunelab.config import parse_value
    from tunelab.progress import say
    from tunelab.server.app import create_app
    from tunelab.server.config import ServeConfig, read_keys_file

    if webhook and not webhook_secret:
        raise ConfigError("--webhook needs --webhook-secret", "give the whsec_... secret the receiver verifies with")

    config = ServeConfig(
        home=(home or paths.home() / "serve").resolve(),
        host=host,
        port=port,
        api_keys=list(api_keys or []) + (read_keys_file(keys_file) if keys_file else []),
        workers=workers,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        models=pairs(models, "--model", "tiny=./models/tiny"),
        job_overrides={k: parse_value(v) for k, v in pairs(job_sets, "--job-set", "train.max_steps=50").items()},
        webhook_url=webhook,
        webhook_secret=webhook_secret,
    )
    config.projects_by_key()  # a malformed key entry stops here, before the port opens
    if host not in ("127.0.0.1", "localhost", "::1") and not config.api_keys:
        say(f"[yellow]warning:[/] serving on {host} without --api-key: anyone who can reach it can train and chat")
    say(f"tunelab serve: http://{host}:{port}/v1 (home {config.home}; OpenAPI at /openapi.json)")
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", timeout_graceful_shutdown=15)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
