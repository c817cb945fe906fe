"""TensorBoard event files in the run folder (`tracking.tensorboard: true`), beside MLflow."""

from pathlib import Path

STEP_METRICS = ("loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second")


class TensorBoardTracker:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def log_params(self, params: dict) -> None:
        self.writer.add_text("config", "\n".join(f"    {key}: {value}" for key, value in sorted(params.items())))

    def log_step(self, record: dict) -> None:
        for name in STEP_METRICS:
            if isinstance(record.get(name), (int, float)):
                self.writer.add_scalar(f"train/{name}", record[name], record["step"])

    def log_result(self, summary: dict, evaluation: dict, run_dir: Path) -> None:
        for model in ("base", "tuned"):
            for name, value in (evaluation.get(model) or {}).items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"eval_{model}/{name}", value, summary.get("steps", 0))

    def close(self, status: str) -> None:
        self.writer.close()
