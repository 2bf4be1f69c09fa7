-- The audit log (query.audit): one row per answered query and the claims it used.
-- Shared by every node; seq is the order rows were written in, cluster-wide.
CREATE TABLE audit_queries (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    query_id text NOT NULL UNIQUE,
    at double precision NOT NULL,
    agent text,
    endpoint text NOT NULL,
    lens text NOT NULL,
    subject text,
    predicate text,
    winner text,
    duration_ms double precision NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX audit_by_agent ON audit_queries (agent, at);
CREATE INDEX audit_by_time ON audit_queries (at, seq);
CREATE TABLE audit_claims (
    assertion_id text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (assertion_id, seq)
);
