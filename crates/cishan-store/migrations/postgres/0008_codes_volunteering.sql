-- Codes (一码通) and volunteering (志愿服务).
--
-- code_nonces: the nonce of every participant code used for something that must not happen
-- twice (check-in, check-out, redemption); the primary key refuses a replay. Rows whose code has
-- expired may be deleted: an expired code is refused before its nonce is looked at.
CREATE TABLE code_nonces (
    nonce          TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    used_at        TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
CREATE INDEX code_nonces_expires ON code_nonces (expires_at);

CREATE TABLE volunteer_teams (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE volunteer_team_members (
    team_id        TEXT NOT NULL REFERENCES volunteer_teams (id),
    participant_id TEXT NOT NULL REFERENCES volunteers (participant_id),
    joined_at      TEXT NOT NULL,
    PRIMARY KEY (team_id, participant_id)
);

-- An activity: its place is a division of the region pack plus an address; `checked_in` counts
-- volunteers admitted and is raised only by a conditional UPDATE, so it never passes capacity.
CREATE TABLE activities (
    id               TEXT    PRIMARY KEY,
    title            TEXT    NOT NULL,
    category         TEXT    NOT NULL,
    content          TEXT    NOT NULL DEFAULT '',
    recipients       TEXT    NOT NULL DEFAULT '',
    organizer_org_id TEXT    NOT NULL REFERENCES organizations (id),
    team_id          TEXT    REFERENCES volunteer_teams (id),
    division_code    TEXT    NOT NULL REFERENCES divisions (code),
    address          TEXT    NOT NULL,
    starts_at        TEXT    NOT NULL,
    ends_at          TEXT    NOT NULL,
    capacity         BIGINT  NOT NULL CHECK (capacity > 0),
    checked_in       BIGINT  NOT NULL DEFAULT 0 CHECK (checked_in >= 0 AND checked_in <= capacity),
    created_by       TEXT    NOT NULL,
    created_at       TEXT    NOT NULL
);
CREATE INDEX activities_starts ON activities (starts_at);

-- One volunteer at one activity: checked in, checked out (minutes known), verified (minutes
-- credited as service records). Unique per (activity, volunteer): scanning again changes nothing.
CREATE TABLE attendances (
    id               TEXT    PRIMARY KEY,
    activity_id      TEXT    NOT NULL REFERENCES activities (id),
    participant_id   TEXT    NOT NULL REFERENCES volunteers (participant_id),
    state            TEXT    NOT NULL CHECK (state IN ('checked_in', 'checked_out', 'verified')),
    checked_in_at    TEXT    NOT NULL,
    check_in_by      TEXT    NOT NULL,
    check_in_method  TEXT    NOT NULL,
    checked_out_at   TEXT,
    check_out_by     TEXT,
    duration_minutes BIGINT  CHECK (duration_minutes >= 0),
    credited_minutes BIGINT  NOT NULL DEFAULT 0 CHECK (credited_minutes >= 0),
    evaluation       TEXT,
    verified_by      TEXT,
    verified_at      TEXT,
    UNIQUE (activity_id, participant_id)
);
CREATE INDEX attendances_participant ON attendances (participant_id);

-- Service records (志愿服务记录) gain the fields of the national measures: the activity, place,
-- recipients, quality evaluation, organizer and recorder, the instants, and a state (a
-- withdrawn verification keeps its record, marked withdrawn). One record per local day of a
-- verified session, so the daily maximum is a sum over (volunteer, day).
ALTER TABLE service_records ADD COLUMN attendance_id TEXT REFERENCES attendances (id);
ALTER TABLE service_records ADD COLUMN activity_id TEXT REFERENCES activities (id);
ALTER TABLE service_records ADD COLUMN place TEXT;
ALTER TABLE service_records ADD COLUMN recipients TEXT;
ALTER TABLE service_records ADD COLUMN evaluation TEXT;
ALTER TABLE service_records ADD COLUMN organizer_org_id TEXT REFERENCES organizations (id);
ALTER TABLE service_records ADD COLUMN recorded_by TEXT;
ALTER TABLE service_records ADD COLUMN started_at TEXT;
ALTER TABLE service_records ADD COLUMN ended_at TEXT;
ALTER TABLE service_records ADD COLUMN state TEXT NOT NULL DEFAULT 'valid';
CREATE INDEX service_records_volunteer_day ON service_records (volunteer_participant_id, served_on);
CREATE INDEX service_records_attendance ON service_records (attendance_id);

CREATE TABLE volunteer_certificates (
    number         TEXT    PRIMARY KEY,
    participant_id TEXT    NOT NULL REFERENCES volunteers (participant_id),
    issuing_org_id TEXT    NOT NULL REFERENCES organizations (id),
    issued_on      TEXT    NOT NULL,
    minutes        BIGINT  NOT NULL CHECK (minutes >= 0),
    content        TEXT    NOT NULL,
    contact        TEXT    NOT NULL DEFAULT '',
    issued_by      TEXT    NOT NULL,
    issued_at      TEXT    NOT NULL
);
CREATE INDEX volunteer_certificates_participant ON volunteer_certificates (participant_id);
