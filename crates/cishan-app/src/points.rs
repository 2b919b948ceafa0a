//! Charity points (一键算): acts, their points under the published rule sets, reversals, the
//! donation sync, the explained balance, and recompute under a new rule version. Rewards
//! (offers and redemptions) are in [`crate::rewards`]. The model is in docs/points.md.
//!
//! The one invariant: after every write, each act's points (`points_acts.honour/spendable`, the
//! sum of its entries) equal what `cishan_core::points::evaluate` gives for the participant's
//! acts under the published rules. Every write to a participant's acts therefore re-evaluates
//! that participant ([`settle`]) and writes the differences as new entries; history is never
//! rewritten, and recomputing under the same rules finds nothing to change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use cishan_core::points::{
    self as core, day_of_date, evaluate, ActKind, RuleBook, RuleSet, POINTS_TIME_ZONE,
};
use cishan_store::points::{NewPointsActRow, PointsActRow, PointsEntryRow, PointsRuleSetRow};
use cishan_store::{format_instant, NewEntry, WriteTx};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::donations::{replay, request_hash, save_replay, IdempotencyKey, Outcome};
use crate::{Actor, App, AppError, Result};

/// An act that earns points, as another use case reports it (helper B's volunteering calls
/// [`record_act`] with kind [`ActKind::VolunteerMinutes`] when an organizer verifies a session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAct {
    pub participant_id: String,
    pub kind: ActKind,
    /// The activity's category (volunteering) or the skill's field; `None` for donations.
    pub category: Option<String>,
    /// Fen (money, goods), minutes (volunteering, assessed skill), bank points (card points).
    pub quantity: i64,
    /// What the act comes from (`donation`, `card_points`, `volunteer_session`, `skill`…) and
    /// its id there; together unique: recording the same source again changes nothing.
    pub source_kind: String,
    pub source_id: String,
    pub occurred_at: Timestamp,
    /// `user_…` or `system`.
    pub recorded_by: String,
    pub recorded_at: Timestamp,
    /// A short note shown in the breakdown (no personal data).
    pub note: String,
}

/// The local day (`YYYYMMDD`, Asia/Shanghai) of an instant.
pub fn local_day(at: Timestamp) -> i64 {
    let tz = jiff::tz::TimeZone::get(POINTS_TIME_ZONE).unwrap_or(jiff::tz::TimeZone::UTC);
    day_of_date(at.to_zoned(tz).date())
}

fn corrupt(what: String) -> AppError {
    AppError::internal(std::io::Error::other(what))
}

/// Parses the published rule sets into a book; the versions in book order.
/// The last parsed rule book and the stamp of the rule sets it was parsed from.
pub(crate) type RuleBookCache = Mutex<Option<((i64, Option<String>), Arc<RuleBook>)>>;

pub(crate) fn book_of(rows: &[PointsRuleSetRow]) -> Result<RuleBook> {
    let sets = rows
        .iter()
        .map(|r| {
            RuleSet::from_toml(&r.body)
                .map_err(|e| corrupt(format!("stored rule set {} is invalid: {e}", r.version)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RuleBook::new(sets))
}

/// The tier `honour` reaches under the set in force `today` (or the latest set).
fn tier_code(book: &RuleBook, today: i64, honour: i64) -> String {
    current_set(book, today)
        .and_then(|s| s.tier_of(honour))
        .map(|t| t.code.clone())
        .unwrap_or_default()
}

pub(crate) fn current_set(book: &RuleBook, today: i64) -> Option<&RuleSet> {
    book.for_day(today).or_else(|| book.sets().next())
}

fn core_act(row: &PointsActRow) -> Result<core::Act> {
    Ok(core::Act {
        seq: row.seq,
        at_us: row.at_us,
        day: row.local_day,
        kind: ActKind::from_code(row.kind_code)
            .ok_or_else(|| corrupt(format!("act {} has kind code {}", row.seq, row.kind_code)))?,
        category: row.category.clone(),
        quantity: row.quantity,
        reversed: row.reversed_quantity,
    })
}

/// What changed for one participant in a settle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    pub honour_delta: i64,
    pub spendable_delta: i64,
    pub entries: usize,
}

/// Which entry kind a change to an act is written as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Focus<'a> {
    pub seq: i64,
    /// `accrue` or `reverse`; changes to other acts (caps freed or taken) are `adjust`.
    pub kind: &'a str,
    pub reason: &'a str,
}

/// Expires a participant's lots whose day has come: an `expire` entry takes what is left.
async fn sweep_expired(
    tx: &mut WriteTx,
    participant_id: &str,
    today: i64,
    now: &str,
) -> Result<i64> {
    let lots = tx.expired_points_lots(participant_id, today).await?;
    let mut total = 0;
    let mut entries = Vec::new();
    for lot in &lots {
        if !tx.take_from_points_lot(lot.act_seq, lot.remaining).await? {
            return Err(corrupt(format!(
                "lot {} changed during expiry",
                lot.act_seq
            )));
        }
        total += lot.remaining;
        entries.push(PointsEntryRow {
            participant_id: participant_id.to_owned(),
            kind: "expire".into(),
            act_seq: Some(lot.act_seq),
            redemption_id: None,
            rule_version: None,
            honour_delta: 0,
            spendable_delta: -lot.remaining,
            reason: format!("积分于 {} 到期", lot.expires_on),
            at: now.to_owned(),
        });
    }
    if !entries.is_empty() {
        tx.insert_all(&entries).await?;
    }
    Ok(total)
}

/// Re-evaluates one participant's acts and writes every difference as an entry, moving spendable
/// points through lots and debt and keeping the balance row in step. Runs inside the caller's
/// transaction (which must hold `lock_writes`).
pub(crate) async fn settle(
    tx: &mut WriteTx,
    book: &RuleBook,
    participant_id: &str,
    now: Timestamp,
    focus: &[Focus<'_>],
    adjust_reason: &str,
) -> Result<Settled> {
    let now_text = format_instant(now);
    let today = local_day(now);
    let balance = tx
        .ensure_points_balance(participant_id, &tier_code(book, today, 0), &now_text)
        .await?;
    let expired = sweep_expired(tx, participant_id, today, &now_text).await?;
    let acts = tx.points_acts_of_pkey(balance.pkey).await?;
    let inputs = acts.iter().map(core_act).collect::<Result<Vec<_>>>()?;
    let awards = evaluate(book, &inputs);
    let mut debt = balance.debt;
    let mut settled = Settled {
        spendable_delta: -expired,
        ..Settled::default()
    };
    let mut entries = Vec::new();
    for (act, award) in acts.iter().zip(&awards) {
        let version = award.rule.map(|i| book.get(i).version.clone());
        let dh = award.honour - act.honour;
        let ds = award.spendable - act.spendable;
        if dh == 0 && ds == 0 {
            if version != act.rule_version {
                tx.set_points_act_award(act.seq, version.as_deref(), award.honour, award.spendable)
                    .await?;
            }
            continue;
        }
        // The act the caller is writing gets the caller's kind; an act never awarded before
        // (new, or waiting for a rule set) accrues; any other change is an adjustment.
        let (kind, reason) = match focus.iter().find(|f| f.seq == act.seq) {
            Some(f) => (f.kind, f.reason),
            None if act.rule_version.is_none() && act.honour == 0 && act.spendable == 0 => {
                ("accrue", act.note.as_str())
            }
            None => ("adjust", adjust_reason),
        };
        entries.push(PointsEntryRow {
            participant_id: participant_id.to_owned(),
            kind: kind.to_owned(),
            act_seq: Some(act.seq),
            redemption_id: None,
            rule_version: version.clone(),
            honour_delta: dh,
            spendable_delta: ds,
            reason: reason.to_owned(),
            at: now_text.clone(),
        });
        tx.set_points_act_award(act.seq, version.as_deref(), award.honour, award.spendable)
            .await?;
        if ds > 0 {
            let pay = ds.min(debt);
            debt -= pay;
            let set = award
                .rule
                .map(|i| book.get(i))
                .or_else(|| current_set(book, today));
            let expires_on = set.map_or(act.local_day, |s| s.expiry_day(act.local_day));
            tx.add_to_points_lot(act.seq, participant_id, expires_on, ds, ds - pay)
                .await?;
        } else if ds < 0 {
            debt += take_back(tx, participant_id, act.seq, -ds, today).await?;
        }
        settled.honour_delta += dh;
        settled.spendable_delta += ds;
    }
    settled.entries = entries.len();
    if !entries.is_empty() {
        tx.insert_all(&entries).await?;
    }
    let honour = balance.honour + settled.honour_delta;
    tx.add_to_points_balance(
        participant_id,
        settled.honour_delta,
        settled.spendable_delta,
        debt - balance.debt,
        &tier_code(book, today, honour),
        &now_text,
    )
    .await?;
    Ok(settled)
}

/// Takes `amount` spendable points back after an act lost points: from the act's own lot while
/// it is unexpired, then from the participant's other unexpired lots first-expiring-first.
/// Returns what could not be taken (it becomes debt: a negative balance).
async fn take_back(
    tx: &mut WriteTx,
    participant_id: &str,
    act_seq: i64,
    amount: i64,
    today: i64,
) -> Result<i64> {
    let lots = tx.points_lots_of(participant_id).await?;
    let mut left = amount;
    let own = lots
        .iter()
        .find(|l| l.act_seq == act_seq && l.expires_on > today && l.remaining > 0);
    if let Some(lot) = own {
        let take = left.min(lot.remaining);
        if !tx.take_from_points_lot(lot.act_seq, take).await? {
            return Err(corrupt(format!("lot {act_seq} changed during a reversal")));
        }
        left -= take;
    }
    if left > 0 {
        let others: Vec<core::Lot> = lots
            .iter()
            .filter(|l| l.act_seq != act_seq)
            .map(|l| core::Lot {
                expires_on: l.expires_on,
                seq: l.act_seq,
                remaining: l.remaining,
            })
            .collect();
        let usable: i64 = others
            .iter()
            .filter(|l| l.expires_on > today)
            .map(|l| l.remaining)
            .sum();
        let take = left.min(usable);
        if take > 0 {
            let plan = core::take_fefo(&others, today, take)
                .map_err(|e| corrupt(format!("take back: {e}")))?;
            for (i, t) in plan {
                if !tx.take_from_points_lot(others[i].seq, t).await? {
                    return Err(corrupt("lot changed during a reversal".into()));
                }
            }
            left -= take;
        }
    }
    Ok(left)
}

/// Loads the published rules inside the transaction.
pub(crate) async fn load_book(tx: &mut WriteTx) -> Result<RuleBook> {
    let rows = tx.points_rule_sets().await?;
    book_of(&rows)
}

/// Records an act and gives the participant its points, in the caller's transaction (which
/// must have called `lock_writes`). Recording the same `(source_kind, source_id)` again is a
/// no-op, except that an act reversed earlier is restored (with the new quantity), e.g. hours
/// verified again after a withdrawal.
pub async fn record_act(tx: &mut WriteTx, act: NewAct) -> Result<()> {
    record_act_inner(tx, &act).await.map(|_| ())
}

async fn record_act_inner(tx: &mut WriteTx, act: &NewAct) -> Result<Settled> {
    if act.quantity < 0 {
        return Err(AppError::invalid(
            "quantity",
            "points.quantity_negative",
            "积分行为的数量不能为负数。",
        ));
    }
    if act
        .category
        .as_deref()
        .is_some_and(|c| c.contains(';') || c.chars().count() > 40)
    {
        return Err(AppError::invalid(
            "category",
            "points.category_invalid",
            "类别代码最多 40 个字，且不能含分号（;）。",
        ));
    }
    let book = load_book(tx).await?;
    let (seq, kind) = match tx
        .points_act_by_source(&act.source_kind, &act.source_id)
        .await?
    {
        Some(existing) => {
            if existing.reversed_quantity == 0 && existing.quantity == act.quantity {
                return Ok(Settled::default());
            }
            tx.set_points_act_quantity(existing.seq, act.quantity, 0)
                .await?;
            (existing.seq, "adjust")
        }
        None => {
            let today = local_day(act.recorded_at);
            let balance = tx
                .ensure_points_balance(
                    &act.participant_id,
                    &tier_code(&book, today, 0),
                    &format_instant(act.recorded_at),
                )
                .await?;
            let seq = insert_act(tx, act, balance.pkey, 0).await?;
            (seq, "accrue")
        }
    };
    let settled = settle(
        tx,
        &book,
        &act.participant_id,
        act.recorded_at,
        &[Focus {
            seq,
            kind,
            reason: &act.note,
        }],
        "同期其他行为受上限影响而调整",
    )
    .await?;
    tx.journal(
        act.recorded_at,
        NewEntry {
            actor: act.recorded_by.clone(),
            kind: "points.act_recorded".into(),
            subject: act.participant_id.clone(),
            payload: serde_json::json!({
                "source_kind": act.source_kind,
                "source_id": act.source_id,
                "kind": act.kind.as_str(),
                "quantity": act.quantity,
                "honour_delta": settled.honour_delta,
                "spendable_delta": settled.spendable_delta,
            }),
        },
    )
    .await?;
    Ok(settled)
}

async fn insert_act(tx: &mut WriteTx, act: &NewAct, pkey: i64, reversed: i64) -> Result<i64> {
    let row = NewPointsActRow {
        participant_id: act.participant_id.clone(),
        pkey,
        kind_code: act.kind.code(),
        category: act.category.clone(),
        source_kind: act.source_kind.clone(),
        source_id: act.source_id.clone(),
        quantity: act.quantity,
        reversed_quantity: reversed,
        occurred_at: format_instant(act.occurred_at),
        at_us: act.occurred_at.as_microsecond(),
        local_day: local_day(act.occurred_at),
        note: act.note.clone(),
        recorded_by: act.recorded_by.clone(),
        recorded_at: format_instant(act.recorded_at),
    };
    tx.insert(&row).await?;
    let stored = tx
        .points_act_by_source(&act.source_kind, &act.source_id)
        .await?
        .ok_or_else(|| corrupt("act vanished after insert".into()))?;
    Ok(stored.seq)
}

/// Undoes an act (hours no longer verified…): its points are taken back by a new `reverse`
/// entry; spendable points already spent make the balance negative. In the caller's
/// transaction (after `lock_writes`). Reversing an unknown or already reversed act is a no-op.
pub async fn reverse_act(
    tx: &mut WriteTx,
    source_kind: &str,
    source_id: &str,
    reason: &str,
    actor: &str,
    at: Timestamp,
) -> Result<()> {
    let Some(existing) = tx.points_act_by_source(source_kind, source_id).await? else {
        return Ok(());
    };
    set_reversed(tx, &existing, existing.quantity, reason, actor, at).await?;
    Ok(())
}

/// Sets the part of an act that is undone and settles its participant.
async fn set_reversed(
    tx: &mut WriteTx,
    act: &PointsActRow,
    reversed: i64,
    reason: &str,
    actor: &str,
    at: Timestamp,
) -> Result<Settled> {
    if act.reversed_quantity == reversed {
        return Ok(Settled::default());
    }
    let book = load_book(tx).await?;
    tx.set_points_act_quantity(act.seq, act.quantity, reversed)
        .await?;
    let kind = if reversed > act.reversed_quantity {
        "reverse"
    } else {
        "adjust"
    };
    let settled = settle(
        tx,
        &book,
        &act.participant_id,
        at,
        &[Focus {
            seq: act.seq,
            kind,
            reason,
        }],
        "同期其他行为受上限影响而调整",
    )
    .await?;
    tx.journal(
        at,
        NewEntry {
            actor: actor.to_owned(),
            kind: "points.act_reversed".into(),
            subject: act.participant_id.clone(),
            payload: serde_json::json!({
                "source_kind": act.source_kind,
                "source_id": act.source_id,
                "reversed_quantity": reversed,
                "honour_delta": settled.honour_delta,
                "spendable_delta": settled.spendable_delta,
            }),
        },
    )
    .await?;
    Ok(settled)
}

/// The reversed part of a card point act after its donation was refunded: the points whose
/// money is gone, `points − floor(points × (amount − refunded) / amount)`.
pub fn card_points_reversed(points: i64, amount_fen: i64, refunded_fen: i64) -> i64 {
    if amount_fen <= 0 {
        return 0;
    }
    let net = i128::from(points) * i128::from(amount_fen - refunded_fen) / i128::from(amount_fen);
    points - i64::try_from(net).unwrap_or(points)
}

// ---------------------------------------------------------------------------------------------
// Donation sync
// ---------------------------------------------------------------------------------------------

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub acts_recorded: i64,
    pub acts_refunded: i64,
    pub lots_expired: i64,
}

/// How many sources one sync transaction takes.
const SYNC_BATCH: i64 = 500;

impl App {
    /// Turns donations (participant donors, money and goods), card point conversions and
    /// refunds into acts, and expires due lots: of one participant, or of everyone when `None`.
    /// Idempotent (acts are unique by source); safe to run at any time, by cron or before a read.
    pub async fn sync_points(&self, participant: Option<&str>) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        loop {
            let now = self.clock().now();
            let mut tx = self.store().begin().await?;
            tx.lock_writes().await?;
            let book = load_book(&mut tx).await?;
            let donations = tx.unsynced_donations(participant, SYNC_BATCH).await?;
            let cards = tx.unsynced_card_points(participant, SYNC_BATCH).await?;
            let drift = tx.refund_drift(participant).await?;
            let mut touched: BTreeMap<String, ()> = BTreeMap::new();
            let mut recorded = 0;
            for d in &donations {
                let kind = if d.kind == "goods" {
                    ActKind::Goods
                } else {
                    ActKind::Money
                };
                let act = source_act(
                    &d.donor_participant_id,
                    kind,
                    d.amount_fen,
                    "donation",
                    &d.id,
                    &d.received_at,
                    now,
                    if kind == ActKind::Goods {
                        "物资捐赠（按估值）"
                    } else {
                        "资金捐赠"
                    },
                )?;
                let pkey = tx
                    .ensure_points_balance(&act.participant_id, "", &format_instant(now))
                    .await?
                    .pkey;
                insert_act(&mut tx, &act, pkey, d.refunded_fen).await?;
                touched.insert(act.participant_id, ());
                recorded += 1;
            }
            for c in &cards {
                let act = source_act(
                    &c.cardholder_participant_id,
                    ActKind::CardPoints,
                    c.points,
                    "card_points",
                    &c.id,
                    &c.converted_at,
                    now,
                    "银行卡积分捐赠",
                )?;
                let pkey = tx
                    .ensure_points_balance(&act.participant_id, "", &format_instant(now))
                    .await?
                    .pkey;
                let reversed = card_points_reversed(c.points, c.amount_fen, c.refunded_fen);
                insert_act(&mut tx, &act, pkey, reversed).await?;
                touched.insert(act.participant_id, ());
                recorded += 1;
            }
            let mut refunded = 0;
            let mut focus = Vec::new();
            for d in &drift {
                let reversed = if d.source_kind == "card_points" {
                    card_points_reversed(d.quantity, d.amount_fen, d.refunded_fen)
                } else {
                    d.refunded_fen
                };
                if reversed == d.reversed_quantity {
                    continue;
                }
                tx.set_points_act_quantity(d.seq, d.quantity, reversed)
                    .await?;
                focus.push(Focus {
                    seq: d.seq,
                    kind: if reversed > d.reversed_quantity {
                        "reverse"
                    } else {
                        "adjust"
                    },
                    reason: "捐赠退款，按退款后净额重新计分",
                });
                touched.insert(d.participant_id.clone(), ());
                refunded += 1;
            }
            let today = local_day(now);
            let expiring = match participant {
                Some(p) => {
                    if tx.expired_points_lots(p, today).await?.is_empty() {
                        Vec::new()
                    } else {
                        vec![p.to_owned()]
                    }
                }
                None => tx.participants_with_expired_lots(today, SYNC_BATCH).await?,
            };
            for p in expiring {
                touched.insert(p, ());
            }
            if touched.is_empty() {
                return Ok(report);
            }
            let mut expired = 0;
            for p in touched.keys() {
                let before = tx.expired_points_lots(p, today).await?.len();
                settle(
                    &mut tx,
                    &book,
                    p,
                    now,
                    &focus,
                    "同期其他行为受上限影响而调整",
                )
                .await?;
                expired += i64::try_from(before).unwrap_or(0);
            }
            tx.journal(
                now,
                NewEntry {
                    actor: "system".into(),
                    kind: "points.synced".into(),
                    subject: participant.unwrap_or("points").to_owned(),
                    payload: serde_json::json!({
                        "acts_recorded": recorded,
                        "acts_refunded": refunded,
                        "participants": touched.len(),
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            report.acts_recorded += recorded;
            report.acts_refunded += refunded;
            report.lots_expired += expired;
            let more = i64::try_from(donations.len()).unwrap_or(0) >= SYNC_BATCH
                || i64::try_from(cards.len()).unwrap_or(0) >= SYNC_BATCH
                || (participant.is_none() && expired > 0);
            if !more {
                return Ok(report);
            }
        }
    }

    /// True when a read of this participant's balance must sync first (a donation, refund or
    /// card conversion not reflected yet, or a lot due to expire). Read-only and cheap.
    async fn points_need_sync(&self, participant_id: &str) -> Result<bool> {
        let today = local_day(self.clock().now());
        self.store()
            .points_pending(participant_id, today)
            .await
            .map_err(AppError::from)
    }
}

#[expect(clippy::too_many_arguments, reason = "one call site per source kind")]
fn source_act(
    participant: &str,
    kind: ActKind,
    quantity: i64,
    source_kind: &str,
    source_id: &str,
    at: &str,
    now: Timestamp,
    note: &str,
) -> Result<NewAct> {
    Ok(NewAct {
        participant_id: participant.to_owned(),
        kind,
        category: None,
        quantity,
        source_kind: source_kind.to_owned(),
        source_id: source_id.to_owned(),
        occurred_at: cishan_store::parse_instant(at)?,
        recorded_by: "system".into(),
        recorded_at: now,
        note: note.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// Explain (一键算)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierView {
    pub code: String,
    pub name: String,
    pub min_honour: i64,
}

/// One act in the breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActView {
    pub seq: i64,
    /// money | goods | volunteer_minutes | skill | card_points
    pub kind: String,
    pub kind_zh: String,
    pub category: Option<String>,
    pub source_kind: String,
    pub source_id: String,
    pub occurred_at: String,
    /// Local (Asia/Shanghai) date of the act.
    pub local_date: String,
    pub quantity: i64,
    pub reversed_quantity: i64,
    /// The rule version applied (`None`: no rule set was in force that day).
    pub rule_version: Option<String>,
    pub honour: i64,
    pub spendable: i64,
    /// How the points came about, in Chinese (e.g. `¥250.00 按每满 ¥100.00 计 10 分 → 20 分`).
    pub explanation: String,
    pub note: String,
}

/// A participant's points, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointsStatement {
    pub participant_id: String,
    /// Lifetime honour points (never spent; set the tier).
    pub honour: i64,
    /// Spendable points usable now (negative while a reversal is unpaid).
    pub spendable: i64,
    pub tier: Option<TierView>,
    pub next_tier: Option<TierView>,
    /// Honour points still needed for the next tier.
    pub to_next_tier: Option<i64>,
    /// The local date the first unexpired spendable points expire.
    pub next_expiry: Option<String>,
    pub acts: Vec<ActView>,
}

fn day_text(day: i64) -> String {
    core::date_of_day(day).map_or_else(|| day.to_string(), |d| d.to_string())
}

/// `100000` fen → `¥1,000.00`: the project's one money display (`Fen`'s).
fn yuan(fen: i64) -> String {
    cishan_core::Fen::new(fen).to_string()
}

/// A quantity of `kind` in its own unit: yuan for money and goods, minutes for hours.
fn quantity_text(kind: ActKind, quantity: i64) -> String {
    match kind {
        ActKind::Money | ActKind::Goods => yuan(quantity),
        ActKind::CardPoints => format!("{quantity} 银行积分"),
        ActKind::VolunteerMinutes | ActKind::Skill => format!("{quantity} 分钟"),
    }
}

/// A Chinese sentence explaining an act's points under `set`.
pub(crate) fn explain(set: Option<&RuleSet>, act: &PointsActRow, kind: ActKind) -> String {
    let Some(set) = set else {
        return "当日没有生效的积分规则，不计分".into();
    };
    let net = act.quantity - act.reversed_quantity;
    let raw = set.convert(kind, act.category.as_deref(), net);
    let base = match kind {
        ActKind::Money | ActKind::Goods => {
            let r = if kind == ActKind::Money {
                &set.money
            } else {
                &set.goods
            };
            format!(
                "{} 按每满 {} 计 {} 分",
                yuan(net),
                yuan(r.step),
                r.points_per_step
            )
        }
        ActKind::CardPoints => format!(
            "{} 银行积分按每满 {} 计 {} 分",
            net, set.card_points.step, set.card_points.points_per_step
        ),
        ActKind::VolunteerMinutes | ActKind::Skill => {
            let r = if kind == ActKind::Skill {
                &set.skill
            } else {
                &set.volunteer
            };
            let pct = act
                .category
                .as_deref()
                .and_then(|c| r.category_percent.get(c))
                .copied()
                .unwrap_or(r.default_percent);
            format!(
                "{} 分钟（满 {} 小时）按每小时 {} 分 × {}%",
                net,
                net / 60,
                r.points_per_hour,
                pct
            )
        }
    };
    let mut text = format!("{base} → {raw} 分");
    if act.reversed_quantity > 0 {
        text = format!(
            "已撤销/退款 {}；{text}",
            quantity_text(kind, act.reversed_quantity)
        );
    }
    if act.honour < raw {
        text.push_str(&format!("；受每日/每月上限，实得 {} 分", act.honour));
    }
    text
}

impl App {
    /// The balance and breakdown of one participant: the participant themself or staff only.
    /// Syncs donations first when something is pending, so the answer is current.
    pub async fn points_statement(
        &self,
        actor: &Actor,
        participant_id: &str,
    ) -> Result<PointsStatement> {
        may_see_points(actor, participant_id)?;
        if self.points_need_sync(participant_id).await? {
            self.sync_points(Some(participant_id)).await?;
        }
        self.read_statement(participant_id).await
    }

    async fn read_statement(&self, participant_id: &str) -> Result<PointsStatement> {
        let today = local_day(self.clock().now());
        // Independent reads, run side by side on the reading pool.
        let (name, book, balance, acts, usable) = tokio::join!(
            self.store().participant_name(participant_id),
            self.rule_book(),
            self.store().points_balance(participant_id),
            self.store().points_acts_of(participant_id),
            self.store().points_usable(participant_id, today),
        );
        if name?.is_none() {
            return Err(AppError::not_found("participant"));
        }
        let (book, balance, acts) = (book?, balance?, acts?);
        let (usable, soonest) = usable?;
        let (honour, debt) = balance.as_ref().map_or((0, 0), |b| (b.honour, b.debt));
        let set = current_set(&book, today);
        let tier = set.and_then(|s| s.tier_of(honour)).map(tier_view);
        let next = set.and_then(|s| s.next_tier(honour)).map(tier_view);
        let acts = acts
            .iter()
            .map(|a| {
                let kind = ActKind::from_code(a.kind_code).unwrap_or(ActKind::Money);
                // The version in force on the act's day (what a settle would apply).
                let set = book.for_day(a.local_day);
                ActView {
                    seq: a.seq,
                    kind: kind.as_str().into(),
                    kind_zh: kind.name_zh().into(),
                    category: a.category.clone(),
                    source_kind: a.source_kind.clone(),
                    source_id: a.source_id.clone(),
                    occurred_at: a.occurred_at.clone(),
                    local_date: day_text(a.local_day),
                    quantity: a.quantity,
                    reversed_quantity: a.reversed_quantity,
                    rule_version: set.map(|s| s.version.clone()),
                    honour: a.honour,
                    spendable: a.spendable,
                    explanation: explain(set, a, kind),
                    note: a.note.clone(),
                }
            })
            .collect();
        Ok(PointsStatement {
            participant_id: participant_id.to_owned(),
            honour,
            spendable: usable - debt,
            to_next_tier: next.as_ref().map(|t| t.min_honour - honour),
            tier,
            next_tier: next,
            next_expiry: soonest.map(day_text),
            acts,
        })
    }

    /// The published rules, parsed.
    /// The published rule sets, parsed. Parsed once and kept while the sets' stamp (how many,
    /// the latest publication) is unchanged, so reading a balance costs one small query, not a
    /// TOML parse of every version; a set published by another process is seen at once.
    pub async fn rule_book(&self) -> Result<Arc<RuleBook>> {
        let stamp = self.store().points_rule_sets_stamp().await?;
        if let Some((known, book)) = self
            .rule_books
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if *known == stamp {
                return Ok(book.clone());
            }
        }
        let book = Arc::new(book_of(&self.store().points_rule_sets().await?)?);
        *self
            .rule_books
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((stamp, book.clone()));
        Ok(book)
    }
}

fn tier_view(t: &core::Tier) -> TierView {
    TierView {
        code: t.code.clone(),
        name: t.name.clone(),
        min_honour: t.min_honour,
    }
}

/// Staff see anyone's points; a member sees their own only.
pub(crate) fn may_see_points(actor: &Actor, participant_id: &str) -> Result<()> {
    if actor.is_staff() || actor.participant_id.as_deref() == Some(participant_id) {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

// ---------------------------------------------------------------------------------------------
// Skill donations
// ---------------------------------------------------------------------------------------------

/// A knowledge or skill donation a reviewer assessed (staff record it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillActInput {
    pub participant_id: String,
    /// The field (`legal`, `medical`, `education`…), matched against the rule's percents.
    pub category: String,
    /// What the reviewer assessed the work as worth, in minutes of professional work.
    pub assessed_minutes: i64,
    /// When the work was done (RFC 3339).
    pub occurred_at: String,
    /// What was done (no personal data), shown in the breakdown.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkillActRecorded {
    pub source_id: String,
    pub participant_id: String,
    pub honour_delta: i64,
    pub spendable_delta: i64,
}

impl App {
    /// Records an assessed skill donation. Staff only; idempotent under the key.
    pub async fn record_skill_act(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &SkillActInput,
    ) -> Result<Outcome<SkillActRecorded>> {
        actor.require_staff()?;
        if input.assessed_minutes <= 0 || input.assessed_minutes > 100_000 {
            return Err(AppError::invalid(
                "assessed_minutes",
                "points.assessed_minutes_invalid",
                "评估工时（分钟）必须是 1 到 100000 之间的整数。",
            ));
        }
        let category = input.category.trim();
        if category.is_empty() || category.len() > 40 {
            return Err(AppError::invalid(
                "category",
                "points.category_invalid",
                "请填写技能领域（如 legal、medical、education）。",
            ));
        }
        let description = input.description.trim();
        if description.is_empty() || description.chars().count() > 200 {
            return Err(AppError::invalid(
                "description",
                "points.description_invalid",
                "请用 1 到 200 个字说明捐赠的知识或技能服务内容。",
            ));
        }
        let occurred_at: Timestamp = input.occurred_at.parse().map_err(|_| {
            AppError::invalid(
                "occurred_at",
                "points.occurred_at_invalid",
                "服务时间格式应为 RFC 3339，例如 2026-03-01T09:00:00+08:00。",
            )
        })?;
        let now = self.clock().now();
        if occurred_at > now {
            return Err(AppError::invalid(
                "occurred_at",
                "points.occurred_in_future",
                "服务时间不能晚于现在。",
            ));
        }
        if self
            .store()
            .participant_name(&input.participant_id)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "participant_id",
                "points.participant_unknown",
                "找不到这个参与方编号（ptc_…），请核对。",
            ));
        }
        let hash = request_hash(input);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, "points_skill", key, &hash).await? {
            return Ok(done);
        }
        let source_id = crate::donations::new_id("skl");
        let act = NewAct {
            participant_id: input.participant_id.clone(),
            kind: ActKind::Skill,
            category: Some(category.to_owned()),
            quantity: input.assessed_minutes,
            source_kind: "skill".into(),
            source_id: source_id.clone(),
            occurred_at,
            recorded_by: actor.user_id.clone(),
            recorded_at: now,
            note: description.to_owned(),
        };
        let settled = record_act_inner(&mut tx, &act).await?;
        let value = SkillActRecorded {
            source_id,
            participant_id: input.participant_id.clone(),
            honour_delta: settled.honour_delta,
            spendable_delta: settled.spendable_delta,
        };
        save_replay(&mut tx, "points_skill", key, &hash, 201, &value, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value,
            replayed: false,
        })
    }

    /// Withdraws an act (staff): e.g. a skill assessment found wrong. Points come back by a new
    /// `reverse` entry.
    pub async fn reverse_points_act(
        &self,
        actor: &Actor,
        source_kind: &str,
        source_id: &str,
        reason: &str,
    ) -> Result<()> {
        actor.require_staff()?;
        if reason.trim().is_empty() {
            return Err(AppError::invalid(
                "reason",
                "points.reason_missing",
                "请填写撤销原因。",
            ));
        }
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if tx
            .points_act_by_source(source_kind, source_id)
            .await?
            .is_none()
        {
            return Err(AppError::not_found("points_act"));
        }
        reverse_act(
            &mut tx,
            source_kind,
            source_id,
            reason.trim(),
            &actor.user_id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Rules: publish and recompute
// ---------------------------------------------------------------------------------------------

/// One participant whose points a new rule version changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecomputeChange {
    pub participant_id: String,
    pub honour_before: i64,
    pub honour_after: i64,
    pub spendable_before: i64,
    pub spendable_after: i64,
    /// Acts whose points change.
    pub acts_changed: i64,
}

/// What a new rule version changes (dry run) or changed (apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecomputeReport {
    pub version: String,
    pub effective_from: String,
    pub dry_run: bool,
    /// True when this version was already published with the same text.
    pub already_published: bool,
    pub acts_scanned: i64,
    pub acts_changed: i64,
    pub participants_affected: i64,
    pub honour_delta: i64,
    pub spendable_delta: i64,
    /// Adjustment entries written (0 on a dry run).
    pub entries_written: i64,
    /// The participants affected, largest change first (at most `MAX_LISTED`).
    pub changes: Vec<RecomputeChange>,
}

/// The most per-participant changes a report lists.
pub const MAX_LISTED: usize = 200;

/// Parses rule text, naming the field at fault.
pub fn parse_rules(text: &str) -> Result<RuleSet> {
    RuleSet::from_toml(text).map_err(|e| match e {
        core::RuleError::Syntax(m) => AppError::invalid(
            "rules",
            "points.rules_syntax",
            format!("积分规则文件格式有误（应为 TOML）：{m}"),
        ),
        core::RuleError::Field { field, reason } => AppError::invalid(
            &format!("rules.{field}"),
            "points.rules_invalid",
            format!("积分规则字段 `{field}` 不正确：{reason}"),
        ),
    })
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl App {
    /// Publishes a rule version (administrators) and recomputes every participant under the
    /// new book, or with `dry_run` only reports what would change. Publishing the same text
    /// again changes nothing; a different text under a published version is refused.
    pub async fn recompute_points(
        &self,
        actor: &Actor,
        text: &str,
        dry_run: bool,
    ) -> Result<RecomputeReport> {
        actor.require_admin()?;
        self.recompute_points_as(&actor.user_id, text, dry_run)
            .await
    }

    /// [`App::recompute_points`] for the operator's command line (`cishan points recompute`),
    /// which runs on the server with direct access to the database.
    pub async fn recompute_points_as(
        &self,
        operator: &str,
        text: &str,
        dry_run: bool,
    ) -> Result<RecomputeReport> {
        let set = parse_rules(text)?;
        let mut rows = self.store().points_rule_sets().await?;
        let already = match rows.iter().find(|r| r.version == set.version) {
            Some(r) if r.body_sha256 == sha256_hex(text) => true,
            Some(_) => {
                return Err(AppError::invalid(
                    "rules.version",
                    "points.version_taken",
                    format!(
                        "规则版本 `{}` 已发布且内容不同。已发布的版本不可修改，请使用新的版本号。",
                        set.version
                    ),
                ))
            }
            None => false,
        };
        let now = self.clock().now();
        let new_row = PointsRuleSetRow {
            version: set.version.clone(),
            name: set.name.clone(),
            effective_from: set.effective_from.to_string(),
            body: text.to_owned(),
            body_sha256: sha256_hex(text),
            published_at: format_instant(now),
            published_by: operator.to_owned(),
        };
        if !already {
            rows.push(new_row.clone());
        }
        // Bring pending donations and refunds in under the published rules first (a dry run
        // does this too: it is catch-up under the current rules, not part of the new version).
        self.sync_points(None).await?;
        let book = book_of(&rows)?;
        let diff = crate::points_scan::scan(self.store(), &book).await?;
        let mut report = RecomputeReport {
            version: set.version.clone(),
            effective_from: set.effective_from.to_string(),
            dry_run,
            already_published: already,
            acts_scanned: diff.acts_scanned,
            acts_changed: diff.acts_changed,
            participants_affected: i64::try_from(diff.participants.len()).unwrap_or(i64::MAX),
            honour_delta: diff.participants.iter().map(|p| p.honour_delta).sum(),
            spendable_delta: diff.participants.iter().map(|p| p.spendable_delta).sum(),
            entries_written: 0,
            changes: Vec::new(),
        };
        let mut changed = diff.participants;
        changed.sort_by_key(|p| std::cmp::Reverse((p.honour_delta.abs(), p.pkey)));
        let listed: Vec<i64> = changed.iter().take(MAX_LISTED).map(|p| p.pkey).collect();
        let names: BTreeMap<i64, String> = self
            .store()
            .points_participants_of(&listed)
            .await?
            .into_iter()
            .collect();
        report.changes = changed
            .iter()
            .take(MAX_LISTED)
            .map(|p| RecomputeChange {
                participant_id: names.get(&p.pkey).cloned().unwrap_or_default(),
                honour_before: p.honour_before,
                honour_after: p.honour_before + p.honour_delta,
                spendable_before: p.spendable_before,
                spendable_after: p.spendable_before + p.spendable_delta,
                acts_changed: p.acts_changed,
            })
            .collect();
        if dry_run {
            return Ok(report);
        }
        // Apply: publish, then settle every affected participant (in batches), each write an
        // `adjust` entry. Settling re-evaluates from the stored acts, so it is exact even if an
        // act arrived after the scan.
        let all: Vec<i64> = changed.iter().map(|p| p.pkey).collect();
        let ids: BTreeMap<i64, String> = self
            .store()
            .points_participants_of(&all)
            .await?
            .into_iter()
            .collect();
        let reason = format!("规则 {} 重算调整", set.version);
        let mut first = true;
        let mut written = 0_i64;
        let batches: Vec<&[i64]> = if all.is_empty() {
            vec![&[]]
        } else {
            all.chunks(500).collect()
        };
        for chunk in batches {
            let mut tx = self.store().begin().await?;
            tx.lock_writes().await?;
            if first && !already {
                tx.insert(&new_row).await?;
                tx.journal(
                    now,
                    NewEntry {
                        actor: operator.to_owned(),
                        kind: "points.rules_published".into(),
                        subject: format!("points_rules_{}", set.version),
                        payload: serde_json::json!({
                            "version": set.version,
                            "effective_from": set.effective_from.to_string(),
                            "sha256": new_row.body_sha256,
                        }),
                    },
                )
                .await?;
            }
            first = false;
            let book = load_book(&mut tx).await?;
            let mut batch_written = 0_i64;
            for pkey in chunk {
                let Some(pid) = ids.get(pkey) else { continue };
                let s = settle(&mut tx, &book, pid, now, &[], &reason).await?;
                batch_written += i64::try_from(s.entries).unwrap_or(0);
            }
            if !chunk.is_empty() {
                tx.journal(
                    now,
                    NewEntry {
                        actor: operator.to_owned(),
                        kind: "points.recomputed".into(),
                        subject: format!("points_rules_{}", set.version),
                        payload: serde_json::json!({
                            "participants": chunk.len(),
                            "entries": batch_written,
                        }),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            written += batch_written;
        }
        report.entries_written = written;
        Ok(report)
    }

    /// The published rule sets (public).
    pub async fn published_rules(&self) -> Result<Vec<PointsRuleSetRow>> {
        Ok(self.store().points_rule_sets().await?)
    }
}
