-- Campaigns (一日捐), bank card point conversions and exports: indexes for the lookups they do.
-- A bank's batch is looked up by (bank, batch reference) so the same batch cannot be converted
-- twice; a donation's conversion by donation; a campaign report reads donations by unit (see
-- donations_campaign_unit in 0004); exports read allocations by fund and project (0004) and
-- receipts by donation (0004).
CREATE INDEX card_point_conversions_batch ON card_point_conversions (bank_participant_id, batch_ref);
CREATE INDEX card_point_conversions_donation ON card_point_conversions (donation_id);
CREATE INDEX campaigns_org ON campaigns (org_id);
