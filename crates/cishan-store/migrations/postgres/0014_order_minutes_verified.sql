-- A volunteer's minutes from a completed order count only once verified: by the review of the
-- person served (or staff recording a follow-up call), which confirms the service took place,
-- or by staff verifying them explicitly, possibly correcting them down (never above
-- service_minutes, what the volunteer's completion recorded). Until then they are pending:
-- service_minutes is set, credited is 0 and no service record or points act exists.
-- verified_minutes is what was confirmed (before the daily maximum caps the service records);
-- verified_by the account that confirmed it; verified_at when. credited = 1 once verified.
ALTER TABLE orders ADD COLUMN verified_minutes BIGINT CHECK (verified_minutes >= 0);
ALTER TABLE orders ADD COLUMN verified_by TEXT;
ALTER TABLE orders ADD COLUMN verified_at TEXT;

-- Orders credited before this migration were credited at completion, with what the server
-- recorded: that is what was confirmed (no account confirmed it).
UPDATE orders SET verified_minutes = service_minutes, verified_at = completed_at
 WHERE credited = 1 AND service_minutes IS NOT NULL;
