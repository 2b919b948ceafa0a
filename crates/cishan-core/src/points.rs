//! Charity points (慈善积分, 一键算): rule sets as data, and the pure evaluation of a participant's
//! acts under them. See docs/points.md.
//!
//! * A [`RuleSet`] is a versioned TOML document with the local date (Asia/Shanghai) it takes
//!   effect. A [`RuleBook`] holds every published set; each act is evaluated under the set in
//!   force on the act's local day (the latest `effective_from` on or before it).
//! * Every conversion counts whole steps (`floor(quantity / step) × points`): ¥99 at ¥100 steps
//!   earns nothing. Multipliers are integer percents, applied after the steps and rounded down.
//! * Caps limit the honour points one kind of act may earn per local day and per local month.
//! * [`evaluate`] walks a participant's acts in `(occurred_at, seq)` order and gives each its
//!   honour and spendable points. It is deterministic and uses integers only, so evaluating the
//!   same acts under the same rules twice gives the same answer (recompute writes nothing).
//! * [`take_fefo`] chooses which spendable lots a redemption uses: unexpired lots only, the
//!   first to expire first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The time zone that cuts days and months for caps, effective dates and expiry.
pub const POINTS_TIME_ZONE: &str = "Asia/Shanghai";

/// What kind of act earned the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActKind {
    /// A money donation; quantity = net amount in fen.
    Money,
    /// A goods donation; quantity = its valuation in fen.
    Goods,
    /// Verified volunteer service; quantity = minutes; category = the activity's category.
    VolunteerMinutes,
    /// A knowledge or skill donation; quantity = the minutes a reviewer assessed it as worth;
    /// category = the skill's field.
    Skill,
    /// Bank card points donated; quantity = the bank's points.
    CardPoints,
}

impl ActKind {
    pub const ALL: [ActKind; 5] = [
        ActKind::Money,
        ActKind::Goods,
        ActKind::VolunteerMinutes,
        ActKind::Skill,
        ActKind::CardPoints,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActKind::Money => "money",
            ActKind::Goods => "goods",
            ActKind::VolunteerMinutes => "volunteer_minutes",
            ActKind::Skill => "skill",
            ActKind::CardPoints => "card_points",
        }
    }

    pub fn parse(text: &str) -> Option<ActKind> {
        ActKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// A small stable number, stored next to the name for compact scans.
    pub fn code(self) -> i64 {
        match self {
            ActKind::Money => 1,
            ActKind::Goods => 2,
            ActKind::VolunteerMinutes => 3,
            ActKind::Skill => 4,
            ActKind::CardPoints => 5,
        }
    }

    pub fn from_code(code: i64) -> Option<ActKind> {
        ActKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Chinese name for pages.
    pub fn name_zh(self) -> &'static str {
        match self {
            ActKind::Money => "资金捐赠",
            ActKind::Goods => "物资捐赠",
            ActKind::VolunteerMinutes => "志愿服务",
            ActKind::Skill => "知识技能捐赠",
            ActKind::CardPoints => "银行卡积分捐赠",
        }
    }

    fn index(self) -> usize {
        match self {
            ActKind::Money => 0,
            ActKind::Goods => 1,
            ActKind::VolunteerMinutes => 2,
            ActKind::Skill => 3,
            ActKind::CardPoints => 4,
        }
    }
}

/// `floor(quantity / step) × points_per_step`: counted by whole steps, never proportionally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRule {
    /// The step: fen for money and goods, bank points for card points.
    pub step: i64,
    pub points_per_step: i64,
}

/// Per full hour (60 minutes), times an integer percent by category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourRule {
    pub points_per_hour: i64,
    /// The percent for a category not listed (100 = ×1).
    #[serde(default = "hundred")]
    pub default_percent: i64,
    #[serde(default)]
    pub category_percent: BTreeMap<String, i64>,
}

fn hundred() -> i64 {
    100
}

/// The most honour points one kind of act may earn per local day and per local month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    #[serde(default)]
    pub daily: Option<i64>,
    #[serde(default)]
    pub monthly: Option<i64>,
}

/// A tier, reached at `min_honour` honour points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub code: String,
    pub name: String,
    pub min_honour: i64,
}

/// One published version of the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Unique name of this version, e.g. `lucheng-v1`.
    pub version: String,
    pub name: String,
    /// The first local (Asia/Shanghai) day whose acts this set governs.
    pub effective_from: jiff::civil::Date,
    /// Spendable points per act as a percent of its honour points (rounded down).
    #[serde(default = "hundred")]
    pub spendable_percent: i64,
    /// Spendable points expire this many months after the act's local day.
    pub spendable_expiry_months: i64,
    pub money: StepRule,
    pub goods: StepRule,
    pub volunteer: HourRule,
    pub skill: HourRule,
    pub card_points: StepRule,
    /// Caps by act kind name (`money`, `goods`, `volunteer_minutes`, `skill`, `card_points`).
    #[serde(default)]
    pub caps: BTreeMap<String, Cap>,
    /// Ascending thresholds; the first normally has `min_honour = 0`.
    pub tiers: Vec<Tier>,
}

/// Why a rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the rule file is not valid TOML for a rule set: {0}")]
    Syntax(String),
    #[error("`{field}` is invalid: {reason}")]
    Field { field: String, reason: String },
}

fn field_error(field: &str, reason: &str) -> RuleError {
    RuleError::Field {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The largest number any rule value may hold; keeps every product inside `i64`.
const MAX_RULE_VALUE: i64 = 1_000_000_000;

impl RuleSet {
    /// Parses and checks a rule set written as TOML.
    pub fn from_toml(text: &str) -> Result<RuleSet, RuleError> {
        let set: RuleSet = toml::from_str(text).map_err(|e| RuleError::Syntax(e.to_string()))?;
        set.check()?;
        Ok(set)
    }

    fn check(&self) -> Result<(), RuleError> {
        let v = &self.version;
        if v.is_empty()
            || v.len() > 64
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(field_error(
                "version",
                "1 to 64 ASCII letters, digits, '-', '_' or '.'",
            ));
        }
        let positive = |field: &str, value: i64| {
            if value <= 0 || value > MAX_RULE_VALUE {
                Err(field_error(field, "must be a positive integer"))
            } else {
                Ok(())
            }
        };
        let non_negative = |field: &str, value: i64| {
            if !(0..=MAX_RULE_VALUE).contains(&value) {
                Err(field_error(field, "must be an integer ≥ 0"))
            } else {
                Ok(())
            }
        };
        if !(0..=100).contains(&self.spendable_percent) {
            return Err(field_error("spendable_percent", "must be 0 to 100"));
        }
        if !(1..=240).contains(&self.spendable_expiry_months) {
            return Err(field_error("spendable_expiry_months", "must be 1 to 240"));
        }
        for (name, rule) in [
            ("money", &self.money),
            ("goods", &self.goods),
            ("card_points", &self.card_points),
        ] {
            positive(&format!("{name}.step"), rule.step)?;
            non_negative(&format!("{name}.points_per_step"), rule.points_per_step)?;
        }
        for (name, rule) in [("volunteer", &self.volunteer), ("skill", &self.skill)] {
            non_negative(&format!("{name}.points_per_hour"), rule.points_per_hour)?;
            non_negative(&format!("{name}.default_percent"), rule.default_percent)?;
            for (cat, pct) in &rule.category_percent {
                non_negative(&format!("{name}.category_percent.{cat}"), *pct)?;
            }
        }
        for (kind, cap) in &self.caps {
            if ActKind::parse(kind).is_none() {
                return Err(field_error(
                    &format!("caps.{kind}"),
                    "unknown act kind (money, goods, volunteer_minutes, skill, card_points)",
                ));
            }
            if let Some(d) = cap.daily {
                non_negative(&format!("caps.{kind}.daily"), d)?;
            }
            if let Some(m) = cap.monthly {
                non_negative(&format!("caps.{kind}.monthly"), m)?;
            }
        }
        if self.tiers.is_empty() {
            return Err(field_error("tiers", "at least one tier"));
        }
        for (i, pair) in self.tiers.windows(2).enumerate() {
            if pair[1].min_honour <= pair[0].min_honour {
                return Err(field_error(
                    &format!("tiers[{}].min_honour", i + 1),
                    "thresholds must strictly increase",
                ));
            }
        }
        for (i, t) in self.tiers.iter().enumerate() {
            non_negative(&format!("tiers[{i}].min_honour"), t.min_honour)?;
            if t.code.is_empty() || self.tiers.iter().filter(|o| o.code == t.code).count() > 1 {
                return Err(field_error(
                    &format!("tiers[{i}].code"),
                    "codes must be non-empty and unique",
                ));
            }
        }
        Ok(())
    }

    /// The honour points `quantity` of `kind` earns under this set, before caps.
    pub fn convert(&self, kind: ActKind, category: Option<&str>, quantity: i64) -> i64 {
        let quantity = quantity.max(0);
        let steps = |rule: &StepRule| (quantity / rule.step).saturating_mul(rule.points_per_step);
        let hours = |rule: &HourRule| {
            let pct = category
                .and_then(|c| rule.category_percent.get(c))
                .copied()
                .unwrap_or(rule.default_percent);
            (quantity / 60)
                .saturating_mul(rule.points_per_hour)
                .saturating_mul(pct)
                / 100
        };
        match kind {
            ActKind::Money => steps(&self.money),
            ActKind::Goods => steps(&self.goods),
            ActKind::CardPoints => steps(&self.card_points),
            ActKind::VolunteerMinutes => hours(&self.volunteer),
            ActKind::Skill => hours(&self.skill),
        }
    }

    /// The spendable points that go with `honour` honour points.
    pub fn spendable_of(&self, honour: i64) -> i64 {
        honour.saturating_mul(self.spendable_percent) / 100
    }

    pub fn cap(&self, kind: ActKind) -> Cap {
        self.caps.get(kind.as_str()).cloned().unwrap_or_default()
    }

    /// The tier `honour` points reach (the highest threshold at or below), if any.
    pub fn tier_of(&self, honour: i64) -> Option<&Tier> {
        self.tiers.iter().rev().find(|t| honour >= t.min_honour)
    }

    /// The next tier above `honour`, if any.
    pub fn next_tier(&self, honour: i64) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.min_honour > honour)
    }

    /// The position of a tier code (higher is better), if this set knows it.
    pub fn tier_rank(&self, code: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.code == code)
    }

    /// The local day (as `YYYYMMDD`) on which spendable points of an act on `day` expire: the
    /// same day of the month `spendable_expiry_months` later (clamped to the month's end).
    /// Points are usable on days strictly before it.
    pub fn expiry_day(&self, day: i64) -> i64 {
        let Some(date) = date_of_day(day) else {
            return day;
        };
        let months = i32::try_from(self.spendable_expiry_months).unwrap_or(240);
        date.checked_add(jiff::Span::new().months(months))
            .map(day_of_date)
            .unwrap_or(day)
    }
}

/// A date as the integer `YYYYMMDD` (so integer order is date order).
pub fn day_of_date(date: jiff::civil::Date) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

/// The date an integer `YYYYMMDD` names, if valid.
pub fn date_of_day(day: i64) -> Option<jiff::civil::Date> {
    let year = i16::try_from(day / 10_000).ok()?;
    let month = i8::try_from(day / 100 % 100).ok()?;
    let d = i8::try_from(day % 100).ok()?;
    jiff::civil::Date::new(year, month, d).ok()
}

/// Every published rule set, ordered by effective date (ties: the later published wins).
#[derive(Debug, Clone, Default)]
pub struct RuleBook {
    sets: Vec<(i64, RuleSet)>,
}

impl RuleBook {
    /// `sets` in publication order.
    pub fn new(sets: Vec<RuleSet>) -> RuleBook {
        let mut sets: Vec<(i64, RuleSet)> = sets
            .into_iter()
            .map(|s| (day_of_date(s.effective_from), s))
            .collect();
        // Stable: for equal dates the publication order is kept, and the last one wins below.
        sets.sort_by_key(|(day, _)| *day);
        RuleBook { sets }
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn sets(&self) -> impl Iterator<Item = &RuleSet> {
        self.sets.iter().map(|(_, s)| s)
    }

    /// The index of the set in force on local day `day`, if any.
    pub fn index_for(&self, day: i64) -> Option<usize> {
        let after = self.sets.partition_point(|(from, _)| *from <= day);
        after.checked_sub(1)
    }

    pub fn get(&self, index: usize) -> &RuleSet {
        &self.sets[index].1
    }

    /// The set in force on `day`.
    pub fn for_day(&self, day: i64) -> Option<&RuleSet> {
        self.index_for(day).map(|i| self.get(i))
    }
}

/// One act as evaluation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Act {
    /// Tie-breaker for acts at the same instant: the order they were recorded.
    pub seq: i64,
    /// When it happened, in microseconds since the Unix epoch (UTC).
    pub at_us: i64,
    /// Its local day, `YYYYMMDD`.
    pub day: i64,
    pub kind: ActKind,
    pub category: Option<String>,
    pub quantity: i64,
    /// The part undone (a refund, withdrawn hours); the act counts `quantity − reversed`.
    pub reversed: i64,
}

/// What one act earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Award {
    /// The rule set applied (index into the [`RuleBook`]); `None` when no set was in force.
    pub rule: Option<usize>,
    pub honour: i64,
    pub spendable: i64,
    /// True when a cap cut the points.
    pub capped: bool,
}

/// Evaluates one participant's acts, which must be sorted by `(at_us, seq)`. Each act earns
/// `convert(quantity − reversed)` under the set in force on its day, cut to what is left of its
/// kind's daily and monthly caps (counting the points earlier acts of that day and month
/// actually earned); spendable = honour × spendable_percent / 100.
pub fn evaluate(book: &RuleBook, acts: &[Act]) -> Vec<Award> {
    // Running totals per kind: (day, earned that day), (month, earned that month).
    let mut day_used = [(0_i64, 0_i64); 5];
    let mut month_used = [(0_i64, 0_i64); 5];
    acts.iter()
        .map(|act| {
            let Some(index) = book.index_for(act.day) else {
                return Award::default();
            };
            let set = book.get(index);
            let net = (act.quantity - act.reversed).max(0);
            let raw = set.convert(act.kind, act.category.as_deref(), net);
            let k = act.kind.index();
            let month = act.day / 100;
            if day_used[k].0 != act.day {
                day_used[k] = (act.day, 0);
            }
            if month_used[k].0 != month {
                month_used[k] = (month, 0);
            }
            let cap = set.cap(act.kind);
            let mut honour = raw;
            if let Some(d) = cap.daily {
                honour = honour.min((d - day_used[k].1).max(0));
            }
            if let Some(m) = cap.monthly {
                honour = honour.min((m - month_used[k].1).max(0));
            }
            day_used[k].1 += honour;
            month_used[k].1 += honour;
            Award {
                rule: Some(index),
                honour,
                spendable: set.spendable_of(honour),
                capped: honour < raw,
            }
        })
        .collect()
}

/// A spendable lot as [`take_fefo`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lot {
    /// The local day (`YYYYMMDD`) it expires: usable only on earlier days.
    pub expires_on: i64,
    /// Tie-breaker: the act's sequence number.
    pub seq: i64,
    pub remaining: i64,
}

/// Not enough unexpired spendable points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("needs {wanted} points but only {available} unexpired points are available")]
pub struct NotEnoughPoints {
    pub wanted: i64,
    pub available: i64,
}

/// Which lots to take `amount` from on local day `today`: unexpired lots only
/// (`expires_on > today`), the first to expire first (ties by `seq`). Returns
/// `(index into lots, amount)` pairs summing to `amount`.
pub fn take_fefo(
    lots: &[Lot],
    today: i64,
    amount: i64,
) -> Result<Vec<(usize, i64)>, NotEnoughPoints> {
    let mut usable: Vec<usize> = (0..lots.len())
        .filter(|&i| lots[i].expires_on > today && lots[i].remaining > 0)
        .collect();
    usable.sort_by_key(|&i| (lots[i].expires_on, lots[i].seq));
    let available: i64 = usable.iter().map(|&i| lots[i].remaining).sum();
    if amount < 0 || amount > available {
        return Err(NotEnoughPoints {
            wanted: amount,
            available,
        });
    }
    let mut left = amount;
    let mut taken = Vec::new();
    for i in usable {
        if left == 0 {
            break;
        }
        let take = left.min(lots[i].remaining);
        taken.push((i, take));
        left -= take;
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LUCHENG: &str = include_str!("../../../rules/points-lucheng-v1.toml");

    fn lucheng() -> RuleSet {
        RuleSet::from_toml(LUCHENG).expect("default rules parse")
    }

    fn act(seq: i64, day: i64, kind: ActKind, quantity: i64) -> Act {
        Act {
            seq,
            at_us: seq,
            day,
            kind,
            category: None,
            quantity,
            reversed: 0,
        }
    }

    #[test]
    fn default_rules_parse_and_steps_are_whole() {
        let set = lucheng();
        let step = set.money.step;
        assert_eq!(set.convert(ActKind::Money, None, step - 1), 0);
        assert_eq!(
            set.convert(ActKind::Money, None, step),
            set.money.points_per_step
        );
        assert_eq!(
            set.convert(ActKind::Money, None, 2 * step - 1),
            set.money.points_per_step
        );
        assert_eq!(set.convert(ActKind::VolunteerMinutes, None, 59), 0);
        assert_eq!(
            set.convert(ActKind::VolunteerMinutes, None, 119),
            set.volunteer.points_per_hour * set.volunteer.default_percent / 100
        );
    }

    #[test]
    fn money_at_hundred_yuan_steps() {
        let mut set = lucheng();
        set.money = StepRule {
            step: 10_000,
            points_per_step: 10,
        };
        assert_eq!(set.convert(ActKind::Money, None, 9_900), 0);
        assert_eq!(set.convert(ActKind::Money, None, 10_000), 10);
        assert_eq!(set.convert(ActKind::Money, None, 29_999), 20);
    }

    #[test]
    fn category_percent_multiplies_after_whole_hours() {
        let mut set = lucheng();
        set.volunteer = HourRule {
            points_per_hour: 10,
            default_percent: 100,
            category_percent: [("elderly".to_owned(), 150)].into_iter().collect(),
        };
        assert_eq!(
            set.convert(ActKind::VolunteerMinutes, Some("elderly"), 150),
            30
        );
        assert_eq!(
            set.convert(ActKind::VolunteerMinutes, Some("other"), 150),
            20
        );
    }

    #[test]
    fn bad_rules_name_the_field() {
        let text = LUCHENG.replace(
            "spendable_expiry_months = 24",
            "spendable_expiry_months = 0",
        );
        match RuleSet::from_toml(&text) {
            Err(RuleError::Field { field, .. }) => assert_eq!(field, "spendable_expiry_months"),
            other => panic!("expected a field error, got {other:?}"),
        }
        assert!(matches!(
            RuleSet::from_toml("version = 3"),
            Err(RuleError::Syntax(_))
        ));
    }

    #[test]
    fn the_set_in_force_is_the_latest_effective_on_the_day() {
        let v1 = lucheng();
        let mut v2 = lucheng();
        v2.version = "v2".into();
        v2.effective_from = jiff::civil::date(2026, 1, 1);
        let book = RuleBook::new(vec![v1.clone(), v2]);
        assert_eq!(
            book.for_day(20251231).map(|s| s.version.clone()),
            Some(v1.version.clone())
        );
        assert_eq!(
            book.for_day(20260101).map(|s| s.version.as_str()),
            Some("v2")
        );
        assert!(book.for_day(19990101).is_none());
    }

    #[test]
    fn daily_cap_cuts_and_the_next_day_starts_fresh() {
        let mut set = lucheng();
        set.money = StepRule {
            step: 100,
            points_per_step: 1,
        };
        set.caps.insert(
            "money".into(),
            Cap {
                daily: Some(5),
                monthly: Some(8),
            },
        );
        let book = RuleBook::new(vec![set]);
        let acts = vec![
            act(1, 20260301, ActKind::Money, 400),
            act(2, 20260301, ActKind::Money, 400),
            act(3, 20260302, ActKind::Money, 400),
            act(4, 20260303, ActKind::Money, 400),
        ];
        let got: Vec<i64> = evaluate(&book, &acts).iter().map(|a| a.honour).collect();
        assert_eq!(got, vec![4, 1, 3, 0]);
    }

    #[test]
    fn expiry_is_months_later_clamped() {
        let set = lucheng();
        let mut s = set.clone();
        s.spendable_expiry_months = 1;
        assert_eq!(s.expiry_day(20260131), 20260228);
        assert_eq!(set.expiry_day(20260315), 20280315);
    }

    fn arb_acts() -> impl Strategy<Value = Vec<Act>> {
        prop::collection::vec(
            (0_i64..40, 0_usize..5, 0_i64..50_000, 0_i64..3, 0_i64..100),
            0..40,
        )
        .prop_map(|raw| {
            let mut acts: Vec<Act> = raw
                .into_iter()
                .enumerate()
                .map(|(i, (d, k, q, cat, rev_pct))| {
                    let day = day_of_date(
                        jiff::civil::date(2026, 1, 20)
                            .checked_add(jiff::Span::new().days(d))
                            .unwrap(),
                    );
                    Act {
                        seq: i64::try_from(i).unwrap(),
                        at_us: d * 86_400_000_000 + i64::try_from(i).unwrap(),
                        day,
                        kind: ActKind::ALL[k],
                        category: ["elderly", "schooling", "x"]
                            .get(usize::try_from(cat).unwrap())
                            .map(|c| (*c).to_owned()),
                        quantity: q,
                        reversed: q * rev_pct / 100 * i64::from(rev_pct > 70),
                    }
                })
                .collect();
            acts.sort_by_key(|a| (a.at_us, a.seq));
            acts
        })
    }

    fn capped_set() -> RuleSet {
        let mut set = lucheng();
        for kind in ActKind::ALL {
            set.caps.insert(
                kind.as_str().into(),
                Cap {
                    daily: Some(37),
                    monthly: Some(120),
                },
            );
        }
        set
    }

    proptest! {
        #[test]
        fn caps_are_never_exceeded(acts in arb_acts()) {
            let set = capped_set();
            let book = RuleBook::new(vec![set]);
            let awards = evaluate(&book, &acts);
            let mut per_day: BTreeMap<(ActKind, i64), i64> = BTreeMap::new();
            let mut per_month: BTreeMap<(ActKind, i64), i64> = BTreeMap::new();
            for (a, w) in acts.iter().zip(&awards) {
                prop_assert!(w.honour >= 0 && w.spendable >= 0);
                *per_day.entry((a.kind, a.day)).or_default() += w.honour;
                *per_month.entry((a.kind, a.day / 100)).or_default() += w.honour;
            }
            prop_assert!(per_day.values().all(|v| *v <= 37));
            prop_assert!(per_month.values().all(|v| *v <= 120));
        }

        #[test]
        fn evaluating_twice_changes_nothing(acts in arb_acts()) {
            let book = RuleBook::new(vec![capped_set()]);
            prop_assert_eq!(evaluate(&book, &acts), evaluate(&book, &acts));
        }

        #[test]
        fn reversing_never_raises_an_acts_points_without_caps(acts in arb_acts()) {
            let mut set = lucheng();
            set.caps.clear();
            let book = RuleBook::new(vec![set]);
            let full: Vec<Act> = acts.iter().cloned().map(|mut a| { a.reversed = 0; a }).collect();
            for (with, without) in evaluate(&book, &acts).iter().zip(evaluate(&book, &full)) {
                prop_assert!(with.honour <= without.honour);
            }
        }

        #[test]
        fn fefo_never_uses_expired_points(
            lots in prop::collection::vec((20260101_i64..20260131, 0_i64..50), 0..12),
            today in 20260101_i64..20260131,
            amount in 0_i64..300,
        ) {
            let lots: Vec<Lot> = lots.into_iter().enumerate()
                .map(|(i, (e, r))| Lot { expires_on: e, seq: i64::try_from(i).unwrap(), remaining: r })
                .collect();
            let usable: i64 = lots.iter().filter(|l| l.expires_on > today).map(|l| l.remaining).sum();
            match take_fefo(&lots, today, amount) {
                Ok(taken) => {
                    prop_assert!(amount <= usable);
                    prop_assert_eq!(taken.iter().map(|(_, t)| t).sum::<i64>(), amount);
                    for (i, t) in &taken {
                        prop_assert!(lots[*i].expires_on > today);
                        prop_assert!(*t > 0 && *t <= lots[*i].remaining);
                    }
                    // First-expiring first: every lot not emptied expires no sooner than any used.
                    if let Some(last) = taken.last() {
                        let bound = (lots[last.0].expires_on, lots[last.0].seq);
                        for (j, l) in lots.iter().enumerate() {
                            if l.expires_on > today && l.remaining > 0 && (l.expires_on, l.seq) < bound {
                                let used = taken.iter().find(|(i, _)| *i == j).map(|(_, t)| *t);
                                prop_assert_eq!(used, Some(l.remaining));
                            }
                        }
                    }
                }
                Err(e) => prop_assert!(amount > usable && e.available == usable),
            }
        }

        #[test]
        fn spending_never_lowers_the_tier(honour in 0_i64..20_000, spend in 0_i64..20_000) {
            // Spending moves spendable points only; the tier is a function of honour alone.
            let set = lucheng();
            let before = set.tier_of(honour).map(|t| t.code.clone());
            let spendable_after = set.spendable_of(honour) - spend;
            let _ = spendable_after;
            let after = set.tier_of(honour).map(|t| t.code.clone());
            prop_assert_eq!(before, after);
        }
    }
}
