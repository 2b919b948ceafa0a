//! Dispatch (派单): which provider should serve an order, and why.
//!
//! Providers are the services organizations and teams publish and individual volunteers. Each
//! candidate is scored in whole points by five components, each explained (raw value, points):
//!
//! | component  | points                                                             |
//! |------------|--------------------------------------------------------------------|
//! | `category` | 30 for the provider's main category (a service's own, a volunteer's first), 20 for a volunteer's other category |
//! | `distance` | 40 same community, 20 same street, 0 elsewhere in the district      |
//! | `capacity` | up to 20: remaining weekly capacity, saturating at 10               |
//! | `rating`   | up to 20: Bayesian average of reviews (prior 4.0 stars, weight 5)   |
//! | `load`     | up to 10: fewer orders in hand is better, none at 5 or more         |
//!
//! Ties go to fewer orders in hand, then services before volunteers, then the smaller id, so
//! the ranking is deterministic. Providers with no capacity left this week, not eligible for
//! the household, closed at the wanted time, or already passed over for this order are not
//! candidates.
//!
//! [`DispatchIndex`] holds every provider in memory by category × community and category ×
//! street, so ranking an order reads the order's community first, then its street, and the
//! rest of the district only when a farther provider could still beat the candidates found:
//! each tier's best possible score is bounded by its distance points. Pure: the week and the
//! wanted time are passed in.

use std::collections::HashMap;
use std::fmt;

/// Candidates returned (and explained) per order at most.
pub const MAX_CANDIDATES: usize = 10;
/// Orders a volunteer takes per week unless set otherwise.
pub const VOLUNTEER_WEEKLY_CAPACITY: u32 = 3;
/// Points for the provider's main category and for another of a volunteer's categories.
pub const FIT_PRIMARY_POINTS: i64 = 30;
pub const FIT_SECONDARY_POINTS: i64 = 20;
/// Points by distance.
pub const SAME_COMMUNITY_POINTS: i64 = 40;
pub const SAME_STREET_POINTS: i64 = 20;
pub const DISTRICT_POINTS: i64 = 0;
/// Most points for remaining capacity, reached at [`CAPACITY_SATURATION`] orders left.
pub const CAPACITY_MAX_POINTS: i64 = 20;
pub const CAPACITY_SATURATION: i64 = 10;
/// Most points for rating (a 5-star average), none for 1 star.
pub const RATING_MAX_POINTS: i64 = 20;
/// The Bayesian prior: an unrated provider counts as 4.0 stars, worth 5 reviews.
pub const RATING_PRIOR_MILLI: i64 = 4_000;
pub const RATING_PRIOR_WEIGHT: i64 = 5;
/// Most points for load (no orders in hand), none at [`LOAD_SATURATION`] or more.
pub const LOAD_MAX_POINTS: i64 = 10;
pub const LOAD_SATURATION: i64 = 5;
/// Time windows a service may list at most.
pub const MAX_TIME_WINDOWS: usize = 14;

const MAX_OTHER_POINTS: i64 =
    FIT_PRIMARY_POINTS + CAPACITY_MAX_POINTS + RATING_MAX_POINTS + LOAD_MAX_POINTS;

/// A service (an organization's or team's offering) or a volunteer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    Service,
    Volunteer,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Service => "service",
            ProviderKind::Volunteer => "volunteer",
        }
    }
}

/// Where a provider serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only its own community.
    Community,
    /// Any community of its street.
    Street,
    /// Anywhere in the district.
    District,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Community => "community",
            Scope::Street => "street",
            Scope::District => "district",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "community" => Some(Scope::Community),
            "street" => Some(Scope::Street),
            "district" => Some(Scope::District),
            _ => None,
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Scope::Community => "本社区",
            Scope::Street => "本街道",
            Scope::District => "全区",
        }
    }
}

/// How far the provider is from the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distance {
    SameCommunity,
    SameStreet,
    District,
}

impl Distance {
    pub fn points(self) -> i64 {
        match self {
            Distance::SameCommunity => SAME_COMMUNITY_POINTS,
            Distance::SameStreet => SAME_STREET_POINTS,
            Distance::District => DISTRICT_POINTS,
        }
    }

    fn rank(self) -> i64 {
        match self {
            Distance::SameCommunity => 0,
            Distance::SameStreet => 1,
            Distance::District => 2,
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Distance::SameCommunity => "同社区",
            Distance::SameStreet => "同街道",
            Distance::District => "区内其他街道",
        }
    }
}

/// How well the provider's category fits the order's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fit {
    /// The provider's main category.
    Primary,
    /// Another of a volunteer's categories.
    Secondary,
}

impl Fit {
    pub fn points(self) -> i64 {
        match self {
            Fit::Primary => FIT_PRIMARY_POINTS,
            Fit::Secondary => FIT_SECONDARY_POINTS,
        }
    }
}

/// What is known about one candidate for one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub fit: Fit,
    pub distance: Distance,
    pub remaining_capacity: i64,
    pub capacity_per_week: i64,
    pub rating_sum: i64,
    pub rating_count: i64,
    /// Orders the provider holds now (dispatched, accepted or in service).
    pub live_orders: i64,
}

/// One line of a score's explanation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Component {
    /// `category`, `distance`, `capacity`, `rating` or `load`.
    pub component: String,
    /// The raw value: 1 main / 2 other category; 0 community / 1 street / 2 district; orders
    /// left this week; rating in thousandths of a star (Bayesian); orders in hand.
    pub raw: i64,
    /// What the raw value means, in Chinese.
    pub detail: String,
    pub points: i64,
}

/// The Bayesian average rating in thousandths of a star: the prior counts as
/// [`RATING_PRIOR_WEIGHT`] reviews of [`RATING_PRIOR_MILLI`].
pub fn bayesian_rating_milli(rating_sum: i64, rating_count: i64) -> i64 {
    let count = rating_count.max(0);
    (RATING_PRIOR_MILLI * RATING_PRIOR_WEIGHT + rating_sum.max(0) * 1_000)
        / (RATING_PRIOR_WEIGHT + count)
}

fn capacity_points(remaining: i64) -> i64 {
    remaining.clamp(0, CAPACITY_SATURATION) * CAPACITY_MAX_POINTS / CAPACITY_SATURATION
}

fn rating_points(milli: i64) -> i64 {
    (milli.clamp(1_000, 5_000) - 1_000) * RATING_MAX_POINTS / 4_000
}

fn load_points(live: i64) -> i64 {
    (LOAD_SATURATION - live.clamp(0, LOAD_SATURATION)) * LOAD_MAX_POINTS / LOAD_SATURATION
}

/// The total score of a candidate (no explanation: the cheap form used while scanning).
pub fn total(f: &Facts) -> i64 {
    f.fit.points()
        + f.distance.points()
        + capacity_points(f.remaining_capacity)
        + rating_points(bayesian_rating_milli(f.rating_sum, f.rating_count))
        + load_points(f.live_orders)
}

/// The score's five components, explained; their points add up to [`total`].
pub fn explain(f: &Facts) -> Vec<Component> {
    let milli = bayesian_rating_milli(f.rating_sum, f.rating_count);
    let stars = |m: i64| format!("{}.{:02}", m / 1_000, (m % 1_000) / 10);
    let plain_average = if f.rating_count > 0 {
        format!(
            "，实际平均 {}",
            stars(f.rating_sum * 1_000 / f.rating_count)
        )
    } else {
        String::new()
    };
    vec![
        Component {
            component: "category".into(),
            raw: match f.fit {
                Fit::Primary => 1,
                Fit::Secondary => 2,
            },
            detail: match f.fit {
                Fit::Primary => "服务类别与需求一致（主类别）".into(),
                Fit::Secondary => "服务类别与需求一致（志愿者的其他擅长类别）".into(),
            },
            points: f.fit.points(),
        },
        Component {
            component: "distance".into(),
            raw: f.distance.rank(),
            detail: f.distance.name_zh().into(),
            points: f.distance.points(),
        },
        Component {
            component: "capacity".into(),
            raw: f.remaining_capacity,
            detail: format!(
                "本周剩余 {} 单（每周 {} 单）",
                f.remaining_capacity, f.capacity_per_week
            ),
            points: capacity_points(f.remaining_capacity),
        },
        Component {
            component: "rating".into(),
            raw: milli,
            detail: format!(
                "评分 {} 星（{} 条评价{}，按贝叶斯平均计）",
                stars(milli),
                f.rating_count,
                plain_average
            ),
            points: rating_points(milli),
        },
        Component {
            component: "load".into(),
            raw: f.live_orders,
            detail: format!("手上进行中的订单 {} 单", f.live_orders),
            points: load_points(f.live_orders),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Skills

/// Words in a roster's skills column (技能特长) and the service category each suggests.
pub const SKILL_WORDS: [(&str, &str); 30] = [
    ("助老", "daily_care"),
    ("陪护", "daily_care"),
    ("助餐", "daily_care"),
    ("保洁", "daily_care"),
    ("家政", "daily_care"),
    ("理发", "daily_care"),
    ("急救", "health"),
    ("医", "health"),
    ("护理", "health"),
    ("康复", "health"),
    ("健康", "health"),
    ("辅导", "schooling"),
    ("课业", "schooling"),
    ("教", "schooling"),
    ("支教", "schooling"),
    ("就业", "employment"),
    ("招聘", "employment"),
    ("职业", "employment"),
    ("创业", "employment"),
    ("心理", "emotional_support"),
    ("疏导", "emotional_support"),
    ("陪伴", "emotional_support"),
    ("聊天", "emotional_support"),
    ("摄影", "skills"),
    ("电脑", "skills"),
    ("手机", "skills"),
    ("驾驶", "skills"),
    ("培训", "skills"),
    ("法律", "skills"),
    ("手工", "skills"),
];

/// The service categories a volunteer's skills text suggests, in the order the skills are
/// written (the first is the main one), only among `known` category codes, at most `max`.
pub fn categories_from_skills(skills: &str, known: &[&str], max: usize) -> Vec<String> {
    let mut found: Vec<(usize, &str)> = SKILL_WORDS
        .iter()
        .filter(|(_, c)| known.contains(c))
        .filter_map(|(w, c)| skills.find(w).map(|at| (at, *c)))
        .collect();
    found.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, c) in found {
        if !out.iter().any(|x| x == c) && out.len() < max {
            out.push(c.to_owned());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Time windows

/// One weekly window: days (bit 0 = Monday … bit 6 = Sunday) and minutes of the day `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeWindow {
    pub days: u8,
    pub from_minute: u16,
    pub to_minute: u16,
}

/// The weekly windows a service is open in (local time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TimeWindows(pub Vec<TimeWindow>);

/// Why windows text is refused; the message says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowsError(pub String);

const DAY_NAMES: [(&str, &str); 7] = [
    ("mon", "周一"),
    ("tue", "周二"),
    ("wed", "周三"),
    ("thu", "周四"),
    ("fri", "周五"),
    ("sat", "周六"),
    ("sun", "周日"),
];

fn day_index(token: &str) -> Option<u8> {
    let t = token.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(en, zh)| t == *en || t == *zh || (t == "周天" && *zh == "周日"))
        .and_then(|i| u8::try_from(i).ok())
}

fn parse_days(spec: &str) -> Option<u8> {
    let spec = spec.trim();
    match spec.to_ascii_lowercase().as_str() {
        "daily" | "每天" | "每日" => return Some(0b111_1111),
        "weekdays" | "工作日" => return Some(0b001_1111),
        "weekend" | "周末" => return Some(0b110_0000),
        _ => {}
    }
    let mut days = 0_u8;
    for item in spec.split([',', '、', '，']) {
        let item = item.trim();
        if let Some((a, b)) = item.split_once(['-', '至', '~']) {
            let (a, b) = (day_index(a)?, day_index(b)?);
            if a > b {
                return None;
            }
            for d in a..=b {
                days |= 1 << d;
            }
        } else {
            days |= 1 << day_index(item)?;
        }
    }
    (days != 0).then_some(days)
}

fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once([':', '：'])?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl TimeWindows {
    /// Reads windows such as `weekdays 09:00-17:00; sat 09:00-12:00` or
    /// `周一至周五 09:00-17:00；周六 09:00-12:00`. Empty text means no windows (any time).
    pub fn parse(text: &str) -> Result<TimeWindows, WindowsError> {
        let hint = "请按“日期 开始-结束”填写，多段用分号隔开，例如：工作日 09:00-17:00；周六 09:00-12:00（也可写 weekdays、weekend、daily、mon-fri）。";
        let mut windows = Vec::new();
        for part in text.split([';', '；', '\n']) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((days, hours)) = part.rsplit_once(char::is_whitespace) else {
                return Err(WindowsError(format!("无法识别服务时段“{part}”。{hint}")));
            };
            let days = parse_days(days)
                .ok_or_else(|| WindowsError(format!("无法识别服务时段“{part}”的日期。{hint}")))?;
            let (from, to) = hours
                .split_once(['-', '–', '~', '至'])
                .and_then(|(a, b)| Some((parse_clock(a)?, parse_clock(b)?)))
                .ok_or_else(|| WindowsError(format!("无法识别服务时段“{part}”的时间。{hint}")))?;
            if from >= to {
                return Err(WindowsError(format!(
                    "服务时段“{part}”的结束时间必须晚于开始时间。"
                )));
            }
            windows.push(TimeWindow {
                days,
                from_minute: from,
                to_minute: to,
            });
        }
        if windows.len() > MAX_TIME_WINDOWS {
            return Err(WindowsError(format!(
                "服务时段最多 {MAX_TIME_WINDOWS} 段，请合并相同的时间。"
            )));
        }
        Ok(TimeWindows(windows))
    }

    /// True when open on `weekday` (0 = Monday) at `minute` of the day; no windows means always.
    pub fn covers(&self, weekday: u8, minute: u16) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|w| {
                w.days & (1 << weekday.min(6)) != 0
                    && w.from_minute <= minute
                    && minute < w.to_minute
            })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for TimeWindows {
    /// The canonical text (`周一至周五 09:00-17:00；周六 09:00-12:00`), which parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("；")?;
            }
            let days = match w.days {
                0b111_1111 => "每天".to_owned(),
                0b001_1111 => "工作日".to_owned(),
                0b110_0000 => "周末".to_owned(),
                bits => {
                    let mut parts: Vec<String> = Vec::new();
                    let mut d = 0_u8;
                    while d < 7 {
                        if bits & (1 << d) == 0 {
                            d += 1;
                            continue;
                        }
                        let start = d;
                        while d + 1 < 7 && bits & (1 << (d + 1)) != 0 {
                            d += 1;
                        }
                        let name = |k: u8| DAY_NAMES[usize::from(k)].1;
                        parts.push(if d > start + 1 {
                            format!("{}至{}", name(start), name(d))
                        } else if d == start + 1 {
                            format!("{}、{}", name(start), name(d))
                        } else {
                            name(start).to_owned()
                        });
                        d += 1;
                    }
                    parts.join("、")
                }
            };
            write!(
                f,
                "{days} {:02}:{:02}-{:02}:{:02}",
                w.from_minute / 60,
                w.from_minute % 60,
                w.to_minute / 60,
                w.to_minute % 60
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The index

/// A provider as the index knows it: fixed facts and the counters dispatch changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `svc_…` for a service, `ptc_…` for a volunteer.
    pub id: String,
    pub kind: ProviderKind,
    /// Service categories (pack codes) with how well each fits; the first is the main one.
    pub categories: Vec<String>,
    /// The community (or village) the provider is based in, if known.
    pub community: Option<String>,
    /// The street (or town) the provider is based in, if known.
    pub street: Option<String>,
    pub scope: Scope,
    pub capacity_per_week: u32,
    /// Assistance categories served (household categories); empty means everyone.
    pub eligibility: Vec<String>,
    pub windows: TimeWindows,
    pub active: bool,
    /// The week (a number the caller chooses, e.g. days of its Monday) `used` counts in.
    pub week: i64,
    pub used: u32,
    pub live: u32,
    pub rating_sum: i64,
    pub rating_count: i64,
}

/// What is being matched.
#[derive(Debug, Clone, Copy)]
pub struct OrderQuery<'a> {
    pub category: &'a str,
    /// The community (or village) of the household served.
    pub community: &'a str,
    /// The household's assistance category, if any.
    pub assistance_category: Option<&'a str>,
    /// The wanted local time (weekday 0 = Monday, minute of the day), if any.
    pub wanted: Option<(u8, u16)>,
    /// Providers already passed over for this order (rejected it or let it expire).
    pub exclude: &'a [String],
    /// The current week, as [`Provider::week`].
    pub week: i64,
}

/// A ranked candidate with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub provider_id: String,
    pub kind: ProviderKind,
    pub score: i64,
    pub distance: Distance,
    pub components: Vec<Component>,
}

/// Why an order cannot be ranked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RankError {
    #[error("unknown service category `{0}`")]
    UnknownCategory(String),
    #[error("unknown community `{0}`")]
    UnknownCommunity(String),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    index: u32,
    score: i64,
    live: u32,
    kind: ProviderKind,
}

/// Every provider, by category × community, category × street and category (district).
#[derive(Debug, Clone, Default)]
pub struct DispatchIndex {
    categories: HashMap<String, u16>,
    /// Community code → (community number, street number).
    communities: HashMap<String, (u32, u32)>,
    streets: HashMap<String, u32>,
    providers: Vec<IndexedProvider>,
    by_id: HashMap<String, u32>,
    by_community: HashMap<(u16, u32), Vec<u32>>,
    by_street: HashMap<(u16, u32), Vec<u32>>,
    by_district: HashMap<u16, Vec<u32>>,
    /// Whether every list is in [`DispatchIndex::ceiling`] order, best first (see
    /// [`DispatchIndex::sort_lists`]); ranking may then stop a list early.
    sorted: bool,
}

#[derive(Debug, Clone)]
struct IndexedProvider {
    p: Provider,
    cats: Vec<(u16, Fit)>,
    community: Option<u32>,
    street: Option<u32>,
}

impl DispatchIndex {
    /// An empty index over the pack's categories and (community, street) pairs.
    pub fn new<'a>(
        categories: impl IntoIterator<Item = &'a str>,
        communities: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> DispatchIndex {
        let mut index = DispatchIndex::default();
        for (i, c) in categories.into_iter().enumerate() {
            index
                .categories
                .insert(c.to_owned(), u16::try_from(i).unwrap_or(u16::MAX));
        }
        for (community, street) in communities {
            let next = u32::try_from(index.streets.len()).unwrap_or(u32::MAX);
            let s = *index.streets.entry(street.to_owned()).or_insert(next);
            let c = u32::try_from(index.communities.len()).unwrap_or(u32::MAX);
            index.communities.insert(community.to_owned(), (c, s));
        }
        index
    }

    /// Providers held.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.by_id.get(id).map(|&i| &self.providers[i as usize].p)
    }

    /// Adds a provider, or replaces the one with its id (keeping its counters when `keep_counters`).
    pub fn upsert(&mut self, mut provider: Provider, keep_counters: bool) {
        if let Some(&i) = self.by_id.get(&provider.id) {
            if keep_counters {
                let old = &self.providers[i as usize].p;
                provider.week = old.week;
                provider.used = old.used;
                provider.live = old.live;
                provider.rating_sum = old.rating_sum;
                provider.rating_count = old.rating_count;
            }
            self.unlink(i);
            self.providers[i as usize] = self.indexed(provider);
            self.link(i);
        } else {
            let i = u32::try_from(self.providers.len()).expect("fewer than 4 billion providers");
            self.by_id.insert(provider.id.clone(), i);
            let entry = self.indexed(provider);
            self.providers.push(entry);
            self.link(i);
        }
    }

    fn indexed(&self, p: Provider) -> IndexedProvider {
        let cats = p
            .categories
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                let fit = if k == 0 || p.kind == ProviderKind::Service {
                    Fit::Primary
                } else {
                    Fit::Secondary
                };
                self.categories.get(c).map(|&n| (n, fit))
            })
            .collect();
        let (community, street) = match p.community.as_deref().and_then(|c| self.communities.get(c))
        {
            Some(&(c, s)) => (Some(c), Some(s)),
            None => (
                None,
                p.street
                    .as_deref()
                    .and_then(|s| self.streets.get(s))
                    .copied(),
            ),
        };
        IndexedProvider {
            p,
            cats,
            community,
            street,
        }
    }

    /// The scope the index applies: a scope the provider's home cannot support widens.
    fn effective_scope(e: &IndexedProvider) -> Scope {
        match (e.p.scope, e.community, e.street) {
            (_, None, None) => Scope::District,
            (Scope::Community, None, Some(_)) => Scope::Street,
            (scope, _, _) => scope,
        }
    }

    fn link(&mut self, i: u32) {
        let e = &self.providers[i as usize];
        let scope = Self::effective_scope(e);
        let (community, street) = (e.community, e.street);
        let cats: Vec<u16> = e.cats.iter().map(|(c, _)| *c).collect();
        for c in cats {
            if let Some(community) = community {
                let list = self.by_community.entry((c, community)).or_default();
                Self::place(&self.providers, self.sorted, list, c, i);
            }
            if let (Some(street), true) = (street, scope != Scope::Community) {
                let list = self.by_street.entry((c, street)).or_default();
                Self::place(&self.providers, self.sorted, list, c, i);
            }
            if scope == Scope::District {
                let list = self.by_district.entry(c).or_default();
                Self::place(&self.providers, self.sorted, list, c, i);
            }
        }
    }

    /// Adds provider `i` to a list of category `cat`: at its place when the lists are sorted.
    fn place(providers: &[IndexedProvider], sorted: bool, list: &mut Vec<u32>, cat: u16, i: u32) {
        if sorted {
            let key = Self::order_key(&providers[i as usize], cat);
            let at = list.partition_point(|&x| Self::order_key(&providers[x as usize], cat) < key);
            list.insert(at, i);
        } else {
            list.push(i);
        }
    }

    /// The most points (besides distance) provider `e` could score for an order of `cat`:
    /// its fit, its whole weekly capacity left, its rating now and no orders in hand. Assigning
    /// orders only lowers a score below this; a review changes it (the provider is re-placed).
    fn ceiling(e: &IndexedProvider, cat: u16) -> i64 {
        let fit = e
            .cats
            .iter()
            .find(|(c, _)| *c == cat)
            .map_or(0, |(_, f)| f.points());
        fit + capacity_points(i64::from(e.p.capacity_per_week))
            + rating_points(bayesian_rating_milli(e.p.rating_sum, e.p.rating_count))
            + LOAD_MAX_POINTS
    }

    /// List order: highest ceiling first, then the id (any fixed order would do).
    fn order_key(e: &IndexedProvider, cat: u16) -> (i64, &str) {
        (-Self::ceiling(e, cat), e.p.id.as_str())
    }

    /// Sorts every list by ceiling, best first, so that ranking stops reading a list at the
    /// first provider whose ceiling cannot reach the candidates already found. Call once after
    /// loading; later changes keep the order.
    pub fn sort_lists(&mut self) {
        let providers = &self.providers;
        let sort = |cat: u16, list: &mut Vec<u32>| {
            list.sort_by(|&a, &b| {
                Self::order_key(&providers[a as usize], cat)
                    .cmp(&Self::order_key(&providers[b as usize], cat))
            });
        };
        for (&(cat, _), list) in &mut self.by_community {
            sort(cat, list);
        }
        for (&(cat, _), list) in &mut self.by_street {
            sort(cat, list);
        }
        for (&cat, list) in &mut self.by_district {
            sort(cat, list);
        }
        self.sorted = true;
    }

    fn unlink(&mut self, i: u32) {
        let e = &self.providers[i as usize];
        let cats: Vec<u16> = e.cats.iter().map(|(c, _)| *c).collect();
        let (community, street) = (e.community, e.street);
        for c in cats {
            for list in [
                community.and_then(|k| self.by_community.get_mut(&(c, k))),
                street.and_then(|k| self.by_street.get_mut(&(c, k))),
                self.by_district.get_mut(&c),
            ]
            .into_iter()
            .flatten()
            {
                list.retain(|&x| x != i);
            }
        }
    }

    fn remaining(p: &Provider, week: i64) -> i64 {
        let used = if p.week == week { p.used } else { 0 };
        i64::from(p.capacity_per_week) - i64::from(used)
    }

    fn facts(&self, e: &IndexedProvider, cat: u16, distance: Distance, week: i64) -> Option<Facts> {
        let fit = e.cats.iter().find(|(c, _)| *c == cat)?.1;
        Some(Facts {
            fit,
            distance,
            remaining_capacity: Self::remaining(&e.p, week),
            capacity_per_week: i64::from(e.p.capacity_per_week),
            rating_sum: e.p.rating_sum,
            rating_count: e.p.rating_count,
            live_orders: i64::from(e.p.live),
        })
    }

    fn eligible(e: &IndexedProvider, q: &OrderQuery<'_>) -> bool {
        e.p.active
            && Self::remaining(&e.p, q.week) > 0
            && (e.p.eligibility.is_empty()
                || q.assistance_category
                    .is_some_and(|a| e.p.eligibility.iter().any(|x| x == a)))
            && q.wanted.is_none_or(|(d, m)| e.p.windows.covers(d, m))
            && !q.exclude.contains(&e.p.id)
    }

    /// The best `max` candidates for the order, best first, each explained.
    pub fn rank(&self, q: &OrderQuery<'_>, max: usize) -> Result<Vec<Candidate>, RankError> {
        let cat = *self
            .categories
            .get(q.category)
            .ok_or_else(|| RankError::UnknownCategory(q.category.to_owned()))?;
        let &(community, street) = self
            .communities
            .get(q.community)
            .ok_or_else(|| RankError::UnknownCommunity(q.community.to_owned()))?;
        let max = max.max(1);
        let mut top: Vec<(Slot, Distance)> = Vec::with_capacity(max + 1);
        let tiers: [(Distance, Option<&Vec<u32>>); 3] = [
            (
                Distance::SameCommunity,
                self.by_community.get(&(cat, community)),
            ),
            (Distance::SameStreet, self.by_street.get(&(cat, street))),
            (Distance::District, self.by_district.get(&cat)),
        ];
        for (distance, list) in tiers {
            let bound = distance.points() + MAX_OTHER_POINTS;
            if top.len() >= max && top[max - 1].0.score > bound {
                break;
            }
            let Some(list) = list else { continue };
            for &i in list {
                let e = &self.providers[i as usize];
                // Sorted lists: nobody further down can reach the candidates already kept.
                if self.sorted
                    && top.len() >= max
                    && distance.points() + Self::ceiling(e, cat) < top[max - 1].0.score
                {
                    break;
                }
                let skip = match distance {
                    Distance::SameCommunity => false,
                    Distance::SameStreet => e.community == Some(community),
                    Distance::District => e.street == Some(street),
                };
                if skip || !Self::eligible(e, q) {
                    continue;
                }
                let Some(facts) = self.facts(e, cat, distance, q.week) else {
                    continue;
                };
                let slot = Slot {
                    index: i,
                    score: total(&facts),
                    live: e.p.live,
                    kind: e.p.kind,
                };
                if top.len() >= max && !self.better(&slot, &top[max - 1].0) {
                    continue;
                }
                let at = top.partition_point(|(s, _)| self.better(s, &slot));
                top.insert(at, (slot, distance));
                top.truncate(max);
            }
        }
        Ok(top
            .into_iter()
            .filter_map(|(slot, distance)| {
                let e = &self.providers[slot.index as usize];
                let facts = self.facts(e, cat, distance, q.week)?;
                Some(Candidate {
                    provider_id: e.p.id.clone(),
                    kind: e.p.kind,
                    score: slot.score,
                    distance,
                    components: explain(&facts),
                })
            })
            .collect())
    }

    /// The explanation of one named provider for the order (a staff override), or `None` when
    /// it does not serve the order's category or place.
    pub fn candidate(&self, q: &OrderQuery<'_>, provider_id: &str) -> Option<Candidate> {
        let cat = *self.categories.get(q.category)?;
        let &(community, street) = self.communities.get(q.community)?;
        let e = &self.providers[*self.by_id.get(provider_id)? as usize];
        let scope = Self::effective_scope(e);
        let distance = if e.community == Some(community) {
            Distance::SameCommunity
        } else if e.street == Some(street) && scope != Scope::Community {
            Distance::SameStreet
        } else if scope == Scope::District {
            Distance::District
        } else {
            return None;
        };
        let facts = self.facts(e, cat, distance, q.week)?;
        Some(Candidate {
            provider_id: e.p.id.clone(),
            kind: e.p.kind,
            score: total(&facts),
            distance,
            components: explain(&facts),
        })
    }

    /// Whether `a` ranks before `b`: higher score, then fewer orders in hand, then services
    /// before volunteers, then the smaller id.
    fn better(&self, a: &Slot, b: &Slot) -> bool {
        (b.score, a.live, a.kind)
            .cmp(&(a.score, b.live, b.kind))
            .then_with(|| {
                self.providers[a.index as usize]
                    .p
                    .id
                    .cmp(&self.providers[b.index as usize].p.id)
            })
            == std::cmp::Ordering::Less
    }

    /// Remaining capacity of a provider in `week`.
    pub fn remaining_capacity(&self, provider_id: &str, week: i64) -> Option<i64> {
        self.provider(provider_id).map(|p| Self::remaining(p, week))
    }

    /// Records a dispatch to the provider in `week`: one more order in hand and one less of
    /// its weekly capacity. Refuses (false) when none is left.
    pub fn assign(&mut self, provider_id: &str, week: i64) -> bool {
        let Some(&i) = self.by_id.get(provider_id) else {
            return false;
        };
        let p = &mut self.providers[i as usize].p;
        if Self::remaining(p, week) <= 0 {
            return false;
        }
        if p.week != week {
            p.week = week;
            p.used = 0;
        }
        p.used += 1;
        p.live += 1;
        true
    }

    /// The provider no longer holds an order. `give_back_week` returns the weekly slot it used
    /// when the order was taken back in that same week (a rejection, an expiry, a cancellation
    /// before service).
    pub fn release(&mut self, provider_id: &str, give_back_week: Option<i64>) {
        let Some(&i) = self.by_id.get(provider_id) else {
            return;
        };
        let p = &mut self.providers[i as usize].p;
        p.live = p.live.saturating_sub(1);
        if let Some(week) = give_back_week {
            if p.week == week {
                p.used = p.used.saturating_sub(1);
            }
        }
    }

    /// A review of the provider.
    pub fn add_rating(&mut self, provider_id: &str, rating: i64) {
        if let Some(&i) = self.by_id.get(provider_id) {
            // The rating moves the provider's ceiling, and so its place in sorted lists.
            self.unlink(i);
            let p = &mut self.providers[i as usize].p;
            p.rating_sum += rating;
            p.rating_count += 1;
            self.link(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn provider(
        id: &str,
        kind: ProviderKind,
        cats: &[&str],
        community: &str,
        street: &str,
    ) -> Provider {
        Provider {
            id: id.into(),
            kind,
            categories: cats.iter().map(|c| (*c).to_owned()).collect(),
            community: Some(community.into()),
            street: Some(street.into()),
            scope: if kind == ProviderKind::Volunteer {
                Scope::District
            } else {
                Scope::Street
            },
            capacity_per_week: 5,
            eligibility: Vec::new(),
            windows: TimeWindows::default(),
            active: true,
            week: 0,
            used: 0,
            live: 0,
            rating_sum: 0,
            rating_count: 0,
        }
    }

    fn index() -> DispatchIndex {
        DispatchIndex::new(
            ["daily_care", "health"],
            [("c1", "s1"), ("c2", "s1"), ("c3", "s2")],
        )
    }

    fn query<'a>(community: &'a str, exclude: &'a [String]) -> OrderQuery<'a> {
        OrderQuery {
            category: "daily_care",
            community,
            assistance_category: None,
            wanted: None,
            exclude,
            week: 0,
        }
    }

    #[test]
    fn components_add_up_and_explain() {
        let f = Facts {
            fit: Fit::Primary,
            distance: Distance::SameStreet,
            remaining_capacity: 4,
            capacity_per_week: 5,
            rating_sum: 9,
            rating_count: 2,
            live_orders: 1,
        };
        let parts = explain(&f);
        assert_eq!(parts.iter().map(|c| c.points).sum::<i64>(), total(&f));
        // (4000*5 + 9000) / 7 = 4142 milli-stars → (4142-1000)*20/4000 = 15 points.
        assert_eq!(parts[3].raw, 4_142);
        assert_eq!(parts[3].points, 15);
        assert_eq!(parts[2].points, 8);
        assert_eq!(parts[4].points, 8);
        assert!(parts[1].detail.contains("同街道"));
    }

    #[test]
    fn bayesian_average_pulls_few_reviews_to_the_prior() {
        assert_eq!(bayesian_rating_milli(0, 0), 4_000);
        assert_eq!(bayesian_rating_milli(5, 1), 4_166);
        assert_eq!(bayesian_rating_milli(500, 100), 4_952);
        assert_eq!(bayesian_rating_milli(1, 1), 3_500);
    }

    #[test]
    fn nearer_ranks_first_and_ties_are_deterministic() {
        let mut ix = index();
        ix.upsert(
            provider(
                "ptc_b",
                ProviderKind::Volunteer,
                &["daily_care"],
                "c1",
                "s1",
            ),
            false,
        );
        ix.upsert(
            provider(
                "ptc_a",
                ProviderKind::Volunteer,
                &["daily_care"],
                "c1",
                "s1",
            ),
            false,
        );
        ix.upsert(
            provider("svc_z", ProviderKind::Service, &["daily_care"], "c1", "s1"),
            false,
        );
        ix.upsert(
            provider(
                "ptc_far",
                ProviderKind::Volunteer,
                &["daily_care"],
                "c3",
                "s2",
            ),
            false,
        );
        ix.upsert(
            provider(
                "ptc_st",
                ProviderKind::Volunteer,
                &["daily_care"],
                "c2",
                "s1",
            ),
            false,
        );
        ix.upsert(
            provider("ptc_h", ProviderKind::Volunteer, &["health"], "c1", "s1"),
            false,
        );
        let ranked = ix.rank(&query("c1", &[]), 10).unwrap();
        let ids: Vec<&str> = ranked.iter().map(|c| c.provider_id.as_str()).collect();
        assert_eq!(ids, ["svc_z", "ptc_a", "ptc_b", "ptc_st", "ptc_far"]);
        assert_eq!(ranked[3].distance, Distance::SameStreet);
        assert_eq!(ranked[4].distance, Distance::District);
        for c in &ranked {
            assert_eq!(c.components.iter().map(|x| x.points).sum::<i64>(), c.score);
        }
    }

    #[test]
    fn community_scoped_services_serve_only_their_community() {
        let mut ix = index();
        let mut s = provider("svc_1", ProviderKind::Service, &["daily_care"], "c1", "s1");
        s.scope = Scope::Community;
        ix.upsert(s, false);
        assert_eq!(ix.rank(&query("c1", &[]), 5).unwrap().len(), 1);
        assert!(ix.rank(&query("c2", &[]), 5).unwrap().is_empty());
        assert!(ix.candidate(&query("c2", &[]), "svc_1").is_none());
    }

    #[test]
    fn excluded_full_and_ineligible_providers_are_not_candidates() {
        let mut ix = index();
        let mut full = provider(
            "svc_full",
            ProviderKind::Service,
            &["daily_care"],
            "c1",
            "s1",
        );
        full.capacity_per_week = 1;
        ix.upsert(full, false);
        let mut only_sub = provider(
            "svc_sub",
            ProviderKind::Service,
            &["daily_care"],
            "c1",
            "s1",
        );
        only_sub.eligibility = vec!["subsistence".into()];
        ix.upsert(only_sub, false);
        ix.upsert(
            provider(
                "ptc_x",
                ProviderKind::Volunteer,
                &["daily_care"],
                "c1",
                "s1",
            ),
            false,
        );
        assert!(ix.assign("svc_full", 0));
        assert!(!ix.assign("svc_full", 0), "no capacity left");
        let excluded = vec!["ptc_x".to_owned()];
        assert!(ix.rank(&query("c1", &excluded), 5).unwrap().is_empty());
        let mut q = query("c1", &excluded);
        q.assistance_category = Some("subsistence");
        let ids: Vec<String> = ix
            .rank(&q, 5)
            .unwrap()
            .into_iter()
            .map(|c| c.provider_id)
            .collect();
        assert_eq!(ids, ["svc_sub"]);
        // A new week gives the capacity back.
        let mut q = query("c1", &excluded);
        q.week = 1;
        assert_eq!(ix.rank(&q, 5).unwrap()[0].provider_id, "svc_full");
    }

    #[test]
    fn skills_suggest_categories_in_the_order_written() {
        let known = [
            "daily_care",
            "health",
            "schooling",
            "emotional_support",
            "skills",
        ];
        assert_eq!(
            categories_from_skills("急救、助老陪护", &known, 3),
            ["health", "daily_care"]
        );
        assert_eq!(
            categories_from_skills("心理疏导", &known, 3),
            ["emotional_support"]
        );
        assert_eq!(
            categories_from_skills("就业指导", &known, 3),
            Vec::<String>::new()
        );
        assert_eq!(
            categories_from_skills("摄影 驾驶 课业辅导 医疗", &known, 2),
            ["skills", "schooling"]
        );
    }

    #[test]
    fn windows_parse_display_and_cover() {
        let w = TimeWindows::parse("weekdays 09:00-17:00; sat 09:00-12:00").unwrap();
        assert_eq!(w.to_string(), "工作日 09:00-17:00；周六 09:00-12:00");
        assert_eq!(TimeWindows::parse(&w.to_string()).unwrap(), w);
        assert!(w.covers(0, 9 * 60));
        assert!(!w.covers(0, 17 * 60));
        assert!(w.covers(5, 11 * 60));
        assert!(!w.covers(6, 11 * 60));
        let w = TimeWindows::parse("mon-wed,fri 08:30-11:30").unwrap();
        assert_eq!(w.to_string(), "周一至周三、周五 08:30-11:30");
        assert!(TimeWindows::parse("weekdays 17:00-09:00").is_err());
        assert!(TimeWindows::parse("someday 09:00-10:00").is_err());
        assert!(TimeWindows::parse("mon 25:00-26:00").is_err());
        assert!(TimeWindows::parse("").unwrap().is_empty());
    }

    fn brute_force(ix: &DispatchIndex, q: &OrderQuery<'_>, max: usize) -> Vec<String> {
        let mut all: Vec<Candidate> = ix
            .providers
            .iter()
            .filter(|e| DispatchIndex::eligible(e, q))
            .filter_map(|e| ix.candidate(q, &e.p.id))
            .collect();
        all.sort_by(|a, b| {
            let (pa, pb) = (
                ix.provider(&a.provider_id).unwrap(),
                ix.provider(&b.provider_id).unwrap(),
            );
            (b.score, pa.live, a.kind, &a.provider_id).cmp(&(
                a.score,
                pb.live,
                b.kind,
                &b.provider_id,
            ))
        });
        all.into_iter().take(max).map(|c| c.provider_id).collect()
    }

    proptest! {
        /// Ranking by tiers with bounds gives exactly what scoring everyone gives, and assigning
        /// the best candidate order after order never takes anyone past their capacity.
        #[test]
        fn tiers_equal_brute_force_and_batches_respect_capacity(
            specs in proptest::collection::vec((0_u8..3, 0_u8..2, 0_u8..2, 1_u32..4, 0_i64..20, 0_u32..4, proptest::bool::ANY), 1..40),
            orders in proptest::collection::vec((0_u8..3, 0_u8..2), 1..80),
            sort_after in 0_usize..45,
            reviews in proptest::collection::vec(1_i64..6, 0..80),
        ) {
            let mut ix = index();
            let communities = ["c1", "c2", "c3"];
            let streets = ["s1", "s1", "s2"];
            for (n, (home, cat, kind, cap, ratings, live, wide)) in specs.iter().enumerate() {
                // Lists sorted part-way: later providers go in by sorted insertion.
                if n == sort_after {
                    ix.sort_lists();
                }
                let kind = if *kind == 0 { ProviderKind::Service } else { ProviderKind::Volunteer };
                let cats: &[&str] = if *cat == 0 { &["daily_care", "health"] } else { &["health", "daily_care"] };
                let h = usize::from(*home);
                let mut p = provider(&format!("p{n:03}"), kind, cats, communities[h], streets[h]);
                p.capacity_per_week = *cap;
                p.rating_sum = *ratings * i64::try_from(1 + n % 5).unwrap();
                p.rating_count = *ratings;
                p.live = *live;
                if kind == ProviderKind::Service {
                    p.scope = if *wide { Scope::District } else { Scope::Community };
                }
                ix.upsert(p, false);
            }
            if sort_after == specs.len() {
                ix.sort_lists();
            }
            for (k, (home, _)) in orders.iter().enumerate() {
                let q = query(communities[usize::from(*home)], &[]);
                let ranked: Vec<String> = ix.rank(&q, 3).unwrap().into_iter().map(|c| c.provider_id).collect();
                prop_assert_eq!(&ranked, &brute_force(&ix, &q, 3));
                if let Some(best) = ranked.first() {
                    prop_assert!(ix.assign(best, 0));
                    // A review moves the provider's ceiling (and its place in sorted lists).
                    if let Some(stars) = reviews.get(k) {
                        ix.add_rating(best, *stars);
                    }
                }
            }
            for e in &ix.providers {
                prop_assert!(e.p.used <= e.p.capacity_per_week);
            }
        }
    }
}
