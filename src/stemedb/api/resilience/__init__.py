"""Resilience of the API: circuit breakers (storage and per agent), the stale-answer
fallback, storage timeouts, the slow-query log."""
