"""The models the service answers with: base models, and fine-tuned ones (final models and epoch checkpoints) as
LoRA adapters on a shared base.

Each base model is loaded once; a fine-tuned model's adapter is loaded on first use (PEFT
load_adapter) and switched in per request under one lock, so many fine-tuned models cost one
base in memory. A run without adapter/ (a full fine-tune) is loaded whole and cached. A caller
sees its project's fine-tuned models and the checkpoints other projects shared with it; any other
`ft:` id is answered as if it did not exist.
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
    adapter_dir: Path | None = None  # an epoch checkpoint's adapter (None: the run's final one)

    @property
    def adapter_name(self) -> str:
        return "ft_" + re.sub(r"\W", "_", self.model_id)

    @property
    def adapter_folder(self) -> Path:
        return self.adapter_dir or self.run_dir / "adapter"


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

    def listing(self, project: str) -> list[dict]:
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "tunelab"} for name in self.config.base_models()
        ]
        models += [
            {"id": row["model"], "object": "model", "created": row["created"], "owned_by": row["project"]}
            for row in self.store.usable_models(project)
        ]
        return models

    def target(self, model_id: str, project: str) -> Target:
        bases = self.config.base_models()
        if model_id in bases:
            return Target(model_id, bases[model_id])
        row = next((r for r in self.store.usable_models(project) if r["model"] == model_id), None)
        if row is None:
            raise ApiError(404, f"The model '{model_id}' does not exist.", "model", "model_not_found")
        adapter_dir = Path(row["adapter_dir"]) if row["adapter_dir"] else None
        return Target(model_id, row["base_name"], self.config.jobs_dir / row["job_id"] / "run", adapter_dir)

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
            if target.run_dir is not None and not (target.adapter_folder / "adapter_config.json").exists():
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

    def forget(self, model_id: str, run_dir: Path) -> None:
        """Unload a deleted model's adapter (or its whole-model run) so it stops serving and frees memory."""
        name = Target(model_id, "").adapter_name
        with self.lock:
            self.full.pop(str(run_dir), None)
            for ready in self.bases.values():
                adapters = getattr(ready.model, "peft_config", {})
                if name in adapters and len(adapters) == 1:
                    ready.model = ready.model.unload()  # the last adapter: back to the plain base
                elif name in adapters:
                    ready.model.delete_adapter(name)

    def with_adapter(self, model, target: Target):
        from peft import PeftModel

        folder = str(target.adapter_folder)
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
