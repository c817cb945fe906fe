"""The models the service answers with: base models, and fine-tuned ones as LoRA adapters on a shared base.

Each base model is loaded once; a fine-tuned model's adapter is loaded on first use (PEFT
load_adapter) and switched in per request under one lock, so many fine-tuned models cost one
base in memory. A run without adapter/ (a full fine-tune) is loaded whole and cached.
"""

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tunelab.server.api_errors import ApiError
from tunelab.server.store import Store


@dataclass
class Target:
    model_id: str
    base_name: str
    run_dir: Path | None = None  # a fine-tuned model's run folder

    @property
    def adapter_name(self) -> str:
        return "ft_" + re.sub(r"\W", "_", self.run_dir.parent.name)


@dataclass
class Ready:
    model: object
    tokenizer: object


class ModelPool:
    def __init__(self, config, store: Store):
        self.config, self.store = config, store
        self.lock = threading.Lock()  # one generation at a time: adapters are switched on the shared base
        self.bases: dict[str, Ready] = {}
        self.full: dict[str, Ready] = {}

    def listing(self) -> list[dict]:
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "tunelab"} for name in self.config.base_models()
        ]
        models += [
            {
                "id": job["fine_tuned_model"],
                "object": "model",
                "created": job["finished_at"] or job["created_at"],
                "owned_by": "user",
            }
            for job in self.store.fine_tuned_models()
        ]
        return models

    def target(self, model_id: str) -> Target:
        bases = self.config.base_models()
        if model_id in bases:
            return Target(model_id, bases[model_id])
        job = self.store.job_by_model(model_id)
        if job is None:
            raise ApiError(404, f"The model '{model_id}' does not exist.", "model", "model_not_found")
        return Target(model_id, job["base_name"], self.config.jobs_dir / job["id"] / "run")

    def base(self, base_name: str) -> Ready:
        if base_name not in self.bases:
            from tunelab.models.loading import load_model, load_tokenizer
            from tunelab.training.batches import ensure_chat_template

            tokenizer = load_tokenizer(base_name)
            ensure_chat_template(tokenizer)
            self.bases[base_name] = Ready(load_model(base_name, "causal-lm").eval(), tokenizer)
        return self.bases[base_name]

    @contextmanager
    def use(self, target: Target):
        """The model ready to generate for `target`, held under the lock for the whole block."""
        with self.lock:
            if target.run_dir is not None and not (target.run_dir / "adapter" / "adapter_config.json").exists():
                yield self.whole_run(target.run_dir)
                return
            ready = self.base(target.base_name)
            if target.run_dir is None:
                with self.without_adapters(ready.model):
                    yield ready
                return
            ready.model = self.with_adapter(ready.model, target)
            ready.model.set_adapter(target.adapter_name)
            yield ready

    def with_adapter(self, model, target: Target):
        from peft import PeftModel

        folder = str(target.run_dir / "adapter")
        if not isinstance(model, PeftModel):
            return PeftModel.from_pretrained(model, folder, adapter_name=target.adapter_name).eval()
        if target.adapter_name not in model.peft_config:
            model.load_adapter(folder, adapter_name=target.adapter_name)
        return model

    @contextmanager
    def without_adapters(self, model):
        from peft import PeftModel

        if isinstance(model, PeftModel):
            with model.disable_adapter():
                yield
        else:
            yield

    def whole_run(self, run_dir: Path) -> Ready:
        key = str(run_dir)
        if key not in self.full:
            from tunelab.inference.engine import load_target

            loaded = load_target(key)
            self.full[key] = Ready(loaded.model, loaded.tokenizer)
        return self.full[key]
