-- Custodial agent keys of a cluster (ADR 0018; docs/reference/mcp.md): the same rows as
-- an embedded node's custodial.sqlite, shared so that every node signs for every API key.
-- seed is the private half (32 bytes), NULL once revoked; only the stemedb role may read
-- this table (docs/operations/security.md).
CREATE TABLE stemedb_custodial_keys (
    agent_id text PRIMARY KEY,
    api_key_id text NOT NULL,
    seed bytea,
    created_at double precision NOT NULL,
    revoked_at double precision
);
CREATE UNIQUE INDEX stemedb_custodial_usable ON stemedb_custodial_keys (api_key_id)
    WHERE revoked_at IS NULL;
