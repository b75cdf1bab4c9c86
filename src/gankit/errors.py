"""Exceptions that carry a message meant for the user: what went wrong and what to do."""


class GankitError(Exception):
    """Base class; the command line prints the message and exits with status 2."""


class ConfigError(GankitError, ValueError):
    """An unknown key, a bad value or an incompatible configuration."""


class DataError(GankitError):
    """Missing, truncated or malformed data."""


class CheckpointError(GankitError):
    """A checkpoint could not be written or read."""


class NonFiniteLossError(GankitError):
    """A loss became NaN or infinite during training."""


class RunDirError(GankitError):
    """A run directory is missing, unwritable or holds an incompatible run."""
