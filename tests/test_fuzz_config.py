"""Config files are user input: any YAML gives a RunConfig or a ConfigError naming the key, never another exception."""

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tunelab.config import RunConfig, load_config, parse_value
from tunelab.errors import ConfigError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def known_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the config, so the fuzzer mostly hits real fields with wrong values."""
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += known_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


KEYS = known_keys()
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["auto", "lora", "cosine", "0.5", "1e-4", "-1", "nan", "inf", "[]", "{}"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def tree_from(pairs: list[tuple[str, object]]) -> dict:
    tree: dict = {}
    for dotted, value in pairs:
        node = tree
        *sections, leaf = dotted.split(".")
        for section in sections:
            node = node.setdefault(section, {}) if isinstance(node.get(section, {}), dict) else {}
        node[leaf] = value
    return tree


def load_or_refuse(path) -> RunConfig | None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert exc.message and len(exc.message) < 5000
        return None
    assert isinstance(config, RunConfig)
    return config


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS) | st.text(min_size=1, max_size=10), values), max_size=6))
def test_random_config_trees_give_a_config_or_a_config_error(tmp_path, pairs):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tree_from(pairs), allow_unicode=True))
    load_or_refuse(path)


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_random_text_as_a_config_file(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    load_or_refuse(path)


@FUZZ
@given(st.sampled_from(KEYS) | st.text(max_size=12), st.text(max_size=30))
def test_random_set_overrides(key, text):
    """--set KEY=VALUE reaches load_config as an override; a bad one is a ConfigError too."""
    try:
        load_config(None, {key: parse_value(text)})
    except ConfigError as exc:
        assert exc.message


@pytest.mark.parametrize(
    "yaml_text, key, says",
    [
        ("train:\n  learning_rate: -1\n", "'train.learning_rate'", "greater than 0"),
        ("train:\n  learning_rate: 5\n", "'train.learning_rate'", "less than or equal to 1"),
        ("lora:\n  r: 0\n", "'lora.r'", "greater than or equal to 1"),
        ("lora:\n  dropout: 1.5\n", "'lora.dropout'", "less than 1"),
        ("data:\n  split: [0.5, 0.1, 0.1]\n", "'data.split'", "sum to 1"),
        ("data:\n  split: [1.2, -0.1, -0.1]\n", "'data.split'", ">= 0 and sum to 1"),
        ("train:\n  batch_size: 0\n", "'train.batch_size'", "greater than or equal to 1"),
        ("train:\n  epochs: many\n", "'train.epochs'", "valid number"),
        ("train:\n  scheduler: zigzag\n", "'train.scheduler'", "'cosine', 'linear' or 'constant'"),
        ("method: magic\n", "'method'", "'full', 'lora'"),
        ("nonsense_key: 3\n", "unknown key 'nonsense_key'", ""),
        ("train:\n  lerning_rate: 0.1\n", "unknown key 'train.lerning_rate'", ""),
        ("train: 3\n", "'train'", "valid dictionary"),
        ("- a\n- b\n", "top level must be a mapping", ""),
        ("train: [unclosed\n", "run.yaml line 2", "not valid YAML"),
    ],
)
def test_named_bad_values_name_the_key_and_the_allowed_values(tmp_path, yaml_text, key, says):
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert key in caught.value.message and says in caught.value.message


@pytest.mark.parametrize(
    "argv, says",
    [
        (["train", "--set", "train.learning_rate=-1"], "'train.learning_rate'"),
        (["train", "--set", "lora.r=0"], "'lora.r'"),
        (["train", "--set", "data.split=[0.5,0.1,0.1]"], "sum to 1"),
        (["train", "--set", "nonsense"], "is not key.path=value"),
        (["train", "--set", "model.name.x=1"], "model.name"),
    ],
)
def test_cli_gives_exit_2_and_one_line(monkeypatch, capsys, argv, says):
    from tunelab.cli import main

    monkeypatch.setattr("sys.argv", ["tunelab", *argv])
    with pytest.raises(SystemExit) as caught:
        main.main()
    output = capsys.readouterr()
    assert caught.value.code == 2 and says in output.err and "Traceback" not in output.err + output.out


def alias_bomb(levels: int) -> str:
    """A 'billion laughs' YAML: each level repeats the previous one 9 times through aliases."""
    lines = ["  l0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "train:\n  class_weights:\n" + "\n".join("  " + line for line in lines) + "\n"


def test_yaml_alias_bomb_is_refused_briefly(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(5))  # 59,049 leaves; nine levels would be 387 million
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.message) < 2000


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("train: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(ConfigError):
        load_config(path)


def test_a_flag_does_not_hide_a_bad_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train: 3\n")
    with pytest.raises(ConfigError, match="'train'"):
        load_config(path, {"train.max_steps": 1})
