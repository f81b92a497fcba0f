"""domaintune: the logic behind the DVC stages (data, training, merging, evaluation)."""

__version__ = "0.1.0"
