//! The plan's indicator table (目标指标表): targets from the region pack, actuals entered by
//! administrators or counted from the platform's own records, and a status for each year.

use std::collections::HashMap;

use cishan_core::{
    evaluate, parse_plain_decimal, Better, Decimal, IndicatorDef, IndicatorSource, Metric, Status,
    Target,
};
use cishan_store::{format_instant, IndicatorActualRow, NewEntry};
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::{Actor, App, AppError, Result};

/// Where an actual value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActualSource {
    /// Entered by an administrator.
    Entered,
    /// Counted by the platform from its records.
    Computed,
}

/// One indicator for one year, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorView {
    pub code: String,
    pub category: String,
    pub name: String,
    pub unit: String,
    pub owner: String,
    pub better: Better,
    pub year: i16,
    pub target: Target,
    #[serde(with = "rust_decimal::serde::float_option")]
    pub actual: Option<Decimal>,
    /// The actual exactly as stored (no float rounding), for display.
    pub actual_text: Option<String>,
    pub actual_source: Option<ActualSource>,
    /// Whether staff enter this indicator (computed ones cannot be entered).
    pub manual: bool,
    pub entered_by: Option<String>,
    pub entered_at: Option<String>,
    pub status: Status,
}

/// The years an actual may be entered for: the pack's years and the one before the first
/// (the baseline that an "increase" target in the first year is judged against).
pub fn enterable_years(years: &[i16]) -> std::ops::RangeInclusive<i16> {
    let first = years.first().copied().unwrap_or(0);
    let last = years.last().copied().unwrap_or(0);
    (first - 1)..=last
}

impl App {
    /// Every indicator of the pack for `year`, in the plan's order, with its status.
    pub async fn indicators(&self, year: i16) -> Result<Vec<IndicatorView>> {
        if !self.pack().years.contains(&year) {
            return Err(AppError::invalid(
                "year",
                "indicator.year_unknown",
                format!(
                    "{year} 年没有目标值。可选年份：{}。",
                    self.pack()
                        .years
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("、")
                ),
            ));
        }
        let entered: HashMap<(String, i64), IndicatorActualRow> = self
            .store()
            .indicator_actuals()
            .await?
            .into_iter()
            .map(|r| ((r.indicator_code.clone(), r.year), r))
            .collect();
        let tolerance = self.pack().about_tolerance;
        let mut views = Vec::with_capacity(self.pack().indicators.len());
        for def in &self.pack().indicators {
            let (actual, source, row) = self.actual_of(def, year, &entered).await?;
            let (previous, _, _) = self.actual_of(def, year - 1, &entered).await?;
            let target = def.targets.get(&year).cloned().unwrap_or(Target {
                raw: String::new(),
                comparator: None,
                value: None,
            });
            let status = evaluate(&target, def.better, actual, previous, tolerance);
            views.push(IndicatorView {
                code: def.code.clone(),
                category: def.category.clone(),
                name: def.name.clone(),
                unit: def.unit.clone(),
                owner: def.owner.clone(),
                better: def.better,
                year,
                target,
                actual,
                actual_text: actual.map(|a| a.normalize().to_string()),
                actual_source: actual.map(|_| source),
                manual: matches!(def.source, IndicatorSource::Manual),
                entered_by: row.map(|r| r.entered_by.clone()),
                entered_at: row.map(|r| r.entered_at.clone()),
                status,
            });
        }
        Ok(views)
    }

    async fn actual_of<'a>(
        &self,
        def: &IndicatorDef,
        year: i16,
        entered: &'a HashMap<(String, i64), IndicatorActualRow>,
    ) -> Result<(
        Option<Decimal>,
        ActualSource,
        Option<&'a IndicatorActualRow>,
    )> {
        match &def.source {
            IndicatorSource::Manual => {
                let row = entered.get(&(def.code.clone(), i64::from(year)));
                let value = row
                    .map(|r| {
                        Decimal::from_str_exact(&r.value).map_err(|e| {
                            AppError::internal(std::io::Error::other(format!(
                                "stored actual of indicator {} is not a decimal: {e}",
                                def.code
                            )))
                        })
                    })
                    .transpose()?;
                Ok((value, ActualSource::Entered, row))
            }
            IndicatorSource::Computed { metric, divisor } => {
                if !enterable_years(&self.pack().years).contains(&year) {
                    return Ok((None, ActualSource::Computed, None));
                }
                let count = self.metric_at_year_end(*metric, year).await?;
                let value = Decimal::from(count)
                    .checked_div(*divisor)
                    .map(|v| v.round_dp(4));
                Ok((value, ActualSource::Computed, None))
            }
        }
    }

    /// Counts `metric` as of the end of `year` in the region's time zone.
    pub async fn metric_at_year_end(&self, metric: Metric, year: i16) -> Result<i64> {
        let next_year = Date::new(year + 1, 1, 1).map_err(AppError::internal)?;
        let date_text = next_year.to_string();
        let tz = TimeZone::get(&self.pack().timezone).map_err(AppError::internal)?;
        let instant = next_year
            .to_zoned(tz)
            .map_err(AppError::internal)?
            .timestamp();
        let store = self.store();
        Ok(match metric {
            Metric::CharityTrusts => store.count_trusts_before(&date_text).await?,
            Metric::CharityOrganizations => {
                store.count_charity_organizations_before(&date_text).await?
            }
            Metric::RegisteredVolunteers => {
                store
                    .count_volunteers_before(&format_instant(instant))
                    .await?
            }
        })
    }

    /// Records an administrator's actual value for an indicator and year. `value` is typed by a
    /// person: a plain decimal in the indicator's printed unit.
    pub async fn set_indicator_actual(
        &self,
        actor: &Actor,
        code: &str,
        year: i16,
        value: &str,
    ) -> Result<IndicatorView> {
        actor.require_admin()?;
        let def = self
            .pack()
            .indicator(code)
            .ok_or_else(|| AppError::not_found("indicator"))?;
        if !matches!(def.source, IndicatorSource::Manual) {
            return Err(AppError::invalid(
                "value",
                "indicator.computed",
                format!(
                    "指标“{}”由平台根据登记数据自动计算，无需手工填报。",
                    def.name
                ),
            ));
        }
        let years = enterable_years(&self.pack().years);
        if !years.contains(&year) {
            return Err(AppError::invalid(
                "year",
                "indicator.year_out_of_range",
                format!("只能填报 {} 至 {} 年的实际值。", years.start(), years.end()),
            ));
        }
        let text = value.trim().replace(',', "");
        let Some(parsed) = parse_plain_decimal(&text) else {
            return Err(AppError::invalid(
                "value",
                "indicator.value_invalid",
                format!(
                    "实际值“{}”不是有效的数字。请只填写数字（可带小数点），单位为{}，例如 92.5。",
                    value.trim(),
                    if def.unit.is_empty() {
                        "指标原单位".to_owned()
                    } else {
                        def.unit.clone()
                    }
                ),
            ));
        };
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        let entry = tx
            .journal(
                now,
                NewEntry {
                    actor: actor.user_id.clone(),
                    kind: "indicator.actual_set".into(),
                    subject: format!("indicator_{code}_{year}"),
                    payload: serde_json::json!({
                        "indicator": code,
                        "year": year,
                        "value": parsed.to_string(),
                        "as_typed": value.trim(),
                        "by": actor.username,
                    }),
                },
            )
            .await?;
        tx.set_indicator_actual(&IndicatorActualRow {
            indicator_code: code.to_owned(),
            year: i64::from(year),
            value: parsed.to_string(),
            entered_by: actor.username.clone(),
            entered_at: entry.recorded_at.clone(),
            journal_seq: entry.seq,
        })
        .await?;
        tx.commit().await?;
        tracing::info!(
            indicator.code = code,
            indicator.year = year,
            journal.seq = entry.seq,
            "indicator actual set"
        );
        let views = if self.pack().years.contains(&year) {
            self.indicators(year).await?
        } else {
            Vec::new()
        };
        match views.into_iter().find(|v| v.code == code) {
            Some(view) => Ok(view),
            // A baseline year has no target of its own; report the value as stored.
            None => Ok(IndicatorView {
                code: code.to_owned(),
                category: def.category.clone(),
                name: def.name.clone(),
                unit: def.unit.clone(),
                owner: def.owner.clone(),
                better: def.better,
                year,
                target: Target {
                    raw: String::new(),
                    comparator: None,
                    value: None,
                },
                actual: Some(parsed),
                actual_text: Some(parsed.normalize().to_string()),
                actual_source: Some(ActualSource::Entered),
                manual: true,
                entered_by: Some(actor.username.clone()),
                entered_at: Some(entry.recorded_at),
                status: Status::NoData,
            }),
        }
    }
}
