//! The plan's indicator table (目标指标表): targets from the region pack, actuals entered by
//! administrators or counted from the platform's own records, and a status for each year.

use std::collections::HashMap;

use cishan_core::{
    evaluate, parse_plain_decimal, Better, Comparator, Decimal, IndicatorDef, IndicatorSource,
    Metric, Status, Target,
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
        let entered = self.entered_actuals().await?;
        let mut views = Vec::with_capacity(self.pack().indicators.len());
        for def in &self.pack().indicators {
            views.push(self.view_of(def, year, &entered).await?);
        }
        Ok(views)
    }

    async fn entered_actuals(&self) -> Result<HashMap<(String, i64), IndicatorActualRow>> {
        Ok(self
            .store()
            .indicator_actuals()
            .await?
            .into_iter()
            .map(|r| ((r.indicator_code.clone(), r.year), r))
            .collect())
    }

    /// One indicator in one year. The previous year's actual is looked up only for an
    /// "increase" target, the one comparator that needs it.
    async fn view_of(
        &self,
        def: &IndicatorDef,
        year: i16,
        entered: &HashMap<(String, i64), IndicatorActualRow>,
    ) -> Result<IndicatorView> {
        let (actual, source, row) = self.actual_of(def, year, entered).await?;
        let target = def.targets.get(&year).cloned().unwrap_or(Target {
            raw: String::new(),
            comparator: None,
            value: None,
        });
        let previous = if target.comparator == Some(Comparator::Increase) {
            self.actual_of(def, year - 1, entered).await?.0
        } else {
            None
        };
        let status = evaluate(
            &target,
            def.better,
            actual,
            previous,
            self.pack().about_tolerance,
        );
        Ok(IndicatorView {
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
        })
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
        let parsed = parse_actual_value(value, &def.unit)?;
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
        // A baseline year has no target of its own: its view reports the value with no status.
        let entered = self.entered_actuals().await?;
        self.view_of(def, year, &entered).await
    }
}

/// Most decimal places an actual may carry (the plan prints at most four).
pub const MAX_ACTUAL_DECIMALS: u32 = 6;
/// Most digits before the point: larger numbers are typos or a wrong unit.
pub const MAX_ACTUAL_INTEGER_DIGITS: usize = 12;

/// Reads an actual value typed by a person, exactly. Full-width digits from Chinese input
/// methods are accepted; a comma only as a thousands separator (`1,234.5`), never as a decimal
/// point (`92,50` is refused rather than read as 9250).
pub fn parse_actual_value(typed: &str, unit: &str) -> Result<Decimal> {
    let invalid = |code: &str, message: String| AppError::invalid("value", code, message);
    let text: String = typed
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => {
                char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c)
            }
            '．' | '。' => '.',
            '，' => ',',
            '－' => '-',
            other => other,
        })
        .collect();
    if text.is_empty() {
        return Err(invalid("indicator.value_missing", "请填写实际值。".into()));
    }
    if text.starts_with('-') {
        return Err(invalid(
            "indicator.value_negative",
            "实际值不能为负数，请填写 0 或正数。".into(),
        ));
    }
    let unit = if unit.is_empty() {
        "指标原单位"
    } else {
        unit
    };
    let plain = if text.contains(',') {
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let groups: Vec<&str> = whole.split(',').collect();
        let grouped = groups[0].len() <= 3
            && !groups[0].is_empty()
            && groups[1..].iter().all(|g| g.len() == 3);
        if !grouped {
            return Err(invalid(
                "indicator.value_comma",
                format!(
                    "“{}”中的逗号位置不对：逗号只能作千位分隔符（如 1,234.5），小数点请用“.”。",
                    typed.trim()
                ),
            ));
        }
        let whole = groups.concat();
        if fraction.is_empty() && !text.ends_with('.') {
            whole
        } else {
            format!("{whole}.{fraction}")
        }
    } else {
        text
    };
    let Some(parsed) = parse_plain_decimal(&plain) else {
        return Err(invalid(
            "indicator.value_invalid",
            format!(
                "实际值“{}”不是有效的数字。请只填写数字（可带小数点），单位为{unit}，例如 92.5。",
                typed.trim()
            ),
        ));
    };
    if parsed.scale() > MAX_ACTUAL_DECIMALS {
        return Err(invalid(
            "indicator.value_too_precise",
            format!("实际值最多保留 {MAX_ACTUAL_DECIMALS} 位小数。"),
        ));
    }
    if plain
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_start_matches('0')
        .len()
        > MAX_ACTUAL_INTEGER_DIGITS
    {
        return Err(invalid(
            "indicator.value_too_large",
            format!("实际值过大，请核对数值和单位（{unit}）。"),
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        parse_actual_value(text, "%").unwrap().to_string()
    }

    fn code(text: &str) -> String {
        parse_actual_value(text, "%").unwrap_err().code
    }

    #[test]
    fn typed_values_are_read_exactly() {
        assert_eq!(ok("92.5"), "92.5");
        assert_eq!(ok(" 0.0070 "), "0.0070");
        assert_eq!(ok("1,234.5"), "1234.5");
        assert_eq!(ok("84,500"), "84500");
        assert_eq!(ok("１２．５"), "12.5");
        assert_eq!(ok("１，２３４"), "1234");
    }

    #[test]
    fn commas_that_are_not_thousands_separators_are_refused() {
        for typed in ["92,50", "12,5", "1,2,3,4", ",,5", "12,34.5", "1234,567"] {
            assert_eq!(code(typed), "indicator.value_comma", "{typed}");
        }
    }

    #[test]
    fn each_mistake_gets_its_own_message() {
        assert_eq!(code(""), "indicator.value_missing");
        assert_eq!(code("-5"), "indicator.value_negative");
        assert_eq!(code("abc"), "indicator.value_invalid");
        assert_eq!(code("1.2.3"), "indicator.value_invalid");
        assert_eq!(code("1e3"), "indicator.value_invalid");
        assert_eq!(code("1.1234567"), "indicator.value_too_precise");
        assert_eq!(
            code("9999999999999999999999999"),
            "indicator.value_too_large"
        );
        assert_eq!(ok("999999999999"), "999999999999");
    }
}
