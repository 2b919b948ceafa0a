-- Fewer index writes per donation: indexes on donation columns that most donations leave empty
-- hold only the rows that have a value. Every lookup through them compares the column with a
-- value, which implies IS NOT NULL, so the planner still uses them. The donor index stays
-- whole: the disclosure summary counts donations without a donor. (SQLite's migration also
-- stores two tables WITHOUT ROWID; PostgreSQL has no rowid.)
DROP INDEX donations_fund;
CREATE INDEX donations_fund ON donations (fund_id) WHERE fund_id IS NOT NULL;
DROP INDEX donations_project;
CREATE INDEX donations_project ON donations (project_id) WHERE project_id IS NOT NULL;
DROP INDEX donations_matched;
CREATE INDEX donations_matched ON donations (matched_donation_id) WHERE matched_donation_id IS NOT NULL;
DROP INDEX donations_campaign_unit;
CREATE INDEX donations_campaign_unit ON donations (campaign_unit_id) WHERE campaign_unit_id IS NOT NULL;
CREATE INDEX donations_pool ON donations (pool_id) WHERE pool_id IS NOT NULL;
