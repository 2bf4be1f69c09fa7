"""StemeDB: a probabilistic knowledge database."""

__version__ = "0.1.0"
