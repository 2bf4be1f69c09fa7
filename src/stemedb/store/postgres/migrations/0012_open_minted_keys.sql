-- Keys created while API keys were off (issue 17; docs/design/adr-0022-open-minted-keys.md):
-- anyone who reached the node could create them, so once keys are on they are refused
-- until an admin confirms (POST /v1/admin/api-keys/{id}/confirm) or deletes them.
-- Keys that exist before this migration are not marked (their origin is unknown).
ALTER TABLE stemedb_api_keys ADD COLUMN minted_open boolean NOT NULL DEFAULT false;
