"""Shared fixtures: a hermetic TUNELAB_HOME for every test, and the real data sets when present."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def tunelab_home(tmp_path_factory, monkeypatch):
    """Every test gets its own TUNELAB_HOME, so caches and stores never leak between tests."""
    home = tmp_path_factory.mktemp("tunelab-home")
    monkeypatch.setenv("TUNELAB_HOME", str(home))
    return home


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (BANKING77, T0, Code Alpaca); tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (only present in the project's CI and workspace)")
    return SHARED_DATA


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """`run_cli(*argv)` runs `tunelab ARGV` in this process and returns (exit code, stdout + stderr)."""
    from tunelab.cli import main

    def run(*argv) -> tuple[int, str]:
        monkeypatch.setattr("sys.argv", ["tunelab", *map(str, argv)])
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        try:
            main.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run
