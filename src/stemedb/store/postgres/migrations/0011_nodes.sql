-- The node registry of a cluster (issue 15; stemedb.cluster.registry): one row per
-- StemeDB node, its heartbeat written with the database's clock (so node clocks never
-- decide whether a node is healthy). A node deletes its row when it stops cleanly.
CREATE TABLE stemedb_nodes (
    node_id text PRIMARY KEY,
    advertise_url text NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    heartbeat_seconds double precision NOT NULL
);
