//! SQL for charity points: rule sets, acts, the append-only entries, spendable lots, balances,
//! partner offers and redemptions (migration 0009, docs/points.md). The rules themselves live in
//! `cishan_core::points`; this module reads and writes rows, and turns every limit (stock, lot
//! remaining, one cancellation) into a conditional UPDATE whose row count is checked.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{bulk_row, conflict, AnyQuery, BulkRow};
use crate::{Result, Store, WriteTx};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointsRuleSetRow {
    pub version: String,
    pub name: String,
    pub effective_from: String,
    pub body: String,
    pub body_sha256: String,
    pub published_at: String,
    pub published_by: String,
}
bulk_row!(PointsRuleSetRow, "points_rule_sets",
    [version, name, effective_from, body, body_sha256, published_at, published_by], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointsBalanceRow {
    pub participant_id: String,
    pub pkey: i64,
    pub honour: i64,
    pub spendable: i64,
    pub debt: i64,
    pub tier: String,
    pub updated_at: String,
}

/// A new act, before it has a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPointsActRow {
    pub participant_id: String,
    pub pkey: i64,
    pub kind_code: i64,
    pub category: Option<String>,
    pub source_kind: String,
    pub source_id: String,
    pub quantity: i64,
    pub reversed_quantity: i64,
    pub occurred_at: String,
    pub at_us: i64,
    pub local_day: i64,
    pub note: String,
    pub recorded_by: String,
    pub recorded_at: String,
}
bulk_row!(NewPointsActRow, "points_acts",
    [participant_id, pkey, kind_code, category, source_kind, source_id, quantity,
     reversed_quantity, occurred_at, at_us, local_day, note, recorded_by, recorded_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointsActRow {
    pub seq: i64,
    pub participant_id: String,
    pub pkey: i64,
    pub kind_code: i64,
    pub category: Option<String>,
    pub source_kind: String,
    pub source_id: String,
    pub quantity: i64,
    pub reversed_quantity: i64,
    pub occurred_at: String,
    pub at_us: i64,
    pub local_day: i64,
    pub note: String,
    pub rule_version: Option<String>,
    pub honour: i64,
    pub spendable: i64,
}

const ACT_COLUMNS: &str = "seq, participant_id, pkey, kind_code, category, source_kind, \
    source_id, quantity, reversed_quantity, occurred_at, at_us, local_day, note, rule_version, \
    honour, spendable";

fn act_from_row(r: &AnyRow) -> Result<PointsActRow> {
    Ok(PointsActRow {
        seq: r.try_get("seq")?,
        participant_id: r.try_get("participant_id")?,
        pkey: r.try_get("pkey")?,
        kind_code: r.try_get("kind_code")?,
        category: r.try_get("category")?,
        source_kind: r.try_get("source_kind")?,
        source_id: r.try_get("source_id")?,
        quantity: r.try_get("quantity")?,
        reversed_quantity: r.try_get("reversed_quantity")?,
        occurred_at: r.try_get("occurred_at")?,
        at_us: r.try_get("at_us")?,
        local_day: r.try_get("local_day")?,
        note: r.try_get("note")?,
        rule_version: r.try_get("rule_version")?,
        honour: r.try_get("honour")?,
        spendable: r.try_get("spendable")?,
    })
}

/// One line of the points history. Never updated or deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointsEntryRow {
    pub participant_id: String,
    /// accrue | reverse | adjust | redeem | cancel | expire
    pub kind: String,
    pub act_seq: Option<i64>,
    pub redemption_id: Option<String>,
    pub rule_version: Option<String>,
    pub honour_delta: i64,
    pub spendable_delta: i64,
    pub reason: String,
    pub at: String,
}
bulk_row!(PointsEntryRow, "points_entries",
    [participant_id, kind, act_seq, redemption_id, rule_version, honour_delta, spendable_delta,
     reason, at], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PointsLotRow {
    pub act_seq: i64,
    pub participant_id: String,
    pub expires_on: i64,
    pub granted: i64,
    pub remaining: i64,
}

fn lot_from_row(r: &AnyRow) -> Result<PointsLotRow> {
    Ok(PointsLotRow {
        act_seq: r.try_get("act_seq")?,
        participant_id: r.try_get("participant_id")?,
        expires_on: r.try_get("expires_on")?,
        granted: r.try_get("granted")?,
        remaining: r.try_get("remaining")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PointsOfferRow {
    pub id: String,
    pub org_id: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub cost_points: i64,
    pub min_tier: Option<String>,
    pub stock: i64,
    pub valid_from: String,
    pub valid_to: String,
    pub created_by: String,
    pub created_at: String,
}
bulk_row!(PointsOfferRow, "points_offers",
    [id, org_id, channel, title, description, cost_points, min_tier, stock, valid_from, valid_to,
     created_by, created_at], flags []);

const OFFER_COLUMNS: &str = "id, org_id, channel, title, description, cost_points, min_tier, \
    stock, valid_from, valid_to, created_by, created_at";

fn offer_from_row(r: &AnyRow) -> Result<PointsOfferRow> {
    Ok(PointsOfferRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        channel: r.try_get("channel")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        cost_points: r.try_get("cost_points")?,
        min_tier: r.try_get("min_tier")?,
        stock: r.try_get("stock")?,
        valid_from: r.try_get("valid_from")?,
        valid_to: r.try_get("valid_to")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PointsRedemptionRow {
    pub id: String,
    pub offer_id: String,
    pub participant_id: String,
    pub cost_points: i64,
    pub state: String,
    pub redeemed_by: String,
    pub redeemed_at: String,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<String>,
    pub cancel_reason: Option<String>,
}
bulk_row!(PointsRedemptionRow, "points_redemptions",
    [id, offer_id, participant_id, cost_points, state, redeemed_by, redeemed_at, cancelled_by,
     cancelled_at, cancel_reason], flags []);

const REDEMPTION_COLUMNS: &str = "id, offer_id, participant_id, cost_points, state, redeemed_by, \
    redeemed_at, cancelled_by, cancelled_at, cancel_reason";

fn redemption_from_row(r: &AnyRow) -> Result<PointsRedemptionRow> {
    Ok(PointsRedemptionRow {
        id: r.try_get("id")?,
        offer_id: r.try_get("offer_id")?,
        participant_id: r.try_get("participant_id")?,
        cost_points: r.try_get("cost_points")?,
        state: r.try_get("state")?,
        redeemed_by: r.try_get("redeemed_by")?,
        redeemed_at: r.try_get("redeemed_at")?,
        cancelled_by: r.try_get("cancelled_by")?,
        cancelled_at: r.try_get("cancelled_at")?,
        cancel_reason: r.try_get("cancel_reason")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsRedemptionLotRow {
    pub redemption_id: String,
    pub act_seq: i64,
    pub amount: i64,
}
bulk_row!(PointsRedemptionLotRow, "points_redemption_lots", [redemption_id, act_seq, amount], flags []);

/// A donation not yet turned into an act (participant donors only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsyncedDonation {
    pub id: String,
    pub donor_participant_id: String,
    pub kind: String,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub received_at: String,
}

/// A card point conversion not yet turned into an act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsyncedCardPoints {
    pub id: String,
    pub cardholder_participant_id: String,
    pub points: i64,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub converted_at: String,
}

/// An act whose source's refunded part differs from what the act has reversed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDrift {
    pub seq: i64,
    pub participant_id: String,
    pub source_kind: String,
    pub source_id: String,
    pub quantity: i64,
    pub reversed_quantity: i64,
    /// The source donation's amount and refunded part.
    pub amount_fen: i64,
    pub refunded_fen: i64,
}

/// One act as the recompute scan reads it: integers only, plus the category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedAct {
    pub seq: i64,
    pub pkey: i64,
    pub kind_code: i64,
    pub category: Option<String>,
    pub quantity: i64,
    pub reversed_quantity: i64,
    pub at_us: i64,
    pub local_day: i64,
    pub honour: i64,
    pub spendable: i64,
}

const DONATION_SYNC_SQL: &str = "SELECT d.id, d.donor_participant_id, d.kind, d.amount_fen, \
    d.refunded_fen, d.received_at FROM donations d \
    WHERE d.donor_participant_id IS NOT NULL AND d.channel <> 'card_points' \
    AND NOT EXISTS (SELECT 1 FROM points_acts a WHERE a.source_kind = 'donation' AND a.source_id = d.id)";

const CARD_SYNC_SQL: &str = "SELECT c.id, d.donor_participant_id, c.points, d.amount_fen, \
    d.refunded_fen, c.converted_at FROM card_point_conversions c \
    JOIN donations d ON d.id = c.donation_id \
    WHERE d.donor_participant_id IS NOT NULL \
    AND NOT EXISTS (SELECT 1 FROM points_acts a WHERE a.source_kind = 'card_points' AND a.source_id = c.id)";

/// Acts of refunded sources; `{filter}` is replaced by an extra condition on `a`.
const DRIFT_SQL: &str = "SELECT a.seq, a.participant_id, a.source_kind, a.source_id, a.quantity, \
    a.reversed_quantity, d.amount_fen, d.refunded_fen FROM points_acts a \
    JOIN card_point_conversions c ON c.id = a.source_id \
    JOIN donations d ON d.id = c.donation_id \
    WHERE a.source_kind = 'card_points' \
    AND a.reversed_quantity <> a.quantity - (a.quantity * (d.amount_fen - d.refunded_fen)) / d.amount_fen {filter} \
    UNION ALL \
    SELECT a.seq, a.participant_id, a.source_kind, a.source_id, a.quantity, a.reversed_quantity, \
    d.amount_fen, d.refunded_fen FROM points_acts a \
    JOIN donations d ON d.id = a.source_id \
    WHERE a.source_kind = 'donation' AND d.refunded_fen <> a.reversed_quantity {filter}";

fn unsynced_donation(r: &AnyRow) -> Result<UnsyncedDonation> {
    Ok(UnsyncedDonation {
        id: r.try_get("id")?,
        donor_participant_id: r.try_get("donor_participant_id")?,
        kind: r.try_get("kind")?,
        amount_fen: r.try_get("amount_fen")?,
        refunded_fen: r.try_get("refunded_fen")?,
        received_at: r.try_get("received_at")?,
    })
}

fn unsynced_card(r: &AnyRow) -> Result<UnsyncedCardPoints> {
    Ok(UnsyncedCardPoints {
        id: r.try_get("id")?,
        cardholder_participant_id: r.try_get("donor_participant_id")?,
        points: r.try_get("points")?,
        amount_fen: r.try_get("amount_fen")?,
        refunded_fen: r.try_get("refunded_fen")?,
        converted_at: r.try_get("converted_at")?,
    })
}

fn drift(r: &AnyRow) -> Result<RefundDrift> {
    Ok(RefundDrift {
        seq: r.try_get("seq")?,
        participant_id: r.try_get("participant_id")?,
        source_kind: r.try_get("source_kind")?,
        source_id: r.try_get("source_id")?,
        quantity: r.try_get("quantity")?,
        reversed_quantity: r.try_get("reversed_quantity")?,
        amount_fen: r.try_get("amount_fen")?,
        refunded_fen: r.try_get("refunded_fen")?,
    })
}

impl WriteTx {
    /// Every published rule set, in publication order.
    pub async fn points_rule_sets(&mut self) -> Result<Vec<PointsRuleSetRow>> {
        self.flush().await?;
        let rows = sqlx::query(
            "SELECT version, name, effective_from, body, body_sha256, published_at, published_by \
             FROM points_rule_sets ORDER BY published_at, version",
        )
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(rule_set_from_row).collect()
    }

    /// The balance row of a participant, created (with the next compact key) when missing.
    pub async fn ensure_points_balance(
        &mut self,
        participant_id: &str,
        tier: &str,
        now: &str,
    ) -> Result<PointsBalanceRow> {
        self.flush().await?;
        if let Some(row) = self.points_balance(participant_id).await? {
            return Ok(row);
        }
        sqlx::query(
            "INSERT INTO points_balances (participant_id, pkey, honour, spendable, debt, tier, updated_at) \
             SELECT $1, COALESCE(MAX(pkey), 0) + 1, 0, 0, 0, $2, $3 FROM points_balances",
        )
        .bind(participant_id)
        .bind(tier)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(|e| conflict(e, "points_balances"))?;
        self.points_balance(participant_id)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt("points balance row vanished".into()))
    }

    pub async fn points_balance(
        &mut self,
        participant_id: &str,
    ) -> Result<Option<PointsBalanceRow>> {
        let row = sqlx::query(
            "SELECT participant_id, pkey, honour, spendable, debt, tier, updated_at \
             FROM points_balances WHERE participant_id = $1",
        )
        .bind(participant_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(balance_from_row).transpose()
    }

    /// Adds to a balance row and sets its tier.
    pub async fn add_to_points_balance(
        &mut self,
        participant_id: &str,
        honour: i64,
        spendable: i64,
        debt: i64,
        tier: &str,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE points_balances SET honour = honour + $1, spendable = spendable + $2, \
             debt = debt + $3, tier = $4, updated_at = $5 WHERE participant_id = $6",
        )
        .bind(honour)
        .bind(spendable)
        .bind(debt)
        .bind(tier)
        .bind(now)
        .bind(participant_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn points_act_by_source(
        &mut self,
        source_kind: &str,
        source_id: &str,
    ) -> Result<Option<PointsActRow>> {
        self.flush().await?;
        let sql = format!(
            "SELECT {ACT_COLUMNS} FROM points_acts WHERE source_kind = $1 AND source_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(source_kind)
            .bind(source_id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(act_from_row).transpose()
    }

    /// Sets what an act counts (its quantity and the part undone).
    pub async fn set_points_act_quantity(
        &mut self,
        seq: i64,
        quantity: i64,
        reversed_quantity: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE points_acts SET quantity = $1, reversed_quantity = $2 WHERE seq = $3")
            .bind(quantity)
            .bind(reversed_quantity)
            .bind(seq)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// One participant's acts in evaluation order.
    pub async fn points_acts_of_pkey(&mut self, pkey: i64) -> Result<Vec<PointsActRow>> {
        self.flush().await?;
        let sql =
            format!("SELECT {ACT_COLUMNS} FROM points_acts WHERE pkey = $1 ORDER BY at_us, seq");
        let rows = sqlx::query(&sql).bind(pkey).fetch_all(self.conn()).await?;
        rows.iter().map(act_from_row).collect()
    }

    /// Records what an act earns now (kept equal to the sum of its entries).
    pub async fn set_points_act_award(
        &mut self,
        seq: i64,
        rule_version: Option<&str>,
        honour: i64,
        spendable: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE points_acts SET rule_version = $1, honour = $2, spendable = $3 WHERE seq = $4",
        )
        .bind(rule_version)
        .bind(honour)
        .bind(spendable)
        .bind(seq)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The lots of a participant, including expired and empty ones.
    pub async fn points_lots_of(&mut self, participant_id: &str) -> Result<Vec<PointsLotRow>> {
        let rows = sqlx::query(
            "SELECT act_seq, participant_id, expires_on, granted, remaining FROM points_lots \
             WHERE participant_id = $1 ORDER BY expires_on, act_seq",
        )
        .bind(participant_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// Adds `amount` (≥ 0) to an act's lot, creating it with `expires_on` when missing.
    pub async fn add_to_points_lot(
        &mut self,
        act_seq: i64,
        participant_id: &str,
        expires_on: i64,
        granted: i64,
        amount: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO points_lots (act_seq, participant_id, expires_on, granted, remaining) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (act_seq) DO UPDATE SET \
             granted = points_lots.granted + excluded.granted, \
             remaining = points_lots.remaining + excluded.remaining",
        )
        .bind(act_seq)
        .bind(participant_id)
        .bind(expires_on)
        .bind(granted)
        .bind(amount)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Takes `amount` from a lot if it holds that much; false (and nothing changed) otherwise.
    pub async fn take_from_points_lot(&mut self, act_seq: i64, amount: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE points_lots SET remaining = remaining - $1 WHERE act_seq = $2 AND remaining >= $1",
        )
        .bind(amount)
        .bind(act_seq)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn points_offer(&mut self, id: &str) -> Result<Option<PointsOfferRow>> {
        self.flush().await?;
        let sql = format!("SELECT {OFFER_COLUMNS} FROM points_offers WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(offer_from_row).transpose()
    }

    /// Takes one item of an offer's stock; false (nothing changed) when none is left.
    pub async fn take_offer_stock(&mut self, id: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE points_offers SET stock = stock - 1 WHERE id = $1 AND stock > 0")
                .bind(id)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn return_offer_stock(&mut self, id: &str) -> Result<()> {
        sqlx::query("UPDATE points_offers SET stock = stock + 1 WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn points_redemption(&mut self, id: &str) -> Result<Option<PointsRedemptionRow>> {
        self.flush().await?;
        let sql = format!("SELECT {REDEMPTION_COLUMNS} FROM points_redemptions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(redemption_from_row).transpose()
    }

    /// Marks a redemption cancelled if it is not already; false (nothing changed) otherwise.
    pub async fn cancel_points_redemption(
        &mut self,
        id: &str,
        by: &str,
        at: &str,
        reason: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE points_redemptions SET state = 'cancelled', cancelled_by = $1, cancelled_at = $2, \
             cancel_reason = $3 WHERE id = $4 AND state = 'redeemed'",
        )
        .bind(by)
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn redemption_lots(&mut self, id: &str) -> Result<Vec<PointsRedemptionLotRow>> {
        let rows = sqlx::query(
            "SELECT redemption_id, act_seq, amount FROM points_redemption_lots \
             WHERE redemption_id = $1 ORDER BY act_seq",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PointsRedemptionLotRow {
                    redemption_id: r.try_get("redemption_id")?,
                    act_seq: r.try_get("act_seq")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    }

    /// Donations of participant donors without an act yet (one donor's when `participant` is
    /// given), at most `limit`, oldest first.
    pub async fn unsynced_donations(
        &mut self,
        participant: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UnsyncedDonation>> {
        self.flush().await?;
        let rows = match participant {
            Some(p) => {
                let sql = format!(
                    "{DONATION_SYNC_SQL} AND d.donor_participant_id = $1 ORDER BY d.received_at, d.id LIMIT $2"
                );
                sqlx::query(&sql)
                    .bind(p)
                    .bind(limit)
                    .fetch_all(self.conn())
                    .await?
            }
            None => {
                let sql = format!("{DONATION_SYNC_SQL} ORDER BY d.received_at, d.id LIMIT $1");
                sqlx::query(&sql).bind(limit).fetch_all(self.conn()).await?
            }
        };
        rows.iter().map(unsynced_donation).collect()
    }

    /// Card point conversions of registered cardholders without an act yet.
    pub async fn unsynced_card_points(
        &mut self,
        participant: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UnsyncedCardPoints>> {
        self.flush().await?;
        let rows = match participant {
            Some(p) => {
                let sql = format!(
                    "{CARD_SYNC_SQL} AND d.donor_participant_id = $1 ORDER BY c.converted_at, c.id LIMIT $2"
                );
                sqlx::query(&sql)
                    .bind(p)
                    .bind(limit)
                    .fetch_all(self.conn())
                    .await?
            }
            None => {
                let sql = format!("{CARD_SYNC_SQL} ORDER BY c.converted_at, c.id LIMIT $1");
                sqlx::query(&sql).bind(limit).fetch_all(self.conn()).await?
            }
        };
        rows.iter().map(unsynced_card).collect()
    }

    /// Acts from donations or card points whose source has been refunded since (candidates:
    /// the caller computes the reversed quantity and skips the ones already in step).
    pub async fn refund_drift(&mut self, participant: Option<&str>) -> Result<Vec<RefundDrift>> {
        self.flush().await?;
        let rows = match participant {
            Some(p) => {
                let sql = DRIFT_SQL.replace("{filter}", "AND a.participant_id = $1");
                sqlx::query(&sql).bind(p).fetch_all(self.conn()).await?
            }
            None => {
                let sql = DRIFT_SQL.replace("{filter}", "");
                sqlx::query(&sql).fetch_all(self.conn()).await?
            }
        };
        rows.iter().map(drift).collect()
    }

    /// A participant's lots that have expired by `today` and still hold points.
    pub async fn expired_points_lots(
        &mut self,
        participant_id: &str,
        today: i64,
    ) -> Result<Vec<PointsLotRow>> {
        self.flush().await?;
        let rows = sqlx::query(
            "SELECT act_seq, participant_id, expires_on, granted, remaining FROM points_lots \
             WHERE participant_id = $1 AND expires_on <= $2 AND remaining > 0 ORDER BY expires_on, act_seq",
        )
        .bind(participant_id)
        .bind(today)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// Participants with expired lots still holding points (for the sweep), at most `limit`.
    pub async fn participants_with_expired_lots(
        &mut self,
        today: i64,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.flush().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT participant_id FROM points_lots WHERE expires_on <= $1 AND remaining > 0 \
             ORDER BY participant_id LIMIT $2",
        )
        .bind(today)
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("participant_id")?))
            .collect()
    }

    /// Every balance row's participant and compact key, ascending by key.
    pub async fn points_pkeys(&mut self) -> Result<Vec<(i64, String)>> {
        self.flush().await?;
        let rows = sqlx::query("SELECT pkey, participant_id FROM points_balances ORDER BY pkey")
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("pkey")?, r.try_get("participant_id")?)))
            .collect()
    }
}

fn rule_set_from_row(r: &AnyRow) -> Result<PointsRuleSetRow> {
    Ok(PointsRuleSetRow {
        version: r.try_get("version")?,
        name: r.try_get("name")?,
        effective_from: r.try_get("effective_from")?,
        body: r.try_get("body")?,
        body_sha256: r.try_get("body_sha256")?,
        published_at: r.try_get("published_at")?,
        published_by: r.try_get("published_by")?,
    })
}

fn balance_from_row(r: &AnyRow) -> Result<PointsBalanceRow> {
    Ok(PointsBalanceRow {
        participant_id: r.try_get("participant_id")?,
        pkey: r.try_get("pkey")?,
        honour: r.try_get("honour")?,
        spendable: r.try_get("spendable")?,
        debt: r.try_get("debt")?,
        tier: r.try_get("tier")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// What identifies the published rule sets (published sets are never changed or removed):
    /// their number and the latest publication instant.
    pub async fn points_rule_sets_stamp(&self) -> Result<(i64, Option<String>)> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, MAX(published_at) AS latest FROM points_rule_sets",
        )
        .fetch_one(self.reader())
        .await?;
        Ok((row.try_get("n")?, row.try_get("latest")?))
    }

    pub async fn points_rule_sets(&self) -> Result<Vec<PointsRuleSetRow>> {
        let rows = sqlx::query(
            "SELECT version, name, effective_from, body, body_sha256, published_at, published_by \
             FROM points_rule_sets ORDER BY published_at, version",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(rule_set_from_row).collect()
    }

    pub async fn points_balance(&self, participant_id: &str) -> Result<Option<PointsBalanceRow>> {
        let row = sqlx::query(
            "SELECT participant_id, pkey, honour, spendable, debt, tier, updated_at \
             FROM points_balances WHERE participant_id = $1",
        )
        .bind(participant_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(balance_from_row).transpose()
    }

    /// One participant's acts in evaluation order (the breakdown).
    pub async fn points_acts_of(&self, participant_id: &str) -> Result<Vec<PointsActRow>> {
        let sql = format!(
            "SELECT {ACT_COLUMNS} FROM points_acts WHERE pkey = \
             (SELECT pkey FROM points_balances WHERE participant_id = $1) ORDER BY at_us, seq"
        );
        let rows = sqlx::query(&sql)
            .bind(participant_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(act_from_row).collect()
    }

    /// Unexpired points left in a participant's lots on `today`, and the nearest expiry.
    pub async fn points_usable(
        &self,
        participant_id: &str,
        today: i64,
    ) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) AS usable, MIN(expires_on) AS soonest \
             FROM points_lots WHERE participant_id = $1 AND expires_on > $2 AND remaining > 0",
        )
        .bind(participant_id)
        .bind(today)
        .fetch_one(self.reader())
        .await?;
        Ok((row.try_get("usable")?, row.try_get("soonest")?))
    }

    /// A participant's most recent entries, newest first.
    pub async fn points_entries_of(
        &self,
        participant_id: &str,
        limit: i64,
    ) -> Result<Vec<PointsEntryRow>> {
        let rows = sqlx::query(
            "SELECT participant_id, kind, act_seq, redemption_id, rule_version, honour_delta, \
             spendable_delta, reason, at FROM points_entries WHERE participant_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(participant_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PointsEntryRow {
                    participant_id: r.try_get("participant_id")?,
                    kind: r.try_get("kind")?,
                    act_seq: r.try_get("act_seq")?,
                    redemption_id: r.try_get("redemption_id")?,
                    rule_version: r.try_get("rule_version")?,
                    honour_delta: r.try_get("honour_delta")?,
                    spendable_delta: r.try_get("spendable_delta")?,
                    reason: r.try_get("reason")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// True when a participant has a donation, card conversion or refund not yet reflected in
    /// their acts, or a lot whose expiry day has come. Four indexed lookups.
    pub async fn points_pending(&self, participant_id: &str, today: i64) -> Result<bool> {
        let checks = [
            format!("{DONATION_SYNC_SQL} AND d.donor_participant_id = $1 LIMIT 1"),
            format!("{CARD_SYNC_SQL} AND d.donor_participant_id = $1 LIMIT 1"),
            DRIFT_SQL.replace("{filter}", "AND a.participant_id = $1"),
        ];
        for sql in &checks {
            if sqlx::query(sql)
                .bind(participant_id)
                .fetch_optional(self.reader())
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        let expired = sqlx::query(
            "SELECT 1 FROM points_lots WHERE participant_id = $1 AND expires_on <= $2 AND remaining > 0 LIMIT 1",
        )
        .bind(participant_id)
        .bind(today)
        .fetch_optional(self.reader())
        .await?;
        Ok(expired.is_some())
    }

    /// Count of entries (for tests and the recompute report).
    pub async fn points_entry_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM points_entries")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Offers valid on `date` (`YYYY-MM-DD`), by cost.
    pub async fn points_offers(&self, date: Option<&str>) -> Result<Vec<PointsOfferRow>> {
        let rows = match date {
            Some(d) => {
                let sql = format!(
                    "SELECT {OFFER_COLUMNS} FROM points_offers WHERE valid_from <= $1 AND valid_to >= $1 \
                     ORDER BY cost_points, id"
                );
                sqlx::query(&sql).bind(d).fetch_all(self.reader()).await?
            }
            None => {
                let sql =
                    format!("SELECT {OFFER_COLUMNS} FROM points_offers ORDER BY created_at, id");
                sqlx::query(&sql).fetch_all(self.reader()).await?
            }
        };
        rows.iter().map(offer_from_row).collect()
    }

    pub async fn points_offer(&self, id: &str) -> Result<Option<PointsOfferRow>> {
        let sql = format!("SELECT {OFFER_COLUMNS} FROM points_offers WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(offer_from_row).transpose()
    }

    pub async fn points_redemption(&self, id: &str) -> Result<Option<PointsRedemptionRow>> {
        let sql = format!("SELECT {REDEMPTION_COLUMNS} FROM points_redemptions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(redemption_from_row).transpose()
    }

    /// Redemptions of a participant, or of offers of an organization, newest first.
    pub async fn points_redemptions(
        &self,
        participant_id: Option<&str>,
        org_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PointsRedemptionRow>> {
        let cols = REDEMPTION_COLUMNS
            .split(", ")
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = match (participant_id, org_id) {
            (Some(p), _) => {
                let sql = format!(
                    "SELECT {cols} FROM points_redemptions r WHERE r.participant_id = $1 \
                     ORDER BY r.redeemed_at DESC, r.id LIMIT $2"
                );
                sqlx::query(&sql)
                    .bind(p)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?
            }
            (None, Some(o)) => {
                let sql = format!(
                    "SELECT {cols} FROM points_redemptions r JOIN points_offers o ON o.id = r.offer_id \
                     WHERE o.org_id = $1 ORDER BY r.redeemed_at DESC, r.id LIMIT $2"
                );
                sqlx::query(&sql)
                    .bind(o)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?
            }
            (None, None) => {
                let sql = format!(
                    "SELECT {cols} FROM points_redemptions r ORDER BY r.redeemed_at DESC, r.id LIMIT $1"
                );
                sqlx::query(&sql)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.iter().map(redemption_from_row).collect()
    }

    /// Acts with `seq` in `[from, to)`, in `seq` order: the recompute scan. Integers only except
    /// the category, so a row decodes quickly.
    pub async fn scan_points_acts(&self, from: i64, to: i64) -> Result<Vec<ScannedAct>> {
        let rows = sqlx::query(
            "SELECT seq, pkey, kind_code, category, quantity, reversed_quantity, at_us, local_day, \
             honour, spendable FROM points_acts WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScannedAct {
                    seq: r.try_get(0)?,
                    pkey: r.try_get(1)?,
                    kind_code: r.try_get(2)?,
                    category: r.try_get(3)?,
                    quantity: r.try_get(4)?,
                    reversed_quantity: r.try_get(5)?,
                    at_us: r.try_get(6)?,
                    local_day: r.try_get(7)?,
                    honour: r.try_get(8)?,
                    spendable: r.try_get(9)?,
                })
            })
            .collect()
    }

    /// Acts with `seq` in `[from, to)` as one text, concatenated by the database in C:
    /// `seq,pkey,kind_code,quantity,reversed,at_us,local_day,honour,spendable,category` per act,
    /// acts separated by `;`, in no particular order; `None` when the range is empty. One row per
    /// range instead of one per act: decoding rows one by one costs about 6 µs an act through
    /// sqlx, which made a 10M-act scan take a minute.
    pub async fn scan_points_acts_packed(&self, from: i64, to: i64) -> Result<Option<String>> {
        let agg = match self.backend() {
            crate::Backend::Sqlite => "group_concat",
            crate::Backend::Postgres => "string_agg",
        };
        let sql = format!(
            "SELECT {agg}(seq || ',' || pkey || ',' || kind_code || ',' || quantity || ',' || \
             reversed_quantity || ',' || at_us || ',' || local_day || ',' || honour || ',' || \
             spendable || ',' || COALESCE(category, ''), ';') AS packed \
             FROM points_acts WHERE seq >= $1 AND seq < $2"
        );
        let row = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("packed")?)
    }

    /// The largest act sequence number (0 when there are none).
    pub async fn max_points_act_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS m FROM points_acts")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("m")?)
    }

    /// Participant ids by compact key, for the given keys.
    pub async fn points_participants_of(&self, pkeys: &[i64]) -> Result<Vec<(i64, String)>> {
        let mut out = Vec::with_capacity(pkeys.len());
        for chunk in pkeys.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sql =
                format!("SELECT pkey, participant_id FROM points_balances WHERE pkey IN ({list})");
            let rows = sqlx::query(&sql).fetch_all(self.reader()).await?;
            for r in &rows {
                out.push((r.try_get("pkey")?, r.try_get("participant_id")?));
            }
        }
        Ok(out)
    }
}
