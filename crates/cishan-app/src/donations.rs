//! Donations and where their money goes (一扫清): recording money and goods donations, receipts,
//! allocations from funds to projects, disbursements to recipients, refunds and reversals, and
//! the public trace of one donation. See docs/ledger.md for the model.
//!
//! Every money-moving use case takes an [`IdempotencyKey`]; a retry returns the first result and
//! writes nothing. Each runs in one transaction that first calls `lock_writes`, so balances read
//! inside it cannot change underneath.

use std::collections::BTreeMap;

use cishan_core::{mask_name, split_by_weights, take_fifo, Fen, ANONYMOUS_ZH};
use cishan_store::{
    format_instant, AllocationRow, DisbursementRow, DonationRow, EvidenceRow, FlowRow,
    IdempotentResponse, LedgerEntryRow, LotRow, NewEntry, ReceiptRow, RefundRow, WriteTx,
    SHARED_PAYMENT_REF_CHANNELS,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Actor, App, AppError, ErrorKind, Result};

/// How a walk-in donor who left no name (and did not ask for anonymity) is shown.
pub const UNNAMED_ZH: &str = "未留名";

/// Longest idempotency key accepted.
const MAX_KEY_CHARS: usize = 200;
/// Longest free text (names, references, reasons, descriptions) accepted.
const MAX_TEXT_CHARS: usize = 200;

/// A caller's key that makes a request safe to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<IdempotencyKey> {
        let ok = !text.is_empty()
            && text.chars().count() <= MAX_KEY_CHARS
            && text.chars().all(|c| c.is_ascii_graphic());
        if ok {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(AppError::invalid(
                "Idempotency-Key",
                "idempotency.key_invalid",
                format!(
                    "请求头 Idempotency-Key 必须是 1 到 {MAX_KEY_CHARS} 个可见 ASCII 字符（例如一个 UUID），同一笔操作重试时使用同一个值。"
                ),
            ))
        }
    }

    /// A key a client sent, kept apart from every other account's keys: two offices that
    /// both number their requests 1, 2, 3… must not replay each other's results. Stored as
    /// `{user id}:{key}`. Keys the platform makes itself (imports, the demo) use
    /// [`IdempotencyKey::parse`], so that whoever repeats the same import gets the same result.
    pub fn for_account(account: &str, text: &str) -> Result<IdempotencyKey> {
        let key = IdempotencyKey::parse(text)?;
        Ok(IdempotencyKey(format!("{account}:{}", key.0)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a money-moving use case returns: its result, and whether it was a stored replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    pub value: T,
    pub replayed: bool,
}

/// A donation as typed by a person or sent by another system, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonationInput {
    /// `money` (default) or `goods`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Amount in fen (money), or the valuation in fen (goods).
    pub amount_fen: i64,
    /// ISO 4217 code; only `CNY` is accepted for now.
    #[serde(default)]
    pub currency: Option<String>,
    /// Unrestricted money goes to a fund…
    #[serde(default)]
    pub fund_id: Option<String>,
    /// …restricted money to a project.
    #[serde(default)]
    pub project_id: Option<String>,
    /// A registered donor (`ptc_…`); leave empty for a walk-in donor.
    #[serde(default)]
    pub donor_participant_id: Option<String>,
    /// A walk-in donor's name as given (optional).
    #[serde(default)]
    pub donor_name: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
    /// `bank_transfer`, `online`, `cash` or `card_points`.
    pub channel: String,
    #[serde(default)]
    pub payment_ref: Option<String>,
    #[serde(default)]
    pub goods_item: Option<String>,
    #[serde(default)]
    pub goods_quantity: Option<i64>,
    #[serde(default)]
    pub goods_unit: Option<String>,
    #[serde(default)]
    pub valued_by: Option<String>,
    /// The unit of a campaign (一日捐) the donor gives through.
    #[serde(default)]
    pub campaign_unit_id: Option<String>,
    /// When the money arrived (RFC 3339); defaults to now.
    #[serde(default)]
    pub received_at: Option<String>,
}

/// Channels money can arrive by.
pub const CHANNELS: &[(&str, &str)] = &[
    ("bank_transfer", "银行转账"),
    ("online", "网上支付"),
    ("cash", "现金"),
    ("card_points", "银行卡积分"),
];

/// A donation as the public sees it: the donor masked (or 匿名), amounts in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DonationView {
    pub id: String,
    pub donor: String,
    pub anonymous: bool,
    pub kind: String,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub net_fen: i64,
    pub currency: String,
    pub org_id: Option<String>,
    pub fund_id: Option<String>,
    pub project_id: Option<String>,
    pub channel: String,
    pub goods_item: Option<String>,
    pub goods_quantity: Option<i64>,
    pub goods_unit: Option<String>,
    pub received_at: String,
    pub received_on: String,
    pub matched_donation_id: Option<String>,
    pub campaign_unit_id: Option<String>,
}

/// The public fields of a receipt: exactly what its transparency-log leaf records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptFact {
    pub number: String,
    pub issuer: String,
    pub issuer_credit_code: String,
    pub payer: String,
    pub issued_on: String,
    pub item: String,
    pub quantity: i64,
    pub amount_fen: i64,
    pub check_code: String,
    pub donation_id: String,
    pub replaces: Option<String>,
}

/// The result of recording a donation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DonationRecorded {
    pub donation_id: String,
    pub amount_fen: i64,
    pub receipt_number: String,
    /// The match (配捐) the donation earned, if any.
    pub match_donation_id: Option<String>,
    pub match_fen: i64,
}

/// A validated donation, ready to write.
#[derive(Debug, Clone)]
pub(crate) struct ValidDonation {
    pub row: DonationRow,
}

fn text_field(field: &str, value: Option<&str>, what: &str) -> Result<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::invalid(
            field,
            format!("{field}.too_long"),
            format!("{what}不能超过 {MAX_TEXT_CHARS} 个字。"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("{field}.invalid"),
            format!("{what}含有不可见的控制字符，请重新输入。"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// The largest single amount accepted: ¥1,000,000,000 (one billion yuan). Far above any real
/// gift, and low enough that sums over every donation can never overflow.
pub const MAX_AMOUNT_FEN: i64 = 100_000_000_000;

fn positive_amount(field: &str, amount: i64) -> Result<i64> {
    if amount > MAX_AMOUNT_FEN {
        return Err(AppError::invalid(
            field,
            "amount.too_large",
            "金额过大：单笔不能超过 10 亿元。请核对金额（以分为单位的整数，例如 100 元填 10000）。",
        ));
    }
    if amount <= 0 {
        return Err(AppError::invalid(
            field,
            "amount.not_positive",
            "金额必须大于 0（以分为单位的整数，例如 100 元填 10000）。",
        ));
    }
    Ok(amount)
}

pub(crate) const PAYMENT_REF_TAKEN: &str = "donation.payment_ref_taken";

/// The most units one goods donation may record (a receipt prints the quantity).
pub const MAX_GOODS_QUANTITY: i64 = 1_000_000_000;

/// A second donation with a payment reference already recorded on the same channel.
pub(crate) fn payment_ref_taken(existing: Option<&str>) -> AppError {
    let message = match existing {
        Some(id) => format!("该付款流水号已登记为捐赠 {id}；如确为另一笔款项，请核对流水号。"),
        None => "该付款流水号已登记为捐赠；如确为另一笔款项，请核对流水号。".to_owned(),
    };
    AppError {
        field: Some("payment_ref".to_owned()),
        ..AppError::conflict(PAYMENT_REF_TAKEN, message)
    }
}

fn conflict_no_funds(holder: &str, wanted: i64, available: i64) -> AppError {
    AppError::conflict(
        "ledger.insufficient",
        format!(
            "{holder}可用余额不足：需要 {}，可用 {}。请减少金额或先向其拨入资金。",
            Fen::new(wanted),
            Fen::new(available)
        ),
    )
}

/// The request's fingerprint, so a key reused with different content is caught.
pub(crate) fn request_hash(value: &impl Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn order_key(received_at: &str, donation_id: &str) -> String {
    format!("{received_at} {donation_id}")
}

/// A new identifier: `{prefix}_` and 20 hex digits, the first 12 the wall-clock milliseconds,
/// the last 8 random. Ids made later sort later, so new rows go to the right-hand edge of every
/// index keyed by them instead of a random page: with random ids each group commit of the
/// donation writer rewrote a page per index per donation (measured by `cishan bench
/// donations`). The time is not a business fact (those come from the app's `Clock`).
pub(crate) fn new_id(prefix: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut random = [0_u8; 4];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
    let millis = u64::try_from(millis).unwrap_or(u64::MAX) & 0xFFFF_FFFF_FFFF;
    format!("{prefix}_{millis:012x}{}", hex::encode(random))
}

impl App {
    /// Validates a donation without touching the database.
    pub(crate) fn validate_donation(
        &self,
        actor: &Actor,
        input: &DonationInput,
    ) -> Result<ValidDonation> {
        actor.require_staff()?;
        let kind = input.kind.as_deref().unwrap_or("money");
        let amount_fen = positive_amount("amount_fen", input.amount_fen)?;
        let currency = input.currency.as_deref().unwrap_or("CNY");
        if currency != "CNY" {
            return Err(AppError::invalid(
                "currency",
                "donation.currency_unsupported",
                format!("暂只接受人民币（CNY）捐赠，收到的币种是 `{currency}`。外币请按到账人民币金额登记。"),
            ));
        }
        let (fund_id, project_id) = match (
            text_field("fund_id", input.fund_id.as_deref(), "基金编号")?,
            text_field("project_id", input.project_id.as_deref(), "项目编号")?,
        ) {
            (Some(f), None) => (Some(f), None),
            (None, Some(p)) => (None, Some(p)),
            (None, None) => {
                return Err(AppError::invalid(
                    "fund_id",
                    "donation.target_missing",
                    "请选择捐入的基金（非定向）或项目（定向）。",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "project_id",
                    "donation.target_ambiguous",
                    "一笔捐赠只能捐入一个基金或一个项目：定向捐赠填项目，非定向捐赠填基金。",
                ))
            }
        };
        if !CHANNELS.iter().any(|(c, _)| *c == input.channel) {
            return Err(AppError::invalid(
                "channel",
                "donation.channel_invalid",
                format!(
                    "捐赠渠道 `{}` 不认识。可选：{}。",
                    input.channel,
                    CHANNELS
                        .iter()
                        .map(|(c, n)| format!("{c}（{n}）"))
                        .collect::<Vec<_>>()
                        .join("、")
                ),
            ));
        }
        let payment_ref = text_field("payment_ref", input.payment_ref.as_deref(), "支付流水号")?;
        if matches!(input.channel.as_str(), "bank_transfer" | "online") && payment_ref.is_none() {
            return Err(AppError::invalid(
                "payment_ref",
                "donation.payment_ref_missing",
                "银行转账和网上支付的捐赠必须填写支付流水号，便于对账。",
            ));
        }
        let donor = text_field(
            "donor_participant_id",
            input.donor_participant_id.as_deref(),
            "捐赠人编号",
        )?;
        let donor_name = text_field("donor_name", input.donor_name.as_deref(), "捐赠人姓名")?;
        if donor.is_some() && donor_name.is_some() {
            return Err(AppError::invalid(
                "donor_name",
                "donation.donor_ambiguous",
                "已选择登记的捐赠人时不要再填写散客姓名。",
            ));
        }
        let mut row = DonationRow {
            id: new_id("don"),
            donor_participant_id: donor,
            amount_fen,
            currency: "CNY".into(),
            fund_id,
            project_id,
            received_at: String::new(),
            org_id: None,
            kind: kind.to_owned(),
            channel: input.channel.clone(),
            payment_ref,
            donor_name,
            refunded_fen: 0,
            campaign_unit_id: text_field(
                "campaign_unit_id",
                input.campaign_unit_id.as_deref(),
                "参与单位编号",
            )?,
            recorded_by: Some(actor.user_id.clone()),
            anonymous: input.anonymous,
            ..DonationRow::default()
        };
        match kind {
            "money" => {
                if input.goods_item.is_some()
                    || input.goods_quantity.is_some()
                    || input.goods_unit.is_some()
                {
                    return Err(AppError::invalid(
                        "goods_item",
                        "donation.goods_fields_on_money",
                        "资金捐赠不要填写物品信息；捐物请把类型选为“物资”。",
                    ));
                }
            }
            "goods" => {
                row.goods_item = Some(
                    text_field("goods_item", input.goods_item.as_deref(), "物品名称")?.ok_or_else(
                        || {
                            AppError::invalid(
                                "goods_item",
                                "donation.goods_item_missing",
                                "请填写捐赠物品的名称。",
                            )
                        },
                    )?,
                );
                let quantity = input.goods_quantity.unwrap_or(0);
                if quantity <= 0 || quantity > MAX_GOODS_QUANTITY {
                    return Err(AppError::invalid(
                        "goods_quantity",
                        "donation.goods_quantity_invalid",
                        format!(
                            "请填写物品数量：大于 0、不超过 {MAX_GOODS_QUANTITY} 的整数（收到 {quantity}）。"
                        ),
                    ));
                }
                row.goods_quantity = Some(quantity);
                row.goods_unit = Some(
                    text_field("goods_unit", input.goods_unit.as_deref(), "计量单位")?.ok_or_else(
                        || {
                            AppError::invalid(
                                "goods_unit",
                                "donation.goods_unit_missing",
                                "请填写计量单位，例如“箱”“件”。",
                            )
                        },
                    )?,
                );
                row.valued_by = Some(
                    text_field("valued_by", input.valued_by.as_deref(), "估价人")?.ok_or_else(
                        || {
                            AppError::invalid(
                                "valued_by",
                                "donation.valued_by_missing",
                                "物资捐赠必须写明由谁估价（估价人或评估机构）。",
                            )
                        },
                    )?,
                );
            }
            other => {
                return Err(AppError::invalid(
                    "kind",
                    "donation.kind_invalid",
                    format!("捐赠类型 `{other}` 不认识，可选 money（资金）或 goods（物资）。"),
                ))
            }
        }
        let received = match input.received_at.as_deref() {
            None | Some("") => self.clock().now(),
            Some(text) => {
                let at: Timestamp = text.parse().map_err(|_| {
                    AppError::invalid(
                        "received_at",
                        "donation.received_at_invalid",
                        "到账时间格式应为 RFC 3339，例如 2026-12-03T09:30:00+08:00。",
                    )
                })?;
                if at > self.clock().now() {
                    return Err(AppError::invalid(
                        "received_at",
                        "donation.received_at_future",
                        "到账时间不能晚于现在。",
                    ));
                }
                at
            }
        };
        row.received_at = format_instant(received);
        Ok(ValidDonation { row })
    }

    /// Records a donation, issues its receipt and gives it its match. Safe to retry with the
    /// same key: the retry gets the first result and writes nothing.
    pub async fn record_donation(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &DonationInput,
    ) -> Result<Outcome<DonationRecorded>> {
        let valid = self.validate_donation(actor, input)?;
        let hash = request_hash(input);
        let (channel, payment_ref) = (valid.row.channel.clone(), valid.row.payment_ref.clone());
        let result = self
            .donation_writer()
            .submit(actor.clone(), key.clone(), hash, valid)
            .await;
        match (result, payment_ref) {
            // Refused by the unique index at commit: name the donation that holds the reference.
            (Err(e), Some(payment_ref)) if e.code == PAYMENT_REF_TAKEN => {
                let existing = self
                    .store()
                    .donation_with_payment_ref(&channel, &payment_ref)
                    .await?;
                Err(AppError {
                    cause: e.cause,
                    ..payment_ref_taken(existing.as_deref())
                })
            }
            (result, _) => result,
        }
    }

    /// Runs inside a (possibly grouped) transaction: the whole effect of one donation request.
    pub(crate) async fn apply_donation(
        &self,
        tx: &mut WriteTx,
        actor: &Actor,
        key: &IdempotencyKey,
        hash: &str,
        valid: &ValidDonation,
    ) -> Result<Outcome<DonationRecorded>> {
        if let Some(done) = replay(tx, "donation", key, hash).await? {
            return Ok(done);
        }
        let mut row = valid.row.clone();
        if let Some(payment_ref) = &row.payment_ref {
            if !SHARED_PAYMENT_REF_CHANNELS.contains(&row.channel.as_str()) {
                if let Some(existing) = tx
                    .donation_with_payment_ref(&row.channel, payment_ref)
                    .await?
                {
                    return Err(payment_ref_taken(Some(&existing)));
                }
            }
        }
        let (holder_kind, holder_id) = holder_of(&row);
        let org = tx
            .holder_org(holder_kind, &holder_id)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    if holder_kind == "fund" {
                        "fund_id"
                    } else {
                        "project_id"
                    },
                    "donation.target_unknown",
                    format!("找不到编号为 `{holder_id}` 的{}。", holder_zh(holder_kind)),
                )
            })?;
        if holder_kind == "project" {
            let (_, state) = tx.project_state(&holder_id).await?.unwrap_or_default();
            if state == "closed" {
                return Err(AppError::conflict(
                    "donation.project_closed",
                    "该项目已结项，不再接受定向捐赠。请捐入其所属基金或其他项目。",
                ));
            }
        }
        row.org_id = Some(org);
        if let Some(p) = &row.donor_participant_id {
            if self.store().participant_name(p).await?.is_none() {
                return Err(AppError::invalid(
                    "donor_participant_id",
                    "donation.donor_unknown",
                    format!("找不到编号为 `{p}` 的捐赠人。散客捐赠请留空并填写姓名（可选）。"),
                ));
            }
        }
        if let Some(unit) = row.campaign_unit_id.clone() {
            row.campaign_id = Some(self.campaign_of_unit(tx, &unit, &row).await?);
        }
        let receipt = self.insert_donation(tx, actor, &row).await?;
        let matched = self.apply_match(tx, actor, &row).await?;
        let recorded = DonationRecorded {
            donation_id: row.id.clone(),
            amount_fen: row.amount_fen,
            receipt_number: receipt.number,
            match_donation_id: matched.as_ref().map(|m| m.0.clone()),
            match_fen: matched.map(|m| m.1).unwrap_or(0),
        };
        save_replay(
            tx,
            "donation",
            key,
            hash,
            201,
            &recorded,
            self.clock().now(),
        )
        .await?;
        Ok(Outcome {
            value: recorded,
            replayed: false,
        })
    }

    /// Writes a donation row, its lot, its double-entry transfer, its receipt and journal entry.
    pub(crate) async fn insert_donation(
        &self,
        tx: &mut WriteTx,
        actor: &Actor,
        row: &DonationRow,
    ) -> Result<ReceiptRow> {
        let (holder_kind, holder_id) = holder_of(row);
        let org = row.org_id.clone().unwrap_or_default();
        // Staged: the donation writer commits many donations with one INSERT per table.
        tx.stage(row.clone()).await?;
        tx.stage(LotRow {
            donation_id: row.id.clone(),
            holder_kind: holder_kind.to_owned(),
            holder_id: holder_id.clone(),
            order_key: order_key(&row.received_at, &row.id),
            remaining_fen: row.amount_fen,
        })
        .await?;
        for entry in transfer(
            &row.id,
            &format!("cash:{org}"),
            &format!("{holder_kind}:{holder_id}"),
            row.amount_fen,
            &row.received_at,
        ) {
            tx.stage(entry).await?;
        }
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "donation.recorded".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "amount_fen": row.amount_fen,
                    "kind": row.kind,
                    "channel": row.channel,
                    "holder": format!("{holder_kind}:{holder_id}"),
                    "anonymous": row.anonymous,
                    "matched_donation_id": row.matched_donation_id,
                }),
            },
        )
        .await?;
        self.issue_receipt(tx, row, row.amount_fen, None).await
    }

    /// Issues a receipt for `amount` of a donation, numbered next in its organization's year.
    async fn issue_receipt(
        &self,
        tx: &mut WriteTx,
        row: &DonationRow,
        amount: i64,
        replaces: Option<String>,
    ) -> Result<ReceiptRow> {
        let org_id = row.org_id.clone().unwrap_or_default();
        let (issuer, credit_code) = tx
            .organization_identity(&org_id)
            .await?
            .ok_or_else(|| AppError::not_found("organization"))?;
        let now = self.clock().now();
        let issued_on = self.local_date(&format_instant(now));
        let year: i64 = issued_on[..4].parse().unwrap_or_default();
        let seq = tx.next_receipt_seq(&org_id, year).await?;
        let org_code: String = credit_code.chars().skip(8).take(9).collect();
        let number = format!("{year}-{org_code}-{seq:07}");
        let (payer_name, payer_code) = self.payer_of(row).await?;
        let check_code: String = self
            .vault()
            .digest(&format!("receipt|{number}|{}|{amount}", row.id))
            .chars()
            .take(8)
            .collect();
        let (item, quantity) = match &row.goods_item {
            Some(item) => (
                format!("{item}（{}）", row.goods_unit.clone().unwrap_or_default()),
                row.goods_quantity.unwrap_or(1),
            ),
            None => ("捐赠款".to_owned(), 1),
        };
        let receipt = ReceiptRow {
            number: number.clone(),
            org_id,
            year,
            seq,
            donation_id: row.id.clone(),
            amount_fen: amount,
            payer_name,
            payer_code,
            item,
            quantity,
            check_code,
            state: "issued".into(),
            replaces_number: replaces,
            issued_at: format_instant(now),
            voided_at: None,
        };
        tx.stage(receipt.clone()).await?;
        let fact = self.receipt_fact(&receipt, row.anonymous, &issuer, &credit_code);
        self.append_public_fact(
            tx,
            "receipt.issued",
            &number,
            &serde_json::json!({ "receipt": fact }),
        )
        .await?;
        Ok(receipt)
    }

    /// The public form of a receipt: the payer masked (organizations keep their name).
    pub(crate) fn receipt_fact(
        &self,
        receipt: &ReceiptRow,
        anonymous: bool,
        issuer: &str,
        issuer_code: &str,
    ) -> ReceiptFact {
        let payer = if anonymous {
            ANONYMOUS_ZH.to_owned()
        } else if receipt.payer_code.is_some() || receipt.payer_name == UNNAMED_ZH {
            receipt.payer_name.clone()
        } else {
            mask_name(&receipt.payer_name)
        };
        ReceiptFact {
            number: receipt.number.clone(),
            issuer: issuer.to_owned(),
            issuer_credit_code: issuer_code.to_owned(),
            payer,
            issued_on: self.local_date(&receipt.issued_at),
            item: receipt.item.clone(),
            quantity: receipt.quantity,
            amount_fen: receipt.amount_fen,
            check_code: receipt.check_code.clone(),
            donation_id: receipt.donation_id.clone(),
            replaces: receipt.replaces_number.clone(),
        }
    }

    pub(crate) async fn org_name_and_code(&self, org_id: &str) -> Result<(String, String)> {
        self.store()
            .organization_identity(org_id)
            .await?
            .ok_or_else(|| AppError::not_found("organization"))
    }

    /// The payer's name (and an organization's credit code) as the receipt records it.
    async fn payer_of(&self, row: &DonationRow) -> Result<(String, Option<String>)> {
        if let Some(p) = &row.donor_participant_id {
            let (name, kind) = self.store().participant_name(p).await?.unwrap_or_default();
            let code = if kind == "organization" {
                self.store().credit_code_of_participant(p).await?
            } else {
                None
            };
            return Ok((name, code));
        }
        Ok((
            row.donor_name
                .clone()
                .unwrap_or_else(|| UNNAMED_ZH.to_owned()),
            None,
        ))
    }

    /// How the public sees a donation's donor.
    pub(crate) async fn public_donor(&self, row: &DonationRow) -> Result<String> {
        if row.anonymous {
            return Ok(ANONYMOUS_ZH.to_owned());
        }
        let (name, code) = self.payer_of(row).await?;
        Ok(if code.is_some() || name == UNNAMED_ZH {
            name
        } else {
            mask_name(&name)
        })
    }

    pub(crate) async fn donation_view(&self, row: &DonationRow) -> Result<DonationView> {
        Ok(DonationView {
            id: row.id.clone(),
            donor: self.public_donor(row).await?,
            anonymous: row.anonymous,
            kind: row.kind.clone(),
            amount_fen: row.amount_fen,
            refunded_fen: row.refunded_fen,
            net_fen: row.amount_fen - row.refunded_fen,
            currency: row.currency.clone(),
            org_id: row.org_id.clone(),
            fund_id: row.fund_id.clone(),
            project_id: row.project_id.clone(),
            channel: row.channel.clone(),
            goods_item: row.goods_item.clone(),
            goods_quantity: row.goods_quantity,
            goods_unit: row.goods_unit.clone(),
            received_at: row.received_at.clone(),
            received_on: self.local_date(&row.received_at),
            matched_donation_id: row.matched_donation_id.clone(),
            campaign_unit_id: row.campaign_unit_id.clone(),
        })
    }
}

/// The holder a donation's money is born in.
pub(crate) fn holder_of(row: &DonationRow) -> (&'static str, String) {
    match (&row.project_id, &row.fund_id) {
        (Some(p), _) => ("project", p.clone()),
        (None, Some(f)) => ("fund", f.clone()),
        (None, None) => ("fund", String::new()),
    }
}

fn holder_zh(kind: &str) -> &'static str {
    if kind == "fund" {
        "基金"
    } else {
        "项目"
    }
}

/// A two-sided transfer: `from` gives `amount`, `to` receives it.
fn transfer(id: &str, from: &str, to: &str, amount: i64, at: &str) -> [LedgerEntryRow; 2] {
    [
        LedgerEntryRow {
            transfer_id: id.to_owned(),
            account: from.to_owned(),
            amount_fen: -amount,
            at: at.to_owned(),
        },
        LedgerEntryRow {
            transfer_id: id.to_owned(),
            account: to.to_owned(),
            amount_fen: amount,
            at: at.to_owned(),
        },
    ]
}

/// The stored result of an earlier request with this key, or `None` for a new request.
pub(crate) async fn replay<T: for<'de> Deserialize<'de>>(
    tx: &mut WriteTx,
    scope: &str,
    key: &IdempotencyKey,
    hash: &str,
) -> Result<Option<Outcome<T>>> {
    let Some(saved) = tx.idempotent_response(scope, key.as_str()).await? else {
        return Ok(None);
    };
    if saved.request_hash != hash {
        return Err(AppError {
            kind: ErrorKind::Invalid,
            code: "idempotency.key_reused".into(),
            message: "这个 Idempotency-Key 已用于另一笔内容不同的请求。重试同一笔操作请原样重发；新的操作请换一个新的 Key。".into(),
            field: Some("Idempotency-Key".into()),
            cause: None,
        });
    }
    let value = serde_json::from_str(&saved.response).map_err(AppError::internal)?;
    Ok(Some(Outcome {
        value,
        replayed: true,
    }))
}

pub(crate) async fn save_replay<T: Serialize>(
    tx: &mut WriteTx,
    scope: &str,
    key: &IdempotencyKey,
    hash: &str,
    status: i64,
    value: &T,
    now: Timestamp,
) -> Result<()> {
    let response = serde_json::to_string(value).map_err(AppError::internal)?;
    tx.save_idempotent_response(
        scope,
        key.as_str(),
        &IdempotentResponse {
            request_hash: hash.to_owned(),
            status,
            response,
        },
        &format_instant(now),
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    pub amount_fen: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundRecorded {
    pub refund_id: String,
    pub donation_id: String,
    pub amount_fen: i64,
    pub refunded_total_fen: i64,
    pub net_fen: i64,
    pub voided_receipt: Option<String>,
    pub new_receipt: Option<String>,
    pub match_returned_fen: i64,
}

impl App {
    /// Refunds part or all of a donation that has not been spent. Undoes every effect: totals,
    /// lots, receipt (voided, reissued for the remainder under a new number) and the match.
    pub async fn refund_donation(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        donation_id: &str,
        input: &RefundInput,
    ) -> Result<Outcome<RefundRecorded>> {
        actor.require_staff()?;
        positive_amount("amount_fen", input.amount_fen)?;
        let reason = text_field("reason", Some(&input.reason), "退款原因")?.ok_or_else(|| {
            AppError::invalid("reason", "refund.reason_missing", "请填写退款原因。")
        })?;
        let hash = request_hash(&(donation_id, input));
        let scope = format!("refund:{donation_id}");
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, &scope, key, &hash).await? {
            return Ok(done);
        }
        let refunded = self
            .refund_in(&mut tx, actor, donation_id, input.amount_fen, &reason, true)
            .await?;
        save_replay(
            &mut tx,
            &scope,
            key,
            &hash,
            201,
            &refunded,
            self.clock().now(),
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome {
            value: refunded,
            replayed: false,
        })
    }

    pub(crate) async fn refund_in(
        &self,
        tx: &mut WriteTx,
        actor: &Actor,
        donation_id: &str,
        amount: i64,
        reason: &str,
        with_match: bool,
    ) -> Result<RefundRecorded> {
        let row = tx
            .donation(donation_id)
            .await?
            .ok_or_else(|| AppError::not_found("donation"))?;
        if row.matched_donation_id.is_some() && with_match {
            return Err(AppError::conflict(
                "refund.match_direct",
                "配捐款随原捐赠一起退回，不能单独退款。请对原捐赠办理退款。",
            ));
        }
        let refundable = row.amount_fen - row.refunded_fen;
        if row.goods_item.is_some() && amount != refundable {
            // A receipt for the remainder would still list every item.
            return Err(AppError::conflict(
                "refund.goods_partial",
                format!(
                    "实物捐赠只能整笔退回（物品全部退还），退款金额须为可退金额 {}。",
                    Fen::new(refundable)
                ),
            ));
        }
        if !tx.add_refunded(donation_id, amount).await? {
            return Err(AppError::conflict(
                "refund.exceeds",
                format!(
                    "退款金额 {} 超过可退金额 {}（捐赠 {}，已退 {}）。",
                    Fen::new(amount),
                    Fen::new(refundable),
                    Fen::new(row.amount_fen),
                    Fen::new(row.refunded_fen)
                ),
            ));
        }
        // Home holder first, then the projects the money was allocated to, in holder order.
        let (home_kind, home_id) = holder_of(&row);
        let mut lots = tx.lots_of_donation(donation_id).await?;
        lots.sort_by_key(|l| !(l.holder_kind == home_kind && l.holder_id == home_id));
        let remaining: Vec<i64> = lots.iter().map(|l| l.remaining_fen).collect();
        let takes = take_fifo(&remaining, amount).map_err(|s| {
            AppError::conflict(
                "refund.already_spent",
                format!(
                    "这笔捐赠只有 {} 尚未拨付，已拨付给受助人的钱无法退回。可退金额以未拨付部分为限。",
                    Fen::new(s.available)
                ),
            )
        })?;
        let refund_id = new_id("rfd");
        let at = format_instant(self.clock().now());
        let org = row.org_id.clone().unwrap_or_default();
        let mut flows = Vec::new();
        let mut entries = Vec::new();
        for (lot, take) in lots.iter().zip(takes) {
            if take == 0 {
                continue;
            }
            if !tx
                .take_from_lot(donation_id, &lot.holder_kind, &lot.holder_id, take)
                .await?
            {
                return Err(AppError::internal(std::io::Error::other(
                    "lot changed under a locked transaction",
                )));
            }
            let holder = format!("{}:{}", lot.holder_kind, lot.holder_id);
            flows.push(FlowRow {
                donation_id: donation_id.to_owned(),
                kind: "refund".into(),
                ref_id: refund_id.clone(),
                from_id: lot.holder_id.clone(),
                to_id: "donor".into(),
                amount_fen: take,
                at: at.clone(),
            });
            entries.extend(transfer(
                &refund_id,
                &holder,
                &format!("refunded:{org}"),
                take,
                &at,
            ));
        }
        tx.insert_all(&flows).await?;
        tx.insert_all(&entries).await?;
        tx.insert(&RefundRow {
            id: refund_id.clone(),
            donation_id: donation_id.to_owned(),
            amount_fen: amount,
            reason: reason.to_owned(),
            refunded_at: at.clone(),
            recorded_by: actor.user_id.clone(),
        })
        .await?;
        // The receipt: void the one in force; reissue for what remains.
        let net = refundable - amount;
        let mut voided = None;
        let mut reissued = None;
        if let Some(current) = tx.issued_receipt_of(donation_id).await? {
            tx.void_receipt(&current.number, &at).await?;
            self.append_public_fact(
                tx,
                "receipt.voided",
                &current.number,
                &serde_json::json!({ "number": current.number, "refund_id": refund_id }),
            )
            .await?;
            voided = Some(current.number.clone());
            if net > 0 {
                let mut remaining_row = row.clone();
                remaining_row.refunded_fen += amount;
                let receipt = self
                    .issue_receipt(tx, &remaining_row, net, Some(current.number))
                    .await?;
                reissued = Some(receipt.number);
            }
        }
        self.append_public_fact(
            tx,
            "donation.refunded",
            &refund_id,
            &serde_json::json!({ "donation_id": donation_id, "amount_fen": amount }),
        )
        .await?;
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "donation.refunded".into(),
                subject: donation_id.to_owned(),
                payload: serde_json::json!({
                    "refund_id": refund_id, "amount_fen": amount,
                    "voided_receipt": voided, "new_receipt": reissued,
                }),
            },
        )
        .await?;
        let match_returned = if with_match {
            self.return_match(tx, actor, &row, row.amount_fen - row.refunded_fen - amount)
                .await?
        } else {
            0
        };
        Ok(RefundRecorded {
            refund_id,
            donation_id: donation_id.to_owned(),
            amount_fen: amount,
            refunded_total_fen: row.refunded_fen + amount,
            net_fen: net,
            voided_receipt: voided,
            new_receipt: reissued,
            match_returned_fen: match_returned,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllocationPart {
    pub project_id: String,
    /// A positive integer; the amount is split in proportion to the weights.
    pub weight: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationInput {
    pub fund_id: String,
    pub amount_fen: i64,
    pub parts: Vec<AllocationPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllocationRecorded {
    pub batch_id: String,
    #[schema(value_type = Vec<Object>)]
    pub allocations: Vec<AllocationRow>,
}

impl App {
    /// Moves money from a fund to one or more projects of the same organization, split by
    /// weights; the fund's oldest money goes first.
    pub async fn allocate(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &AllocationInput,
    ) -> Result<Outcome<AllocationRecorded>> {
        actor.require_staff()?;
        positive_amount("amount_fen", input.amount_fen)?;
        let weights: Vec<i64> = input.parts.iter().map(|p| p.weight).collect();
        let amounts = split_by_weights(input.amount_fen, &weights).map_err(|e| {
            AppError::invalid(
                "parts",
                "allocation.parts_invalid",
                format!("拨付对象有误（{e}）：至少选择一个项目，每个项目的权重是正整数。"),
            )
        })?;
        let hash = request_hash(input);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, "allocation", key, &hash).await? {
            return Ok(done);
        }
        let fund_org = tx
            .holder_org("fund", &input.fund_id)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "fund_id",
                    "allocation.fund_unknown",
                    format!("找不到编号为 `{}` 的基金。", input.fund_id),
                )
            })?;
        let batch_id = new_id("alb");
        let at = format_instant(self.clock().now());
        let mut rows = Vec::new();
        for (part, amount) in input.parts.iter().zip(amounts) {
            let (project_org, state) =
                tx.project_state(&part.project_id).await?.ok_or_else(|| {
                    AppError::invalid(
                        "parts",
                        "allocation.project_unknown",
                        format!("找不到编号为 `{}` 的项目。", part.project_id),
                    )
                })?;
            if project_org != fund_org {
                return Err(AppError::invalid(
                    "parts",
                    "allocation.other_org",
                    "基金只能拨付给同一机构的项目。",
                ));
            }
            if state == "closed" {
                return Err(AppError::conflict(
                    "allocation.project_closed",
                    format!("项目 `{}` 已结项，不能再拨入资金。", part.project_id),
                ));
            }
            if amount == 0 {
                continue;
            }
            let allocation = AllocationRow {
                id: new_id("alc"),
                batch_id: batch_id.clone(),
                fund_id: input.fund_id.clone(),
                project_id: part.project_id.clone(),
                amount_fen: amount,
                weight: part.weight,
                allocated_at: at.clone(),
                recorded_by: actor.user_id.clone(),
            };
            let lots = tx.open_lots("fund", &input.fund_id).await?;
            let remaining: Vec<i64> = lots.iter().map(|l| l.remaining_fen).collect();
            let takes = take_fifo(&remaining, amount)
                .map_err(|s| conflict_no_funds("基金", s.wanted, s.available))?;
            let mut flows = Vec::new();
            for (lot, take) in lots.iter().zip(takes) {
                if take == 0 {
                    continue;
                }
                tx.take_from_lot(&lot.donation_id, "fund", &input.fund_id, take)
                    .await?;
                tx.add_to_lot(&LotRow {
                    donation_id: lot.donation_id.clone(),
                    holder_kind: "project".into(),
                    holder_id: part.project_id.clone(),
                    order_key: lot.order_key.clone(),
                    remaining_fen: take,
                })
                .await?;
                flows.push(FlowRow {
                    donation_id: lot.donation_id.clone(),
                    kind: "allocation".into(),
                    ref_id: allocation.id.clone(),
                    from_id: input.fund_id.clone(),
                    to_id: part.project_id.clone(),
                    amount_fen: take,
                    at: at.clone(),
                });
            }
            tx.insert(&allocation).await?;
            tx.insert_all(&flows).await?;
            tx.insert_all(&transfer(
                &allocation.id,
                &format!("fund:{}", input.fund_id),
                &format!("project:{}", part.project_id),
                amount,
                &at,
            ))
            .await?;
            self.append_public_fact(
                &mut tx,
                "allocation.made",
                &allocation.id,
                &serde_json::json!({
                    "fund_id": allocation.fund_id, "project_id": allocation.project_id,
                    "amount_fen": amount, "on": self.local_date(&at),
                }),
            )
            .await?;
            rows.push(allocation);
        }
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "allocation.made".into(),
                subject: batch_id.clone(),
                payload: serde_json::json!({
                    "fund_id": input.fund_id, "amount_fen": input.amount_fen,
                    "parts": rows.iter().map(|r| (&r.project_id, r.amount_fen)).collect::<Vec<_>>(),
                }),
            },
        )
        .await?;
        let recorded = AllocationRecorded {
            batch_id,
            allocations: rows,
        };
        save_replay(
            &mut tx,
            "allocation",
            key,
            &hash,
            201,
            &recorded,
            self.clock().now(),
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome {
            value: recorded,
            replayed: false,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Disbursements and reversals
// ---------------------------------------------------------------------------------------------

/// A file proving a disbursement (an invoice, a signed list, a photo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceFile {
    pub file_name: String,
    pub content_type: String,
    /// The file's bytes, base64 in JSON.
    #[serde(with = "b64")]
    #[schema(value_type = String, format = Byte)]
    pub bytes: Vec<u8>,
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisbursementInput {
    pub project_id: String,
    pub amount_fen: i64,
    /// `household`, `participant` or `supplier`.
    pub recipient_kind: String,
    #[serde(default)]
    pub household_id: Option<String>,
    #[serde(default)]
    pub recipient_participant_id: Option<String>,
    #[serde(default)]
    pub supplier_name: Option<String>,
    /// `cash`, `goods` or `service` (the cost of a service).
    pub form: String,
    /// `charitable` (default) or `management` (a management cost, reported as such).
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub people_count: i64,
    #[serde(default)]
    pub evidence: Vec<EvidenceFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DisbursementRecorded {
    pub disbursement_id: String,
    pub amount_fen: i64,
    pub evidence_sha256: Vec<String>,
    /// How many donations the money came from.
    pub donations: usize,
}

/// The largest evidence file accepted.
pub const MAX_EVIDENCE_BYTES: usize = 8 * 1024 * 1024;

impl App {
    /// Pays money (or goods, or a service's cost) from a project to a recipient, consuming the
    /// project's oldest money first and linking each fen to its donation.
    pub async fn disburse(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        input: &DisbursementInput,
    ) -> Result<Outcome<DisbursementRecorded>> {
        actor.require_staff()?;
        positive_amount("amount_fen", input.amount_fen)?;
        let mut row = DisbursementRow {
            id: new_id("dsb"),
            project_id: input.project_id.clone(),
            amount_fen: input.amount_fen,
            people_count: input.people_count.max(0),
            form: input.form.clone(),
            purpose: input.purpose.clone().unwrap_or_else(|| "charitable".into()),
            description: text_field("description", Some(&input.description), "用途说明")?
                .unwrap_or_default(),
            state: "paid".into(),
            recipient_kind: input.recipient_kind.clone(),
            recorded_by: Some(actor.user_id.clone()),
            ..DisbursementRow::default()
        };
        match input.recipient_kind.as_str() {
            "household" => {
                row.household_id = Some(input.household_id.clone().ok_or_else(|| {
                    AppError::invalid("household_id", "disbursement.household_missing", "请选择受助家庭。")
                })?);
            }
            "participant" => {
                row.recipient_participant_id =
                    Some(input.recipient_participant_id.clone().ok_or_else(|| {
                        AppError::invalid(
                            "recipient_participant_id",
                            "disbursement.participant_missing",
                            "请选择受助人。",
                        )
                    })?);
            }
            "supplier" => {
                row.supplier_name = Some(
                    text_field("supplier_name", input.supplier_name.as_deref(), "供应商名称")?
                        .ok_or_else(|| {
                            AppError::invalid(
                                "supplier_name",
                                "disbursement.supplier_missing",
                                "请填写供应商名称。",
                            )
                        })?,
                );
            }
            other => {
                return Err(AppError::invalid(
                    "recipient_kind",
                    "disbursement.recipient_kind_invalid",
                    format!("收款方类型 `{other}` 不认识，可选 household（家庭）、participant（个人）、supplier（供应商）。"),
                ))
            }
        }
        if !["cash", "goods", "service"].contains(&row.form.as_str()) {
            return Err(AppError::invalid(
                "form",
                "disbursement.form_invalid",
                "拨付形式可选 cash（资金）、goods（物资）、service（服务费用）。",
            ));
        }
        if !["charitable", "management"].contains(&row.purpose.as_str()) {
            return Err(AppError::invalid(
                "purpose",
                "disbursement.purpose_invalid",
                "支出性质可选 charitable（慈善活动支出）或 management（管理费用）。",
            ));
        }
        let mut evidence = Vec::new();
        for file in &input.evidence {
            if file.bytes.is_empty() || file.bytes.len() > MAX_EVIDENCE_BYTES {
                return Err(AppError::invalid(
                    "evidence",
                    "disbursement.evidence_size",
                    format!("凭证文件 {} 为空或超过 8 MB。", file.file_name),
                ));
            }
            let name = text_field("evidence", Some(&file.file_name), "凭证文件名")?
                .unwrap_or_else(|| "evidence".into());
            evidence.push((name, file));
        }
        let hash = request_hash(input);
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, "disbursement", key, &hash).await? {
            return Ok(done);
        }
        let (project_org, _) = tx.project_state(&row.project_id).await?.ok_or_else(|| {
            AppError::invalid(
                "project_id",
                "disbursement.project_unknown",
                format!("找不到编号为 `{}` 的项目。", row.project_id),
            )
        })?;
        if let Some(h) = &row.household_id {
            if !tx.exists("households", h).await? {
                return Err(AppError::invalid(
                    "household_id",
                    "disbursement.household_unknown",
                    format!("找不到编号为 `{h}` 的受助家庭，请先在救助对象库中登记。"),
                ));
            }
        }
        if let Some(p) = &row.recipient_participant_id {
            if !tx.exists("participants", p).await? {
                return Err(AppError::invalid(
                    "recipient_participant_id",
                    "disbursement.participant_unknown",
                    format!("找不到编号为 `{p}` 的受助人。"),
                ));
            }
        }
        let now = self.clock().now();
        let at = format_instant(now);
        row.paid_at = at.clone();
        let lots = tx.open_lots("project", &row.project_id).await?;
        let remaining: Vec<i64> = lots.iter().map(|l| l.remaining_fen).collect();
        let takes = take_fifo(&remaining, row.amount_fen)
            .map_err(|s| conflict_no_funds("项目", s.wanted, s.available))?;
        tx.insert(&row).await?;
        let mut flows = Vec::new();
        for (lot, take) in lots.iter().zip(takes) {
            if take == 0 {
                continue;
            }
            tx.take_from_lot(&lot.donation_id, "project", &row.project_id, take)
                .await?;
            flows.push(FlowRow {
                donation_id: lot.donation_id.clone(),
                kind: "disbursement".into(),
                ref_id: row.id.clone(),
                from_id: row.project_id.clone(),
                to_id: row.id.clone(),
                amount_fen: take,
                at: at.clone(),
            });
        }
        tx.insert_all(&flows).await?;
        tx.insert_all(&transfer(
            &row.id,
            &format!("project:{}", row.project_id),
            &format!("paid:{project_org}"),
            row.amount_fen,
            &at,
        ))
        .await?;
        let mut hashes = Vec::new();
        let mut evidence_rows = Vec::new();
        for (name, file) in evidence {
            let sha = hex::encode(Sha256::digest(&file.bytes));
            self.store_evidence(&sha, &file.bytes)?;
            hashes.push(sha.clone());
            evidence_rows.push(EvidenceRow {
                id: new_id("evd"),
                disbursement_id: row.id.clone(),
                file_name: name,
                content_type: file.content_type.clone(),
                sha256: sha,
                size_bytes: i64::try_from(file.bytes.len()).unwrap_or(i64::MAX),
                uploaded_at: at.clone(),
            });
        }
        tx.insert_all(&evidence_rows).await?;
        self.append_public_fact(
            &mut tx,
            "disbursement.paid",
            &row.id,
            &serde_json::json!({
                "project_id": row.project_id, "amount_fen": row.amount_fen,
                "form": row.form, "purpose": row.purpose, "on": self.local_date(&at),
                "recipient": recipient_public(&row), "evidence_sha256": hashes,
            }),
        )
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "disbursement.paid".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "project_id": row.project_id, "amount_fen": row.amount_fen,
                    "recipient_kind": row.recipient_kind, "purpose": row.purpose,
                    "donations": flows.len(), "evidence_sha256": hashes,
                }),
            },
        )
        .await?;
        let recorded = DisbursementRecorded {
            disbursement_id: row.id.clone(),
            amount_fen: row.amount_fen,
            evidence_sha256: hashes,
            donations: flows.len(),
        };
        save_replay(&mut tx, "disbursement", key, &hash, 201, &recorded, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value: recorded,
            replayed: false,
        })
    }

    /// Writes an evidence file under the data directory, named by its SHA-256 (so a retry or a
    /// second use of the same file stores it once).
    fn store_evidence(&self, sha: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.data_dir().join("evidence");
        std::fs::create_dir_all(&dir).map_err(AppError::internal)?;
        let path = dir.join(sha);
        if !path.exists() {
            let tmp = dir.join(format!("{sha}.tmp"));
            std::fs::write(&tmp, bytes).map_err(AppError::internal)?;
            std::fs::rename(&tmp, &path).map_err(AppError::internal)?;
        }
        Ok(())
    }

    /// Reverses a paid disbursement: every fen goes back to the lot it came from.
    pub async fn reverse_disbursement(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        disbursement_id: &str,
        reason: &str,
    ) -> Result<Outcome<DisbursementRecorded>> {
        actor.require_staff()?;
        let reason = text_field("reason", Some(reason), "冲正原因")?.ok_or_else(|| {
            AppError::invalid("reason", "reversal.reason_missing", "请填写冲正原因。")
        })?;
        let hash = request_hash(&(disbursement_id, &reason));
        let scope = format!("reversal:{disbursement_id}");
        let mut tx = self.store().begin().await?;
        tx.lock_writes().await?;
        if let Some(done) = replay(&mut tx, &scope, key, &hash).await? {
            return Ok(done);
        }
        let row = tx
            .disbursement(disbursement_id)
            .await?
            .ok_or_else(|| AppError::not_found("disbursement"))?;
        let now = self.clock().now();
        let at = format_instant(now);
        if !tx
            .mark_disbursement_reversed(disbursement_id, &at, &reason)
            .await?
        {
            return Err(AppError::conflict(
                "reversal.not_paid",
                "这笔拨付已经冲正过，不能重复冲正。",
            ));
        }
        let flows = tx.flows_of_ref(disbursement_id).await?;
        let mut back = Vec::new();
        for flow in flows.iter().filter(|f| f.kind == "disbursement") {
            let donation = tx
                .donation(&flow.donation_id)
                .await?
                .ok_or_else(|| AppError::not_found("donation"))?;
            tx.add_to_lot(&LotRow {
                donation_id: flow.donation_id.clone(),
                holder_kind: "project".into(),
                holder_id: row.project_id.clone(),
                order_key: order_key(&donation.received_at, &donation.id),
                remaining_fen: flow.amount_fen,
            })
            .await?;
            back.push(FlowRow {
                kind: "disbursement_reversed".into(),
                from_id: disbursement_id.to_owned(),
                to_id: row.project_id.clone(),
                at: at.clone(),
                ..flow.clone()
            });
        }
        tx.insert_all(&back).await?;
        let org = tx
            .holder_org("project", &row.project_id)
            .await?
            .unwrap_or_default();
        tx.insert_all(&transfer(
            &format!("{disbursement_id}:reversal"),
            &format!("paid:{org}"),
            &format!("project:{}", row.project_id),
            row.amount_fen,
            &at,
        ))
        .await?;
        self.append_public_fact(
            &mut tx,
            "disbursement.reversed",
            disbursement_id,
            &serde_json::json!({ "disbursement_id": disbursement_id, "amount_fen": row.amount_fen, "on": self.local_date(&at) }),
        )
        .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "disbursement.reversed".into(),
                subject: disbursement_id.to_owned(),
                payload: serde_json::json!({ "amount_fen": row.amount_fen, "reason": reason }),
            },
        )
        .await?;
        let recorded = DisbursementRecorded {
            disbursement_id: disbursement_id.to_owned(),
            amount_fen: row.amount_fen,
            evidence_sha256: Vec::new(),
            donations: back.len(),
        };
        save_replay(&mut tx, &scope, key, &hash, 200, &recorded, now).await?;
        tx.commit().await?;
        Ok(Outcome {
            value: recorded,
            replayed: false,
        })
    }
}

/// How a recipient appears in public: households by id only, people masked, suppliers by name.
pub(crate) fn recipient_public(row: &DisbursementRow) -> String {
    match row.recipient_kind.as_str() {
        "supplier" => row.supplier_name.clone().unwrap_or_default(),
        "participant" => "受助个人".to_owned(),
        _ => format!("受助家庭（{} 人）", row.people_count.max(1)),
    }
}

// ---------------------------------------------------------------------------------------------
// Trace (一扫清)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TraceAllocation {
    pub allocation_id: String,
    pub fund_id: String,
    pub project_id: String,
    pub amount_fen: i64,
    pub on: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TraceDisbursement {
    pub disbursement_id: String,
    pub project_id: String,
    pub project_name: String,
    /// Of this donation's money (net of any reversal).
    pub amount_fen: i64,
    pub disbursement_total_fen: i64,
    pub recipient: String,
    pub form: String,
    pub purpose: String,
    pub on: String,
    pub state: String,
    pub evidence_sha256: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TraceRemainder {
    pub holder_kind: String,
    pub holder_id: String,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Trace {
    pub donation: DonationView,
    pub receipts: Vec<ReceiptFact>,
    pub allocations: Vec<TraceAllocation>,
    pub disbursements: Vec<TraceDisbursement>,
    pub remaining: Vec<TraceRemainder>,
    pub refunded_fen: i64,
    pub disbursed_fen: i64,
    pub remaining_fen: i64,
}

impl App {
    /// Where every fen of a donation went. Public: the donor is masked or 匿名, recipients are
    /// described without personal data.
    pub async fn trace(&self, donation_id: &str) -> Result<Trace> {
        let row = self
            .store()
            .donation(donation_id)
            .await?
            .ok_or_else(|| AppError::not_found("donation"))?;
        let flows = self.store().flows_of_donation(donation_id).await?;
        let mut allocations = Vec::new();
        let mut by_disbursement: BTreeMap<String, i64> = BTreeMap::new();
        for f in &flows {
            match f.kind.as_str() {
                "allocation" => allocations.push(TraceAllocation {
                    allocation_id: f.ref_id.clone(),
                    fund_id: f.from_id.clone(),
                    project_id: f.to_id.clone(),
                    amount_fen: f.amount_fen,
                    on: self.local_date(&f.at),
                }),
                "disbursement" => {
                    *by_disbursement.entry(f.ref_id.clone()).or_default() += f.amount_fen
                }
                "disbursement_reversed" => {
                    *by_disbursement.entry(f.ref_id.clone()).or_default() -= f.amount_fen
                }
                _ => {}
            }
        }
        let ids: Vec<String> = by_disbursement.keys().cloned().collect();
        let mut disbursements = Vec::new();
        for d in self.store().traced_disbursements(&ids).await? {
            disbursements.push(TraceDisbursement {
                amount_fen: by_disbursement.get(&d.row.id).copied().unwrap_or(0),
                disbursement_id: d.row.id.clone(),
                project_id: d.row.project_id.clone(),
                project_name: d.project_name,
                disbursement_total_fen: d.row.amount_fen,
                recipient: recipient_public(&d.row),
                form: d.row.form.clone(),
                purpose: d.row.purpose.clone(),
                on: self.local_date(&d.row.paid_at),
                state: d.row.state.clone(),
                evidence_sha256: d.evidence.iter().map(|e| e.sha256.clone()).collect(),
            });
        }
        disbursements.sort_by(|a, b| {
            a.on.cmp(&b.on)
                .then(a.disbursement_id.cmp(&b.disbursement_id))
        });
        let remaining: Vec<TraceRemainder> = self
            .store()
            .lots_of_donation(donation_id)
            .await?
            .into_iter()
            .filter(|l| l.remaining_fen > 0)
            .map(|l| TraceRemainder {
                holder_kind: l.holder_kind,
                holder_id: l.holder_id,
                amount_fen: l.remaining_fen,
            })
            .collect();
        let mut receipts = Vec::new();
        if let Some(org) = &row.org_id {
            let (issuer, code) = self.org_name_and_code(org).await?;
            for r in self.store().receipts_of_donation(donation_id).await? {
                receipts.push(self.receipt_fact(&r, row.anonymous, &issuer, &code));
            }
        }
        let disbursed_fen = disbursements.iter().map(|d| d.amount_fen).sum();
        let remaining_fen = remaining.iter().map(|r| r.amount_fen).sum();
        Ok(Trace {
            donation: self.donation_view(&row).await?,
            receipts,
            allocations,
            disbursements,
            remaining,
            refunded_fen: row.refunded_fen,
            disbursed_fen,
            remaining_fen,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Receipt documents
// ---------------------------------------------------------------------------------------------

impl App {
    /// A receipt with what an offline verifier needs: its public fields exactly as logged, the
    /// leaf text and index, a signed tree head covering it and the inclusion proof. See
    /// docs/ledger.md ("Receipt document").
    pub async fn receipt_document(&self, number: &str) -> Result<serde_json::Value> {
        let receipt = self
            .store()
            .receipt(number)
            .await?
            .ok_or_else(|| AppError::not_found("receipt"))?;
        let leaf = self
            .store()
            .log_leaf_by_subject("receipt.issued", number)
            .await?
            .ok_or_else(|| AppError::not_found("receipt"))?;
        let logged: serde_json::Value =
            serde_json::from_str(&leaf.leaf).map_err(AppError::internal)?;
        let head = self.signed_head().await?;
        let proof = self
            .inclusion_proof(leaf.leaf_index, Some(head.tree_size))
            .await?
            .proof;
        Ok(serde_json::json!({
            "receipt": logged["receipt"],
            "status": receipt.state,
            "voided_at": receipt.voided_at,
            "leaf_index": leaf.leaf_index,
            "leaf": leaf.leaf,
            "tree_head": head,
            "inclusion_proof": proof,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Reads for pages
// ---------------------------------------------------------------------------------------------

impl App {
    /// A stored receipt (full payer name: callers show [`App::receipt_fact`]'s masked form).
    pub async fn receipt_row(&self, number: &str) -> Result<Option<ReceiptRow>> {
        Ok(self.store().receipt(number).await?)
    }

    /// Every receipt of a donation, voided ones included, oldest first.
    pub async fn receipts_of_donation(&self, donation_id: &str) -> Result<Vec<ReceiptRow>> {
        Ok(self.store().receipts_of_donation(donation_id).await?)
    }

    /// The transparency-log leaf that records a receipt's issue.
    pub async fn receipt_leaf_index(&self, number: &str) -> Result<Option<u64>> {
        Ok(self
            .store()
            .log_leaf_by_subject("receipt.issued", number)
            .await?
            .map(|leaf| leaf.leaf_index))
    }

    /// One disbursement with its project's name and evidence.
    pub async fn disbursement_detail(
        &self,
        id: &str,
    ) -> Result<Option<cishan_store::TracedDisbursement>> {
        Ok(self
            .store()
            .traced_disbursements(&[id.to_owned()])
            .await?
            .into_iter()
            .next())
    }

    /// Every matching pool, oldest first.
    pub async fn match_pools(&self) -> Result<Vec<cishan_store::MatchPoolRow>> {
        Ok(self.store().match_pools().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::parse("3f2c-01").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("有中文").is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
        let a = IdempotencyKey::for_account("usr_a", "1").unwrap();
        let b = IdempotencyKey::for_account("usr_b", "1").unwrap();
        assert_ne!(a, b);
        assert!(IdempotencyKey::for_account("usr_a", "a b").is_err());
    }

    #[test]
    fn transfers_balance() {
        let t = transfer("x", "a", "b", 500, "t");
        assert_eq!(t[0].amount_fen + t[1].amount_fen, 0);
    }
}
