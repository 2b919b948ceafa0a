//! Public exports of an organization, a fund or a project (CSV for Excel, JSON for programs),
//! and each donor's yearly receipt summary for tax deduction.
//!
//! What the totals mean, per scope (all time, whatever page or window the lists show):
//! - `gross`, `refunded`, `net`: donations made to the scope (an organization: to any of its
//!   funds and projects; a fund: to the fund; a project: restricted donations to it).
//! - `allocated`: an organization, between its funds and projects; a fund, out of it; a project,
//!   into it.
//! - `disbursed_charitable`/`disbursed_management`: paid out, net of reversals. For an
//!   organization or a project, what its projects paid; for a fund, what was paid with money
//!   donated to the fund, wherever it had been allocated.
//! - `remaining`: an organization or a fund, its donations' money not yet paid out or refunded
//!   (so `net = disbursed + remaining`); a project, the money it holds now.
//!
//! Donors appear as the public sees them (as on the trace pages): `匿名` when anonymous, persons
//! masked (`王*测`), organizations by name, a walk-in donor who left no name `未留名`. The real name of an anonymous donor is never read into an export.
//! CSV cells that a spreadsheet would run as a formula are neutralised with a leading `'`.

use std::collections::BTreeMap;

use cishan_core::{mask_name, ANONYMOUS_ZH};
use cishan_store::{format_instant, ExportScope, ExportWindow};
use serde::{Deserialize, Serialize};

use crate::donations::{recipient_public, CHANNELS, UNNAMED_ZH};
use crate::{Actor, App, AppError, Result};

/// The most rows of each list one export page carries.
pub const MAX_EXPORT_ROWS: i64 = 5000;
/// The most receipts one tax summary lists (far above any real donor's year).
pub const MAX_TAX_RECEIPTS: i64 = 10_000;
/// The UTF-8 byte order mark: without it Excel reads a CSV file as the local ANSI code page and
/// shows Chinese as mojibake.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What an export covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    Organization,
    Fund,
    Project,
}

impl ExportKind {
    fn scope(self) -> ExportScope {
        match self {
            ExportKind::Organization => ExportScope::Organization,
            ExportKind::Fund => ExportScope::Fund,
            ExportKind::Project => ExportScope::Project,
        }
    }

    fn zh(self) -> &'static str {
        match self {
            ExportKind::Organization => "机构",
            ExportKind::Fund => "基金",
            ExportKind::Project => "项目",
        }
    }
}

/// Which page and window of the lists to export. Totals ignore both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportQuery {
    /// From 1.
    pub page: Option<i64>,
    /// 1 to [`MAX_EXPORT_ROWS`] (the default).
    pub per_page: Option<i64>,
    /// Local dates `YYYY-MM-DD`, both inclusive.
    pub from: Option<String>,
    pub until: Option<String>,
}

/// The totals of a scope (see the module documentation for their meaning per scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportTotals {
    pub donations: i64,
    pub gross_fen: i64,
    pub refunded_fen: i64,
    pub net_fen: i64,
    pub allocated_fen: i64,
    pub disbursed_charitable_fen: i64,
    pub disbursed_management_fen: i64,
    pub disbursed_fen: i64,
    pub remaining_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedDonation {
    pub donation_id: String,
    /// Local date the money arrived.
    pub received_on: String,
    /// `匿名`, a masked person, or an organization's name.
    pub donor: String,
    /// `money` or `goods`.
    pub kind: String,
    pub goods_item: Option<String>,
    pub goods_quantity: Option<i64>,
    pub goods_unit: Option<String>,
    /// `fund` or `project`.
    pub to_kind: String,
    pub to_id: String,
    pub to_name: String,
    pub channel: String,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub net_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedAllocation {
    pub allocation_id: String,
    pub allocated_on: String,
    pub fund_id: String,
    pub fund_name: String,
    pub project_id: String,
    pub project_name: String,
    pub amount_fen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedDisbursement {
    pub disbursement_id: String,
    pub paid_on: String,
    pub project_id: String,
    pub project_name: String,
    /// Described without personal data: suppliers by name, households by size.
    pub recipient: String,
    /// `cash`, `goods` or `service`.
    pub form: String,
    /// `charitable` or `management`.
    pub purpose: String,
    pub people_count: i64,
    /// The whole disbursement.
    pub amount_fen: i64,
    /// The part paid with this scope's money, net of a reversal.
    pub scope_fen: i64,
    /// `paid` or `reversed`.
    pub state: String,
}

/// An export: who it is about, the totals, and one page of each list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Export {
    pub scope: ExportKind,
    pub id: String,
    pub name: String,
    pub org_id: String,
    pub org_name: String,
    /// RFC 3339 instant.
    pub generated_at: String,
    pub from: Option<String>,
    pub until: Option<String>,
    pub page: i64,
    pub per_page: i64,
    /// The next page's number when any list has more rows, else `null`.
    pub next_page: Option<i64>,
    pub totals: ExportTotals,
    pub donations: Vec<ExportedDonation>,
    pub allocations: Vec<ExportedAllocation>,
    pub disbursements: Vec<ExportedDisbursement>,
}

/// A receipt in a donor's tax summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaxReceipt {
    pub number: String,
    pub issuer: String,
    pub issuer_credit_code: String,
    /// Local date of issue.
    pub issued_on: String,
    pub donation_id: String,
    /// The payer as the receipt names them (the donor's own name: this is their document).
    pub payer: String,
    pub item: String,
    pub quantity: i64,
    pub amount_fen: i64,
    pub check_code: String,
    /// The voided receipt this one replaced after a partial refund.
    pub replaces: Option<String>,
    /// The donation was given anonymously: public views name the payer `匿名`.
    pub anonymous: bool,
}

/// A donor's receipts in force issued in one calendar year of the region's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaxSummary {
    pub participant_id: String,
    pub donor_name: String,
    pub year: i16,
    pub timezone: String,
    pub receipts: Vec<TaxReceipt>,
    pub receipt_count: i64,
    pub total_fen: i64,
}

/// Integer fen as yuan text without grouping or symbol: `123456` → `1234.56`, `-5` → `-0.05`.
pub fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let magnitude = fen.unsigned_abs();
    format!("{sign}{}.{:02}", magnitude / 100, magnitude % 100)
}

/// A cell a spreadsheet would read as a formula (or as a control sequence) gets a leading `'`,
/// which Excel and LibreOffice show as text.
pub fn neutralise_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn channel_zh(channel: &str) -> String {
    match channel {
        "match" => "配捐".to_owned(),
        other => CHANNELS
            .iter()
            .find(|(c, _)| *c == other)
            .map_or_else(|| other.to_owned(), |(_, zh)| (*zh).to_owned()),
    }
}

fn purpose_zh(purpose: &str) -> &str {
    match purpose {
        "charitable" => "慈善活动支出",
        "management" => "管理费用",
        other => other,
    }
}

fn form_zh(form: &str) -> &str {
    match form {
        "cash" => "资金",
        "goods" => "物资",
        "service" => "服务",
        other => other,
    }
}

fn state_zh(state: &str) -> &str {
    match state {
        "paid" => "已支付",
        "reversed" => "已冲正",
        other => other,
    }
}

/// Every donation received, refunds included: what `捐赠总额` means wherever it is shown.
pub const GROSS_ZH: &str = "捐赠总额（含已退款）";
/// Donations less refunds: the figure the disclosure pages show (`净捐赠`).
pub const NET_ZH: &str = "净捐赠";

/// The public name of a donor. An anonymous donation is `匿名` before any name is looked at.
fn public_donor(
    anonymous: bool,
    display_name: Option<&str>,
    kind: Option<&str>,
    walk_in_name: Option<&str>,
) -> String {
    if anonymous {
        return ANONYMOUS_ZH.to_owned();
    }
    match (display_name, kind) {
        (Some(name), Some("organization")) => name.to_owned(),
        (Some(name), _) => mask_name(name),
        (None, _) => match walk_in_name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => mask_name(name),
            None => UNNAMED_ZH.to_owned(),
        },
    }
}

fn date_param(field: &str, text: &str) -> Result<jiff::civil::Date> {
    let t = text.trim();
    let shaped = t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-';
    match t.parse::<jiff::civil::Date>() {
        Ok(d) if shaped => Ok(d),
        _ => Err(AppError::invalid(
            field,
            "export.date_invalid",
            format!("日期“{t}”无效，请按 YYYY-MM-DD 填写，例如 2026-01-31。"),
        )),
    }
}

impl Export {
    /// The export as a CSV file for Chinese Excel: UTF-8 with a byte order mark, CRLF line
    /// ends, amounts as yuan text, formula-like cells neutralised. Sections (summary, totals,
    /// donations, allocations, disbursements) follow each other, separated by an empty row.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(csv::Terminator::CRLF)
            .from_writer(UTF8_BOM.to_vec());
        let mut row = |cells: &[String]| -> Result<()> {
            w.write_record(cells.iter().map(|c| neutralise_cell(c)))
                .map_err(AppError::internal)
        };
        let t = &self.totals;
        let s = |x: &str| x.to_owned();
        row(&[s("导出范围"), s(self.scope.zh())])?;
        row(&[s("编号"), self.id.clone()])?;
        row(&[s("名称"), self.name.clone()])?;
        row(&[s("所属机构"), self.org_name.clone()])?;
        row(&[s("生成时间"), self.generated_at.clone()])?;
        row(&[
            s("明细范围"),
            format!(
                "{} 至 {}",
                self.from.as_deref().unwrap_or("最早"),
                self.until.as_deref().unwrap_or("最新")
            ),
            format!("第 {} 页", self.page),
            format!("每页 {} 条", self.per_page),
        ])?;
        row(&[s("")])?;
        row(&[
            s("合计（全部记录，不受分页和日期范围影响）"),
            s("金额（元）"),
        ])?;
        row(&[s("捐赠笔数"), t.donations.to_string()])?;
        for (label, fen) in [
            (GROSS_ZH, t.gross_fen),
            ("已退款", t.refunded_fen),
            (NET_ZH, t.net_fen),
            ("已拨付到项目", t.allocated_fen),
            ("慈善活动支出", t.disbursed_charitable_fen),
            ("管理费用", t.disbursed_management_fen),
            ("支出合计", t.disbursed_fen),
            ("结余", t.remaining_fen),
        ] {
            row(&[s(label), yuan_text(fen)])?;
        }
        row(&[s("")])?;
        row(&[s("捐赠明细")])?;
        row(&[
            "到账日期",
            "捐赠编号",
            "捐赠人",
            "类型",
            "物品",
            "数量",
            "单位",
            "捐入",
            "渠道",
            "金额（元）",
            "已退款（元）",
            "净额（元）",
        ]
        .map(s))?;
        for d in &self.donations {
            row(&[
                d.received_on.clone(),
                d.donation_id.clone(),
                d.donor.clone(),
                s(if d.kind == "goods" {
                    "物资"
                } else {
                    "资金"
                }),
                d.goods_item.clone().unwrap_or_default(),
                d.goods_quantity.map(|q| q.to_string()).unwrap_or_default(),
                d.goods_unit.clone().unwrap_or_default(),
                d.to_name.clone(),
                channel_zh(&d.channel),
                yuan_text(d.amount_fen),
                yuan_text(d.refunded_fen),
                yuan_text(d.net_fen),
            ])?;
        }
        row(&[s("")])?;
        row(&[s("拨付明细（基金拨付到项目）")])?;
        row(&["日期", "拨付编号", "基金", "项目", "金额（元）"].map(s))?;
        for a in &self.allocations {
            row(&[
                a.allocated_on.clone(),
                a.allocation_id.clone(),
                a.fund_name.clone(),
                a.project_name.clone(),
                yuan_text(a.amount_fen),
            ])?;
        }
        row(&[s("")])?;
        row(&[s("支出明细")])?;
        row(&[
            "日期",
            "支出编号",
            "项目",
            "收款方",
            "形式",
            "性质",
            "受益人次",
            "支出金额（元）",
            "其中本范围资金（元）",
            "状态",
        ]
        .map(s))?;
        for b in &self.disbursements {
            row(&[
                b.paid_on.clone(),
                b.disbursement_id.clone(),
                b.project_name.clone(),
                b.recipient.clone(),
                s(form_zh(&b.form)),
                s(purpose_zh(&b.purpose)),
                b.people_count.to_string(),
                yuan_text(b.amount_fen),
                yuan_text(b.scope_fen),
                s(state_zh(&b.state)),
            ])?;
        }
        w.into_inner()
            .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))
    }
}

impl App {
    /// The instant a local date starts, in the region's time zone, as stored text.
    fn start_of_local_day(&self, date: jiff::civil::Date) -> Result<String> {
        let tz = jiff::tz::TimeZone::get(&self.pack().timezone).map_err(AppError::internal)?;
        let at = date.to_zoned(tz).map_err(AppError::internal)?.timestamp();
        Ok(format_instant(at))
    }

    /// An export of an organization, a fund or a project. Public: donors are masked.
    pub async fn export(&self, kind: ExportKind, id: &str, query: &ExportQuery) -> Result<Export> {
        let per_page = query.per_page.unwrap_or(MAX_EXPORT_ROWS);
        if !(1..=MAX_EXPORT_ROWS).contains(&per_page) {
            return Err(AppError::invalid(
                "per_page",
                "page.size_invalid",
                format!("每页条数应在 1 到 {MAX_EXPORT_ROWS} 之间。"),
            ));
        }
        let page = query.page.unwrap_or(1);
        if page < 1 {
            return Err(AppError::invalid(
                "page",
                "page.number_invalid",
                "页码从 1 开始。",
            ));
        }
        let offset = (page - 1)
            .checked_mul(per_page)
            .ok_or_else(|| AppError::invalid("page", "page.number_invalid", "页码太大。"))?;
        let from = query
            .from
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| date_param("from", t))
            .transpose()?;
        let until = query
            .until
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| date_param("until", t))
            .transpose()?;
        if let (Some(f), Some(u)) = (from, until) {
            if u < f {
                return Err(AppError::invalid(
                    "until",
                    "export.window_invalid",
                    format!("结束日期 {u} 早于开始日期 {f}。"),
                ));
            }
        }
        let window = ExportWindow {
            from: match from {
                Some(d) => self.start_of_local_day(d)?,
                None => String::new(),
            },
            until: match until {
                Some(d) => self.start_of_local_day(d.tomorrow().map_err(AppError::internal)?)?,
                // Later than any stored instant (fixed-width `YYYY-…` text).
                None => "9999-12-31T23:59:59.999999Z".to_owned(),
            },
            offset,
            // One more row than asked tells whether a next page exists.
            limit: per_page + 1,
        };
        let (name, org_id, org_name) = self.export_subject(kind, id).await?;
        let scope = kind.scope();
        let store = self.store();
        let totals = store.export_totals(scope, id).await?;
        let mut donations = store.export_donations(scope, id, &window).await?;
        let mut allocations = store.export_allocations(scope, id, &window).await?;
        let mut disbursements = store.export_disbursements(scope, id, &window).await?;
        let size = usize::try_from(per_page).unwrap_or(usize::MAX);
        let more = donations.len() > size || allocations.len() > size || disbursements.len() > size;
        donations.truncate(size);
        allocations.truncate(size);
        disbursements.truncate(size);
        let disbursed = totals.disbursed_charitable_fen + totals.disbursed_management_fen;
        Ok(Export {
            scope: kind,
            id: id.to_owned(),
            name,
            org_id,
            org_name,
            generated_at: format_instant(self.clock().now()),
            from: from.map(|d| d.to_string()),
            until: until.map(|d| d.to_string()),
            page,
            per_page,
            next_page: more.then_some(page + 1),
            totals: ExportTotals {
                donations: totals.donations,
                gross_fen: totals.gross_fen,
                refunded_fen: totals.refunded_fen,
                net_fen: totals.gross_fen - totals.refunded_fen,
                allocated_fen: totals.allocated_fen,
                disbursed_charitable_fen: totals.disbursed_charitable_fen,
                disbursed_management_fen: totals.disbursed_management_fen,
                disbursed_fen: disbursed,
                remaining_fen: totals.remaining_fen,
            },
            donations: donations
                .into_iter()
                .map(|d| {
                    let (to_kind, to_id) = crate::donations::holder_of(&d.row);
                    ExportedDonation {
                        donor: public_donor(
                            d.row.anonymous,
                            d.donor_display_name.as_deref(),
                            d.donor_kind.as_deref(),
                            d.row.donor_name.as_deref(),
                        ),
                        donation_id: d.row.id.clone(),
                        received_on: self.local_date(&d.row.received_at),
                        kind: d.row.kind.clone(),
                        goods_item: d.row.goods_item.clone(),
                        goods_quantity: d.row.goods_quantity,
                        goods_unit: d.row.goods_unit.clone(),
                        to_kind: to_kind.to_owned(),
                        to_id,
                        to_name: d.holder_name,
                        channel: d.row.channel.clone(),
                        amount_fen: d.row.amount_fen,
                        refunded_fen: d.row.refunded_fen,
                        net_fen: d.row.amount_fen - d.row.refunded_fen,
                    }
                })
                .collect(),
            allocations: allocations
                .into_iter()
                .map(|a| ExportedAllocation {
                    allocated_on: self.local_date(&a.row.allocated_at),
                    allocation_id: a.row.id,
                    fund_id: a.row.fund_id,
                    fund_name: a.fund_name,
                    project_id: a.row.project_id,
                    project_name: a.project_name,
                    amount_fen: a.row.amount_fen,
                })
                .collect(),
            disbursements: disbursements
                .into_iter()
                .map(|b| ExportedDisbursement {
                    paid_on: self.local_date(&b.row.paid_at),
                    recipient: recipient_public(&b.row),
                    disbursement_id: b.row.id,
                    project_id: b.row.project_id,
                    project_name: b.project_name,
                    form: b.row.form,
                    purpose: b.row.purpose,
                    people_count: b.row.people_count,
                    amount_fen: b.row.amount_fen,
                    scope_fen: b.scope_fen,
                    state: b.row.state,
                })
                .collect(),
        })
    }

    /// The name of the export's subject, and of its organization.
    async fn export_subject(&self, kind: ExportKind, id: &str) -> Result<(String, String, String)> {
        match kind {
            ExportKind::Organization => {
                let org = self
                    .store()
                    .organization(id)
                    .await?
                    .ok_or_else(|| AppError::not_found("organization"))?;
                Ok((org.name.clone(), org.id, org.name))
            }
            ExportKind::Fund => {
                let fund = self
                    .store()
                    .fund(id)
                    .await?
                    .ok_or_else(|| AppError::not_found("fund"))?;
                let (org_name, _) = self.org_name_and_code(&fund.org_id).await?;
                Ok((fund.name, fund.org_id, org_name))
            }
            ExportKind::Project => {
                let project = self
                    .store()
                    .project(id)
                    .await?
                    .ok_or_else(|| AppError::not_found("project"))?;
                Ok((project.name, project.org_id, project.org_name))
            }
        }
    }

    /// A donor's receipts in force issued in one calendar year of the region's time zone
    /// (voided receipts left out; a receipt reissued after a partial refund counts in the year
    /// it was reissued), with their total. Staff and administrators: it names the donor.
    pub async fn donor_tax_summary(
        &self,
        actor: &Actor,
        participant_id: &str,
        year: i16,
    ) -> Result<TaxSummary> {
        crate::campaigns::require_staff(actor)?;
        if !(1900..=9998).contains(&year) {
            return Err(AppError::invalid(
                "year",
                "request.year_invalid",
                format!("年份 {year} 无效，请填写四位数字年份，例如 2026。"),
            ));
        }
        let (donor_name, _) = self
            .store()
            .participant_name(participant_id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let first_day = |y: i16| {
            jiff::civil::Date::new(y, 1, 1)
                .map_err(AppError::internal)
                .and_then(|d| self.start_of_local_day(d))
        };
        let (from, until) = (first_day(year)?, first_day(year + 1)?);
        let rows = self
            .store()
            .donor_receipts_issued(participant_id, &from, &until, MAX_TAX_RECEIPTS + 1)
            .await?;
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) > MAX_TAX_RECEIPTS {
            return Err(AppError::conflict(
                "tax_summary.too_many",
                format!("该捐赠人当年的票据超过 {MAX_TAX_RECEIPTS} 张，请联系平台管理员分批导出。"),
            ));
        }
        let mut issuers: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut receipts = Vec::with_capacity(rows.len());
        for (r, anonymous) in rows {
            if !issuers.contains_key(&r.org_id) {
                let issuer = self.org_name_and_code(&r.org_id).await?;
                issuers.insert(r.org_id.clone(), issuer);
            }
            let (issuer, code) = issuers.get(&r.org_id).cloned().unwrap_or_default();
            receipts.push(TaxReceipt {
                issued_on: self.local_date(&r.issued_at),
                number: r.number,
                issuer,
                issuer_credit_code: code,
                donation_id: r.donation_id,
                payer: r.payer_name,
                item: r.item,
                quantity: r.quantity,
                amount_fen: r.amount_fen,
                check_code: r.check_code,
                replaces: r.replaces_number,
                anonymous,
            });
        }
        Ok(TaxSummary {
            participant_id: participant_id.to_owned(),
            donor_name,
            year,
            timezone: self.pack().timezone.clone(),
            receipt_count: i64::try_from(receipts.len()).unwrap_or(i64::MAX),
            total_fen: receipts.iter().map(|r| r.amount_fen).sum(),
            receipts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_text_is_exact() {
        assert_eq!(yuan_text(123_456), "1234.56");
        assert_eq!(yuan_text(5), "0.05");
        assert_eq!(yuan_text(0), "0.00");
        assert_eq!(yuan_text(-105), "-1.05");
        assert_eq!(yuan_text(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise_cell(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise_cell("王*测"), "王*测");
        assert_eq!(neutralise_cell("12.00"), "12.00");
        assert_eq!(neutralise_cell(""), "");
    }

    #[test]
    fn donors_are_shown_as_the_public_sees_them() {
        assert_eq!(
            public_donor(true, Some("王小测"), Some("person"), None),
            "匿名"
        );
        assert_eq!(
            public_donor(false, Some("王小测"), Some("person"), None),
            "王*测"
        );
        assert_eq!(
            public_donor(false, Some("某某银行"), Some("organization"), None),
            "某某银行"
        );
        assert_eq!(public_donor(false, None, None, Some("李四")), "李*");
        assert_eq!(public_donor(false, None, None, None), "未留名");
        assert_eq!(public_donor(true, None, None, None), "匿名");
    }
}
