"""One error type that the CLI turns into a single line and exit code 2.

Every problem a user can fix (a bad file, a bad config value, a missing model) is raised as a
TunelabError carrying what went wrong and how to fix it, so that no traceback reaches a user.
"""


class TunelabError(Exception):
    """A problem the user can fix: `message` names it, `hint` says how."""

    exit_code = 2

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(TunelabError):
    """An invalid configuration value, named by its dotted key path."""


class DataError(TunelabError):
    """Input data that cannot be used."""


class ModelError(TunelabError):
    """A model that cannot be found, loaded or used for the task."""


class HardwareError(TunelabError):
    """The requested method needs hardware this machine lacks (e.g. QLoRA without CUDA)."""


class TrainingError(TunelabError):
    """Training stopped for a reason the user should know (NaN loss, nothing to learn)."""
