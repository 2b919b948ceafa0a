-- The beneficiary registry (低收入人口库), needs, and welfare jobs (公益岗位/爱心岗位).
--
-- Personal fields are kept three ways: `*_cipher` (AES-256-GCM under the vault key, which lives
-- outside the database), `*_masked` (what every page and response shows by default), and for ID
-- numbers `*_digest` (HMAC-SHA-256 under the vault's lookup key, for exact-ID search). Nothing
-- here holds a plaintext ID number, phone, address, or income.

-- Staff scope: NULL division_code is district-wide; a street code limits the account to that
-- street's households. org_id ties a staff account to a provider organization. can_unmask lets a
-- staff account (admins always may) read personal fields in the clear, with a stated reason.
ALTER TABLE users ADD COLUMN division_code TEXT REFERENCES divisions (code);
ALTER TABLE users ADD COLUMN org_id TEXT REFERENCES organizations (id);
ALTER TABLE users ADD COLUMN can_unmask BIGINT NOT NULL DEFAULT 0;

-- Households gain the street (the parent of community_code, kept so scoping is one indexed
-- equality), the head of household's encrypted and masked fields, the per-capita income
-- (fen per year, encrypted), consent, and who registered and last changed it.
ALTER TABLE households ADD COLUMN street_code TEXT REFERENCES divisions (code);
ALTER TABLE households ADD COLUMN head_name_cipher TEXT;
ALTER TABLE households ADD COLUMN head_name_masked TEXT;
ALTER TABLE households ADD COLUMN head_id_digest TEXT;
ALTER TABLE households ADD COLUMN head_id_cipher TEXT;
ALTER TABLE households ADD COLUMN head_id_masked TEXT;
ALTER TABLE households ADD COLUMN phone_cipher TEXT;
ALTER TABLE households ADD COLUMN phone_masked TEXT;
ALTER TABLE households ADD COLUMN address_cipher TEXT;
ALTER TABLE households ADD COLUMN address_masked TEXT;
ALTER TABLE households ADD COLUMN income_cipher TEXT;
ALTER TABLE households ADD COLUMN consent_at TEXT;
ALTER TABLE households ADD COLUMN consent_by TEXT;
ALTER TABLE households ADD COLUMN registered_by TEXT;
ALTER TABLE households ADD COLUMN updated_at TEXT;
UPDATE households
SET street_code = (SELECT d.parent_code FROM divisions d WHERE d.code = households.community_code),
    updated_at = created_at;
CREATE INDEX households_street ON households (street_code, community_code);
CREATE INDEX households_category ON households (category);
CREATE INDEX households_head_id ON households (head_id_digest);

-- One row per person in a household (the head included, relation 'head'). A person is in the
-- registry once: the ID digest is unique. participant_id links a member who also signs in.
-- birth_year comes from the ID number and is kept in the clear for the working-age count.
CREATE TABLE household_members (
    id             TEXT    PRIMARY KEY,
    household_id   TEXT    NOT NULL REFERENCES households (id),
    participant_id TEXT    REFERENCES participants (id),
    relation       TEXT    NOT NULL,
    name_cipher    TEXT    NOT NULL,
    name_masked    TEXT    NOT NULL,
    id_digest      TEXT    NOT NULL UNIQUE,
    id_cipher      TEXT    NOT NULL,
    id_masked      TEXT    NOT NULL,
    phone_cipher   TEXT,
    phone_masked   TEXT,
    birth_year     BIGINT NOT NULL,
    category       TEXT,
    created_at     TEXT    NOT NULL
);
CREATE INDEX household_members_household ON household_members (household_id);
CREATE INDEX household_members_participant ON household_members (participant_id);

-- A need registered by staff for a household (or one member): the category is a service
-- category code of the region pack. The ORDERS side moves it to 'ordered' and 'met' (with
-- last_served_at) and back to 'open'; 'closed' is staff closing it.
CREATE TABLE needs (
    id             TEXT NOT NULL PRIMARY KEY,
    household_id   TEXT NOT NULL REFERENCES households (id),
    member_id      TEXT REFERENCES household_members (id),
    category       TEXT NOT NULL,
    description    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('open', 'ordered', 'met', 'closed')),
    registered_by  TEXT NOT NULL,
    registered_at  TEXT NOT NULL,
    last_served_at TEXT,
    closed_at      TEXT,
    closed_by      TEXT,
    close_reason   TEXT
);
CREATE INDEX needs_state ON needs (state, registered_at);
CREATE INDEX needs_household ON needs (household_id);

-- A welfare job posted by an employer organization. `filled` counts active placements and is
-- raised only by a conditional UPDATE, so it never passes `positions`.
CREATE TABLE welfare_jobs (
    id                 TEXT    PRIMARY KEY,
    title              TEXT    NOT NULL,
    org_id             TEXT    NOT NULL REFERENCES organizations (id),
    street_code        TEXT    NOT NULL REFERENCES divisions (code),
    kind               TEXT    NOT NULL CHECK (kind IN ('welfare', 'caring')),
    positions          BIGINT NOT NULL CHECK (positions > 0),
    filled             BIGINT NOT NULL DEFAULT 0 CHECK (filled >= 0 AND filled <= positions),
    wage_fen_per_month BIGINT NOT NULL CHECK (wage_fen_per_month >= 0),
    description        TEXT    NOT NULL DEFAULT '',
    state              TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    synthetic          BIGINT NOT NULL DEFAULT 0,
    created_by         TEXT    NOT NULL,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);
CREATE INDEX welfare_jobs_street ON welfare_jobs (street_code, state);

-- A registry member placed in a job. A member holds at most one active placement (the partial
-- unique index, which also holds for two placements committed in one group-commit batch).
CREATE TABLE job_placements (
    id           TEXT NOT NULL PRIMARY KEY,
    job_id       TEXT NOT NULL REFERENCES welfare_jobs (id),
    member_id    TEXT NOT NULL REFERENCES household_members (id),
    household_id TEXT NOT NULL REFERENCES households (id),
    street_code  TEXT NOT NULL REFERENCES divisions (code),
    state        TEXT NOT NULL CHECK (state IN ('active', 'ended')),
    placed_by    TEXT NOT NULL,
    placed_at    TEXT NOT NULL,
    ended_by     TEXT,
    ended_at     TEXT,
    end_reason   TEXT
);
CREATE UNIQUE INDEX job_placements_active_member ON job_placements (member_id) WHERE state = 'active';
CREATE INDEX job_placements_job ON job_placements (job_id, state);
CREATE INDEX job_placements_street ON job_placements (street_code);
