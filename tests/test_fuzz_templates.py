"""Hostile chat templates: the sandbox blocks escapes, and check_template turns every failure into a DataError."""

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import smollm2_tokenizer_dir

from tunelab.data import templates
from tunelab.data.templates import check_template
from tunelab.errors import DataError

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{% for m in messages %}{{ m.__class__.__base__.__subclasses__() }}{% endfor %}",
    "{{ raise_exception.__globals__['os'].system('touch /tmp/pwned') }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% set x = messages.append({'role': 'user'}) %}{{ x }}",
]
RUNAWAY = [
    ("{{ 'x' * 10000000000 }}", "too large"),
    ("{{ [0] * 10000000000 }}", "too large"),
    ("{{ 10 ** 100000000 }}", "too large"),
    (
        "{% set ns = namespace(s='xx') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        "too large",
    ),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{{ 'y' * 100 }}{% endfor %}{% endfor %}", "characters"),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ messages }}",
        "took more than",
    ),
]
BROKEN = [
    "{% for m in messages %}",
    "{{ messages[99]['content'] }}",
    "{{ raise_exception('no system role') }}",
    "{{ 1 / 0 }}",
    "{% if %}",
    "just text, no messages",
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir())
    loaded.real_template = loaded.chat_template
    return loaded


def with_template(tokenizer, template: str):
    tokenizer.chat_template = template
    return tokenizer


def test_the_real_template_passes(tokenizer):
    assert "probe answer" in check_template(with_template(tokenizer, tokenizer.real_template))


@pytest.mark.parametrize("template", ESCAPES)
def test_transformers_sandbox_blocks_escapes(tokenizer, template, tmp_path):
    with pytest.raises(jinja2.exceptions.SecurityError):
        with_template(tokenizer, template).apply_chat_template(templates.PROBE, tokenize=False)


@pytest.mark.parametrize("template", ESCAPES)
def test_escapes_become_a_clear_data_error(tokenizer, template):
    with pytest.raises(DataError, match="sandbox forbids"):
        check_template(with_template(tokenizer, template))


@pytest.mark.parametrize("template, says", RUNAWAY)
def test_runaway_templates_are_stopped(tokenizer, template, says):
    with pytest.raises(DataError, match=says):
        check_template(with_template(tokenizer, template), seconds=1.0)


@pytest.mark.parametrize("template", BROKEN)
def test_broken_templates_give_data_error(tokenizer, template):
    with pytest.raises(DataError, match="chat template"):
        check_template(with_template(tokenizer, template))


jinja_pieces = st.sampled_from(
    [
        "{{ messages }}",
        "{% for m in messages %}",
        "{% endfor %}",
        "{{ m['content'] }}",
        "{{ m.role }}",
        "{% if m %}",
        "{% endif %}",
        "{{ ''.__class__ }}",
        "{{ 'a' * 99999999 }}",
        "{{ range(10**9)|list }}",
        "{{ bos_token }}",
        "{% set ns = namespace(a=1) %}",
        "{{ ns.__dict__ }}",
        "{{ raise_exception('x') }}",
        "{{ 1/0 }}",
        "{{",
        "}}",
        "{% generation %}",
        "{% endgeneration %}",
        "{{ messages|tojson }}",
        "{{ (messages|length) ** 99999 }}",
        "{{ lipsum(1000) }}",
        "{{ x.y.z }}",
        "{% break %}",
        "{{ self }}",
        "{{ config }}",
        "{{ request }}",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(jinja_pieces | st.text(max_size=8), max_size=8))
def test_random_templates_never_escape_or_crash(tokenizer, pieces):
    """Any template gives rendered text or a DataError: never another exception, a hang or a blow-up."""
    try:
        check_template(with_template(tokenizer, "".join(pieces)), seconds=1.0)
    except DataError as exc:
        assert exc.message.startswith("chat template")
