-- Idempotency keys as a table appended in the order requests arrive, with a unique index on
-- (scope, key), instead of one WITHOUT ROWID B-tree keyed by (scope, key) (migration 0010).
--
-- Clients choose their keys (UUIDs, or a counter per client), so each new key lands at a
-- random place among the old ones. Stored with its response (about 270 bytes a row, 13 rows
-- a page), every insert rewrote a random page of the table and often split it into three: in
-- `cishan bench donations` that was 80 of the 180 pages each group commit wrote to the log.
-- Now the rows go to the end of the table, and only the index's small entries (scope, key,
-- row id) land at random: one page per insert, rarely split.
CREATE TABLE idempotency_keys_new (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);
INSERT INTO idempotency_keys_new (scope, key, request_hash, status, response, created_at)
    SELECT scope, key, request_hash, status, response, created_at FROM idempotency_keys
    ORDER BY created_at, scope, key;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;
CREATE UNIQUE INDEX idempotency_keys_scope_key ON idempotency_keys (scope, key);
