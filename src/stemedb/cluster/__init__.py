"""Cluster mode's own parts (``storage.backend = "postgres"``, ARCHITECTURE §10): the
node registry and its heartbeats (``registry``, ``membership``), what the database's
primary and standbys look like (``database``: ``pg_stat_replication`` and/or Patroni's
REST API), and the rules that make a cluster ``healthy``, ``degraded`` or ``unhealthy``
(``health``). Server-side: above store and engine, below api; no web framework, no
metrics library (the API sets the metrics from what these return). The modules that
talk to PostgreSQL import psycopg and are loaded only in cluster mode."""
