//! Campaigns (一日捐): participating units (government bodies, public institutions, enterprises)
//! with their headcounts, donations attributed to units, and participation rates against the
//! plan's targets.
//!
//! The targets are data on each campaign (the schema's defaults are the plan's: government
//! 100 %, institution 100 %, enterprise 75 %), so a report always judges a campaign by the
//! targets it was created with. Every rate is integer arithmetic: a fraction, its per-mille
//! rounded down, and a comparison with the target done exactly by cross-multiplying.

use std::collections::BTreeSet;

use cishan_store::{
    format_instant, CampaignRow, CampaignUnitRow, CampaignUnitTally, DonationRow, NewCampaign,
    NewEntry, WriteTx,
};
use serde::{Deserialize, Serialize};

use crate::donations::new_id;
use crate::{Actor, App, AppError, Result};

/// Unit types with their Chinese names, in report order.
pub const UNIT_TYPES: &[(&str, &str)] = &[
    ("government", "党政机关"),
    ("institution", "事业单位"),
    ("enterprise", "企业"),
];
/// The most units one request may add (500 rows stay well inside the API's 64 KiB body limit).
pub const MAX_UNITS_PER_REQUEST: usize = 500;
/// Longest campaign or unit name accepted.
const MAX_NAME_CHARS: usize = 200;
/// The largest headcount accepted for one unit (a sanity bound, far above any real unit).
pub const MAX_HEADCOUNT: i64 = 1_000_000;

/// A campaign as an organizer submits it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub org_id: String,
    pub name: String,
    /// The fund the campaign collects into (optional).
    #[serde(default)]
    pub fund_id: Option<String>,
    /// Local dates `YYYY-MM-DD`, both inclusive.
    pub starts_on: String,
    pub ends_on: String,
    /// Participation targets in percent of units (0–100); left out, the plan's default applies.
    #[serde(default)]
    pub target_government_pct: Option<i64>,
    #[serde(default)]
    pub target_institution_pct: Option<i64>,
    #[serde(default)]
    pub target_enterprise_pct: Option<i64>,
}

/// A unit to add to a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignUnitInput {
    pub name: String,
    /// `government`, `institution` or `enterprise`.
    pub unit_type: String,
    /// Staff on the payroll (> 0).
    pub headcount: i64,
}

/// A ratio kept exact: `numerator / denominator`, plus its per-mille rounded down for display
/// (`333` for 1/3, shown as `33.3%`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rate {
    pub numerator: i64,
    pub denominator: i64,
    pub permille: i64,
    /// The per-mille as a percentage with one decimal, e.g. `33.3`.
    pub percent_text: String,
}

impl Rate {
    /// `None` when the denominator is not positive.
    pub fn new(numerator: i64, denominator: i64) -> Option<Rate> {
        (denominator > 0).then(|| Rate::of_positive(numerator, denominator))
    }

    /// The rate over a denominator known to be positive.
    fn of_positive(numerator: i64, denominator: i64) -> Rate {
        assert!(denominator > 0, "a rate's denominator must be positive");
        let permille = numerator.saturating_mul(1000) / denominator;
        Rate {
            numerator,
            denominator,
            permille,
            percent_text: format!("{}.{}", permille / 10, permille % 10),
        }
    }

    /// Whether this rate is at least `target_pct` percent, exactly.
    pub fn meets(&self, target_pct: i64) -> bool {
        self.numerator.saturating_mul(100) >= target_pct.saturating_mul(self.denominator)
    }
}

/// One unit's line in a campaign report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitReport {
    pub unit_id: String,
    pub name: String,
    pub unit_type: String,
    pub unit_type_zh: String,
    pub headcount: i64,
    /// Distinct registered donors plus one per walk-in donation, counting only donations not
    /// refunded in full.
    pub donors: i64,
    pub registered_donors: i64,
    pub walk_in_donations: i64,
    /// Donations not refunded in full.
    pub donations: i64,
    pub amount_fen: i64,
    pub refunded_fen: i64,
    pub net_fen: i64,
    /// Staff participation: donors / headcount, never above 100%. Walk-in donations through a
    /// unit cannot be told apart by person, so each counts as one donor; when they outnumber
    /// the headcount the rate stops at 100% (the raw counts stay above).
    pub staff_participation: Rate,
    /// At least one donation with money left after refunds.
    pub participated: bool,
}

/// One unit type's line: how many of its units took part, against the campaign's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitTypeReport {
    pub unit_type: String,
    pub unit_type_zh: String,
    pub units: i64,
    pub participating_units: i64,
    /// Participating units / units; `None` when the campaign has no unit of this type.
    pub unit_participation: Option<Rate>,
    pub target_pct: i64,
    /// `None` when the campaign has no unit of this type (nothing to judge).
    pub met: Option<bool>,
    pub net_fen: i64,
}

/// A campaign's participation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignReport {
    pub campaign: CampaignView,
    pub units: Vec<UnitReport>,
    pub unit_types: Vec<UnitTypeReport>,
    pub donors: i64,
    pub headcount: i64,
    pub net_fen: i64,
}

/// A campaign as stored, with the targets it is judged by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub fund_id: Option<String>,
    /// Local dates `YYYY-MM-DD`, both inclusive.
    pub starts_on: String,
    pub ends_on: String,
    pub target_government_pct: i64,
    pub target_institution_pct: i64,
    pub target_enterprise_pct: i64,
    /// RFC 3339 instant.
    pub created_at: String,
}

impl From<CampaignRow> for CampaignView {
    fn from(c: CampaignRow) -> CampaignView {
        CampaignView {
            id: c.id,
            org_id: c.org_id,
            name: c.name,
            fund_id: c.fund_id,
            starts_on: c.starts_on,
            ends_on: c.ends_on,
            target_government_pct: c.target_government_pct,
            target_institution_pct: c.target_institution_pct,
            target_enterprise_pct: c.target_enterprise_pct,
            created_at: c.created_at,
        }
    }
}

/// A unit of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignUnitView {
    pub id: String,
    pub campaign_id: String,
    pub name: String,
    pub unit_type: String,
    pub headcount: i64,
}

impl From<CampaignUnitRow> for CampaignUnitView {
    fn from(u: CampaignUnitRow) -> CampaignUnitView {
        CampaignUnitView {
            id: u.id,
            campaign_id: u.campaign_id,
            name: u.name,
            unit_type: u.unit_type,
            headcount: u.headcount,
        }
    }
}

fn unit_type_zh(unit_type: &str) -> &'static str {
    UNIT_TYPES
        .iter()
        .find(|(t, _)| *t == unit_type)
        .map_or("", |(_, zh)| zh)
}

fn target_of(campaign: &CampaignView, unit_type: &str) -> i64 {
    match unit_type {
        "government" => campaign.target_government_pct,
        "institution" => campaign.target_institution_pct,
        _ => campaign.target_enterprise_pct,
    }
}

/// Builds the report from the stored tallies: pure, integer arithmetic only.
pub fn build_report(campaign: CampaignRow, tallies: &[CampaignUnitTally]) -> CampaignReport {
    let campaign = CampaignView::from(campaign);
    let units: Vec<UnitReport> = tallies
        .iter()
        .map(|t| {
            let donors = t.registered_donors + t.walk_in_donations;
            UnitReport {
                unit_id: t.unit.id.clone(),
                name: t.unit.name.clone(),
                unit_type: t.unit.unit_type.clone(),
                unit_type_zh: unit_type_zh(&t.unit.unit_type).to_owned(),
                headcount: t.unit.headcount,
                donors,
                registered_donors: t.registered_donors,
                walk_in_donations: t.walk_in_donations,
                donations: t.donations,
                amount_fen: t.amount_fen,
                refunded_fen: t.refunded_fen,
                net_fen: t.amount_fen - t.refunded_fen,
                // Headcounts are positive (validated, and a CHECK in the schema).
                staff_participation: Rate::of_positive(
                    donors.min(t.unit.headcount),
                    t.unit.headcount.max(1),
                ),
                participated: t.donations > 0,
            }
        })
        .collect();
    let unit_types = UNIT_TYPES
        .iter()
        .map(|(unit_type, zh)| {
            let of_type: Vec<&UnitReport> =
                units.iter().filter(|u| u.unit_type == *unit_type).collect();
            let count = i64::try_from(of_type.len()).unwrap_or(i64::MAX);
            let participating =
                i64::try_from(of_type.iter().filter(|u| u.participated).count()).unwrap_or(0);
            let target_pct = target_of(&campaign, unit_type);
            let rate = Rate::new(participating, count);
            UnitTypeReport {
                unit_type: (*unit_type).to_owned(),
                unit_type_zh: (*zh).to_owned(),
                units: count,
                participating_units: participating,
                met: rate.as_ref().map(|r| r.meets(target_pct)),
                unit_participation: rate,
                target_pct,
                net_fen: of_type.iter().map(|u| u.net_fen).sum(),
            }
        })
        .collect();
    CampaignReport {
        donors: units.iter().map(|u| u.donors).sum(),
        headcount: units.iter().map(|u| u.headcount).sum(),
        net_fen: units.iter().map(|u| u.net_fen).sum(),
        campaign,
        units,
        unit_types,
    }
}

/// A required, trimmed, bounded name without control characters.
fn name_field(field: &str, value: &str, what: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::invalid(
            field,
            format!("{field}.missing"),
            format!("请填写{what}。"),
        ));
    }
    if v.chars().count() > MAX_NAME_CHARS || v.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("{field}.invalid"),
            format!("{what}不能超过 {MAX_NAME_CHARS} 个字，且不能含有不可见的控制字符。"),
        ));
    }
    Ok(v.to_owned())
}

fn local_date(field: &str, text: &str) -> Result<jiff::civil::Date> {
    let t = text.trim();
    // jiff accepts only `YYYY-MM-DD` here; check the shape so `2026-1-5` is refused too.
    let shaped = t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-';
    match t.parse::<jiff::civil::Date>() {
        Ok(d) if shaped => Ok(d),
        _ => Err(AppError::invalid(
            field,
            "campaign.date_invalid",
            format!("日期“{t}”无效，请按 YYYY-MM-DD 填写，例如 2026-09-05。"),
        )),
    }
}

fn target_field(field: &str, value: Option<i64>) -> Result<Option<i64>> {
    match value {
        Some(v) if !(0..=100).contains(&v) => Err(AppError::invalid(
            field,
            "campaign.target_invalid",
            format!("{field} 是参与率目标（百分比），应为 0 到 100 之间的整数，收到 {v}。"),
        )),
        other => Ok(other),
    }
}

impl App {
    /// Creates a campaign of an organization. Staff and administrators.
    pub async fn create_campaign(
        &self,
        actor: &Actor,
        input: &CampaignInput,
    ) -> Result<CampaignView> {
        require_staff(actor)?;
        let name = name_field("name", &input.name, "活动名称")?;
        let starts = local_date("starts_on", &input.starts_on)?;
        let ends = local_date("ends_on", &input.ends_on)?;
        if ends < starts {
            return Err(AppError::invalid(
                "ends_on",
                "campaign.period_invalid",
                format!("结束日期 {ends} 早于开始日期 {starts}，请检查。"),
            ));
        }
        let targets = (
            target_field("target_government_pct", input.target_government_pct)?,
            target_field("target_institution_pct", input.target_institution_pct)?,
            target_field("target_enterprise_pct", input.target_enterprise_pct)?,
        );
        let org_id = input.org_id.trim().to_owned();
        if self.store().organization(&org_id).await?.is_none() {
            return Err(AppError::invalid(
                "org_id",
                "campaign.org_unknown",
                format!("找不到编号为 `{org_id}` 的机构。"),
            ));
        }
        let fund_id = input
            .fund_id
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        if let Some(fund) = &fund_id {
            if tx.holder_org("fund", fund).await?.as_deref() != Some(org_id.as_str()) {
                return Err(AppError::invalid(
                    "fund_id",
                    "campaign.fund_invalid",
                    format!("找不到该机构编号为 `{fund}` 的基金；活动只能募入本机构的基金。"),
                ));
            }
        }
        let row = tx
            .insert_campaign(&NewCampaign {
                id: new_id("cmp"),
                org_id,
                name,
                fund_id,
                starts_on: starts.to_string(),
                ends_on: ends.to_string(),
                target_government_pct: targets.0,
                target_institution_pct: targets.1,
                target_enterprise_pct: targets.2,
                created_at: format_instant(now),
            })
            .await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "campaign.created".into(),
                subject: row.id.clone(),
                payload: serde_json::json!({
                    "org_id": row.org_id, "fund_id": row.fund_id,
                    "starts_on": row.starts_on, "ends_on": row.ends_on,
                    "targets_pct": {
                        "government": row.target_government_pct,
                        "institution": row.target_institution_pct,
                        "enterprise": row.target_enterprise_pct,
                    },
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Adds units to a campaign. A name already in the campaign, or twice in the request, is
    /// refused with the row that carries it; nothing is added unless every row is valid.
    pub async fn add_campaign_units(
        &self,
        actor: &Actor,
        campaign_id: &str,
        units: &[CampaignUnitInput],
    ) -> Result<Vec<CampaignUnitView>> {
        require_staff(actor)?;
        if units.is_empty() || units.len() > MAX_UNITS_PER_REQUEST {
            return Err(AppError::invalid(
                "units",
                "campaign.units_count",
                format!("一次请添加 1 到 {MAX_UNITS_PER_REQUEST} 个参与单位。"),
            ));
        }
        let mut rows = Vec::with_capacity(units.len());
        for (i, unit) in units.iter().enumerate() {
            let n = i + 1;
            let name = name_field(
                &format!("units[{i}].name"),
                &unit.name,
                &format!("第 {n} 行的单位名称"),
            )?;
            if unit_type_zh(&unit.unit_type).is_empty() {
                return Err(AppError::invalid(
                    &format!("units[{i}].unit_type"),
                    "campaign.unit_type_invalid",
                    format!(
                        "第 {n} 行“{name}”的单位类型 `{}` 不认识，可选 government（党政机关）、institution（事业单位）、enterprise（企业）。",
                        unit.unit_type
                    ),
                ));
            }
            if !(1..=MAX_HEADCOUNT).contains(&unit.headcount) {
                return Err(AppError::invalid(
                    &format!("units[{i}].headcount"),
                    "campaign.headcount_invalid",
                    format!("第 {n} 行“{name}”的在编人数必须是 1 到 {MAX_HEADCOUNT} 之间的整数。"),
                ));
            }
            rows.push(CampaignUnitRow {
                id: new_id("cmu"),
                campaign_id: campaign_id.to_owned(),
                name,
                unit_type: unit.unit_type.clone(),
                headcount: unit.headcount,
            });
        }
        for (i, row) in rows.iter().enumerate() {
            if let Some(first) = rows[..i].iter().position(|r| r.name == row.name) {
                return Err(AppError::invalid(
                    &format!("units[{i}].name"),
                    "campaign.unit_duplicate",
                    format!(
                        "第 {} 行“{}”与第 {} 行重名。同一活动中单位名称不能重复，请合并或改名。",
                        i + 1,
                        row.name,
                        first + 1
                    ),
                ));
            }
        }
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        let campaign = tx
            .campaign(campaign_id)
            .await?
            .ok_or_else(|| AppError::not_found("campaign"))?;
        let existing: BTreeSet<String> = tx
            .campaign_unit_names(&campaign.id)
            .await?
            .into_iter()
            .collect();
        if let Some((i, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| existing.contains(&r.name))
        {
            return Err(AppError::conflict(
                "campaign.unit_duplicate",
                format!(
                    "第 {} 行“{}”已经是该活动的参与单位，不能重复添加。",
                    i + 1,
                    row.name
                ),
            ));
        }
        tx.insert_all(&rows).await?;
        tx.journal(
            now,
            NewEntry {
                actor: actor.user_id.clone(),
                kind: "campaign.units_added".into(),
                subject: campaign.id.clone(),
                payload: serde_json::json!({
                    "units": rows.iter().map(|r| serde_json::json!({
                        "id": r.id, "unit_type": r.unit_type, "headcount": r.headcount,
                    })).collect::<Vec<_>>(),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// A campaign's participation report: per unit and per unit type, against its targets.
    /// Public: it names units, never donors.
    pub async fn campaign_report(&self, campaign_id: &str) -> Result<CampaignReport> {
        let campaign = self
            .store()
            .campaign(campaign_id)
            .await?
            .ok_or_else(|| AppError::not_found("campaign"))?;
        let tallies = self.store().campaign_unit_tallies(&campaign.id).await?;
        Ok(build_report(campaign, &tallies))
    }

    /// Checks that a donation may be attributed to a campaign unit and returns the campaign.
    pub(crate) async fn campaign_of_unit(
        &self,
        tx: &mut WriteTx,
        unit_id: &str,
        row: &DonationRow,
    ) -> Result<String> {
        let (campaign, org, starts_on, ends_on) =
            tx.campaign_unit(unit_id).await?.ok_or_else(|| {
                AppError::invalid(
                    "campaign_unit_id",
                    "donation.campaign_unit_unknown",
                    format!("找不到编号为 `{unit_id}` 的参与单位。"),
                )
            })?;
        if row.org_id.as_deref() != Some(org.as_str()) {
            return Err(AppError::invalid(
                "campaign_unit_id",
                "donation.campaign_other_org",
                "这个参与单位属于另一家机构组织的募捐活动，请捐入该活动的基金或项目。",
            ));
        }
        let on = self.local_date(&row.received_at);
        if on < starts_on || on > ends_on {
            return Err(AppError::invalid(
                "campaign_unit_id",
                "donation.campaign_closed",
                format!("该募捐活动的时间是 {starts_on} 至 {ends_on}，这笔捐赠的到账日期 {on} 不在其中。"),
            ));
        }
        Ok(campaign)
    }
}

/// Staff and administrators record campaigns; members (participants signed in on the personal
/// side) are refused.
pub(crate) fn require_staff(actor: &Actor) -> Result<()> {
    actor.require_staff()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign() -> CampaignRow {
        CampaignRow {
            id: "cmp_1".into(),
            org_id: "org_1".into(),
            name: "一日捐".into(),
            fund_id: None,
            starts_on: "2026-09-01".into(),
            ends_on: "2026-09-30".into(),
            target_government_pct: 100,
            target_institution_pct: 100,
            target_enterprise_pct: 75,
            created_at: "t".into(),
        }
    }

    fn tally(
        name: &str,
        unit_type: &str,
        headcount: i64,
        donors: i64,
        net: i64,
    ) -> CampaignUnitTally {
        CampaignUnitTally {
            unit: CampaignUnitRow {
                id: format!("u_{name}"),
                campaign_id: "cmp_1".into(),
                name: name.into(),
                unit_type: unit_type.into(),
                headcount,
            },
            registered_donors: donors,
            walk_in_donations: 0,
            donations: donors,
            amount_fen: net,
            refunded_fen: 0,
        }
    }

    #[test]
    fn rates_are_exact_fractions_with_floored_per_mille() {
        let r = Rate::new(1, 3).unwrap();
        assert_eq!((r.permille, r.percent_text.as_str()), (333, "33.3"));
        assert!(Rate::new(1, 0).is_none());
        // 3 of 4 is exactly 75 %: met, although 2 of 3 (66.6…) is not.
        assert!(Rate::new(3, 4).unwrap().meets(75));
        assert!(!Rate::new(2, 3).unwrap().meets(67));
        assert!(Rate::new(2, 3).unwrap().meets(66));
    }

    #[test]
    fn unit_types_are_judged_against_the_campaign_targets() {
        let report = build_report(
            campaign(),
            &[
                tally("A", "enterprise", 10, 3, 300),
                tally("B", "enterprise", 10, 1, 100),
                tally("C", "enterprise", 10, 2, 100),
                tally("D", "enterprise", 10, 0, 0),
                tally("E", "government", 5, 5, 500),
            ],
        );
        let ent = &report.unit_types[2];
        assert_eq!((ent.units, ent.participating_units), (4, 3));
        assert_eq!(ent.met, Some(true));
        assert_eq!(report.unit_types[0].met, Some(true));
        assert_eq!(report.unit_types[1].met, None, "no institution units");
        assert_eq!(report.units[0].staff_participation.permille, 300);
        assert_eq!(report.net_fen, 1000);
    }
}
