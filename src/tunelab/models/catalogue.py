"""The model catalogue: what tunelab knows about a model's shape and license without network.

A name resolves, in order, to a bundled model, a catalogued hub id (or alias), a local model
folder (its config.json is read) or a converted model in the cache. The shape feeds the cost
planner (memory, FLOPs) and `tunelab models list|recommend`; `openai_classes.yaml` maps OpenAI's
fine-tunable model classes onto catalogued models for `tunelab models recommend --from-openai`.
"""

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import yaml

from tunelab import paths
from tunelab.errors import ModelError
from tunelab.models.architectures import classify

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
OPENAI_CLASSES_FILE = Path(__file__).with_name("openai_classes.yaml")


@dataclass(frozen=True)
class ModelSpec:
    """Shape and facts of one model. Counts are totals (encoder + decoder layers for seq2seq)."""

    name: str
    params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    context: int
    head_dim: int = 0
    tied: bool = True
    gated_mlp: bool = True
    architecture: str = "decoder"
    family: str = ""
    license: str = "unknown"
    permissive: bool = False
    languages: tuple[str, ...] = ()
    use: str = ""
    tasks: tuple[str, ...] = ("causal-lm",)
    tool_calling: bool = False  # the chat template renders OpenAI-style `tools` definitions
    bundled: str | None = None
    local_path: str | None = None
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def attention_dim(self) -> int:
        return self.heads * (self.head_dim or self.hidden // self.heads)

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.head_dim or self.hidden // self.heads)

    def linear_shapes(self) -> list[tuple[str, int, int]]:
        """(name, in, out) of the linear layers in one block: the modules 'all-linear' adapts."""
        h, a, kv, i = self.hidden, self.attention_dim, self.kv_dim, self.intermediate
        attention = [("q_proj", h, a), ("k_proj", h, kv), ("v_proj", h, kv), ("o_proj", a, h)]
        mlp = (
            [("gate_proj", h, i), ("up_proj", h, i), ("down_proj", i, h)]
            if self.gated_mlp
            else [("up_proj", h, i), ("down_proj", i, h)]
        )
        return attention + mlp

    def block_params(self) -> int:
        return sum(n_in * n_out for _, n_in, n_out in self.linear_shapes()) + 2 * self.hidden

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)


def shape_params(spec: ModelSpec) -> int:
    """Parameters implied by the shape (embeddings, blocks, final norm); biases ignored."""
    return spec.embedding_params() + spec.layers * spec.block_params() + spec.hidden


@lru_cache(maxsize=1)
def catalogue() -> dict[str, ModelSpec]:
    entries = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))["models"]
    return {hub_id: _spec(hub_id, entry) for hub_id, entry in entries.items()}


def _spec(name: str, entry: dict) -> ModelSpec:
    values = dict(entry)
    for key in ("languages", "tasks", "aliases"):
        if key in values:
            values[key] = tuple(values[key])
    values["params"] = float(values["params"])
    return ModelSpec(name=name, **values)


def _index() -> dict[str, ModelSpec]:
    index = {}
    for hub_id, spec in catalogue().items():
        for key in (hub_id, hub_id.split("/")[-1], *spec.aliases, spec.bundled or hub_id):
            index.setdefault(key.lower(), spec)
    return index


@lru_cache(maxsize=1)
def openai_classes() -> dict[str, dict]:
    """OpenAI's fine-tunable model classes and the catalogued open models that replace them (data, not code)."""
    return yaml.safe_load(OPENAI_CLASSES_FILE.read_text(encoding="utf-8"))["classes"]


def known_names() -> list[str]:
    return sorted(catalogue())


def lookup(name: str | None) -> ModelSpec:
    """The spec of a catalogued name, bundled model, local folder or cached model; ModelError otherwise."""
    from tunelab.models.bundled import DEFAULT_FOR_TASK, bundled_name

    name = name or DEFAULT_FOR_TASK["causal-lm"]
    key = bundled_name(name) or name.lower()
    spec = _index().get(key)
    if spec is not None:
        return spec
    folder = Path(name).expanduser()
    if not (folder / "config.json").is_file():
        folder = paths.model_cache() / name
    if (folder / "config.json").is_file():
        return spec_from_folder(folder)
    raise ModelError(
        f"unknown model '{name}': not in the catalogue and not a folder with config.json",
        "use a catalogued hub id (`tunelab models list --catalogue` shows them, e.g. "
        + ", ".join(known_names()[:6])
        + ") or a local model folder",
    )


def spec_from_folder(folder: Path) -> ModelSpec:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{folder}/config.json cannot be read: {exc}", "check the model folder") from None
    spec = spec_from_config(config, name=str(folder))
    return replace(spec, local_path=str(folder))


def _first(config: dict, *keys, default=None):
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


def spec_from_config(config: dict, name: str) -> ModelSpec:
    """A spec from a transformers config.json (Llama-like, BERT-like, GPT-2 and T5 key names)."""
    model_type = config.get("model_type", "")
    hidden = int(_first(config, "hidden_size", "d_model", "n_embd", "dim", default=0))
    heads = int(_first(config, "num_attention_heads", "num_heads", "n_head", "n_heads", default=1))
    layers = int(_first(config, "num_hidden_layers", "num_layers", "n_layer", "n_layers", default=0))
    if not hidden or not layers:
        raise ModelError(
            f"{name}: config.json has no hidden size or layer count (model_type {model_type!r})",
            "use a transformers model folder",
        )
    architecture = classify(config)
    if architecture == "encoder-decoder":
        layers += int(_first(config, "num_decoder_layers", "decoder_layers", default=layers))
    gated = config.get("hidden_act", "") in ("silu", "swiglu") or "gated" in str(config.get("feed_forward_proj", ""))
    spec = ModelSpec(
        name=name,
        params=0.0,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=int(_first(config, "num_key_value_heads", default=heads)),
        intermediate=int(_first(config, "intermediate_size", "d_ff", "n_inner", "hidden_dim", default=4 * hidden)),
        vocab=int(config.get("vocab_size", 32000)),
        context=int(_first(config, "max_position_embeddings", "n_positions", "n_ctx", default=512)),
        head_dim=int(_first(config, "head_dim", "d_kv", default=0)),
        tied=bool(config.get("tie_word_embeddings", True)),
        gated_mlp=gated,
        architecture=architecture,
        family=model_type,
        license=str(config.get("license", "unknown")),
        tasks=("seq2seq",)
        if architecture == "encoder-decoder"
        else ("classification",)
        if architecture == "encoder"
        else ("causal-lm", "classification"),
    )
    return replace(spec, params=float(shape_params(spec)))
