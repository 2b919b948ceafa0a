-- Service orders (制单—点单—派单—评单): the catalogue's extra columns, volunteers' service
-- categories, orders and their history, dispatch attempts with their explained scores, reviews,
-- and per-provider counters that dispatch reads and conditional UPDATEs keep.

-- A service says what it is, where it serves (its own community, its street or the whole
-- district), when (weekly windows, canonical text as `cishan_core::dispatch::TimeWindows`
-- prints it; empty = any time), for whom (assistance categories, comma-separated; empty = all),
-- and whether it is published. team_id: a volunteer team publishing it for its organization.
ALTER TABLE services ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN scope TEXT NOT NULL DEFAULT 'street' CHECK (scope IN ('community', 'street', 'district'));
ALTER TABLE services ADD COLUMN time_windows TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN eligibility TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN state TEXT NOT NULL DEFAULT 'published' CHECK (state IN ('published', 'withdrawn'));
ALTER TABLE services ADD COLUMN team_id TEXT REFERENCES volunteer_teams (id);
ALTER TABLE services ADD COLUMN created_by TEXT;
ALTER TABLE services ADD COLUMN updated_at TEXT;
CREATE INDEX services_org ON services (provider_org_id);

-- The service categories a volunteer takes orders in; rank 1 is their main one.
CREATE TABLE volunteer_categories (
    participant_id TEXT    NOT NULL REFERENCES volunteers (participant_id),
    category       TEXT    NOT NULL,
    rank           BIGINT  NOT NULL CHECK (rank >= 1),
    PRIMARY KEY (participant_id, category)
);

-- An order for one household (optionally one member), from a picked service or a need.
-- provider_id is the service (`svc_…`) or volunteer (`ptc_…`) holding it; provider_org_id the
-- service's organization (org staff see those orders). dispatch_week is the week whose capacity
-- the current dispatch used (days since 1970-01-01 of its local Monday). credited: a volunteer's
-- minutes were credited (once). State changes are compare-and-set on `state`.
CREATE TABLE orders (
    id              TEXT    PRIMARY KEY,
    household_id    TEXT    NOT NULL REFERENCES households (id),
    member_id       TEXT    REFERENCES household_members (id),
    need_id         TEXT    REFERENCES needs (id),
    service_id      TEXT    REFERENCES services (id),
    category        TEXT    NOT NULL,
    community_code  TEXT    NOT NULL REFERENCES divisions (code),
    street_code     TEXT    NOT NULL REFERENCES divisions (code),
    description     TEXT    NOT NULL DEFAULT '',
    wanted_at       TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('created', 'dispatched', 'accepted', 'in_service', 'completed', 'reviewed', 'cancelled')),
    provider_kind   TEXT    CHECK (provider_kind IN ('service', 'volunteer')),
    provider_id     TEXT,
    provider_org_id TEXT    REFERENCES organizations (id),
    dispatch_week   BIGINT,
    accept_deadline TEXT,
    passes          BIGINT  NOT NULL DEFAULT 0,
    requested_by    TEXT    NOT NULL,
    on_behalf       BIGINT  NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    first_dispatched_at TEXT,
    dispatched_at   TEXT,
    accepted_at     TEXT,
    started_at      TEXT,
    completed_at    TEXT,
    reviewed_at     TEXT,
    cancelled_at    TEXT,
    service_minutes BIGINT,
    credited        BIGINT  NOT NULL DEFAULT 0,
    synthetic       BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX orders_state ON orders (state, created_at);
CREATE INDEX orders_provider ON orders (provider_id, state);
CREATE INDEX orders_org ON orders (provider_org_id, state);
CREATE INDEX orders_household ON orders (household_id);
CREATE INDEX orders_street ON orders (street_code, state);
CREATE INDEX orders_deadline ON orders (state, accept_deadline);
CREATE INDEX orders_need ON orders (need_id);

-- Every change of an order, in order (seq from 1 per order).
CREATE TABLE order_events (
    order_id    TEXT    NOT NULL REFERENCES orders (id),
    seq         BIGINT  NOT NULL,
    action      TEXT    NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    provider_id TEXT,
    actor       TEXT    NOT NULL,
    on_behalf   BIGINT  NOT NULL DEFAULT 0,
    note        TEXT    NOT NULL DEFAULT '',
    at          TEXT    NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- Each dispatch of an order: the provider chosen, its score and explanation (JSON list of
-- components), the other candidates (JSON), automatic or a staff override, and what came of it.
CREATE TABLE dispatch_attempts (
    order_id      TEXT    NOT NULL REFERENCES orders (id),
    attempt       BIGINT  NOT NULL,
    provider_id   TEXT    NOT NULL,
    provider_kind TEXT    NOT NULL,
    score         BIGINT  NOT NULL,
    explanation   TEXT    NOT NULL,
    candidates    TEXT    NOT NULL,
    chosen_by     TEXT    NOT NULL CHECK (chosen_by IN ('auto', 'override', 'batch')),
    outcome       TEXT    NOT NULL CHECK (outcome IN ('pending', 'accepted', 'rejected', 'expired', 'cancelled')),
    actor         TEXT    NOT NULL,
    dispatched_at TEXT    NOT NULL,
    deadline      TEXT    NOT NULL,
    closed_at     TEXT,
    PRIMARY KEY (order_id, attempt)
);

-- One review per order (the primary key refuses a second). on_behalf: staff recorded it from a
-- follow-up call with the person served.
CREATE TABLE order_reviews (
    order_id        TEXT    PRIMARY KEY REFERENCES orders (id),
    provider_id     TEXT    NOT NULL,
    provider_kind   TEXT    NOT NULL,
    provider_org_id TEXT    REFERENCES organizations (id),
    street_code     TEXT    NOT NULL,
    rating          BIGINT  NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment         TEXT    NOT NULL DEFAULT '',
    reviewed_by     TEXT    NOT NULL,
    on_behalf       BIGINT  NOT NULL DEFAULT 0,
    reviewed_at     TEXT    NOT NULL
);
CREATE INDEX order_reviews_provider ON order_reviews (provider_id);
CREATE INDEX order_reviews_org ON order_reviews (provider_org_id);
CREATE INDEX order_reviews_rating ON order_reviews (rating, reviewed_at);

-- What dispatch knows of a provider beyond its definition: the week `week_used` counts in,
-- orders in hand, and the sum and count of its ratings. A dispatch raises week_used only by a
-- conditional UPDATE against the capacity, so concurrent dispatches never pass it.
CREATE TABLE provider_stats (
    provider_id   TEXT    PRIMARY KEY,
    provider_kind TEXT    NOT NULL CHECK (provider_kind IN ('service', 'volunteer')),
    week          BIGINT  NOT NULL DEFAULT 0,
    week_used     BIGINT  NOT NULL DEFAULT 0 CHECK (week_used >= 0),
    live_orders   BIGINT  NOT NULL DEFAULT 0 CHECK (live_orders >= 0),
    rating_sum    BIGINT  NOT NULL DEFAULT 0,
    rating_count  BIGINT  NOT NULL DEFAULT 0,
    completed     BIGINT  NOT NULL DEFAULT 0
);
