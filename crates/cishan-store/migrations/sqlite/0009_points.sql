-- Charity points (一键算) and rewards (转化—回馈). See docs/points.md.
-- Acts are what a participant did (a donation, verified hours, an assessed skill donation, card
-- points); entries are the append-only history of every change to points (never updated or
-- deleted); lots hold spendable points until they expire; the balance row is kept in step with
-- the entries in the same transaction so a balance is one read.

-- Published rule sets (TOML text). Versions are immutable once published.
CREATE TABLE points_rule_sets (
    version        TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    effective_from TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    body_sha256    TEXT    NOT NULL,
    published_at   TEXT    NOT NULL,
    published_by   TEXT    NOT NULL
);

-- One row per participant with points: honour (lifetime), spendable (= sum of spendable deltas
-- = unexpired-or-unswept lots minus debt), debt (reversals that found no points left), tier.
-- pkey is a compact integer key used by the recompute scan.
CREATE TABLE points_balances (
    participant_id TEXT    PRIMARY KEY REFERENCES participants (id),
    pkey           INTEGER NOT NULL UNIQUE,
    honour         INTEGER NOT NULL DEFAULT 0,
    spendable      INTEGER NOT NULL DEFAULT 0,
    debt           INTEGER NOT NULL DEFAULT 0 CHECK (debt >= 0),
    tier           TEXT    NOT NULL DEFAULT '',
    updated_at     TEXT    NOT NULL
);

-- kind_code: 1 money, 2 goods, 3 volunteer_minutes, 4 skill, 5 card_points.
-- honour/spendable/rule_version: what the act earns now (the sum of its entries), kept in step.
CREATE TABLE points_acts (
    seq               INTEGER PRIMARY KEY,
    participant_id    TEXT    NOT NULL REFERENCES participants (id),
    pkey              INTEGER NOT NULL,
    kind_code         INTEGER NOT NULL,
    category          TEXT,
    source_kind       TEXT    NOT NULL,
    source_id         TEXT    NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity >= 0),
    reversed_quantity INTEGER NOT NULL DEFAULT 0 CHECK (reversed_quantity >= 0 AND reversed_quantity <= quantity),
    occurred_at       TEXT    NOT NULL,
    at_us             INTEGER NOT NULL,
    local_day         INTEGER NOT NULL,
    note              TEXT    NOT NULL DEFAULT '',
    recorded_by       TEXT    NOT NULL,
    recorded_at       TEXT    NOT NULL,
    rule_version      TEXT,
    honour            INTEGER NOT NULL DEFAULT 0,
    spendable         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_kind, source_id)
);
CREATE INDEX points_acts_participant ON points_acts (pkey, at_us, seq);

-- kind: accrue | reverse | adjust | redeem | cancel | expire.
CREATE TABLE points_entries (
    id              INTEGER PRIMARY KEY,
    participant_id  TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('accrue', 'reverse', 'adjust', 'redeem', 'cancel', 'expire')),
    act_seq         INTEGER,
    redemption_id   TEXT,
    rule_version    TEXT,
    honour_delta    INTEGER NOT NULL,
    spendable_delta INTEGER NOT NULL,
    reason          TEXT    NOT NULL DEFAULT '',
    at              TEXT    NOT NULL
);
CREATE INDEX points_entries_participant ON points_entries (participant_id, id);
CREATE INDEX points_entries_act ON points_entries (act_seq);

-- Spendable points of one act. expires_on is the local day (YYYYMMDD) they stop being usable.
CREATE TABLE points_lots (
    act_seq        INTEGER PRIMARY KEY,
    participant_id TEXT    NOT NULL,
    expires_on     INTEGER NOT NULL,
    granted        INTEGER NOT NULL,
    remaining      INTEGER NOT NULL CHECK (remaining >= 0)
);
CREATE INDEX points_lots_fefo ON points_lots (participant_id, expires_on, act_seq);

CREATE TABLE points_offers (
    id           TEXT    PRIMARY KEY,
    org_id       TEXT    NOT NULL REFERENCES organizations (id),
    channel      TEXT    NOT NULL CHECK (channel IN ('medical', 'schooling', 'employment', 'credit', 'social_service')),
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    cost_points  INTEGER NOT NULL CHECK (cost_points >= 0),
    min_tier     TEXT,
    stock        INTEGER NOT NULL CHECK (stock >= 0),
    valid_from   TEXT    NOT NULL,
    valid_to     TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);

CREATE TABLE points_redemptions (
    id             TEXT    PRIMARY KEY,
    offer_id       TEXT    NOT NULL REFERENCES points_offers (id),
    participant_id TEXT    NOT NULL REFERENCES participants (id),
    cost_points    INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('redeemed', 'cancelled')),
    redeemed_by    TEXT    NOT NULL,
    redeemed_at    TEXT    NOT NULL,
    cancelled_by   TEXT,
    cancelled_at   TEXT,
    cancel_reason  TEXT
);
CREATE INDEX points_redemptions_participant ON points_redemptions (participant_id);
CREATE INDEX points_redemptions_offer ON points_redemptions (offer_id);

-- Which lots a redemption used, so a cancellation returns the points to the same lots.
CREATE TABLE points_redemption_lots (
    redemption_id TEXT    NOT NULL REFERENCES points_redemptions (id),
    act_seq       INTEGER NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (redemption_id, act_seq)
);

-- The points sync finds a cardholder's conversions through their donations.
CREATE INDEX points_card_conversions_donation ON card_point_conversions (donation_id);
CREATE INDEX points_acts_participant_id ON points_acts (participant_id);
