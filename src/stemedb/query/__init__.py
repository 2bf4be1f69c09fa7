"""StemeDB query layer."""
