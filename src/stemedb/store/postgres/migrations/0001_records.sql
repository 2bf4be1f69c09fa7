-- The records of cluster mode (the system of record: there is no WAL beside it).
-- Same tables and columns as the embedded store (store/sqlite/schema.py); ids and agent
-- keys are 32-byte bytea, records msgpack bytea, text keys COLLATE "C" (byte order of
-- UTF-8, as SQLite's BINARY), REAL is double precision.

-- The LSN counter: one row, locked FOR UPDATE by every batch until it commits
-- (docs/design/adr/ "LSNs under a row lock").
CREATE TABLE stemedb_lsn (
    id integer PRIMARY KEY CHECK (id = 1),
    last_lsn bigint NOT NULL,
    last_committed_at double precision NOT NULL
);
INSERT INTO stemedb_lsn VALUES (1, 0, 0.0);

-- One row per record: the change feed and the as_of (transaction time) clock.
CREATE TABLE changes (
    lsn bigint PRIMARY KEY,
    kind smallint NOT NULL,
    ref bytea NOT NULL,
    committed_at double precision NOT NULL,
    record bytea  -- only for kinds without a table of their own (co-signature, retraction, trust)
);
CREATE INDEX changes_by_time ON changes (committed_at, lsn);

CREATE TABLE assertions (
    lsn bigint PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    subject text COLLATE "C" NOT NULL,
    predicate text COLLATE "C" NOT NULL,
    value_key text COLLATE "C" NOT NULL,
    confidence double precision NOT NULL,
    source_hash bytea,
    source_class_raw text,
    source_class text NOT NULL,
    epoch bytea,
    parent bytea,
    lifecycle text NOT NULL,
    valid_from bigint,
    valid_to bigint,
    timestamp bigint NOT NULL,
    tainted_by bytea,
    superseded_lsn bigint,
    signers bytea NOT NULL,
    vote_weight double precision NOT NULL DEFAULT 0.0,
    record bytea NOT NULL
);
CREATE INDEX assertions_by_subject ON assertions (subject, predicate, lsn);
CREATE INDEX assertions_by_predicate ON assertions (predicate, lsn);
CREATE INDEX assertions_by_source ON assertions (source_hash) WHERE source_hash IS NOT NULL;
CREATE INDEX assertions_by_epoch ON assertions (epoch) WHERE epoch IS NOT NULL;
CREATE INDEX assertions_by_parent ON assertions (parent) WHERE parent IS NOT NULL;
CREATE INDEX assertions_by_taint ON assertions (tainted_by) WHERE tainted_by IS NOT NULL;

CREATE TABLE signatures (
    assertion_lsn bigint NOT NULL,
    agent bytea NOT NULL,
    signature bytea NOT NULL,
    signed_at bigint NOT NULL,
    lsn bigint NOT NULL,
    PRIMARY KEY (assertion_lsn, agent)
);
CREATE INDEX signatures_by_agent ON signatures (agent, assertion_lsn);
CREATE INDEX signatures_by_lsn ON signatures (lsn);

CREATE TABLE votes (
    lsn bigint PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    assertion_lsn bigint NOT NULL,
    agent bytea NOT NULL,
    weight double precision NOT NULL,
    timestamp bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX votes_by_assertion ON votes (assertion_lsn, agent, timestamp, lsn);
CREATE INDEX votes_by_agent ON votes (agent);
CREATE TABLE votes_latest (
    assertion_lsn bigint NOT NULL,
    agent bytea NOT NULL,
    weight double precision NOT NULL,
    timestamp bigint NOT NULL,
    lsn bigint NOT NULL,
    PRIMARY KEY (assertion_lsn, agent)
);

CREATE TABLE epochs (
    lsn bigint PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    name text NOT NULL,
    kind text NOT NULL,
    timestamp bigint NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE epoch_supersedes (
    old bytea NOT NULL,
    new bytea NOT NULL,
    lsn bigint NOT NULL,
    PRIMARY KEY (old, new)
);
CREATE INDEX epoch_supersedes_by_lsn ON epoch_supersedes (lsn);

CREATE TABLE supersessions (
    lsn bigint PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    old bytea NOT NULL,
    new bytea NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX supersessions_by_old ON supersessions (old);
CREATE INDEX supersessions_by_new ON supersessions (new);

CREATE TABLE sources (
    source_hash bytea PRIMARY KEY,
    lsn bigint NOT NULL UNIQUE,
    id bytea NOT NULL,
    uri text NOT NULL,
    title text NOT NULL,
    source_class text,
    published_at bigint,
    timestamp bigint NOT NULL,
    has_content boolean NOT NULL,
    retraction_lsn bigint UNIQUE,
    retracted_reason text,
    record bytea NOT NULL
);

CREATE TABLE trust (
    agent bytea PRIMARY KEY,
    score double precision NOT NULL,
    updated_at double precision NOT NULL,
    outcomes integer NOT NULL
);
