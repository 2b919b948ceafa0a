//! Region packs: everything that is local to one district, as data.
//!
//! A pack is a `pack.toml` plus two CSV files (divisions and indicator targets). The platform
//! code knows no street, no indicator and no assistance figure of its own; another district
//! runs it by writing another pack. Loading is pure: the caller reads the files and passes
//! their text, and every error names the file, line and column so the person editing the pack
//! can fix it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::DivisionCode;
use crate::indicator::{parse_plain_decimal, Better, Target};
use crate::money::{parse_yuan, Fen};

/// A loaded, validated region pack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionPack {
    /// The district's own division code, e.g. `330302`.
    pub code: DivisionCode,
    /// Name in Chinese, e.g. `鹿城区`.
    pub name: String,
    /// Name in English, for the English interface.
    pub name_en: String,
    /// IANA time zone the district's dates are reckoned in (deadlines, "today").
    pub timezone: String,
    /// The district, its streets and towns, and their communities and villages, in file order.
    pub divisions: Vec<Division>,
    /// Indicators in file order (the plan's order).
    pub indicators: Vec<IndicatorDef>,
    /// Years that have targets, ascending; every indicator has a target entry for each.
    pub years: Vec<i16>,
    /// How far from an "about" (左右) target still counts as met, as a fraction (0.02 = ±2%).
    pub about_tolerance: Decimal,
    /// Near-subsistence line = subsistence standard × this.
    pub edge_multiplier: Decimal,
    /// Minimum living standard (低保) per person per year, by year.
    pub subsistence_standard: BTreeMap<i16, Fen>,
    /// Categories of the service library.
    pub service_categories: Vec<ServiceCategory>,
    /// Where the pack's figures come from, for an "about the data" page.
    pub sources: Vec<String>,
}

/// Level of a division in the statistical hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DivisionLevel {
    /// The district itself (区).
    District,
    /// An urban street office (街道).
    Street,
    /// A town (镇).
    Town,
    /// An urban residents' community (社区).
    Community,
    /// A rural village (村).
    Village,
}

impl DivisionLevel {
    fn parse(text: &str) -> Option<DivisionLevel> {
        Some(match text {
            "district" => Self::District,
            "street" => Self::Street,
            "town" => Self::Town,
            "community" => Self::Community,
            "village" => Self::Village,
            _ => return None,
        })
    }

    /// Whether a division at this level may sit directly under one at `parent`.
    fn may_sit_under(self, parent: DivisionLevel) -> bool {
        match self {
            Self::District => false,
            Self::Street | Self::Town => parent == Self::District,
            Self::Community | Self::Village => matches!(parent, Self::Street | Self::Town),
        }
    }

    fn is_community_level(self) -> bool {
        matches!(self, Self::Community | Self::Village)
    }
}

/// One division of the district.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Division {
    /// Statistical division code.
    pub code: DivisionCode,
    /// Name in Chinese.
    pub name: String,
    /// Level in the hierarchy.
    pub level: DivisionLevel,
    /// The division this one belongs to. Inside the pack for everything but the district,
    /// whose parent (the city) lies outside it.
    pub parent: Option<DivisionCode>,
}

/// One indicator of the plan's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorDef {
    /// Number as printed in the plan: `1`..`25`, `T1`..`T3`.
    pub code: String,
    /// The plan's grouping, e.g. `经济高质量发展`.
    pub category: String,
    /// Indicator name.
    pub name: String,
    /// Unit as printed; may be empty for ratios.
    pub unit: String,
    /// The departments responsible.
    pub owner: String,
    /// The plan's kind of indicator, e.g. `共性指标`.
    pub attribute: String,
    /// Which direction is an improvement.
    pub better: Better,
    /// Where actual values come from.
    pub source: IndicatorSource,
    /// Target for each of the pack's years.
    pub targets: BTreeMap<i16, Target>,
}

/// Where an indicator's actual values come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IndicatorSource {
    /// Entered by staff from the owning department's report.
    Manual,
    /// Counted from the platform's own records, then divided by `divisor` to match the
    /// printed unit (e.g. volunteers counted one by one, printed in 万人).
    Computed {
        /// What to count.
        metric: Metric,
        /// What to divide the count by.
        divisor: Decimal,
    },
}

/// A count the platform can take from its own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Charity trusts filed, cumulative.
    CharityTrusts,
    /// Charity organisations registered or recognised.
    CharityOrganizations,
    /// Registered volunteers.
    RegisteredVolunteers,
}

/// A category of the service library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCategory {
    /// Stable key (lowercase ASCII, digits and `_`), safe in URLs and database rows.
    pub code: String,
    /// Name in Chinese.
    pub name: String,
    /// Name in English.
    pub name_en: String,
}

impl RegionPack {
    /// Loads and validates a pack from the text of its three files.
    ///
    /// Every problem is an error, never a default: an unreadable target, an unknown parent or a
    /// duplicate code would otherwise quietly change what the platform reports.
    pub fn from_sources(
        pack_toml: &str,
        divisions_csv: &str,
        indicators_csv: &str,
    ) -> Result<RegionPack, PackError> {
        let raw = read_pack_toml(pack_toml)?;
        let files = PackFiles::from_raw(&raw);
        let code = DivisionCode::parse(&raw.region.code)
            .map_err(|e| PackError::key(PACK_TOML, "region.code", e.to_string()))?;
        for (key, value) in [
            ("region.name", &raw.region.name),
            ("region.name_en", &raw.region.name_en),
            ("region.timezone", &raw.region.timezone),
        ] {
            if value.trim().is_empty() {
                return Err(PackError::key(PACK_TOML, key, "must not be empty"));
            }
        }

        let divisions = read_divisions(&files.divisions, divisions_csv, &code)?;
        let (years, mut indicators) = read_indicators(&files.indicators, indicators_csv)?;

        if raw.indicators.years != years {
            return Err(PackError::key(
                PACK_TOML,
                "indicators.years",
                format!(
                    "lists {:?} but {} has target columns for {:?}",
                    raw.indicators.years, files.indicators, years
                ),
            ));
        }
        for name in &raw.indicators.lower_is_better {
            let indicator = find_indicator(&mut indicators, name).ok_or_else(|| {
                PackError::key(
                    PACK_TOML,
                    "indicators.lower_is_better",
                    format!(
                        "\"{name}\" is not an indicator code in {}",
                        files.indicators
                    ),
                )
            })?;
            indicator.better = Better::Lower;
        }
        for (name, computed) in &raw.indicators.computed {
            let key = format!("indicators.computed.{name}");
            let indicator = find_indicator(&mut indicators, name).ok_or_else(|| {
                PackError::key(
                    PACK_TOML,
                    &key,
                    format!(
                        "\"{name}\" is not an indicator code in {}",
                        files.indicators
                    ),
                )
            })?;
            let divisor = parse_positive_decimal(&computed.divisor).ok_or_else(|| {
                PackError::key(
                    PACK_TOML,
                    &format!("{key}.divisor"),
                    format!("cannot read \"{}\" as a positive number", computed.divisor),
                )
            })?;
            indicator.source = IndicatorSource::Computed {
                metric: computed.metric,
                divisor,
            };
        }

        let percent = &raw.indicators.about_tolerance_percent;
        let about_tolerance = parse_plain_decimal(percent)
            .filter(|p| *p < Decimal::ONE_HUNDRED)
            .map(|p| p / Decimal::ONE_HUNDRED)
            .ok_or_else(|| {
                PackError::key(
                    PACK_TOML,
                    "indicators.about_tolerance_percent",
                    format!("cannot read \"{percent}\" as a percentage from 0 to under 100"),
                )
            })?;

        let multiplier = &raw.assistance.edge_multiplier;
        let edge_multiplier = parse_positive_decimal(multiplier).ok_or_else(|| {
            PackError::key(
                PACK_TOML,
                "assistance.edge_multiplier",
                format!("cannot read \"{multiplier}\" as a positive number"),
            )
        })?;

        let mut subsistence_standard = BTreeMap::new();
        for (year, yuan) in &raw.assistance.subsistence_standard_yuan_per_year {
            let key = format!("assistance.subsistence_standard_yuan_per_year.{year}");
            let year_number = parse_year(year).ok_or_else(|| {
                PackError::key(PACK_TOML, &key, format!("\"{year}\" is not a year"))
            })?;
            let fen = parse_yuan(yuan).map_err(|e| {
                PackError::key(PACK_TOML, &key, format!("cannot read \"{yuan}\": {e}"))
            })?;
            subsistence_standard.insert(year_number, fen);
        }

        let mut service_categories: Vec<ServiceCategory> = Vec::new();
        for (i, category) in raw.service_categories.iter().enumerate() {
            let key = format!("service_categories[{i}]");
            let code = &category.code;
            let code_ok = !code.is_empty()
                && code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !code_ok {
                return Err(PackError::key(
                    PACK_TOML,
                    &format!("{key}.code"),
                    format!("\"{code}\" must be lowercase ASCII letters, digits and _"),
                ));
            }
            if service_categories.iter().any(|c| &c.code == code) {
                return Err(PackError::key(
                    PACK_TOML,
                    &format!("{key}.code"),
                    format!("\"{code}\" is used by an earlier category"),
                ));
            }
            if category.name.trim().is_empty() || category.name_en.trim().is_empty() {
                return Err(PackError::key(
                    PACK_TOML,
                    &key,
                    "name and name_en must not be empty",
                ));
            }
            service_categories.push(category.clone());
        }

        Ok(RegionPack {
            code,
            name: raw.region.name,
            name_en: raw.region.name_en,
            timezone: raw.region.timezone,
            divisions,
            indicators,
            years,
            about_tolerance,
            edge_multiplier,
            subsistence_standard,
            service_categories,
            sources: raw.region.sources,
        })
    }

    /// The division with this code.
    pub fn division(&self, code: &str) -> Option<&Division> {
        self.divisions.iter().find(|d| d.code.as_str() == code)
    }

    /// The indicator with this code as printed (`"8"`, `"T3"`).
    pub fn indicator(&self, code: &str) -> Option<&IndicatorDef> {
        self.indicators.iter().find(|i| i.code == code)
    }

    /// The streets and towns: the level at which the district organises its work.
    pub fn streets_and_towns(&self) -> impl Iterator<Item = &Division> {
        self.divisions
            .iter()
            .filter(|d| matches!(d.level, DivisionLevel::Street | DivisionLevel::Town))
    }

    /// The communities and villages directly under the street or town `parent`.
    pub fn communities_of<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a Division> {
        self.divisions.iter().filter(move |d| {
            d.level.is_community_level() && d.parent.as_ref().is_some_and(|p| p.as_str() == parent)
        })
    }

    /// The near-subsistence (低保边缘) income line for `year`, per person per year: the
    /// subsistence standard times the pack's multiplier, rounded down to the fen so that a
    /// household exactly on the line is judged the same way however the figure is displayed.
    /// `None` when the pack has no standard for that year.
    pub fn edge_line(&self, year: i16) -> Option<Fen> {
        let standard = self.subsistence_standard.get(&year)?;
        let line = Decimal::from(standard.get()).checked_mul(self.edge_multiplier)?;
        line.floor().to_i64().map(Fen::new)
    }
}

/// The names of the CSV files a pack refers to, so the caller knows what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFiles {
    /// Divisions file, `divisions.csv` unless `[divisions] file` says otherwise.
    pub divisions: String,
    /// Indicators file, `indicators.csv` unless `[indicators] file` says otherwise.
    pub indicators: String,
}

impl PackFiles {
    fn from_raw(raw: &RawPack) -> PackFiles {
        PackFiles {
            divisions: raw
                .divisions
                .as_ref()
                .and_then(|d| d.file.clone())
                .unwrap_or_else(|| "divisions.csv".to_owned()),
            indicators: raw
                .indicators
                .file
                .clone()
                .unwrap_or_else(|| "indicators.csv".to_owned()),
        }
    }
}

/// Reads the file names out of a `pack.toml`, for a caller that loads a pack from disk.
pub fn file_names(pack_toml: &str) -> Result<PackFiles, PackError> {
    read_pack_toml(pack_toml).map(|raw| PackFiles::from_raw(&raw))
}

/// A problem in a region pack, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{location}: {reason}")]
pub struct PackError {
    /// The file's name, e.g. `indicators.csv`.
    pub file: String,
    /// Where in the file.
    pub location: PackLocation,
    /// What is wrong, in words a pack editor can act on.
    pub reason: String,
}

/// Where in a pack file a problem is. Lines count as a person counts them, the CSV header
/// being line 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackLocation {
    /// The file as a whole (e.g. a row that is missing altogether).
    File,
    /// A line.
    Line {
        /// 1-based line number.
        line: u64,
    },
    /// A cell of a CSV file.
    Cell {
        /// 1-based line number.
        line: u64,
        /// The column's header.
        column: String,
    },
    /// A key of `pack.toml`, dotted (`indicators.lower_is_better`).
    Key {
        /// The dotted key.
        key: String,
    },
}

impl fmt::Display for PackLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => Ok(()),
            Self::Line { line } => write!(f, " line {line}"),
            Self::Cell { line, column } => write!(f, " line {line}, column {column}"),
            Self::Key { key } => write!(f, " key {key}"),
        }
    }
}

const PACK_TOML: &str = "pack.toml";

impl PackError {
    fn new(file: &str, location: PackLocation, reason: impl Into<String>) -> PackError {
        PackError {
            file: file.to_owned(),
            location,
            reason: reason.into(),
        }
    }

    fn key(file: &str, key: &str, reason: impl Into<String>) -> PackError {
        Self::new(
            file,
            PackLocation::Key {
                key: key.to_owned(),
            },
            reason,
        )
    }

    fn cell(file: &str, line: u64, column: &str, reason: impl Into<String>) -> PackError {
        let column = column.to_owned();
        Self::new(file, PackLocation::Cell { line, column }, reason)
    }

    fn line(file: &str, line: u64, reason: impl Into<String>) -> PackError {
        Self::new(file, PackLocation::Line { line }, reason)
    }
}

// ---------------------------------------------------------------------------------------------
// pack.toml
// ---------------------------------------------------------------------------------------------

/// `pack.toml` as written. Numbers that must be exact are strings; they are checked after
/// deserialising so errors can name the key. Unknown keys are refused, since a misspelt key
/// would otherwise be silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    region: RawRegion,
    divisions: Option<RawFile>,
    indicators: RawIndicators,
    assistance: RawAssistance,
    #[serde(default)]
    service_categories: Vec<ServiceCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    code: String,
    name: String,
    name_en: String,
    timezone: String,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicators {
    file: Option<String>,
    years: Vec<i16>,
    about_tolerance_percent: String,
    #[serde(default)]
    lower_is_better: Vec<String>,
    #[serde(default)]
    computed: BTreeMap<String, RawComputed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComputed {
    metric: Metric,
    divisor: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssistance {
    edge_multiplier: String,
    subsistence_standard_yuan_per_year: BTreeMap<String, String>,
}

fn read_pack_toml(text: &str) -> Result<RawPack, PackError> {
    toml::from_str(text).map_err(|e| {
        let location = match e.span() {
            Some(span) => PackLocation::Line {
                line: line_of_offset(text, span.start),
            },
            None => PackLocation::File,
        };
        PackError::new(PACK_TOML, location, e.message().trim())
    })
}

/// 1-based line of a byte offset.
fn line_of_offset(text: &str, offset: usize) -> u64 {
    let before = text.get(..offset).unwrap_or(text);
    let newlines = before.bytes().filter(|&b| b == b'\n').count();
    u64::try_from(newlines).map_or(u64::MAX, |n| n.saturating_add(1))
}

fn find_indicator<'a>(
    indicators: &'a mut [IndicatorDef],
    code: &str,
) -> Option<&'a mut IndicatorDef> {
    indicators.iter_mut().find(|i| i.code == code)
}

fn parse_positive_decimal(text: &str) -> Option<Decimal> {
    parse_plain_decimal(text).filter(|d| d.is_sign_positive() && !d.is_zero())
}

fn parse_year(text: &str) -> Option<i16> {
    if text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// CSV files
// ---------------------------------------------------------------------------------------------

/// A CSV file being read, with column lookup by header name.
struct Csv<'a> {
    file: &'a str,
    headers: csv::StringRecord,
    reader: csv::Reader<&'a [u8]>,
}

impl<'a> Csv<'a> {
    fn open(file: &'a str, text: &'a str) -> Result<Csv<'a>, PackError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| PackError::line(file, 1, e.to_string()))?
            .clone();
        Ok(Csv {
            file,
            headers,
            reader,
        })
    }

    /// Index of a required column.
    fn column(&self, name: &str) -> Result<usize, PackError> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| PackError::line(self.file, 1, format!("missing column {name}")))
    }

    /// The records with their line numbers.
    fn records(&mut self) -> Result<Vec<(u64, csv::StringRecord)>, PackError> {
        let file = self.file;
        self.reader
            .records()
            .map(|record| {
                let record = record.map_err(|e| {
                    let line = e.position().map_or(0, csv::Position::line);
                    PackError::line(file, line, e.to_string())
                })?;
                let line = record.position().map_or(0, csv::Position::line);
                Ok((line, record))
            })
            .collect()
    }
}

fn read_divisions(
    file: &str,
    text: &str,
    region: &DivisionCode,
) -> Result<Vec<Division>, PackError> {
    let mut csv = Csv::open(file, text)?;
    let [code_col, name_col, level_col, parent_col] =
        ["code", "name", "level", "parent_code"].map(|name| csv.column(name));
    let (code_col, name_col, level_col, parent_col) =
        (code_col?, name_col?, level_col?, parent_col?);

    // Each division with the line it was read from, for error messages.
    let mut rows: Vec<(u64, Division)> = Vec::new();
    let mut line_of: HashMap<DivisionCode, u64> = HashMap::new();
    for (line, record) in csv.records()? {
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let code = DivisionCode::parse(cell(code_col))
            .map_err(|e| PackError::cell(file, line, "code", e.to_string()))?;
        if let Some(first) = line_of.get(&code) {
            return Err(PackError::cell(
                file,
                line,
                "code",
                format!("division code {code} is already used on line {first}"),
            ));
        }
        let name = cell(name_col);
        if name.is_empty() {
            return Err(PackError::cell(file, line, "name", "must not be empty"));
        }
        let level = DivisionLevel::parse(cell(level_col)).ok_or_else(|| {
            PackError::cell(
                file,
                line,
                "level",
                format!(
                    "\"{}\" is not one of district, street, town, community, village",
                    cell(level_col)
                ),
            )
        })?;
        let parent = match cell(parent_col) {
            "" => None,
            text => Some(
                DivisionCode::parse(text)
                    .map_err(|e| PackError::cell(file, line, "parent_code", e.to_string()))?,
            ),
        };
        line_of.insert(code.clone(), line);
        rows.push((
            line,
            Division {
                code,
                name: name.to_owned(),
                level,
                parent,
            },
        ));
    }

    let mut districts = rows
        .iter()
        .filter(|(_, d)| d.level == DivisionLevel::District);
    let Some((district_line, district)) = districts.next() else {
        return Err(PackError::new(
            file,
            PackLocation::File,
            format!("has no district row; expected one with code {region}"),
        ));
    };
    if let Some((line, _)) = districts.next() {
        return Err(PackError::cell(
            file,
            *line,
            "level",
            format!("a second district; the pack has one, on line {district_line}"),
        ));
    }
    if &district.code != region {
        return Err(PackError::cell(
            file,
            *district_line,
            "code",
            format!(
                "the district is {} but pack.toml region.code is {region}",
                district.code
            ),
        ));
    }

    let level_of: HashMap<&DivisionCode, DivisionLevel> =
        rows.iter().map(|(_, d)| (&d.code, d.level)).collect();
    for (line, division) in &rows {
        if division.level == DivisionLevel::District {
            continue;
        }
        let error = |reason: String| PackError::cell(file, *line, "parent_code", reason);
        let parent = division
            .parent
            .as_ref()
            .ok_or_else(|| error("must name the division this one belongs to".to_owned()))?;
        let parent_level = level_of
            .get(parent)
            .ok_or_else(|| error(format!("parent {parent} is not a division in this file")))?;
        if !division.level.may_sit_under(*parent_level) {
            return Err(error(format!(
                "a {:?} cannot sit under {parent}, a {:?}",
                division.level, parent_level
            )));
        }
        if !division.code.is_within(parent) {
            return Err(error(format!(
                "code {} does not start with its parent's code {parent}",
                division.code
            )));
        }
    }
    Ok(rows.into_iter().map(|(_, d)| d).collect())
}

const TARGET_PREFIX: &str = "target_";

fn read_indicators(file: &str, text: &str) -> Result<(Vec<i16>, Vec<IndicatorDef>), PackError> {
    let mut csv = Csv::open(file, text)?;
    let [code_col, category_col, name_col, unit_col, owner_col, attribute_col] =
        ["no", "category", "indicator", "unit", "owner", "attribute"].map(|name| csv.column(name));
    let (code_col, category_col, name_col, unit_col, owner_col, attribute_col) = (
        code_col?,
        category_col?,
        name_col?,
        unit_col?,
        owner_col?,
        attribute_col?,
    );

    // The years are whatever target_YYYY columns the file has, in ascending order.
    let mut target_cols: Vec<(i16, usize, String)> = Vec::new();
    for (i, header) in csv.headers.iter().enumerate() {
        let Some(year) = header.strip_prefix(TARGET_PREFIX) else {
            continue;
        };
        let year = parse_year(year).ok_or_else(|| {
            PackError::cell(file, 1, header, "a target column is named target_YYYY")
        })?;
        if target_cols.last().is_some_and(|(last, _, _)| *last >= year) {
            return Err(PackError::cell(
                file,
                1,
                header,
                "target columns must be in ascending year order, each year once",
            ));
        }
        target_cols.push((year, i, header.to_owned()));
    }
    if target_cols.is_empty() {
        return Err(PackError::line(file, 1, "no target_YYYY columns"));
    }
    let years = target_cols.iter().map(|(year, _, _)| *year).collect();

    let mut indicators: Vec<IndicatorDef> = Vec::new();
    let mut line_of: BTreeMap<String, u64> = BTreeMap::new();
    for (line, record) in csv.records()? {
        let cell = |i: usize| record.get(i).unwrap_or_default().to_owned();
        let code = cell(code_col);
        if code.is_empty() {
            return Err(PackError::cell(file, line, "no", "must not be empty"));
        }
        if let Some(first) = line_of.get(&code) {
            return Err(PackError::cell(
                file,
                line,
                "no",
                format!("indicator code \"{code}\" is already used on line {first}"),
            ));
        }
        let name = cell(name_col);
        if name.is_empty() {
            return Err(PackError::cell(
                file,
                line,
                "indicator",
                "must not be empty",
            ));
        }
        let mut targets = BTreeMap::new();
        for (year, i, header) in &target_cols {
            let target = Target::parse(&cell(*i))
                .map_err(|e| PackError::cell(file, line, header, e.to_string()))?;
            targets.insert(*year, target);
        }
        line_of.insert(code.clone(), line);
        indicators.push(IndicatorDef {
            code,
            category: cell(category_col),
            name,
            unit: cell(unit_col),
            owner: cell(owner_col),
            attribute: cell(attribute_col),
            better: Better::Higher,
            source: IndicatorSource::Manual,
            targets,
        });
    }
    Ok((years, indicators))
}

/// The Lucheng pack, compiled into the binary so tests, the demo and a first run need no files.
/// `include_str!` reads at compile time; at run time this is plain data.
pub mod embedded {
    use super::RegionPack;

    /// Lucheng's `pack.toml`.
    pub const LUCHENG_PACK_TOML: &str = include_str!("../../../packs/lucheng/pack.toml");
    /// Lucheng's divisions.
    pub const LUCHENG_DIVISIONS_CSV: &str = include_str!("../../../packs/lucheng/divisions.csv");
    /// Lucheng's indicator table.
    pub const LUCHENG_INDICATORS_CSV: &str = include_str!("../../../packs/lucheng/indicators.csv");

    /// The Lucheng pack, loaded.
    ///
    /// # Panics
    ///
    /// Only if the embedded files are broken, which the crate's tests rule out.
    pub fn lucheng() -> RegionPack {
        RegionPack::from_sources(
            LUCHENG_PACK_TOML,
            LUCHENG_DIVISIONS_CSV,
            LUCHENG_INDICATORS_CSV,
        )
        .expect("the embedded Lucheng pack is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::embedded::*;
    use super::*;
    use crate::indicator::Comparator;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    fn load_with(pack: &str, divisions: &str, indicators: &str) -> Result<RegionPack, PackError> {
        RegionPack::from_sources(pack, divisions, indicators)
    }

    #[test]
    fn lucheng_loads() {
        let pack = lucheng();
        assert_eq!(pack.code.as_str(), "330302");
        assert_eq!(pack.name, "鹿城区");
        assert_eq!(pack.timezone, "Asia/Shanghai");
        assert_eq!(pack.years, [2021, 2022, 2023]);
        let count = |level| pack.divisions.iter().filter(|d| d.level == level).count();
        assert_eq!(count(DivisionLevel::District), 1);
        assert_eq!(count(DivisionLevel::Street), 12);
        assert_eq!(count(DivisionLevel::Town), 2);
        assert_eq!(count(DivisionLevel::Community), 91);
        assert_eq!(count(DivisionLevel::Village), 80);
        assert_eq!(pack.streets_and_towns().count(), 14);
        let community_level: usize = pack
            .streets_and_towns()
            .map(|s| pack.communities_of(s.code.as_str()).count())
            .sum();
        assert_eq!(community_level, 171);
        assert_eq!(pack.communities_of("330302006").count(), 14);
        assert_eq!(pack.division("330302006").unwrap().name, "五马街道");
        assert!(pack.division("330302999").is_none());
        assert_eq!(pack.service_categories.len(), 6);
        assert_eq!(pack.about_tolerance, d("0.02"));
        assert!(!pack.sources.is_empty());
    }

    #[test]
    fn lucheng_indicators() {
        let pack = lucheng();
        let mut expected: Vec<String> = (1..=25).map(|n| n.to_string()).collect();
        expected.extend(["T1", "T2", "T3"].map(String::from));
        let codes: Vec<&str> = pack.indicators.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(codes, expected);
        let codes: std::collections::BTreeSet<String> = expected.into_iter().collect();
        assert_eq!(codes.len(), 28);

        let target = |code: &str, year: i16| pack.indicator(code).unwrap().targets[&year].clone();
        let t = target("8", 2021);
        assert_eq!(
            (t.comparator, t.value),
            (Some(Comparator::Ge), Some(d("90.6")))
        );
        let t = target("6", 2022);
        assert_eq!(
            (t.comparator, t.value),
            (Some(Comparator::About), Some(d("1.7")))
        );
        let t = target("2", 2021);
        assert_eq!((t.comparator, t.value), (Some(Comparator::Increase), None));
        let three = pack.indicator("3").unwrap();
        assert_eq!(three.better, Better::Lower);
        assert_eq!(three.targets[&2022].raw, "6.20");
        assert_eq!(pack.indicator("25").unwrap().better, Better::Lower);
        assert_eq!(pack.indicator("1").unwrap().better, Better::Higher);
        assert_eq!(pack.indicator("1").unwrap().source, IndicatorSource::Manual);
        assert_eq!(
            pack.indicator("T3").unwrap().source,
            IndicatorSource::Computed {
                metric: Metric::RegisteredVolunteers,
                divisor: d("10000")
            }
        );
    }

    #[test]
    fn edge_line_is_exact() {
        let pack = lucheng();
        assert_eq!(pack.subsistence_standard[&2021], Fen::new(1_063_200));
        assert_eq!(pack.edge_line(2021), Some(Fen::new(1_594_800)));
        assert_eq!(pack.edge_line(2021).unwrap().to_string(), "¥15,948.00");
        assert_eq!(pack.edge_line(2020), None);
        // Rounds down to the fen.
        let mut odd = pack.clone();
        odd.subsistence_standard.insert(2030, Fen::new(101));
        odd.edge_multiplier = d("1.5");
        assert_eq!(odd.edge_line(2030), Some(Fen::new(151)));
    }

    #[test]
    fn file_names_come_from_the_pack() {
        let files = file_names(LUCHENG_PACK_TOML).unwrap();
        assert_eq!(files.divisions, "divisions.csv");
        assert_eq!(files.indicators, "indicators.csv");
    }

    #[test]
    fn broken_target_names_line_and_column() {
        let broken = LUCHENG_INDICATORS_CSV.replace(
            "城乡区域协调发展,8,常住人口城镇化率,%,≥90.6,91.5左右,",
            "城乡区域协调发展,8,常住人口城镇化率,%,≥90.6,abc,",
        );
        assert_ne!(broken, LUCHENG_INDICATORS_CSV);
        let err = load_with(LUCHENG_PACK_TOML, LUCHENG_DIVISIONS_CSV, &broken).unwrap_err();
        assert_eq!(
            err.location,
            PackLocation::Cell {
                line: 9,
                column: "target_2022".to_owned()
            }
        );
        let message = err.to_string();
        assert!(
            message.starts_with(
                "indicators.csv line 9, column target_2022: cannot read target \"abc\""
            ),
            "{message}"
        );
    }

    #[test]
    fn unknown_parent_is_an_error() {
        let broken = LUCHENG_DIVISIONS_CSV.replace(
            "330302006044,鼓楼社区,community,330302006",
            "330302006044,鼓楼社区,community,330302099",
        );
        let err = load_with(LUCHENG_PACK_TOML, &broken, LUCHENG_INDICATORS_CSV).unwrap_err();
        assert_eq!(
            err.to_string(),
            "divisions.csv line 17, column parent_code: parent 330302099 is not a division in this file"
        );
    }

    #[test]
    fn duplicate_codes_are_errors() {
        let broken =
            LUCHENG_DIVISIONS_CSV.replace("330302006045,墨池社区", "330302006044,墨池社区");
        let err = load_with(LUCHENG_PACK_TOML, &broken, LUCHENG_INDICATORS_CSV).unwrap_err();
        assert_eq!(
            err.to_string(),
            "divisions.csv line 18, column code: division code 330302006044 is already used on line 17"
        );

        let broken = LUCHENG_INDICATORS_CSV.replace(",T2,慈善组织数量", ",T1,慈善组织数量");
        let err = load_with(LUCHENG_PACK_TOML, LUCHENG_DIVISIONS_CSV, &broken).unwrap_err();
        assert_eq!(
            err.to_string(),
            "indicators.csv line 28, column no: indicator code \"T1\" is already used on line 27"
        );
    }

    #[test]
    fn pack_toml_must_name_real_indicators() {
        let broken = LUCHENG_PACK_TOML.replace(
            "lower_is_better = [\"3\", \"9\", \"25\"]",
            "lower_is_better = [\"3\", \"9\", \"26\"]",
        );
        assert_ne!(broken, LUCHENG_PACK_TOML);
        let err = load_with(&broken, LUCHENG_DIVISIONS_CSV, LUCHENG_INDICATORS_CSV).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pack.toml key indicators.lower_is_better: \"26\" is not an indicator code in indicators.csv"
        );

        let broken = LUCHENG_PACK_TOML.replace("T3 = {", "T9 = {");
        let err = load_with(&broken, LUCHENG_DIVISIONS_CSV, LUCHENG_INDICATORS_CSV).unwrap_err();
        assert_eq!(
            err.location,
            PackLocation::Key {
                key: "indicators.computed.T9".to_owned()
            }
        );
    }

    #[test]
    fn other_pack_errors() {
        let cases: &[(&str, &str, &str)] = &[
            // Years that do not match the CSV.
            (
                "years = [2021, 2022, 2023]",
                "years = [2021, 2022]",
                "key indicators.years",
            ),
            // A misspelt key is refused, with its line.
            (
                "edge_multiplier = \"1.5\"",
                "edge_multiplyer = \"1.5\"",
                "pack.toml line",
            ),
            (
                "edge_multiplier = \"1.5\"",
                "edge_multiplier = \"0\"",
                "key assistance.edge_multiplier",
            ),
            (
                "edge_multiplier = \"1.5\"",
                "edge_multiplier = \"1,5\"",
                "key assistance.edge_multiplier",
            ),
            (
                "about_tolerance_percent = \"2\"",
                "about_tolerance_percent = \"2%\"",
                "key indicators.about_tolerance_percent",
            ),
            (
                "2022 = \"11000\"",
                "2022 = \"11000.001\"",
                "key assistance.subsistence_standard_yuan_per_year.2022",
            ),
            (
                "code = \"330302\"",
                "code = \"330303\"",
                "divisions.csv line 2, column code",
            ),
            (
                "code = \"health\"",
                "code = \"daily_care\"",
                "key service_categories[1].code",
            ),
            (
                "metric = \"charity_trusts\"",
                "metric = \"charity_truss\"",
                "pack.toml line 45",
            ),
        ];
        for (from, to, expected) in cases {
            let broken = LUCHENG_PACK_TOML.replacen(from, to, 1);
            assert_ne!(&broken, LUCHENG_PACK_TOML, "{from}");
            let err = load_with(&broken, LUCHENG_DIVISIONS_CSV, LUCHENG_INDICATORS_CSV)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{to}: {err}");
        }
    }

    #[test]
    fn division_hierarchy_is_checked() {
        let cases: &[(&str, &str, &str)] = &[
            // A community directly under the district.
            (
                "330302006044,鼓楼社区,community,330302006",
                "330302006044,鼓楼社区,community,330302",
                "cannot sit under",
            ),
            // A community whose code is not inside its parent's.
            (
                "330302006044,鼓楼社区,community,330302006",
                "330302006044,鼓楼社区,community,330302023",
                "does not start with",
            ),
            (
                "330302006,五马街道,street,330302",
                "330302006,五马街道,district,330302",
                "a second district",
            ),
            (
                "330302006,五马街道,street,330302",
                "330302006,五马街道,borough,330302",
                "column level",
            ),
            (
                "330302006,五马街道,street,330302",
                "330302006,,street,330302",
                "column name",
            ),
            (
                "330302006,五马街道,street,330302",
                "330302006,五马街道,street",
                "line 3",
            ),
        ];
        for (from, to, expected) in cases {
            let broken = LUCHENG_DIVISIONS_CSV.replacen(from, to, 1);
            assert_ne!(&broken, LUCHENG_DIVISIONS_CSV, "{from}");
            let err = load_with(LUCHENG_PACK_TOML, &broken, LUCHENG_INDICATORS_CSV)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{to}: {err}");
        }
        let no_district = LUCHENG_DIVISIONS_CSV.replace("330302,鹿城区,district,3303\n", "");
        let err = load_with(LUCHENG_PACK_TOML, &no_district, LUCHENG_INDICATORS_CSV).unwrap_err();
        assert!(err.to_string().contains("no district"), "{err}");
    }

    #[test]
    fn indicator_header_is_checked() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "target_2021,target_2022",
                "target_2022,target_2021",
                "column target_2021",
            ),
            ("target_2021,", "target_21,", "column target_21"),
            (",unit,", ",units,", "missing column unit"),
        ];
        for (from, to, expected) in cases {
            let broken = LUCHENG_INDICATORS_CSV.replacen(from, to, 1);
            let err = load_with(LUCHENG_PACK_TOML, LUCHENG_DIVISIONS_CSV, &broken)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{to}: {err}");
            assert!(err.starts_with("indicators.csv line 1"), "{err}");
        }
    }
}
