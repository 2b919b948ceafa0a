-- The donation ledger (一扫清): what each donation is, where its money sits now (lots), every
-- movement of it (flows), double-entry transfers between accounts, refunds, allocations,
-- disbursement details and evidence, receipts numbered per organization and year, idempotency
-- keys, matching pools, campaigns and bank card point conversions. See docs/ledger.md.

-- Donations: what the foundation stored, plus the facts a receipt and a trace need.
ALTER TABLE donations ADD COLUMN org_id TEXT REFERENCES organizations (id);
ALTER TABLE donations ADD COLUMN kind TEXT NOT NULL DEFAULT 'money';
ALTER TABLE donations ADD COLUMN channel TEXT NOT NULL DEFAULT 'bank_transfer';
ALTER TABLE donations ADD COLUMN payment_ref TEXT;
-- A walk-in donor's name as given (registered donors are named by their participant).
ALTER TABLE donations ADD COLUMN donor_name TEXT;
ALTER TABLE donations ADD COLUMN goods_item TEXT;
ALTER TABLE donations ADD COLUMN goods_quantity INTEGER;
ALTER TABLE donations ADD COLUMN goods_unit TEXT;
ALTER TABLE donations ADD COLUMN valued_by TEXT;
ALTER TABLE donations ADD COLUMN refunded_fen INTEGER NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= amount_fen);
-- A match (配捐) is a donation from the pool's sponsor that names the donation it matches.
ALTER TABLE donations ADD COLUMN matched_donation_id TEXT REFERENCES donations (id);
ALTER TABLE donations ADD COLUMN pool_id TEXT;
ALTER TABLE donations ADD COLUMN campaign_id TEXT;
ALTER TABLE donations ADD COLUMN campaign_unit_id TEXT;
ALTER TABLE donations ADD COLUMN recorded_by TEXT;
CREATE INDEX donations_matched ON donations (matched_donation_id);
CREATE INDEX donations_campaign_unit ON donations (campaign_unit_id);
CREATE INDEX donations_org_received ON donations (org_id, received_at);

-- Where each donation's unspent money is now: in its fund (unrestricted) or in a project
-- (restricted from the start, or moved there by an allocation). FIFO order is `order_key`.
CREATE TABLE lots (
    donation_id   TEXT    NOT NULL REFERENCES donations (id),
    holder_kind   TEXT    NOT NULL CHECK (holder_kind IN ('fund', 'project')),
    holder_id     TEXT    NOT NULL,
    order_key     TEXT    NOT NULL,
    remaining_fen INTEGER NOT NULL CHECK (remaining_fen >= 0),
    PRIMARY KEY (donation_id, holder_kind, holder_id)
);
CREATE INDEX lots_fifo ON lots (holder_kind, holder_id, order_key) WHERE remaining_fen > 0;

-- Every movement of a donation's money after it arrived.
-- kind: allocation (fund -> project), disbursement (project -> recipient),
--       disbursement_reversed (back into the project), refund (back to the donor).
CREATE TABLE flows (
    id          INTEGER PRIMARY KEY,
    donation_id TEXT    NOT NULL REFERENCES donations (id),
    kind        TEXT    NOT NULL,
    ref_id      TEXT    NOT NULL,
    from_id     TEXT    NOT NULL,
    to_id       TEXT    NOT NULL,
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    at          TEXT    NOT NULL
);
CREATE INDEX flows_donation ON flows (donation_id);
CREATE INDEX flows_ref ON flows (ref_id);

-- Double-entry: each transfer's entries sum to zero. Accounts are `cash:ORG`, `fund:ID`,
-- `project:ID`, `paid:ID` (money that left to recipients), `refunded:ORG`.
CREATE TABLE ledger_entries (
    id          INTEGER PRIMARY KEY,
    transfer_id TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    amount_fen  INTEGER NOT NULL,
    at          TEXT    NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account);
CREATE INDEX ledger_entries_transfer ON ledger_entries (transfer_id);

CREATE TABLE allocations (
    id          TEXT    PRIMARY KEY,
    batch_id    TEXT    NOT NULL,
    fund_id     TEXT    NOT NULL REFERENCES funds (id),
    project_id  TEXT    NOT NULL REFERENCES projects (id),
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    weight      INTEGER NOT NULL CHECK (weight > 0),
    allocated_at TEXT   NOT NULL,
    recorded_by TEXT    NOT NULL
);
CREATE INDEX allocations_project ON allocations (project_id);
CREATE INDEX allocations_fund ON allocations (fund_id);

ALTER TABLE disbursements ADD COLUMN recipient_kind TEXT NOT NULL DEFAULT 'household';
ALTER TABLE disbursements ADD COLUMN recipient_participant_id TEXT REFERENCES participants (id);
ALTER TABLE disbursements ADD COLUMN supplier_name TEXT;
ALTER TABLE disbursements ADD COLUMN form TEXT NOT NULL DEFAULT 'cash';
ALTER TABLE disbursements ADD COLUMN purpose TEXT NOT NULL DEFAULT 'charitable';
ALTER TABLE disbursements ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE disbursements ADD COLUMN state TEXT NOT NULL DEFAULT 'paid';
ALTER TABLE disbursements ADD COLUMN reversed_at TEXT;
ALTER TABLE disbursements ADD COLUMN reversal_reason TEXT;
ALTER TABLE disbursements ADD COLUMN recorded_by TEXT;

CREATE TABLE evidence (
    id              TEXT    PRIMARY KEY,
    disbursement_id TEXT    NOT NULL REFERENCES disbursements (id),
    file_name       TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    sha256          TEXT    NOT NULL,
    size_bytes      INTEGER NOT NULL,
    uploaded_at     TEXT    NOT NULL
);
CREATE INDEX evidence_disbursement ON evidence (disbursement_id);

CREATE TABLE refunds (
    id          TEXT    PRIMARY KEY,
    donation_id TEXT    NOT NULL REFERENCES donations (id),
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    reason      TEXT    NOT NULL,
    refunded_at TEXT    NOT NULL,
    recorded_by TEXT    NOT NULL
);
CREATE INDEX refunds_donation ON refunds (donation_id);

-- Receipts: numbered per issuing organization per year without gaps; a number is never reused.
CREATE TABLE receipt_counters (
    org_id   TEXT    NOT NULL,
    year     INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (org_id, year)
);
CREATE TABLE receipts (
    number          TEXT    PRIMARY KEY,
    org_id          TEXT    NOT NULL REFERENCES organizations (id),
    year            INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    donation_id     TEXT    NOT NULL REFERENCES donations (id),
    amount_fen      INTEGER NOT NULL CHECK (amount_fen > 0),
    payer_name      TEXT    NOT NULL,
    payer_code      TEXT,
    item            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL,
    check_code      TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'issued',
    replaces_number TEXT,
    issued_at       TEXT    NOT NULL,
    voided_at       TEXT,
    UNIQUE (org_id, year, seq)
);
CREATE INDEX receipts_donation ON receipts (donation_id);

-- A retried request returns the first one's stored response and writes nothing.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE match_pools (
    id                   TEXT    PRIMARY KEY,
    name                 TEXT    NOT NULL,
    sponsor_participant_id TEXT  REFERENCES participants (id),
    sponsor_name         TEXT    NOT NULL,
    ratio_num            INTEGER NOT NULL CHECK (ratio_num > 0),
    ratio_den            INTEGER NOT NULL CHECK (ratio_den > 0),
    cap_per_donation_fen INTEGER NOT NULL CHECK (cap_per_donation_fen > 0),
    cap_per_donor_fen    INTEGER NOT NULL CHECK (cap_per_donor_fen > 0),
    cap_total_fen        INTEGER NOT NULL CHECK (cap_total_fen > 0),
    used_fen             INTEGER NOT NULL DEFAULT 0 CHECK (used_fen >= 0 AND used_fen <= cap_total_fen),
    campaign_id          TEXT,
    starts_at            TEXT    NOT NULL,
    ends_at              TEXT    NOT NULL,
    created_at           TEXT    NOT NULL
);
CREATE TABLE match_pool_projects (
    pool_id    TEXT NOT NULL REFERENCES match_pools (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    PRIMARY KEY (pool_id, project_id)
);

CREATE TABLE campaigns (
    id                 TEXT    PRIMARY KEY,
    org_id             TEXT    NOT NULL REFERENCES organizations (id),
    name               TEXT    NOT NULL,
    fund_id            TEXT    REFERENCES funds (id),
    starts_on          TEXT    NOT NULL,
    ends_on            TEXT    NOT NULL,
    target_government_pct  INTEGER NOT NULL DEFAULT 100,
    target_institution_pct INTEGER NOT NULL DEFAULT 100,
    target_enterprise_pct  INTEGER NOT NULL DEFAULT 75,
    created_at         TEXT    NOT NULL
);
CREATE TABLE campaign_units (
    id          TEXT    PRIMARY KEY,
    campaign_id TEXT    NOT NULL REFERENCES campaigns (id),
    name        TEXT    NOT NULL,
    unit_type   TEXT    NOT NULL CHECK (unit_type IN ('government', 'institution', 'enterprise')),
    headcount   INTEGER NOT NULL CHECK (headcount > 0),
    UNIQUE (campaign_id, name)
);

CREATE TABLE card_point_conversions (
    id              TEXT    PRIMARY KEY,
    bank_participant_id TEXT NOT NULL REFERENCES participants (id),
    batch_ref       TEXT    NOT NULL,
    points          INTEGER NOT NULL CHECK (points > 0),
    points_per_yuan INTEGER NOT NULL CHECK (points_per_yuan > 0),
    amount_fen      INTEGER NOT NULL CHECK (amount_fen > 0),
    donation_id     TEXT    NOT NULL REFERENCES donations (id),
    converted_at    TEXT    NOT NULL
);
