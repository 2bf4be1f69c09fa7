"""What the server tells its operators: Prometheus metrics, JSON log lines, top agents."""
