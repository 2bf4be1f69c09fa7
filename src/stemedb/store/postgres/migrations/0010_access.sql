-- Shared access state of a cluster (issue 15; stemedb.store.keys.postgres): API keys
-- (SHA-256 of the secret, never the secret), admin rate-limit overrides, the open
-- per-agent circuit breakers, and the access generation every change of them bumps in
-- its own transaction (each node reads it once per guarded request).
CREATE TABLE stemedb_api_keys (
    id text PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL,
    secret_hash text NOT NULL UNIQUE,
    enabled boolean NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision,
    last_used_at double precision
);

CREATE TABLE stemedb_rate_limit_overrides (
    scope text NOT NULL CHECK (scope IN ('agent', 'key')),
    target text NOT NULL,
    max_requests_per_min integer NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (scope, target)
);

CREATE TABLE stemedb_agent_breakers (
    agent_id text PRIMARY KEY,
    forced boolean NOT NULL,
    failures integer NOT NULL,
    opened_at double precision NOT NULL,
    reason text,
    node_id text NOT NULL
);

CREATE TABLE stemedb_access_generation (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation bigint NOT NULL
);

INSERT INTO stemedb_access_generation (id, generation) VALUES (true, 0);
