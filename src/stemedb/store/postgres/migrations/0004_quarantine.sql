-- The quarantine (ADR 0023): the LSN of an assertion's quarantine decision and of its
-- approval on the assertion (candidate reads need no join), one row per quarantined
-- assertion for the admin listing. Derived from the WAL-equivalent records like the
-- rest (kinds 9 and 10 of `changes`).
ALTER TABLE assertions ADD COLUMN quarantine_lsn bigint;
ALTER TABLE assertions ADD COLUMN released_lsn bigint;
CREATE TABLE quarantine (
    lsn bigint PRIMARY KEY,
    assertion_lsn bigint NOT NULL UNIQUE,
    reason text NOT NULL,
    detail text NOT NULL,
    agent bytea NOT NULL,
    quarantined_at double precision NOT NULL,
    status text NOT NULL,
    review_lsn bigint,
    reviewer text
);
CREATE INDEX quarantine_by_status ON quarantine (status, lsn);
