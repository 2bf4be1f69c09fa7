"""StemeDB api layer."""
