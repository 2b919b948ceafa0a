-- Foundation schema (PostgreSQL). Append-only: never edit a migration that has shipped; add a new one.
-- Conventions: ids are prefixed text (`org_…`); instants are RFC 3339 UTC text with microseconds
-- (`2026-12-03T13:41:02.123456Z`, fixed width so text order is time order); money is integer fen;
-- flags are integers 0/1 (portable across SQLite and PostgreSQL through sqlx Any).

CREATE TABLE journal (
    seq         BIGINT PRIMARY KEY,
    recorded_at TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX journal_subject ON journal (subject);

-- One row: the chain's tip. Updating it first in every writing transaction serializes appends.
CREATE TABLE journal_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO journal_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE divisions (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL,
    parent_code TEXT
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE participants (
    id               TEXT    PRIMARY KEY,
    kind             TEXT    NOT NULL CHECK (kind IN ('person', 'organization')),
    display_name     TEXT    NOT NULL,
    id_number_digest TEXT    UNIQUE,
    id_number_masked TEXT,
    id_number_cipher TEXT,
    division_code    TEXT    REFERENCES divisions (code),
    synthetic        BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL
);

CREATE TABLE organizations (
    id                 TEXT    PRIMARY KEY,
    participant_id     TEXT    REFERENCES participants (id),
    name               TEXT    NOT NULL,
    credit_code        TEXT    NOT NULL UNIQUE,
    kind               TEXT    NOT NULL,
    is_charity         BIGINT NOT NULL DEFAULT 0,
    public_fundraising BIGINT NOT NULL DEFAULT 0,
    division_code      TEXT    REFERENCES divisions (code),
    registered_on      TEXT    NOT NULL,
    synthetic          BIGINT NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL
);

CREATE TABLE funds (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX funds_org ON funds (org_id);

CREATE TABLE projects (
    id            TEXT    PRIMARY KEY,
    org_id        TEXT    NOT NULL REFERENCES organizations (id),
    fund_id       TEXT    REFERENCES funds (id),
    name          TEXT    NOT NULL,
    summary       TEXT    NOT NULL DEFAULT '',
    goal_fen      BIGINT NOT NULL CHECK (goal_fen >= 0),
    state         TEXT    NOT NULL,
    division_code TEXT    REFERENCES divisions (code),
    created_at    TEXT    NOT NULL
);
CREATE INDEX projects_org ON projects (org_id);

CREATE TABLE volunteers (
    participant_id   TEXT PRIMARY KEY REFERENCES participants (id),
    volunteer_number TEXT NOT NULL UNIQUE,
    registered_at    TEXT NOT NULL
);

CREATE TABLE households (
    id             TEXT    PRIMARY KEY,
    community_code TEXT    NOT NULL REFERENCES divisions (code),
    category       TEXT    NOT NULL,
    member_count   BIGINT NOT NULL CHECK (member_count > 0),
    synthetic      BIGINT NOT NULL DEFAULT 0,
    created_at     TEXT    NOT NULL
);

CREATE TABLE services (
    id                TEXT    PRIMARY KEY,
    provider_org_id   TEXT    NOT NULL REFERENCES organizations (id),
    category          TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    division_code     TEXT    REFERENCES divisions (code),
    capacity_per_week BIGINT NOT NULL CHECK (capacity_per_week >= 0),
    created_at        TEXT    NOT NULL
);
CREATE INDEX services_category ON services (category);

CREATE TABLE donations (
    id                   TEXT    PRIMARY KEY,
    donor_participant_id TEXT    REFERENCES participants (id),
    anonymous            BIGINT NOT NULL DEFAULT 0,
    amount_fen           BIGINT NOT NULL CHECK (amount_fen > 0),
    currency             TEXT    NOT NULL DEFAULT 'CNY',
    fund_id              TEXT    REFERENCES funds (id),
    project_id           TEXT    REFERENCES projects (id),
    received_at          TEXT    NOT NULL
);
CREATE INDEX donations_donor ON donations (donor_participant_id);

CREATE TABLE disbursements (
    id           TEXT    PRIMARY KEY,
    project_id   TEXT    NOT NULL REFERENCES projects (id),
    household_id TEXT    REFERENCES households (id),
    people_count BIGINT NOT NULL CHECK (people_count >= 0),
    amount_fen   BIGINT NOT NULL CHECK (amount_fen > 0),
    paid_at      TEXT    NOT NULL
);
CREATE INDEX disbursements_project ON disbursements (project_id);

CREATE TABLE service_records (
    id                       TEXT    PRIMARY KEY,
    volunteer_participant_id TEXT    NOT NULL REFERENCES volunteers (participant_id),
    duration_minutes         BIGINT NOT NULL CHECK (duration_minutes >= 0),
    served_on                TEXT    NOT NULL,
    content                  TEXT    NOT NULL
);
CREATE INDEX service_records_volunteer ON service_records (volunteer_participant_id);

CREATE TABLE trusts (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    trustee_org_id TEXT REFERENCES organizations (id),
    filed_on       TEXT NOT NULL
);

CREATE TABLE indicator_actuals (
    indicator_code TEXT    NOT NULL,
    year           BIGINT NOT NULL,
    value          TEXT    NOT NULL,
    entered_by     TEXT    NOT NULL,
    entered_at     TEXT    NOT NULL,
    journal_seq    BIGINT NOT NULL,
    PRIMARY KEY (indicator_code, year)
);
