//! Indicator targets as printed in the plan, and whether an actual value meets them.
//!
//! The plan prints targets in several forms (`10.4`, `≥90.6`, `1.7左右`, `有所提高`). Each is
//! parsed once into a [`Target`] that keeps the printed text for display and an exact decimal
//! for comparison, so a table on screen always matches the printed plan.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Which direction is an improvement. Most indicators are better when higher; a few (land per
/// unit of GDP, accident death rate) are better when lower, and that changes what meeting a
/// plain target means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// A larger value is better.
    Higher,
    /// A smaller value is better.
    Lower,
}

/// How a target compares with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    /// A plain number: reach it (in the better direction).
    Eq,
    /// `≥`: at least the value.
    Ge,
    /// `≤`: at most the value.
    Le,
    /// `左右`: about the value.
    About,
    /// `有所提高`: better than the year before; no number.
    Increase,
    /// `以实际为准`: whatever happens is recorded; no number.
    Actual,
}

/// One year's target for one indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The text exactly as printed (`6.20`, not `6.2`), for display next to the plan.
    pub raw: String,
    /// `None` when the plan sets no target that year (an empty cell or a dash).
    pub comparator: Option<Comparator>,
    /// The number, exact; `None` for [`Comparator::Increase`], [`Comparator::Actual`] and no
    /// target. Serialised as a JSON number for charts, which is display only.
    #[serde(with = "rust_decimal::serde::float_option")]
    pub value: Option<Decimal>,
}

/// A target that could not be read. Loading a pack fails on it rather than treating the cell as
/// zero or as "no target", which would silently change what is measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read target \"{raw}\": {reason}")]
pub struct TargetError {
    /// The text as given.
    pub raw: String,
    /// What was wrong with it.
    pub reason: TargetErrorReason,
}

/// What was wrong with a target's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetErrorReason {
    /// A comparator (`≥`, `≤`, `左右`) with no number.
    MissingNumber,
    /// The number part is not a plain decimal number.
    NotANumber,
}

impl fmt::Display for TargetErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingNumber => "the comparator has no number",
            Self::NotANumber => {
                "expected a number, optionally with ≥, ≤ or 左右, or one of 有所提高, 以实际为准, or a dash for no target"
            }
        })
    }
}

impl Target {
    /// Reads a target as printed. See [`Comparator`] for the forms; an empty cell or a dash
    /// (`—`, `-`, `/`) means the plan sets no target that year.
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        let text = raw.trim();
        let error = |reason| TargetError {
            raw: raw.to_owned(),
            reason,
        };
        let (comparator, number) = match text {
            "" | "—" | "–" | "-" | "－" | "/" => (None, None),
            "有所提高" => (Some(Comparator::Increase), None),
            "实际" | "以实际为准" => (Some(Comparator::Actual), None),
            _ => {
                let (comparator, number) = if let Some(rest) = strip_any(text, &["≥", ">=", "＞＝"])
                {
                    (Comparator::Ge, rest)
                } else if let Some(rest) = strip_any(text, &["≤", "<=", "＜＝"]) {
                    (Comparator::Le, rest)
                } else if let Some(rest) = text.strip_suffix("左右") {
                    (Comparator::About, rest)
                } else {
                    (Comparator::Eq, text)
                };
                let number = number.trim();
                if number.is_empty() {
                    return Err(error(TargetErrorReason::MissingNumber));
                }
                let value =
                    parse_plain_decimal(number).ok_or(error(TargetErrorReason::NotANumber))?;
                (Some(comparator), Some(value))
            }
        };
        Ok(Target {
            raw: raw.to_owned(),
            comparator,
            value: number,
        })
    }
}

fn strip_any<'a>(text: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| text.strip_prefix(p))
}

/// Reads a plain decimal such as `90.6` or `0.0072` exactly, keeping its scale. Only digits
/// and one point: exponents, signs, separators and underscores are refused, because none of
/// them appear in a printed target and accepting them would hide typos.
pub fn parse_plain_decimal(text: &str) -> Option<Decimal> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits_only(whole) && digits_only(fraction)) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

/// Whether an indicator met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The actual value meets the target.
    Met,
    /// The actual value falls short.
    NotMet,
    /// Cannot tell: no actual value, no target that year, or (for "increase") no previous
    /// year to compare with.
    NoData,
}

/// Judges one year of one indicator.
///
/// - No `actual`, or no target that year: [`Status::NoData`]; missing data is never reported
///   as a failure.
/// - [`Comparator::Eq`] (a plain number): met when the actual is at least as good as the
///   value in the `better` direction (higher: `actual ≥ value`; lower: `actual ≤ value`). A
///   plain target is a goal to reach, not a number to hit exactly.
/// - [`Comparator::Ge`]: `actual ≥ value`; [`Comparator::Le`]: `actual ≤ value`. The printed
///   comparator wins over `better`.
/// - [`Comparator::About`]: met when `|actual − value| ≤ |value| × about_tolerance`, or when
///   the actual is better than the value in the `better` direction: beating an "about" target
///   is not a failure. `about_tolerance` is a fraction (0.02 = ±2%) from the region pack,
///   because the plan does not define 左右.
/// - [`Comparator::Increase`]: needs `previous_actual` (else no data); met when the actual is
///   strictly better than the previous year's in the `better` direction.
/// - [`Comparator::Actual`]: met whenever an actual exists; the plan only asks for a record.
pub fn evaluate(
    target: &Target,
    better: Better,
    actual: Option<Decimal>,
    previous_actual: Option<Decimal>,
    about_tolerance: Decimal,
) -> Status {
    let (Some(actual), Some(comparator)) = (actual, target.comparator) else {
        return Status::NoData;
    };
    let at_least_as_good = |a: Decimal, b: Decimal| match better {
        Better::Higher => a >= b,
        Better::Lower => a <= b,
    };
    let strictly_better = |a: Decimal, b: Decimal| match better {
        Better::Higher => a > b,
        Better::Lower => a < b,
    };
    let met = match (comparator, target.value) {
        (Comparator::Actual, _) => true,
        (Comparator::Increase, _) => match previous_actual {
            Some(previous) => strictly_better(actual, previous),
            None => return Status::NoData,
        },
        (Comparator::Eq, Some(value)) => at_least_as_good(actual, value),
        (Comparator::Ge, Some(value)) => actual >= value,
        (Comparator::Le, Some(value)) => actual <= value,
        (Comparator::About, Some(value)) => {
            // Checked arithmetic: decimal overflow panics, and a far-out value is simply not
            // "about" the target.
            let allowed = value.abs().checked_mul(about_tolerance.abs());
            let distance = actual.checked_sub(value).map(|d| d.abs());
            let within = matches!((distance, allowed), (Some(d), Some(a)) if d <= a);
            within || strictly_better(actual, value)
        }
        // A numeric comparator without a number cannot come from `Target::parse`; a target
        // built by hand that way has nothing to compare with.
        (Comparator::Eq | Comparator::Ge | Comparator::Le | Comparator::About, None) => {
            return Status::NoData
        }
    };
    if met {
        Status::Met
    } else {
        Status::NotMet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn parses_printed_forms() {
        use Comparator::*;
        let cases: &[(&str, Option<Comparator>, Option<&str>)] = &[
            ("10.4", Some(Eq), Some("10.4")),
            ("6.20", Some(Eq), Some("6.20")),
            ("0.0072", Some(Eq), Some("0.0072")),
            ("≥90.6", Some(Ge), Some("90.6")),
            (">=90.6", Some(Ge), Some("90.6")),
            ("≥ 75", Some(Ge), Some("75")),
            ("≤5", Some(Le), Some("5")),
            ("<=5", Some(Le), Some("5")),
            ("1.7左右", Some(About), Some("1.7")),
            ("有所提高", Some(Increase), None),
            ("实际", Some(Actual), None),
            ("以实际为准", Some(Actual), None),
            ("", None, None),
            ("—", None, None),
            ("-", None, None),
            ("/", None, None),
        ];
        for (raw, comparator, value) in cases {
            let target = Target::parse(raw).unwrap();
            assert_eq!(target.raw, *raw);
            assert_eq!(target.comparator, *comparator, "{raw}");
            assert_eq!(target.value, value.map(d), "{raw}");
        }
        // The printed scale is kept, not just the value.
        assert_eq!(
            Target::parse("6.20").unwrap().value.unwrap().to_string(),
            "6.20"
        );
    }

    #[test]
    fn refuses_unreadable_targets() {
        let cases = [
            ("abc", TargetErrorReason::NotANumber),
            ("≥", TargetErrorReason::MissingNumber),
            ("左右", TargetErrorReason::MissingNumber),
            ("1.2.3", TargetErrorReason::NotANumber),
            ("约", TargetErrorReason::NotANumber),
            ("1e3", TargetErrorReason::NotANumber),
            ("-5", TargetErrorReason::NotANumber),
            (".5", TargetErrorReason::NotANumber),
        ];
        for (raw, reason) in cases {
            let err = Target::parse(raw).unwrap_err();
            assert_eq!(err.reason, reason, "{raw}");
            assert!(err.to_string().contains(&format!("\"{raw}\"")), "{err}");
        }
    }

    #[test]
    fn serialises_value_as_number() {
        let json = serde_json::to_value(Target::parse("≥90.6").unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"raw": "≥90.6", "comparator": "ge", "value": 90.6})
        );
        let json = serde_json::to_value(Target::parse("有所提高").unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"raw": "有所提高", "comparator": "increase", "value": null})
        );
        assert_eq!(
            serde_json::to_string(&Status::NotMet).unwrap(),
            "\"not_met\""
        );
        assert_eq!(serde_json::to_string(&Better::Lower).unwrap(), "\"lower\"");
    }

    #[test]
    fn evaluation_table() {
        use Better::{Higher, Lower};
        use Status::{Met, NoData, NotMet};
        let tol = d("0.02");
        // (target, better, actual, previous, expected)
        type Case<'a> = (&'a str, Better, Option<&'a str>, Option<&'a str>, Status);
        let cases: &[Case] = &[
            // No data.
            ("10.4", Higher, None, None, NoData),
            ("—", Higher, Some("5"), None, NoData),
            // Plain number, both directions.
            ("10.4", Higher, Some("10.4"), None, Met),
            ("10.4", Higher, Some("11"), None, Met),
            ("10.4", Higher, Some("10.3"), None, NotMet),
            ("0.0072", Lower, Some("0.0070"), None, Met),
            ("0.0072", Lower, Some("0.0072"), None, Met),
            ("0.0072", Lower, Some("0.0080"), None, NotMet),
            // Printed comparators win over the direction.
            ("≥90.6", Higher, Some("90.6"), None, Met),
            ("≥90.6", Higher, Some("90.5"), None, NotMet),
            ("≥90.6", Lower, Some("95"), None, Met),
            ("≤5", Higher, Some("5"), None, Met),
            ("≤5", Higher, Some("5.1"), None, NotMet),
            // About: ±2% of 1.7 is ±0.034.
            ("1.7左右", Higher, Some("1.666"), None, Met),
            ("1.7左右", Higher, Some("1.665"), None, NotMet),
            ("1.7左右", Higher, Some("1.734"), None, Met),
            ("1.7左右", Higher, Some("2.5"), None, Met),
            ("1.7左右", Lower, Some("1.735"), None, NotMet),
            ("1.7左右", Lower, Some("1.0"), None, Met),
            // Increase.
            ("有所提高", Higher, Some("18"), None, NoData),
            ("有所提高", Higher, Some("18"), Some("17"), Met),
            ("有所提高", Higher, Some("17"), Some("17"), NotMet),
            ("有所提高", Lower, Some("16"), Some("17"), Met),
            ("有所提高", Lower, Some("18"), Some("17"), NotMet),
            // Actual.
            ("以实际为准", Higher, Some("0"), None, Met),
            ("以实际为准", Lower, None, None, NoData),
        ];
        for (raw, better, actual, previous, expected) in cases {
            let target = Target::parse(raw).unwrap();
            let status = evaluate(&target, *better, actual.map(d), previous.map(d), tol);
            assert_eq!(
                status, *expected,
                "{raw} {better:?} {actual:?} {previous:?}"
            );
        }
    }

    #[test]
    fn hand_built_target_without_value_is_no_data() {
        let target = Target {
            raw: "≥?".to_owned(),
            comparator: Some(Comparator::Ge),
            value: None,
        };
        assert_eq!(
            evaluate(&target, Better::Higher, Some(d("1")), None, d("0.02")),
            Status::NoData
        );
    }
}
