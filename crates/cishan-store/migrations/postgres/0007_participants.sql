-- Participants (people and organizations) with roles, phones and sign-in for people.
-- One record per person (keyed by the ID number's keyed digest) or organization (credit code);
-- roles are rows, not accounts: a person who donates and volunteers has one account.
-- Phones are stored like ID numbers: a keyed digest for exact lookup, the ciphertext (Vault),
-- and the masked form for display. Phones are not unique (family members share one); signing
-- in by phone refuses a phone that several accounts share.

ALTER TABLE participants ADD COLUMN phone_digest TEXT;
ALTER TABLE participants ADD COLUMN phone_masked TEXT;
ALTER TABLE participants ADD COLUMN phone_cipher TEXT;
ALTER TABLE participants ADD COLUMN credit_code TEXT;
ALTER TABLE participants ADD COLUMN sex TEXT CHECK (sex IN ('male', 'female'));
ALTER TABLE participants ADD COLUMN birth_month TEXT;
ALTER TABLE participants ADD COLUMN updated_at TEXT;
CREATE INDEX participants_phone ON participants (phone_digest);
CREATE UNIQUE INDEX participants_credit_code ON participants (credit_code);

CREATE TABLE participant_roles (
    participant_id TEXT NOT NULL REFERENCES participants (id),
    role           TEXT NOT NULL CHECK (role IN ('donor', 'volunteer', 'beneficiary', 'partner', 'staff')),
    org_id         TEXT REFERENCES organizations (id),
    granted_by     TEXT NOT NULL,
    granted_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX participant_roles_unique ON participant_roles (participant_id, role, COALESCE(org_id, ''));
CREATE INDEX participant_roles_role ON participant_roles (role);

ALTER TABLE users ADD COLUMN participant_id TEXT REFERENCES participants (id);
CREATE UNIQUE INDEX users_participant ON users (participant_id);

-- Skills a roster lists for a volunteer (技能/特长), free text as the office wrote it.
ALTER TABLE volunteers ADD COLUMN skills TEXT NOT NULL DEFAULT '';

-- Roster imports: one row per uploaded file; the page polls processed/total. The per-row report
-- (line, outcome, reason; never an ID number) is JSON text written when the job ends.
CREATE TABLE import_jobs (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('people', 'volunteers')),
    file_name   TEXT    NOT NULL,
    encoding    TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    total       BIGINT NOT NULL DEFAULT 0,
    processed   BIGINT NOT NULL DEFAULT 0,
    imported    BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    present     BIGINT NOT NULL DEFAULT 0,
    refused     BIGINT NOT NULL DEFAULT 0,
    report      TEXT    NOT NULL DEFAULT '[]',
    message     TEXT    NOT NULL DEFAULT '',
    created_by  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    finished_at TEXT
);
