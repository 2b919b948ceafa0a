//! Social assistance (社会救助) as the beneficiary registry (低收入人口库) sees it: the assistance
//! categories, where a household's per-capita income stands against the subsistence standard
//! and the near-subsistence (低保边缘) line, masking of addresses, working age, and the
//! employment rate of people placed in welfare jobs (公益岗位).
//!
//! Pure: incomes arrive decrypted, years and dates are passed in.

use crate::money::Fen;

/// One assistance category: a stable code for rows and URLs, the Chinese name, and whether it
/// is itself subsistence-level assistance (so the household is not an "edge" case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssistanceCategory {
    pub code: &'static str,
    pub name: &'static str,
    /// 最低生活保障 and 特困人员供养: the household already receives subsistence assistance, so
    /// the edge list (边缘救助) leaves it out however low its income.
    pub subsistence_level: bool,
}

const fn category(code: &'static str, name: &'static str, sub: bool) -> AssistanceCategory {
    AssistanceCategory {
        code,
        name,
        subsistence_level: sub,
    }
}

/// The fifteen categories seen in Chinese social-assistance systems (rules.md, "Assistance
/// standards"), in that order.
pub const CATEGORIES: [AssistanceCategory; 15] = [
    category("subsistence", "最低生活保障", true),
    category("extreme_poverty", "特困人员供养", true),
    category("near_subsistence", "低保边缘", false),
    category("expenditure_hardship", "支出型困难", false),
    category("temporary", "临时救助", false),
    category("medical", "医疗救助", false),
    category("education", "教育救助", false),
    category("housing", "住房救助", false),
    category("employment", "就业救助", false),
    category("disaster", "受灾人员救助", false),
    category("severe_disability", "低保外重残", false),
    category("relapse_risk", "易返贫致贫对象", false),
    category("needy_worker", "困难职工", false),
    category("charity", "慈善救助", false),
    category("other", "其他", false),
];

/// The category with this code.
pub fn category_of(code: &str) -> Option<&'static AssistanceCategory> {
    CATEGORIES.iter().find(|c| c.code == code)
}

/// Where a per-capita income stands against the year's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomeBand {
    /// Below the subsistence standard.
    BelowSubsistence,
    /// At or above the standard, below the near-subsistence line.
    BelowEdgeLine,
    /// At or above the near-subsistence line.
    AboveEdgeLine,
}

impl IncomeBand {
    /// Which band `income` (fen per person per year) falls in. "Under" is strict: an income
    /// exactly on a line is not under it.
    pub fn of(income: Fen, standard: Fen, edge_line: Fen) -> IncomeBand {
        if income.get() < standard.get() {
            IncomeBand::BelowSubsistence
        } else if income.get() < edge_line.get() {
            IncomeBand::BelowEdgeLine
        } else {
            IncomeBand::AboveEdgeLine
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            IncomeBand::BelowSubsistence => "below_subsistence",
            IncomeBand::BelowEdgeLine => "below_edge_line",
            IncomeBand::AboveEdgeLine => "above_edge_line",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            IncomeBand::BelowSubsistence => "低于低保标准",
            IncomeBand::BelowEdgeLine => "低于低保边缘线",
            IncomeBand::AboveEdgeLine => "不低于低保边缘线",
        }
    }
}

/// How far under the edge line a household is, for the edge list (边缘救助): `Some(gap)` when
/// the household is not in a subsistence-level category and its income is strictly under the
/// line; the gap is `line - income`, always positive.
pub fn edge_gap(category: &AssistanceCategory, income: Fen, edge_line: Fen) -> Option<Fen> {
    if category.subsistence_level || income.get() >= edge_line.get() {
        return None;
    }
    Some(Fen::new(edge_line.get() - income.get()))
}

/// How many bands the edge list cuts the distance under the line into (tenths of the line).
pub const EDGE_GAP_BANDS: i64 = 10;

/// The edge list's coarse distance under the line, so that the line and the band never give
/// the income back: band `k` (1 to 10) means the gap is more than `(k - 1) × 10%` and at most
/// `k × 10%` of the line. `None` when the gap is not positive or the line is not (no band).
pub fn edge_gap_band(gap: Fen, edge_line: Fen) -> Option<i64> {
    let (gap, line) = (i128::from(gap.get()), i128::from(edge_line.get()));
    if gap <= 0 || line <= 0 {
        return None;
    }
    let bands = i128::from(EDGE_GAP_BANDS);
    // Rounded up: the smallest k with gap ≤ k/10 of the line.
    let band = (gap * bands + line - 1) / line;
    i64::try_from(band.min(bands)).ok()
}

/// A band of [`edge_gap_band`] as staff read it: `3` → `低于边缘线 20%–30%`.
pub fn edge_gap_band_name(band: i64) -> String {
    let step = 100 / EDGE_GAP_BANDS;
    let band = band.clamp(1, EDGE_GAP_BANDS);
    format!("低于边缘线 {}%–{}%", (band - 1) * step, band * step)
}

/// Characters of an address that stay visible when no street or town is named in it.
const ADDRESS_SHOWN_CHARS: usize = 6;
/// How far into an address the street or town (街道, 镇, 乡) is looked for.
const ADDRESS_STREET_WITHIN: usize = 14;

/// Masks an address down to its district and street: `鹿城区五马街道解放街12号301室` →
/// `鹿城区五马街道****`. What stays is everything up to the first 街道, 镇 or 乡 within the first
/// 14 characters, or else the first six characters; the rest becomes four `*` whatever its
/// length, so the length of the hidden part is not shown either. An address no longer than what
/// would stay is masked entirely.
pub fn mask_address(address: &str) -> String {
    let chars: Vec<char> = address.trim().chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let head: String = chars.iter().take(ADDRESS_STREET_WITHIN).collect();
    let shown = ["街道", "镇", "乡"]
        .iter()
        .filter_map(|m| head.find(m).map(|at| head[..at + m.len()].chars().count()))
        .min()
        .unwrap_or(ADDRESS_SHOWN_CHARS);
    if chars.len() <= shown {
        return "****".to_owned();
    }
    let mut out: String = chars[..shown].iter().collect();
    out.push_str("****");
    out
}

/// Working age as the registry counts it: from 16 to 59 years in the given year (by birth year,
/// so everyone born in one year counts alike).
pub const WORKING_AGE: std::ops::RangeInclusive<i16> = 16..=59;

/// Whether someone born in `birth_year` is of working age in `year`.
pub fn is_working_age(birth_year: i16, year: i16) -> bool {
    WORKING_AGE.contains(&(year - birth_year))
}

/// A share as a whole number of tenths of a percent (per mille), rounded down: `employed` of
/// `placed` people. `None` when nobody was placed (no rate, rather than 0%).
pub fn rate_permille(part: i64, whole: i64) -> Option<i64> {
    if whole <= 0 {
        return None;
    }
    Some(part.clamp(0, whole) * 1_000 / whole)
}

/// A per-mille rate as people read it: `667` → `66.7%`.
pub fn permille_text(permille: i64) -> String {
    format!("{}.{}%", permille / 10, permille % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_distinct_categories_two_at_subsistence_level() {
        let mut codes: Vec<&str> = CATEGORIES.iter().map(|c| c.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 15);
        let subsistence: Vec<&str> = CATEGORIES
            .iter()
            .filter(|c| c.subsistence_level)
            .map(|c| c.name)
            .collect();
        assert_eq!(subsistence, ["最低生活保障", "特困人员供养"]);
        assert_eq!(category_of("near_subsistence").unwrap().name, "低保边缘");
        assert!(category_of("nonsense").is_none());
    }

    #[test]
    fn gap_bands_are_tenths_of_the_line_rounded_up() {
        let line = Fen::new(1_000_000);
        let band = |gap: i64| edge_gap_band(Fen::new(gap), line);
        assert_eq!(band(0), None);
        assert_eq!(band(1), Some(1));
        assert_eq!(band(100_000), Some(1));
        assert_eq!(band(100_001), Some(2));
        assert_eq!(band(999_999), Some(10));
        assert_eq!(band(1_000_000), Some(10));
        assert_eq!(edge_gap_band(Fen::new(5), Fen::new(0)), None);
        assert_eq!(edge_gap_band_name(1), "低于边缘线 0%–10%");
        assert_eq!(edge_gap_band_name(4), "低于边缘线 30%–40%");
    }

    #[test]
    fn the_edge_line_is_strict() {
        let line = Fen::new(1_725_000);
        let near = category_of("near_subsistence").unwrap();
        let sub = category_of("subsistence").unwrap();
        assert_eq!(edge_gap(near, Fen::new(1_725_000), line), None);
        assert_eq!(edge_gap(near, Fen::new(1_724_999), line), Some(Fen::new(1)));
        assert_eq!(edge_gap(sub, Fen::new(100), line), None);
        let standard = Fen::new(1_150_000);
        assert_eq!(
            IncomeBand::of(Fen::new(1_149_999), standard, line),
            IncomeBand::BelowSubsistence
        );
        assert_eq!(
            IncomeBand::of(standard, standard, line),
            IncomeBand::BelowEdgeLine
        );
        assert_eq!(
            IncomeBand::of(line, standard, line),
            IncomeBand::AboveEdgeLine
        );
    }

    #[test]
    fn addresses_keep_only_the_street() {
        assert_eq!(
            mask_address("鹿城区五马街道解放街12号301室"),
            "鹿城区五马街道****"
        );
        assert_eq!(
            mask_address("鹿城区藤桥镇西腾村3幢101室"),
            "鹿城区藤桥镇****"
        );
        assert_eq!(mask_address("解放街12号301室"), "解放街12号****");
        assert_eq!(mask_address("五马街道"), "****");
        assert_eq!(mask_address("  "), "");
    }

    #[test]
    fn rates_and_ages() {
        assert_eq!(rate_permille(2, 3), Some(666));
        assert_eq!(rate_permille(0, 0), None);
        assert_eq!(rate_permille(5, 3), Some(1_000));
        assert_eq!(permille_text(666), "66.6%");
        assert_eq!(permille_text(1_000), "100.0%");
        assert!(is_working_age(2008, 2024));
        assert!(!is_working_age(2009, 2024));
        assert!(is_working_age(1965, 2024));
        assert!(!is_working_age(1964, 2024));
    }
}
