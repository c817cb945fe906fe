"""Total cost of ownership: the three options, cumulative costs, break-even month and plot."""

import json

import pytest
from typer.testing import CliRunner

from tunelab.cost.tco import Option, break_even, tco
from tunelab.errors import ConfigError


def test_break_even_is_the_month_from_which_the_option_stays_cheaper():
    api = Option("api", "", upfront=0, monthly=100)
    assert break_even(api, Option("gpu", "", upfront=250, monthly=50), 12) == 5
    assert break_even(api, Option("dear", "", upfront=10, monthly=150), 12) is None
    assert break_even(api, Option("free", "", upfront=0, monthly=10), 12) == 0


def test_low_volume_favours_the_api_and_high_volume_self_hosting():
    low = tco(requests_per_day=200, tokens_per_request=500, months=12)
    assert low["cheapest"].startswith("OpenAI")
    high = tco(requests_per_day=200_000, tokens_per_request=1000, months=12)
    assert not high["cheapest"].startswith("OpenAI")
    assert any(o["break_even_month_vs_api"] is not None for o in high["options"][1:])
    for option in high["options"]:
        assert len(option["cumulative"]) == 13 and option["cumulative"] == sorted(option["cumulative"])


def test_maintenance_rate_is_the_users():
    cheap = tco(1000, 500, 6, rate=0)
    dear = tco(1000, 500, 6, rate=200)
    assert dear["options"][1]["monthly"] - cheap["options"][1]["monthly"] == pytest.approx(200 * 4)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError):
        tco(0, 500, 12)
    with pytest.raises(ConfigError, match="OpenAI model"):
        tco(100, 500, 12, openai_model="gpt-2")


def test_cli_writes_table_json_and_plot(tmp_path):
    from tunelab.cli.cost import app

    plot = tmp_path / "tco.png"
    result = CliRunner().invoke(
        app,
        [
            "tco",
            "--requests-per-day",
            "20000",
            "--tokens-per-request",
            "800",
            "--months",
            "12",
            "--plot",
            str(plot),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [o["name"] for o in out["options"]][0].startswith("OpenAI") and len(out["options"]) == 3
    assert plot.stat().st_size > 1000 and out["plot"] == str(plot)
