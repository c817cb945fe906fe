"""Total cost of ownership: the three options, cumulative costs, break-even month and plot, and OpenAI's
fine-tuning wind-down over a dated horizon."""

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from tunelab.cost.tco import Option, break_even, horizon_end, tco
from tunelab.errors import ConfigError

BEFORE_WIND_DOWN = date(2025, 6, 1)  # a 12-month horizon from here ends before OpenAI's dates
TODAY = date(2026, 12, 2)


def test_break_even_is_the_month_from_which_the_option_stays_cheaper():
    api = Option("api", "", upfront=0, monthly=100)
    assert break_even(api, Option("gpu", "", upfront=250, monthly=50), 12) == 5
    assert break_even(api, Option("dear", "", upfront=10, monthly=150), 12) is None
    assert break_even(api, Option("free", "", upfront=0, monthly=10), 12) == 0


def test_low_volume_favours_the_api_and_high_volume_self_hosting():
    low = tco(requests_per_day=200, tokens_per_request=500, months=12, start=BEFORE_WIND_DOWN)
    assert low["cheapest"].startswith("OpenAI") and low["options"][0]["available"]
    high = tco(requests_per_day=200_000, tokens_per_request=1000, months=12, start=BEFORE_WIND_DOWN)
    assert not high["cheapest"].startswith("OpenAI")
    assert any(o["break_even_month_vs_api"] is not None for o in high["options"][1:])
    for option in high["options"]:
        assert len(option["cumulative"]) == 13 and option["cumulative"] == sorted(option["cumulative"])


def test_horizon_past_the_close_leaves_openai_out_of_cheapest():
    result = tco(requests_per_day=200, tokens_per_request=500, months=12, start=TODAY)
    api = result["options"][0]
    assert result["start"] == "2026-12-02" and result["end"] == "2027-12-02"
    assert not api["available"] and result["excluded_from_cheapest"] == [api["name"]]
    assert not result["cheapest"].startswith("OpenAI")
    assert any("2027-01-06" in reason for reason in api["unavailable_because"])
    assert any("2027-01-14" in reason for reason in api["unavailable_because"])  # gpt-4.1-mini's base snapshot
    fine_tuning = result["openai_fine_tuning"]
    assert fine_tuning["closed_to_new_jobs"] == "2027-01-06" and fine_tuning["closed_for_inactive"] == "2026-07-02"
    assert fine_tuning["closed_for_never_fine_tuned"] == "2026-05-07"
    assert "deprecations" in fine_tuning["source"] and fine_tuning["as_of"]
    assert fine_tuning["base_shutdown"]["shutdown"] == "2027-01-14"


def test_horizon_that_ends_before_the_close_keeps_openai():
    short = tco(requests_per_day=200, tokens_per_request=500, months=1, start=TODAY)
    assert short["end"] == "2027-01-02" and short["options"][0]["available"]
    assert short["cheapest"].startswith("OpenAI") and short["excluded_from_cheapest"] == []


def test_a_start_after_the_close_says_job_creation_is_closed():
    later = tco(200, 500, 3, openai_model="gpt-4o-mini-2024-07-18", start=date(2027, 2, 1))
    reasons = later["options"][0]["unavailable_because"]
    assert "since 2027-01-06" in reasons[0] and "shut down on 2027-01-14" in reasons[1]
    assert "closed for every organisation on 2027-01-06" in later["openai_fine_tuning"]["summary"]


def test_horizon_end_counts_calendar_months():
    assert horizon_end(date(2026, 12, 2), 1) == date(2027, 1, 2)
    assert horizon_end(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert horizon_end(date(2026, 12, 2), 24) == date(2028, 12, 2)


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
            "--start",
            "2026-12-02",
            "--plot",
            str(plot),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [o["name"] for o in out["options"]][0].startswith("OpenAI") and len(out["options"]) == 3
    assert plot.stat().st_size > 1000 and out["plot"] == str(plot)
    assert out["start"] == "2026-12-02" and out["options"][0]["available"] is False
    assert out["openai_fine_tuning"]["closed_to_new_jobs"] == "2027-01-06"


def test_cli_table_labels_openai_unavailable_and_prints_the_dates():
    from tunelab.cli.cost import app

    args = ["tco", "--requests-per-day", "200", "--tokens-per-request", "500", "--months", "12"]
    result = CliRunner().invoke(app, [*args, "--start", "2026-12-02", "--no-plot"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "OpenAI gpt-4.1-mini is unavailable:" in text and "not counting OpenAI gpt-4.1-mini" in text
    for day in ("2026-05-07", "2026-07-02", "2027-01-06", "2027-01-14"):
        assert day in text
    assert "https://platform.openai.com/docs/deprecations" in text
