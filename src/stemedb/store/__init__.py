"""StemeDB store layer."""
