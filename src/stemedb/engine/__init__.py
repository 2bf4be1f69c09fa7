"""StemeDB engine layer."""
