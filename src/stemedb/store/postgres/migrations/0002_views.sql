-- Default-lens results per (subject, predicate), refreshed after writes (query.views).
-- Derived: safe to empty at any time (they are recomputed on demand).
CREATE TABLE views (
    subject text COLLATE "C" NOT NULL,
    predicate text COLLATE "C" NOT NULL,
    lsn bigint NOT NULL,
    computed_at double precision NOT NULL,
    result bytea NOT NULL,
    PRIMARY KEY (subject, predicate)
);
