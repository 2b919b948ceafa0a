//! Matching pools (配捐): a sponsor adds a share of each eligible donation, within caps per
//! donation, per donor and in total, for a period. The match is itself a donation from the
//! sponsor to the same fund or project, so it is receipted and traced like any other; refunding
//! the original returns the match's excess to the pool.

use cishan_core::{match_after_refund, match_amount, MatchTerms};
use cishan_store::{format_instant, DonationRow, MatchPoolRow, NewEntry, WriteTx};
use serde::{Deserialize, Serialize};

use crate::{Actor, App, AppError, Result};

/// A pool as a sponsor sets it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchPoolInput {
    pub name: String,
    /// The sponsor (a bank or an enterprise) as a registered participant.
    pub sponsor_participant_id: String,
    /// The match is `amount × ratio_num / ratio_den`, rounded down to the fen.
    pub ratio_num: i64,
    pub ratio_den: i64,
    pub cap_per_donation_fen: i64,
    pub cap_per_donor_fen: i64,
    pub cap_total_fen: i64,
    /// Donations to these projects are eligible…
    #[serde(default)]
    pub project_ids: Vec<String>,
    /// …and donations made through this campaign.
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// RFC 3339 instants; the period is `[starts_at, ends_at)`.
    pub starts_at: String,
    pub ends_at: String,
}

impl App {
    /// Creates a matching pool. Administrators only.
    pub async fn create_match_pool(
        &self,
        actor: &Actor,
        input: &MatchPoolInput,
    ) -> Result<MatchPoolRow> {
        actor.require_admin()?;
        let positive = |field: &str, v: i64| {
            if v > 0 {
                Ok(v)
            } else {
                Err(AppError::invalid(
                    field,
                    "pool.value_not_positive",
                    format!("{field} 必须是大于 0 的整数（金额以分为单位）。"),
                ))
            }
        };
        positive("ratio_num", input.ratio_num)?;
        positive("ratio_den", input.ratio_den)?;
        positive("cap_per_donation_fen", input.cap_per_donation_fen)?;
        positive("cap_per_donor_fen", input.cap_per_donor_fen)?;
        positive("cap_total_fen", input.cap_total_fen)?;
        let parse = |field: &str, text: &str| -> Result<jiff::Timestamp> {
            text.parse().map_err(|_| {
                AppError::invalid(
                    field,
                    "pool.time_invalid",
                    "时间格式应为 RFC 3339，例如 2026-12-01T00:00:00+08:00。",
                )
            })
        };
        let starts = parse("starts_at", &input.starts_at)?;
        let ends = parse("ends_at", &input.ends_at)?;
        if ends <= starts {
            return Err(AppError::invalid(
                "ends_at",
                "pool.period_invalid",
                "结束时间必须晚于开始时间。",
            ));
        }
        if input.project_ids.is_empty() && input.campaign_id.is_none() {
            return Err(AppError::invalid(
                "project_ids",
                "pool.scope_missing",
                "请至少指定一个可配捐的项目或一个募捐活动。",
            ));
        }
        let (sponsor_name, _) = self
            .store()
            .participant_name(&input.sponsor_participant_id)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "sponsor_participant_id",
                    "pool.sponsor_unknown",
                    "找不到配捐方，请先登记该银行或企业。",
                )
            })?;
        let now = self.clock().now();
        let row = MatchPoolRow {
            id: format!(
                "pool_{}",
                &self.vault().digest(&format!("{now}{}", input.name))[..12]
            ),
            name: input.name.trim().to_owned(),
            sponsor_participant_id: Some(input.sponsor_participant_id.clone()),
            sponsor_name,
            ratio_num: input.ratio_num,
            ratio_den: input.ratio_den,
            cap_per_donation_fen: input.cap_per_donation_fen,
            cap_per_donor_fen: input.cap_per_donor_fen,
            cap_total_fen: input.cap_total_fen,
            used_fen: 0,
            campaign_id: input.campaign_id.clone(),
            starts_at: format_instant(starts),
            ends_at: format_instant(ends),
            created_at: format_instant(now),
        };
        let mut tx = self.store().begin().await?;
        tx.insert(&row).await?;
        for p in &input.project_ids {
            if tx.project_state(p).await?.is_none() {
                return Err(AppError::invalid(
                    "project_ids",
                    "pool.project_unknown",
                    format!("找不到编号为 `{p}` 的项目。"),
                ));
            }
            tx.add_pool_project(&row.id, p).await?;
        }
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "pool.created".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "ratio": [row.ratio_num, row.ratio_den], "cap_total_fen": row.cap_total_fen,
                    "projects": input.project_ids, "campaign_id": row.campaign_id,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Gives a just-recorded donation its match from the first eligible pool with money left.
    /// Returns the match donation's id and amount.
    pub(crate) async fn apply_match(
        &self,
        tx: &mut WriteTx,
        actor: &Actor,
        row: &DonationRow,
    ) -> Result<Option<(String, i64)>> {
        if row.matched_donation_id.is_some() || row.kind != "money" {
            return Ok(None);
        }
        let pools = tx
            .eligible_pools(
                row.project_id.as_deref(),
                row.campaign_id.as_deref(),
                &row.received_at,
            )
            .await?;
        for pool in pools {
            let donor_used = match &row.donor_participant_id {
                Some(donor) => tx.pool_used_by_donor(&pool.id, donor).await?,
                None => 0,
            };
            let terms = terms_of(&pool);
            let amount = match_amount(&terms, row.amount_fen, donor_used, pool.used_fen);
            if amount == 0 {
                continue;
            }
            // The cap is enforced by the UPDATE itself, not by the read above.
            if !tx.use_pool(&pool.id, amount).await? {
                continue;
            }
            let matched = DonationRow {
                id: format!("{}m", row.id),
                donor_participant_id: pool.sponsor_participant_id.clone(),
                amount_fen: amount,
                currency: row.currency.clone(),
                fund_id: row.fund_id.clone(),
                project_id: row.project_id.clone(),
                received_at: row.received_at.clone(),
                org_id: row.org_id.clone(),
                kind: "money".into(),
                channel: "match".into(),
                payment_ref: Some(pool.id.clone()),
                matched_donation_id: Some(row.id.clone()),
                pool_id: Some(pool.id.clone()),
                campaign_id: row.campaign_id.clone(),
                recorded_by: Some(actor.user_id.clone()),
                ..DonationRow::default()
            };
            self.insert_donation(tx, actor, &matched).await?;
            return Ok(Some((matched.id, amount)));
        }
        Ok(None)
    }

    /// After a refund leaves the original donation at `net`, refunds the part of its match that
    /// `net` no longer earns and gives it back to the pool. Returns the fen returned.
    pub(crate) async fn return_match(
        &self,
        tx: &mut WriteTx,
        actor: &Actor,
        original: &DonationRow,
        net: i64,
    ) -> Result<i64> {
        let Some(matched) = tx.match_of(&original.id).await? else {
            return Ok(0);
        };
        let Some(pool_id) = matched.pool_id.clone() else {
            return Ok(0);
        };
        let Some(pool) = tx.pool(&pool_id).await? else {
            return Ok(0);
        };
        let current = matched.amount_fen - matched.refunded_fen;
        let keep = match_after_refund(&terms_of(&pool), current, net);
        let back = current - keep;
        if back <= 0 {
            return Ok(0);
        }
        // Boxed: refunding the match goes through `refund_in`, which called us.
        Box::pin(self.refund_in(
            tx,
            actor,
            &matched.id,
            back,
            "原捐赠退款，配捐相应退回配捐池",
            false,
        ))
        .await?;
        tx.release_pool(&pool_id, back).await?;
        Ok(back)
    }
}

fn terms_of(pool: &MatchPoolRow) -> MatchTerms {
    MatchTerms {
        ratio_num: pool.ratio_num,
        ratio_den: pool.ratio_den,
        cap_per_donation: pool.cap_per_donation_fen,
        cap_per_donor: pool.cap_per_donor_fen,
        cap_total: pool.cap_total_fen,
    }
}
