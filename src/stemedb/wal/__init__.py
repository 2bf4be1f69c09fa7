"""StemeDB wal layer."""
