-- A payment reference (bank or online transaction number) is recorded as a donation at most
-- once per channel: recording the same transfer twice would double the money on the books.
-- Matches (`match`, reference = the pool) and card point conversions (`card_points`,
-- reference = the bank's batch, one donation per cardholder) share a reference by design and
-- are left out. The unique index, not only the check in `apply_donation`, is what holds when
-- two requests with the same reference are committed in one group-commit batch. Lookups must
-- repeat the index's WHERE clause for SQLite to use it.
CREATE UNIQUE INDEX donations_payment_ref ON donations (channel, payment_ref)
    WHERE payment_ref IS NOT NULL AND channel NOT IN ('match', 'card_points');
