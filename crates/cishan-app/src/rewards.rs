//! Convert and reward (转化—回馈): partners publish offers in five channels (medical, schooling,
//! employment, credit, social services) priced in spendable points and/or a minimum tier; a
//! partner redeems an offer for a participant by scanning their code. See docs/points.md.
//!
//! A redemption is one transaction under `lock_writes`: it expires due lots, checks the tier,
//! refuses a negative balance, takes the cost from unexpired lots first-expiring-first with
//! conditional updates, and takes one item of stock with `stock > 0` in the UPDATE, so two
//! partners redeeming the last item or the same points at once cannot both succeed. Every
//! redemption and cancellation is idempotent under its key; cancelling gives the points back to
//! the lots they came from (keeping their expiry) and the item back to stock, once.

use cishan_core::code::CodeKind;
use cishan_core::points::{self as core};
use cishan_store::points::{
    PointsEntryRow, PointsOfferRow, PointsRedemptionLotRow, PointsRedemptionRow,
};
use cishan_store::{format_instant, NewEntry, WriteTx};
use serde::{Deserialize, Serialize};

use crate::codes::CodePurpose;
use crate::donations::{new_id, replay, request_hash, save_replay, IdempotencyKey, Outcome};
use crate::points::{current_set, load_book, local_day, settle};
use crate::{Actor, App, AppError, Result};

/// The five channels of rewards.
pub const CHANNELS: [(&str, &str); 5] = [
    ("medical", "医疗"),
    ("schooling", "助学"),
    ("employment", "就业"),
    ("credit", "信用"),
    ("social_service", "社会服务"),
];

pub fn channel_zh(code: &str) -> &'static str {
    CHANNELS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("其他", |(_, zh)| zh)
}

/// A new offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    /// The partner organization (`org_…`).
    pub org_id: String,
    /// medical | schooling | employment | credit | social_service
    pub channel: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Spendable points it costs (0 for tier-only benefits).
    pub cost_points: i64,
    /// The lowest tier that may redeem it (a tier code of the rules), if any.
    #[serde(default)]
    pub min_tier: Option<String>,
    pub stock: i64,
    /// First and last local dates it can be redeemed (`YYYY-MM-DD`).
    pub valid_from: String,
    pub valid_to: String,
}

/// A redemption request: the participant's scanned code (partners), or their id (staff only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemInput {
    pub offer_id: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub participant_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedemptionView {
    pub id: String,
    pub offer_id: String,
    pub offer_title: String,
    pub participant_id: String,
    pub cost_points: i64,
    /// redeemed | cancelled
    pub state: String,
    pub redeemed_at: String,
    pub cancelled_at: Option<String>,
    /// The participant's usable spendable points after this operation.
    pub spendable_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub reason: String,
}

fn check_date(field: &str, text: &str) -> Result<jiff::civil::Date> {
    text.trim().parse::<jiff::civil::Date>().map_err(|_| {
        AppError::invalid(
            field,
            "offer.date_invalid",
            "日期格式应为 YYYY-MM-DD，例如 2026-12-31。",
        )
    })
}

/// Staff, or a participant holding the partner role for `org_id`.
async fn may_act_for_org(app: &App, actor: &Actor, org_id: &str) -> Result<()> {
    if actor.is_staff() {
        return Ok(());
    }
    let Some(pid) = actor.participant_id.as_deref() else {
        return Err(AppError::forbidden());
    };
    let roles = app.store().participant_roles(pid).await?;
    if roles
        .iter()
        .any(|r| r.role == "partner" && r.org_id.as_deref() == Some(org_id))
    {
        Ok(())
    } else {
        Err(AppError::forbidden())
    }
}

/// The organizations the actor may redeem for (None = all: staff).
pub async fn partner_orgs(app: &App, actor: &Actor) -> Result<Option<Vec<String>>> {
    if actor.is_staff() {
        return Ok(None);
    }
    let Some(pid) = actor.participant_id.as_deref() else {
        return Ok(Some(Vec::new()));
    };
    let roles = app.store().participant_roles(pid).await?;
    Ok(Some(
        roles
            .into_iter()
            .filter(|r| r.role == "partner")
            .filter_map(|r| r.org_id)
            .collect(),
    ))
}

impl App {
    /// Publishes an offer: staff, or a partner of the organization.
    pub async fn create_offer(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &OfferInput,
    ) -> Result<Outcome<PointsOfferRow>> {
        may_act_for_org(self, actor, &input.org_id).await?;
        if !CHANNELS.iter().any(|(c, _)| *c == input.channel) {
            return Err(AppError::invalid(
                "channel",
                "offer.channel_invalid",
                "渠道应为 medical（医疗）、schooling（助学）、employment（就业）、credit（信用）或 social_service（社会服务）之一。",
            ));
        }
        let title = input.title.trim();
        if title.is_empty() || title.chars().count() > 80 {
            return Err(AppError::invalid(
                "title",
                "offer.title_invalid",
                "请填写 1 到 80 个字的回馈名称。",
            ));
        }
        if input.cost_points < 0 || input.cost_points > 10_000_000 {
            return Err(AppError::invalid(
                "cost_points",
                "offer.cost_invalid",
                "所需积分必须是 0 到 10000000 之间的整数。",
            ));
        }
        if input.stock < 0 || input.stock > 10_000_000 {
            return Err(AppError::invalid(
                "stock",
                "offer.stock_invalid",
                "库存必须是 0 到 10000000 之间的整数。",
            ));
        }
        let from = check_date("valid_from", &input.valid_from)?;
        let to = check_date("valid_to", &input.valid_to)?;
        if to < from {
            return Err(AppError::invalid(
                "valid_to",
                "offer.dates_reversed",
                "有效期结束日期不能早于开始日期。",
            ));
        }
        let book = self.rule_book().await?;
        let min_tier = input
            .min_tier
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(t) = min_tier {
            let today = local_day(self.clock().now());
            if current_set(&book, today)
                .and_then(|s| s.tier_rank(t))
                .is_none()
            {
                return Err(AppError::invalid(
                    "min_tier",
                    "offer.tier_unknown",
                    format!("现行积分规则中没有等级 `{t}`，请填写规则中列出的等级代码。"),
                ));
            }
        }
        if self
            .store()
            .organization_identity(&input.org_id)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "org_id",
                "offer.org_unknown",
                "找不到这个合作机构（org_…），请核对编号。",
            ));
        }
        let now = self.clock().now();
        let hash = request_hash(input);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, "points_offer", key, &hash).await? {
            return Ok(done);
        }
        let row = PointsOfferRow {
            id: new_id("ofr"),
            org_id: input.org_id.clone(),
            channel: input.channel.clone(),
            title: title.to_owned(),
            description: input.description.trim().to_owned(),
            cost_points: input.cost_points,
            min_tier: min_tier.map(str::to_owned),
            stock: input.stock,
            valid_from: from.to_string(),
            valid_to: to.to_string(),
            created_by: actor.user_id.clone(),
            created_at: format_instant(now),
        };
        tx.insert(&row).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "points.offer_created".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "org_id": row.org_id, "channel": row.channel, "cost_points": row.cost_points,
                    "min_tier": row.min_tier, "stock": row.stock,
                }),
            },
        )
        .await?;
        save_replay(&mut tx, "points_offer", key, &hash, 201, &row, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value: row,
            replayed: false,
        })
    }

    /// Offers valid today (public list).
    pub async fn current_offers(&self) -> Result<Vec<PointsOfferRow>> {
        let today = core::date_of_day(local_day(self.clock().now()))
            .map(|d| d.to_string())
            .unwrap_or_default();
        Ok(self.store().points_offers(Some(&today)).await?)
    }

    /// The tier name a participant has reached (for scanners), if any rules are published.
    pub async fn points_tier(&self, participant_id: &str) -> Result<Option<String>> {
        let book = self.rule_book().await?;
        let today = local_day(self.clock().now());
        let honour = self
            .store()
            .points_balance(participant_id)
            .await?
            .map_or(0, |b| b.honour);
        Ok(current_set(&book, today)
            .and_then(|s| s.tier_of(honour))
            .map(|t| t.name.clone()))
    }

    /// Redeems an offer for a participant (`POST /api/v1/redemptions`). Partners identify the
    /// participant by their code; staff may give the participant id. The code is checked first
    /// and used up inside the redemption's transaction, so a refused redemption (not enough
    /// points, out of stock, tier too low, not valid today) leaves it usable. Idempotent under
    /// the key: a retry is answered from the stored response before the code is looked at.
    pub async fn redeem(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &RedeemInput,
    ) -> Result<Outcome<RedemptionView>> {
        let hash = request_hash(input);
        // A retry must not need a fresh code: answer it from the stored response first.
        {
            let mut tx = self.store().begin().await?;
            if let Some(done) = replay(&mut tx, "points_redeem", key, &hash).await? {
                return Ok(done);
            }
        }
        let offer = self
            .store()
            .points_offer(&input.offer_id)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "offer_id",
                    "offer.unknown",
                    "找不到这个回馈项目，请核对编号。",
                )
            })?;
        may_act_for_org(self, actor, &offer.org_id).await?;
        let (participant_id, claim) = match (&input.code, &input.participant_id) {
            (Some(code), _) if !code.trim().is_empty() => {
                // Signature, kind and time now; the nonce is used up with the redemption.
                let claim = self.verify_code("code", code.trim(), Some(CodeKind::Participant))?;
                (claim.subject.clone(), Some(claim))
            }
            (_, Some(pid)) if !pid.trim().is_empty() => {
                if !actor.is_staff() {
                    return Err(AppError::invalid(
                        "code",
                        "redeem.code_required",
                        "合作机构兑换时请扫描参与者的一码通，不能直接填写编号。",
                    ));
                }
                (pid.trim().to_owned(), None)
            }
            _ => {
                return Err(AppError::invalid(
                    "code",
                    "redeem.participant_missing",
                    "请扫描参与者的一码通（或由工作人员填写参与方编号）。",
                ))
            }
        };
        if self
            .store()
            .participant_name(&participant_id)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "participant_id",
                "redeem.participant_unknown",
                "找不到这个参与者，请核对。",
            ));
        }
        // Bring donations and refunds in first, so the balance is current.
        self.sync_points(Some(&participant_id)).await?;

        let now = self.clock().now();
        let now_text = format_instant(now);
        let today = local_day(now);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, "points_redeem", key, &hash).await? {
            return Ok(done);
        }
        if let Some(claim) = &claim {
            // A refusal below returns before the commit, which rolls this back too.
            self.consume_code(&mut tx, "code", claim, CodePurpose::Redeem)
                .await?;
        }
        let offer = tx
            .points_offer(&input.offer_id)
            .await?
            .ok_or_else(|| AppError::not_found("offer"))?;
        let today_text = core::date_of_day(today)
            .map(|d| d.to_string())
            .unwrap_or_default();
        if today_text < offer.valid_from || today_text > offer.valid_to {
            return Err(AppError::conflict(
                "offer.not_valid_today",
                format!(
                    "该回馈项目的有效期是 {} 至 {}，今天不能兑换。",
                    offer.valid_from, offer.valid_to
                ),
            ));
        }
        let book = load_book(&mut tx).await?;
        // Expire due lots and bring the participant's points in step with the rules.
        settle(&mut tx, &book, &participant_id, now, &[], "兑换前结算").await?;
        let balance = tx
            .ensure_points_balance(&participant_id, "", &now_text)
            .await?;
        if let Some(min) = &offer.min_tier {
            let set = current_set(&book, today);
            let need = set.and_then(|s| s.tier_rank(min));
            let have = set
                .and_then(|s| s.tier_of(balance.honour))
                .and_then(|t| set.and_then(|s| s.tier_rank(&t.code)));
            match (need, have) {
                (Some(n), Some(h)) if h >= n => {}
                _ => {
                    let name = set
                        .and_then(|s| s.tiers.iter().find(|t| &t.code == min))
                        .map_or(min.clone(), |t| t.name.clone());
                    return Err(AppError::conflict(
                        "redeem.tier_too_low",
                        format!("该回馈需要达到“{name}”等级，参与者的荣誉积分还未达到。"),
                    ));
                }
            }
        }
        if balance.spendable < 0 || balance.debt > 0 {
            return Err(AppError::conflict(
                "redeem.balance_negative",
                format!(
                    "参与者的可用积分为负（{}），原因是已使用的积分所对应的捐赠或服务被撤销。积分恢复为非负后才能兑换。",
                    balance.spendable
                ),
            ));
        }
        let lots = tx.points_lots_of(&participant_id).await?;
        let view: Vec<core::Lot> = lots
            .iter()
            .map(|l| core::Lot {
                expires_on: l.expires_on,
                seq: l.act_seq,
                remaining: l.remaining,
            })
            .collect();
        let plan = core::take_fefo(&view, today, offer.cost_points).map_err(|e| {
            AppError::conflict(
                "redeem.not_enough_points",
                format!(
                    "可用积分不足：该回馈需要 {} 分，参与者当前可用 {} 分（已过期的积分不能使用）。",
                    e.wanted, e.available
                ),
            )
        })?;
        if !tx.take_offer_stock(&offer.id).await? {
            return Err(AppError::conflict(
                "redeem.out_of_stock",
                "该回馈项目已兑完，请选择其他项目。",
            ));
        }
        let id = new_id("rdm");
        let redemption = PointsRedemptionRow {
            id: id.clone(),
            offer_id: offer.id.clone(),
            participant_id: participant_id.clone(),
            cost_points: offer.cost_points,
            state: "redeemed".into(),
            redeemed_by: actor.user_id.clone(),
            redeemed_at: now_text.clone(),
            cancelled_by: None,
            cancelled_at: None,
            cancel_reason: None,
        };
        tx.insert(&redemption).await?;
        let mut used = Vec::new();
        for (i, amount) in plan {
            if !tx.take_from_points_lot(view[i].seq, amount).await? {
                return Err(AppError::conflict(
                    "redeem.points_changed",
                    "积分在兑换过程中发生变化，请重试。",
                ));
            }
            used.push(PointsRedemptionLotRow {
                redemption_id: id.clone(),
                act_seq: view[i].seq,
                amount,
            });
        }
        tx.insert_all(&used).await?;
        if offer.cost_points > 0 {
            tx.insert(&PointsEntryRow {
                participant_id: participant_id.clone(),
                kind: "redeem".into(),
                act_seq: None,
                redemption_id: Some(id.clone()),
                rule_version: None,
                honour_delta: 0,
                spendable_delta: -offer.cost_points,
                reason: format!("兑换：{}", offer.title),
                at: now_text.clone(),
            })
            .await?;
        }
        // Spending moves spendable points only: honour and the tier stay.
        tx.add_to_points_balance(
            &participant_id,
            0,
            -offer.cost_points,
            0,
            &balance.tier,
            &now_text,
        )
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "points.redeemed".into(),
                subject: id.clone(),
                payload: serde_json::json!({
                    "offer_id": offer.id, "participant_id": participant_id,
                    "cost_points": offer.cost_points,
                }),
            },
        )
        .await?;
        let value = RedemptionView {
            id,
            offer_id: offer.id.clone(),
            offer_title: offer.title.clone(),
            participant_id,
            cost_points: offer.cost_points,
            state: "redeemed".into(),
            redeemed_at: now_text,
            cancelled_at: None,
            spendable_after: balance.spendable - offer.cost_points,
        };
        save_replay(&mut tx, "points_redeem", key, &hash, 201, &value, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value,
            replayed: false,
        })
    }

    /// Cancels a redemption: the points go back to the lots they came from (keeping their
    /// expiry; points whose lot expired meanwhile expire again at the next sweep) and the item
    /// back to stock. Once: a second cancellation is refused (or replayed under the same key).
    pub async fn cancel_redemption(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        redemption_id: &str,
        input: &CancelInput,
    ) -> Result<Outcome<RedemptionView>> {
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(AppError::invalid(
                "reason",
                "redeem.cancel_reason",
                "请用 1 到 200 个字填写取消原因。",
            ));
        }
        let hash = request_hash(&(redemption_id, input));
        let now = self.clock().now();
        let now_text = format_instant(now);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, "points_cancel", key, &hash).await? {
            return Ok(done);
        }
        let redemption = tx
            .points_redemption(redemption_id)
            .await?
            .ok_or_else(|| AppError::not_found("redemption"))?;
        let offer = tx
            .points_offer(&redemption.offer_id)
            .await?
            .ok_or_else(|| AppError::not_found("offer"))?;
        may_act_for_org(self, actor, &offer.org_id).await?;
        if !tx
            .cancel_points_redemption(redemption_id, &actor.user_id, &now_text, reason)
            .await?
        {
            return Err(AppError::conflict(
                "redeem.already_cancelled",
                "这笔兑换已经取消过，积分已退回，不能重复取消。",
            ));
        }
        tx.return_offer_stock(&offer.id).await?;
        let spendable_after = give_back(&mut tx, &redemption, &offer.title, &now_text).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "points.redemption_cancelled".into(),
                subject: redemption.id.clone(),
                payload: serde_json::json!({
                    "offer_id": offer.id, "participant_id": redemption.participant_id,
                    "cost_points": redemption.cost_points,
                }),
            },
        )
        .await?;
        let value = RedemptionView {
            id: redemption.id.clone(),
            offer_id: offer.id.clone(),
            offer_title: offer.title.clone(),
            participant_id: redemption.participant_id.clone(),
            cost_points: redemption.cost_points,
            state: "cancelled".into(),
            redeemed_at: redemption.redeemed_at.clone(),
            cancelled_at: Some(now_text),
            spendable_after,
        };
        save_replay(&mut tx, "points_cancel", key, &hash, 200, &value, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value,
            replayed: false,
        })
    }

    /// Redemptions the actor may see: a member's own, a partner's organizations', or all (staff).
    pub async fn redemptions_for(
        &self,
        actor: &Actor,
    ) -> Result<Vec<(PointsRedemptionRow, String)>> {
        let rows = match partner_orgs(self, actor).await? {
            None => self.store().points_redemptions(None, None, 100).await?,
            Some(orgs) if !orgs.is_empty() => {
                let mut all = Vec::new();
                for o in orgs {
                    all.extend(self.store().points_redemptions(None, Some(&o), 100).await?);
                }
                all
            }
            Some(_) => match actor.participant_id.as_deref() {
                Some(p) => self.store().points_redemptions(Some(p), None, 100).await?,
                None => Vec::new(),
            },
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let title = self
                .store()
                .points_offer(&r.offer_id)
                .await?
                .map(|o| o.title)
                .unwrap_or_default();
            out.push((r, title));
        }
        Ok(out)
    }
}

/// Returns a cancelled redemption's points to its lots (paying any debt first) and writes the
/// `cancel` entry. Returns the participant's spendable balance after.
async fn give_back(
    tx: &mut WriteTx,
    redemption: &PointsRedemptionRow,
    title: &str,
    now: &str,
) -> Result<i64> {
    let pid = &redemption.participant_id;
    let balance = tx
        .points_balance(pid)
        .await?
        .ok_or_else(|| AppError::internal(std::io::Error::other("redeemer has no balance row")))?;
    let lots = tx.points_lots_of(pid).await?;
    let mut debt = balance.debt;
    for used in tx.redemption_lots(&redemption.id).await? {
        let pay = used.amount.min(debt);
        debt -= pay;
        let expires_on = lots
            .iter()
            .find(|l| l.act_seq == used.act_seq)
            .map_or(0, |l| l.expires_on);
        tx.add_to_points_lot(used.act_seq, pid, expires_on, 0, used.amount - pay)
            .await?;
    }
    if redemption.cost_points > 0 {
        tx.insert(&PointsEntryRow {
            participant_id: pid.clone(),
            kind: "cancel".into(),
            act_seq: None,
            redemption_id: Some(redemption.id.clone()),
            rule_version: None,
            honour_delta: 0,
            spendable_delta: redemption.cost_points,
            reason: format!("取消兑换：{title}"),
            at: now.to_owned(),
        })
        .await?;
    }
    tx.add_to_points_balance(
        pid,
        0,
        redemption.cost_points,
        debt - balance.debt,
        &balance.tier,
        now,
    )
    .await?;
    Ok(balance.spendable + redemption.cost_points)
}

/// The default Lucheng rule set, as shipped in `rules/points-lucheng-v1.toml`.
pub const LUCHENG_RULES: &str = include_str!("../../../rules/points-lucheng-v1.toml");

/// For the demo: publishes the default rules (if not yet), syncs donations into acts, and
/// creates a few offers for the first organizations (if there are none yet). Returns the
/// number of offers created.
pub async fn seed_demo_points(app: &App, admin: &Actor) -> Result<usize> {
    app.recompute_points(admin, LUCHENG_RULES, false).await?;
    if !app.store().points_offers(None).await?.is_empty() {
        return Ok(0);
    }
    let orgs = app.store().organizations_page(0, 5).await?;
    let now = app.clock().now();
    let today = core::date_of_day(local_day(now)).unwrap_or(jiff::civil::date(2026, 1, 1));
    let until = today
        .checked_add(jiff::Span::new().years(1))
        .unwrap_or(today);
    let offers = [
        ("medical", "社区医院免费体检一次", 200, None, 50),
        ("schooling", "爱心助学文具礼包", 100, None, 100),
        ("employment", "就业技能培训优先名额", 0, Some("silver"), 20),
        (
            "credit",
            "信用积分加分（诚信档案）",
            50,
            Some("bronze"),
            500,
        ),
        ("social_service", "居家养老服务一次", 150, None, 30),
    ];
    let mut created = 0;
    for (i, (channel, title, cost, tier, stock)) in offers.into_iter().enumerate() {
        let Some(org) = orgs.get(i % orgs.len().max(1)) else {
            break;
        };
        let input = OfferInput {
            org_id: org.id.clone(),
            channel: channel.into(),
            title: title.into(),
            description: String::new(),
            cost_points: cost,
            min_tier: tier.map(str::to_owned),
            stock,
            valid_from: today.to_string(),
            valid_to: until.to_string(),
        };
        let key = IdempotencyKey::parse(&format!("demo-offer-{i}"))?;
        app.create_offer(admin, &key, &input).await?;
        created += 1;
    }
    Ok(created)
}
