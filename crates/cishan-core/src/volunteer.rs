//! Volunteer service rules (志愿服务): how long a session lasts, how its minutes fall on local
//! days, how much of a day counts under the daily maximum, and star levels from verified hours.
//!
//! Minutes are whole and counted between UTC instants, rounded down; a session never has
//! negative minutes. Days are cut in the region's time zone (Asia/Shanghai for Lucheng).
//! Pure: instants and the time zone are passed in.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Default daily maximum of credited service per volunteer: 8 hours.
pub const DEFAULT_DAILY_MAX_MINUTES: i64 = 8 * 60;
/// Default star thresholds in hours (一星 to 五星), the most common local rule.
pub const DEFAULT_STAR_HOURS: [i64; 5] = [100, 300, 600, 1000, 1500];
/// The most stars a volunteer can hold.
pub const MAX_STARS: usize = 5;
/// The longest daily maximum a deployment may set (a whole day).
pub const MAX_DAILY_MAX_MINUTES: i64 = 24 * 60;

/// The deployment's volunteer rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolunteerRules {
    /// Most minutes credited to one volunteer on one local day.
    pub daily_max_minutes: i64,
    /// Hours needed for 1..=5 stars, strictly increasing and positive.
    pub star_hours: Vec<i64>,
}

impl Default for VolunteerRules {
    fn default() -> VolunteerRules {
        VolunteerRules {
            daily_max_minutes: DEFAULT_DAILY_MAX_MINUTES,
            star_hours: DEFAULT_STAR_HOURS.to_vec(),
        }
    }
}

/// Why a rule set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("the daily maximum must be 1 to 1440 minutes")]
    DailyMax,
    #[error("star thresholds must be 1 to 5 positive, strictly increasing hour counts")]
    Stars,
}

impl VolunteerRules {
    /// Checks a rule set.
    pub fn validate(&self) -> Result<(), RulesError> {
        if !(1..=MAX_DAILY_MAX_MINUTES).contains(&self.daily_max_minutes) {
            return Err(RulesError::DailyMax);
        }
        let increasing = self.star_hours.windows(2).all(|w| w[0] < w[1]);
        if self.star_hours.is_empty()
            || self.star_hours.len() > MAX_STARS
            || self.star_hours[0] <= 0
            || !increasing
        {
            return Err(RulesError::Stars);
        }
        Ok(())
    }

    /// Reads thresholds written as `100,300,600,1000,1500`.
    pub fn parse_star_hours(text: &str) -> Result<Vec<i64>, RulesError> {
        text.split([',', '，'])
            .map(|part| part.trim().parse::<i64>().map_err(|_| RulesError::Stars))
            .collect()
    }

    /// Stars held with `verified_minutes` of verified service: the number of thresholds
    /// reached (whole hours: 99 h 59 min is not 100 h).
    pub fn stars(&self, verified_minutes: i64) -> u8 {
        let hours = verified_minutes.max(0) / 60;
        let reached = self.star_hours.iter().filter(|&&t| hours >= t).count();
        u8::try_from(reached).unwrap_or(u8::MAX)
    }

    /// Hours still needed for the next star, or `None` at the top.
    pub fn hours_to_next_star(&self, verified_minutes: i64) -> Option<i64> {
        let hours = verified_minutes.max(0) / 60;
        self.star_hours
            .iter()
            .find(|&&t| hours < t)
            .map(|&t| t - hours)
    }
}

/// Whole minutes from `start` to `end`, rounded down; 0 when `end` is not after `start`.
pub fn session_minutes(start: Timestamp, end: Timestamp) -> i64 {
    let seconds = end.as_second() - start.as_second();
    // Sub-second parts: a session from 10:00:00.9 to 10:01:00.1 is 59.2 s, not a minute.
    let nanos = i64::from(end.subsec_nanosecond()) - i64::from(start.subsec_nanosecond());
    let total_nanos = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    if total_nanos <= 0 {
        return 0;
    }
    i64::try_from(total_nanos / 60_000_000_000).unwrap_or(i64::MAX)
}

/// The minutes of a session on each local day it touches, in order. The parts add up to
/// exactly [`session_minutes`]: each day gets the whole minutes elapsed by its end minus those
/// elapsed by its start. Days with no whole minute are left out.
pub fn minutes_by_local_day(start: Timestamp, end: Timestamp, tz: &TimeZone) -> Vec<(Date, i64)> {
    let total = session_minutes(start, end);
    if total == 0 {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let mut day = start.to_zoned(tz.clone()).date();
    let mut counted = 0_i64;
    loop {
        let next_midnight = day
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp());
        let until = match next_midnight {
            Some(m) if m < end => session_minutes(start, m),
            _ => total,
        };
        let minutes = until - counted;
        if minutes > 0 {
            parts.push((day, minutes));
        }
        counted = until;
        if counted >= total {
            break;
        }
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    parts
}

/// How many of `minutes` served on one day count, when `already_credited` minutes of that
/// volunteer on that day already count: never more than the daily maximum in total.
pub fn credit_within_daily_max(minutes: i64, already_credited: i64, daily_max: i64) -> i64 {
    minutes
        .max(0)
        .min((daily_max - already_credited.max(0)).max(0))
}

/// The first `total` minutes of a session split by day: the days in order, each keeping its
/// minutes until `total` is used up (staff correcting a stated duration down keep the start of
/// the session). Days left with nothing are dropped; the parts add up to
/// `min(total, sum of parts)`, never less than 0.
pub fn first_minutes_of<T>(parts: Vec<(T, i64)>, total: i64) -> Vec<(T, i64)> {
    let mut left = total.max(0);
    let mut kept = Vec::new();
    for (day, minutes) in parts {
        let take = minutes.max(0).min(left);
        if take == 0 {
            continue;
        }
        left -= take;
        kept.push((day, take));
    }
    kept
}

/// Hours and minutes for display: `12 小时 5 分钟`.
pub fn hours_text(minutes: i64) -> String {
    let minutes = minutes.max(0);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} 分钟"),
        (h, 0) => format!("{h} 小时"),
        (h, m) => format!("{h} 小时 {m} 分钟"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    #[test]
    fn minutes_are_whole_rounded_down_and_never_negative() {
        assert_eq!(
            session_minutes(at("2024-03-01T02:00:00Z"), at("2024-03-01T03:30:59Z")),
            90
        );
        assert_eq!(
            session_minutes(at("2024-03-01T02:00:00.9Z"), at("2024-03-01T02:01:00.1Z")),
            0
        );
        assert_eq!(
            session_minutes(at("2024-03-01T02:00:00Z"), at("2024-03-01T02:00:59Z")),
            0
        );
        assert_eq!(
            session_minutes(at("2024-03-01T03:00:00Z"), at("2024-03-01T02:00:00Z")),
            0
        );
    }

    #[test]
    fn a_session_across_local_midnight_is_split_by_day() {
        // 22:30 to 01:15 Shanghai time (UTC+8): 90 minutes on the 1st, 75 on the 2nd.
        let parts = minutes_by_local_day(
            at("2024-03-01T14:30:00Z"),
            at("2024-03-01T17:15:00Z"),
            &shanghai(),
        );
        assert_eq!(
            parts,
            vec![
                (Date::constant(2024, 3, 1), 90),
                (Date::constant(2024, 3, 2), 75)
            ]
        );
        // UTC midnight is not a local day boundary.
        let parts = minutes_by_local_day(
            at("2024-03-01T23:00:00Z"),
            at("2024-03-02T01:00:00Z"),
            &shanghai(),
        );
        assert_eq!(parts, vec![(Date::constant(2024, 3, 2), 120)]);
        assert!(minutes_by_local_day(
            at("2024-03-01T23:00:00Z"),
            at("2024-03-01T23:00:30Z"),
            &shanghai()
        )
        .is_empty());
    }

    #[test]
    fn the_daily_maximum_caps_the_sum_of_a_day() {
        assert_eq!(credit_within_daily_max(300, 0, 480), 300);
        assert_eq!(credit_within_daily_max(300, 300, 480), 180);
        assert_eq!(credit_within_daily_max(300, 480, 480), 0);
        assert_eq!(credit_within_daily_max(300, 600, 480), 0);
        assert_eq!(credit_within_daily_max(0, 0, 480), 0);
    }

    #[test]
    fn a_correction_keeps_the_first_minutes_of_the_session() {
        let parts = vec![("d1", 90), ("d2", 75)];
        assert_eq!(first_minutes_of(parts.clone(), 165), parts);
        assert_eq!(first_minutes_of(parts.clone(), 500), parts);
        assert_eq!(
            first_minutes_of(parts.clone(), 100),
            vec![("d1", 90), ("d2", 10)]
        );
        assert_eq!(first_minutes_of(parts.clone(), 90), vec![("d1", 90)]);
        assert_eq!(first_minutes_of(parts.clone(), 30), vec![("d1", 30)]);
        assert!(first_minutes_of(parts.clone(), 0).is_empty());
        assert!(first_minutes_of(parts, -5).is_empty());
    }

    #[test]
    fn stars_follow_whole_verified_hours() {
        let rules = VolunteerRules::default();
        assert_eq!(rules.stars(0), 0);
        assert_eq!(rules.stars(100 * 60 - 1), 0);
        assert_eq!(rules.stars(100 * 60), 1);
        assert_eq!(rules.stars(299 * 60), 1);
        assert_eq!(rules.stars(300 * 60), 2);
        assert_eq!(rules.stars(1500 * 60), 5);
        assert_eq!(rules.stars(100_000 * 60), 5);
        assert_eq!(rules.hours_to_next_star(250 * 60), Some(50));
        assert_eq!(rules.hours_to_next_star(1500 * 60), None);
        let custom = VolunteerRules {
            daily_max_minutes: 600,
            star_hours: VolunteerRules::parse_star_hours("10, 20，30").unwrap(),
        };
        custom.validate().unwrap();
        assert_eq!(custom.stars(25 * 60), 2);
    }

    #[test]
    fn bad_rules_are_refused() {
        let bad = |daily, stars: &[i64]| VolunteerRules {
            daily_max_minutes: daily,
            star_hours: stars.to_vec(),
        };
        assert!(bad(0, &[1]).validate().is_err());
        assert!(bad(1441, &[1]).validate().is_err());
        assert!(bad(60, &[]).validate().is_err());
        assert!(bad(60, &[0, 1]).validate().is_err());
        assert!(bad(60, &[5, 5]).validate().is_err());
        assert!(bad(60, &[1, 2, 3, 4, 5, 6]).validate().is_err());
        assert!(VolunteerRules::parse_star_hours("1,x").is_err());
        VolunteerRules::default().validate().unwrap();
    }

    #[test]
    fn hours_read_as_chinese() {
        assert_eq!(hours_text(0), "0 分钟");
        assert_eq!(hours_text(120), "2 小时");
        assert_eq!(hours_text(125), "2 小时 5 分钟");
    }

    proptest! {
        // However long and wherever it starts, a session's daily parts add up to its minutes,
        // each part is positive, and no part exceeds a day.
        #[test]
        fn day_parts_add_up(start in 1_600_000_000_i64..1_900_000_000, length in 0_i64..400_000, sub in 0_i32..1_000_000_000) {
            let start = Timestamp::new(start, sub).unwrap();
            let end = Timestamp::new(start.as_second() + length, 0).unwrap();
            let parts = minutes_by_local_day(start, end, &shanghai());
            let total: i64 = parts.iter().map(|p| p.1).sum();
            prop_assert_eq!(total, session_minutes(start, end));
            prop_assert!(parts.iter().all(|p| p.1 > 0 && p.1 <= 24 * 60));
            prop_assert!(parts.windows(2).all(|w| w[0].0 < w[1].0));
        }

        #[test]
        fn credits_never_exceed_the_daily_maximum(parts in proptest::collection::vec(0_i64..2_000, 0..10), max in 1_i64..1_441) {
            let mut credited = 0;
            for minutes in parts {
                let c = credit_within_daily_max(minutes, credited, max);
                prop_assert!(c >= 0 && c <= minutes);
                credited += c;
            }
            prop_assert!(credited <= max);
        }
    }
}
