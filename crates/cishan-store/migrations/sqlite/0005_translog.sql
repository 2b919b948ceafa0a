-- The transparency log (SQLite): public facts as leaves of an RFC 6962 Merkle tree, and the
-- signed tree heads (docs/ledger.md, "Transparency log"). Append-only: never edit a migration
-- that has shipped; add a new one. Hashes are 64 lowercase hex digits; instants are fixed-width
-- RFC 3339 UTC text with microseconds.

-- One row: how many leaves the log holds. Appending bumps it first, which reserves the new
-- leaf's index and (a row lock held to commit on PostgreSQL) serializes appends.
CREATE TABLE log_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL CHECK (size >= 0)
);
INSERT INTO log_state (id, size) VALUES (1, 0);

-- The leaves: the exact canonical JSON text of each fact and SHA-256(0x00 ‖ text).
CREATE TABLE log_leaves (
    leaf_index  INTEGER PRIMARY KEY CHECK (leaf_index >= 0),
    kind        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    leaf        TEXT    NOT NULL,
    leaf_hash   TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL
);
CREATE INDEX log_leaves_subject ON log_leaves (subject, kind, leaf_index);

-- The hash of every completed perfect subtree: (level L, idx i) covers leaves [i·2^L, (i+1)·2^L);
-- level 0 repeats the leaf hashes. Any root or proof then needs O(log n) rows.
CREATE TABLE log_nodes (
    level INTEGER NOT NULL CHECK (level >= 0 AND level < 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  TEXT    NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed tree heads: the Ed25519 signature covers
-- "cishan-tree-head-v1\n{tree_size}\n{root_hash}\n{timestamp}" (see cishan-translog).
CREATE TABLE log_heads (
    tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    root_hash TEXT    NOT NULL,
    timestamp TEXT    NOT NULL,
    signature TEXT    NOT NULL
);
