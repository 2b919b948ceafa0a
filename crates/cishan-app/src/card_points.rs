//! Bank card point donations (银行卡积分捐赠): a partner bank converts its cardholders' points
//! into money at its own rate and submits them as one batch. Each item becomes an ordinary
//! donation (channel `card_points`, payment reference = the bank's batch reference), receipted,
//! matched and traced like any other, plus a `card_point_conversions` row recording the points.
//!
//! The batch is all-or-nothing, in one transaction, and idempotent under the caller's key: a
//! retry returns the first result and writes nothing. The same bank's batch reference cannot be
//! converted twice, even under a different key.

use cishan_store::{format_instant, CardPointConversionRow, NewEntry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::donations::{
    new_id, replay, request_hash, save_replay, DonationInput, IdempotencyKey, Outcome,
};
use crate::{Actor, App, AppError, ErrorKind, Result};

/// The most items one batch may carry.
pub const MAX_CARD_POINT_ITEMS: usize = 500;
/// Longest batch reference accepted.
const MAX_BATCH_REF_CHARS: usize = 100;
/// The idempotency scope of a batch.
const SCOPE: &str = "card_points";

/// A batch of converted points, as the bank submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardPointsInput {
    /// The partner bank, registered as an organization participant (`ptc_…`).
    pub bank_participant_id: String,
    /// The bank's own reference for the batch; becomes each donation's payment reference.
    pub batch_ref: String,
    /// The bank's rate: how many points make one yuan (integer > 0).
    pub points_per_yuan: i64,
    pub items: Vec<CardPointItem>,
}

/// One cardholder's points, given to a fund (unrestricted) or a project (restricted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardPointItem {
    pub points: i64,
    #[serde(default)]
    pub fund_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// The cardholder, when registered (`ptc_…`).
    #[serde(default)]
    pub cardholder_participant_id: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
}

/// What one item became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConvertedItem {
    /// The item's position in the batch, from 0.
    pub index: usize,
    pub points: i64,
    pub amount_fen: i64,
    pub conversion_id: String,
    pub donation_id: String,
    pub receipt_number: String,
    pub match_donation_id: Option<String>,
    pub match_fen: i64,
}

/// The result of converting a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CardPointsConverted {
    pub bank_participant_id: String,
    pub batch_ref: String,
    pub points_per_yuan: i64,
    pub total_points: i64,
    pub total_fen: i64,
    pub items: Vec<ConvertedItem>,
}

/// `floor(points × 100 / points_per_yuan)` fen; `None` when the product overflows or the rate is
/// not positive.
pub fn points_to_fen(points: i64, points_per_yuan: i64) -> Option<i64> {
    if points_per_yuan <= 0 {
        return None;
    }
    points.checked_mul(100).map(|p| p / points_per_yuan)
}

/// Prefixes an item's validation error with its position, so the bank can find the row.
fn at_item(index: usize, mut e: AppError) -> AppError {
    if e.kind == ErrorKind::Invalid {
        let field = e.field.take().unwrap_or_default();
        let field = match field.as_str() {
            "donor_participant_id" => "cardholder_participant_id".to_owned(),
            "" => String::new(),
            other => other.to_owned(),
        };
        e.field = Some(if field.is_empty() {
            format!("items[{index}]")
        } else {
            format!("items[{index}].{field}")
        });
        e.message = format!("第 {} 项（items[{index}]）：{}", index + 1, e.message);
    }
    e
}

impl App {
    /// Converts a bank's batch of card points into donations, all or nothing. Safe to retry
    /// with the same key: the retry gets the first result and writes nothing.
    pub async fn convert_card_points(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &CardPointsInput,
    ) -> Result<Outcome<CardPointsConverted>> {
        actor.require_staff()?;
        let bank = input.bank_participant_id.trim().to_owned();
        if bank.is_empty() {
            return Err(AppError::invalid(
                "bank_participant_id",
                "card_points.bank_missing",
                "请填写合作银行的参与方编号（ptc_…）。",
            ));
        }
        let batch_ref = input.batch_ref.trim().to_owned();
        if batch_ref.is_empty()
            || batch_ref.chars().count() > MAX_BATCH_REF_CHARS
            || batch_ref.chars().any(char::is_control)
        {
            return Err(AppError::invalid(
                "batch_ref",
                "card_points.batch_ref_invalid",
                format!("请填写银行的批次号（1 到 {MAX_BATCH_REF_CHARS} 个字，不含控制字符），便于对账。"),
            ));
        }
        if input.points_per_yuan <= 0 {
            return Err(AppError::invalid(
                "points_per_yuan",
                "card_points.rate_invalid",
                "兑换比例 points_per_yuan 是每 1 元所需的积分数，必须是大于 0 的整数。",
            ));
        }
        if input.items.is_empty() || input.items.len() > MAX_CARD_POINT_ITEMS {
            return Err(AppError::invalid(
                "items",
                "card_points.items_count",
                format!("一个批次请包含 1 到 {MAX_CARD_POINT_ITEMS} 项积分捐赠。"),
            ));
        }
        let mut donations = Vec::with_capacity(input.items.len());
        for (i, item) in input.items.iter().enumerate() {
            if item.points <= 0 {
                return Err(AppError::invalid(
                    &format!("items[{i}].points"),
                    "card_points.points_invalid",
                    format!("第 {} 项（items[{i}]）的积分必须是大于 0 的整数。", i + 1),
                ));
            }
            let fen = points_to_fen(item.points, input.points_per_yuan).ok_or_else(|| {
                AppError::invalid(
                    &format!("items[{i}].points"),
                    "card_points.points_too_large",
                    format!("第 {} 项（items[{i}]）的积分数过大，无法折算。", i + 1),
                )
            })?;
            if fen == 0 {
                return Err(AppError::invalid(
                    &format!("items[{i}].points"),
                    "card_points.below_one_fen",
                    format!(
                        "第 {} 项（items[{i}]）的 {} 积分按每元 {} 积分折算不足 1 分，不能捐赠。请把该持卡人的积分合并到一项或删去这一项。",
                        i + 1,
                        item.points,
                        input.points_per_yuan
                    ),
                ));
            }
            let donation = DonationInput {
                amount_fen: fen,
                fund_id: item.fund_id.clone(),
                project_id: item.project_id.clone(),
                donor_participant_id: item.cardholder_participant_id.clone(),
                anonymous: item.anonymous,
                channel: "card_points".into(),
                payment_ref: Some(batch_ref.clone()),
                ..DonationInput::default()
            };
            let valid = self
                .validate_donation(actor, &donation)
                .map_err(|e| at_item(i, e))?;
            donations.push((item.points, valid));
        }

        let hash = request_hash(input);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, SCOPE, key, &hash).await? {
            return Ok(done);
        }
        match self.store().participant_name(&bank).await? {
            Some((_, kind)) if kind == "organization" => {}
            _ => {
                return Err(AppError::invalid(
                    "bank_participant_id",
                    "card_points.bank_unknown",
                    format!("找不到编号为 `{bank}` 的合作银行：银行须先登记为机构类参与方。"),
                ))
            }
        }
        if tx.card_point_batch_count(&bank, &batch_ref).await? > 0 {
            return Err(AppError::conflict(
                "card_points.batch_duplicate",
                format!("该银行的批次 `{batch_ref}` 已经登记过，不能重复兑换。如确为新批次，请使用新的批次号。"),
            ));
        }
        // Each item goes through the donation machinery under a key derived from the batch's,
        // so it is receipted, matched and journaled exactly as a donation recorded on its own.
        let key_digest = hex::encode(Sha256::digest(key.as_str().as_bytes()));
        let now = self.clock().now();
        let at = format_instant(now);
        let mut items = Vec::with_capacity(donations.len());
        let mut conversions = Vec::with_capacity(donations.len());
        for (i, (points, valid)) in donations.iter().enumerate() {
            let item_key =
                IdempotencyKey::parse(&format!("card-points-{}-{i}", &key_digest[..32]))?;
            let item_hash = request_hash(&(&hash, i));
            let recorded = self
                .apply_donation(&mut tx, actor, &item_key, &item_hash, valid)
                .await
                .map_err(|e| at_item(i, e))?;
            if recorded.replayed {
                return Err(AppError::internal(std::io::Error::other(
                    "a card point item's derived key was already used",
                )));
            }
            let recorded = recorded.value;
            let conversion = CardPointConversionRow {
                id: new_id("cpc"),
                bank_participant_id: bank.clone(),
                batch_ref: batch_ref.clone(),
                points: *points,
                points_per_yuan: input.points_per_yuan,
                amount_fen: recorded.amount_fen,
                donation_id: recorded.donation_id.clone(),
                converted_at: at.clone(),
            };
            items.push(ConvertedItem {
                index: i,
                points: *points,
                amount_fen: recorded.amount_fen,
                conversion_id: conversion.id.clone(),
                donation_id: recorded.donation_id,
                receipt_number: recorded.receipt_number,
                match_donation_id: recorded.match_donation_id,
                match_fen: recorded.match_fen,
            });
            conversions.push(conversion);
        }
        tx.insert_all(&conversions).await?;
        let converted = CardPointsConverted {
            bank_participant_id: bank.clone(),
            batch_ref: batch_ref.clone(),
            points_per_yuan: input.points_per_yuan,
            total_points: items.iter().map(|i| i.points).sum(),
            total_fen: items.iter().map(|i| i.amount_fen).sum(),
            items,
        };
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "card_points.converted".into(),
                subject: format!("card_points:{bank}:{batch_ref}"),
                payload: serde_json::json!({
                    "bank_participant_id": bank, "batch_ref": batch_ref,
                    "points_per_yuan": input.points_per_yuan,
                    "items": converted.items.len(), "total_points": converted.total_points,
                    "total_fen": converted.total_fen,
                    "donations": converted.items.iter().map(|i| &i.donation_id).collect::<Vec<_>>(),
                }),
            },
        )
        .await?;
        save_replay(&mut tx, SCOPE, key, &hash, 201, &converted, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value: converted,
            replayed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_down_to_the_fen() {
        assert_eq!(points_to_fen(1234, 100), Some(1234));
        assert_eq!(points_to_fen(999, 1000), Some(99));
        assert_eq!(points_to_fen(9, 1000), Some(0));
        assert_eq!(points_to_fen(1, 3), Some(33));
        assert_eq!(points_to_fen(i64::MAX, 1), None);
        assert_eq!(points_to_fen(1, 0), None);
    }
}
