-- The search index of cluster mode (SearchReads; ADR 0020, docs/design/search.md): the
-- embedded store's tables (store/sqlite/schema.py SEARCH_SCHEMA) with a tsvector in
-- place of FTS5 and pg_trgm in place of the trigram table. Derived like every other
-- table: written in the transaction of the batch it indexes (store/postgres/search.py),
-- emptied by a reset. Both extensions are trusted: a database owner may create them.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per (subject, predicate), with its number of stored assertions.
CREATE TABLE search_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject text COLLATE "C" NOT NULL,
    predicate text COLLATE "C" NOT NULL,
    claims bigint NOT NULL,
    UNIQUE (subject, predicate)
);

-- The documents: a key's subject and predicate (kind 0), each distinct text value of a
-- key (kind 1, ref: md5 of the text), each registered source a key cites (kind 2, ref:
-- the source hash). id is the order they were indexed in (the bound of a search's pages).
CREATE TABLE search_docs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id bigint NOT NULL,
    kind smallint NOT NULL,
    ref bytea NOT NULL,
    subject text,
    predicate text,
    object text,
    source_title text,
    source_uri text,
    words tsvector NOT NULL,
    UNIQUE (key_id, kind, ref)
);
CREATE INDEX search_docs_words ON search_docs USING gin (words);

-- Distinct subjects (kind 0) and predicates (kind 1), for "did you mean".
CREATE TABLE search_names (
    kind smallint NOT NULL,
    name text COLLATE "C" NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX search_names_trigrams ON search_names USING gist (name gist_trgm_ops);

-- Searchable words of a text: accents and case folded, split at every character that
-- is not a letter or a digit (so drugs/semaglutide and gastroparesis_risk are words).
CREATE FUNCTION stemedb_words(body text, weight "char") RETURNS tsvector
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT setweight(
        to_tsvector('simple', regexp_replace(lower(unaccent(coalesce(body, ''))),
                                             '[^[:alnum:]]+', ' ', 'g')),
        weight)
$$;

-- Every existing assertion and cited source, as the embedded store's version-1 upgrade.
INSERT INTO search_keys (subject, predicate, claims)
    SELECT subject, predicate, count(*) FROM assertions GROUP BY subject, predicate
    ORDER BY min(lsn);
INSERT INTO search_docs (key_id, kind, ref, subject, predicate, words)
    SELECT id, 0, '\x'::bytea, subject, predicate,
           stemedb_words(subject, 'A') || stemedb_words(predicate, 'B')
    FROM search_keys ORDER BY id;
INSERT INTO search_names (kind, name)
    SELECT DISTINCT 0, subject FROM search_keys
    UNION SELECT DISTINCT 1, predicate FROM search_keys;
INSERT INTO search_docs (key_id, kind, ref, object, words)
    SELECT k.id, 1, decode(md5(t.body), 'hex'), t.body, stemedb_words(t.body, 'C')
    FROM (SELECT subject, predicate, substr(value_key, 6) AS body, min(lsn) AS first
          FROM assertions WHERE value_key >= 'text:' AND value_key < 'text;'
          GROUP BY subject, predicate, substr(value_key, 6)) t
    JOIN search_keys k ON k.subject = t.subject AND k.predicate = t.predicate
    ORDER BY t.first;
INSERT INTO search_docs (key_id, kind, ref, source_title, source_uri, words)
    SELECT k.id, 2, s.source_hash, s.title, s.uri,
           stemedb_words(s.title, 'D') || stemedb_words(s.uri, 'D')
    FROM (SELECT subject, predicate, source_hash, min(lsn) AS first FROM assertions
          WHERE source_hash IS NOT NULL GROUP BY subject, predicate, source_hash) a
    JOIN search_keys k ON k.subject = a.subject AND k.predicate = a.predicate
    JOIN sources s ON s.source_hash = a.source_hash
    ORDER BY a.first;
