//! Deterministic synthetic data for a whole district, so the platform can be tried, measured and
//! tested at the size the plan describes (1.3 million residents, 470,000 volunteers, 16 charity
//! organizations, 57 funds, 7,660 people in the low-income registry, 738 services).
//!
//! Everything is drawn from ChaCha8 streams seeded with [`DemoOptions::seed`] and from fixed
//! instants in the plan's years, never from the wall clock, so the same seed and scale give the
//! same rows, identifiers included. The exceptions are what cannot be deterministic by design:
//! the keyed digests and ciphertexts of ID numbers (they depend on the deployment's key), the demo
//! administrator's password hash (salted) and the journal's own timestamps (the journal records
//! when the data was written).
//!
//! On top of the bulk rows, a small story of participation is played through the use cases
//! themselves (see `Generator::participation`): the points rules and five reward offers, a
//! volunteer roster import, a demo member and a partner's redeemer who sign in with a published
//! phone and password ([`DEMO_MEMBER_PHONE`], [`DEMO_PARTNER_PHONE`]), a team, past activities
//! with verified check-ins (hours, a star, a certificate), donations and a skill donation that
//! earn points, a redemption, and an activity open for check-in. Its cast comes from the seed;
//! its instants are offsets from the local day of generation (points expire and offers run from
//! today), and the ids the use cases make are random as for any user.
//!
//! Every person, organization and household carries `synthetic = true`; organization names also
//! end in "（演示）". ID numbers are valid by checksum but invented: a bijection from the person's
//! index to a (birth date, sequence number) pair keeps them unique without remembering them.
//!
//! A run is recorded in the journal under the subject [`DEMO_SUBJECT`]: `demo.started`, one
//! `demo.batch` per transaction (table, row count and id range; never personal data) and finally
//! `demo.generated` with the seed, scale and counts. A second run with the same seed and scale
//! finds that entry and returns at once.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cishan_core::{
    take_fifo, Better, Comparator, CreditCode, Decimal, DivisionLevel, Fen, IdNumber, IndicatorDef,
    IndicatorSource, RegionPack,
};
use cishan_store::{
    format_instant, BulkRow, DisbursementRow, DonationRow, FlowRow, FundRow, JobRow,
    LedgerEntryRow, LotRow, MemberRow, NeedRow, NewEntry, OrganizationRow, ParticipantRow,
    PlacementRow, ProjectRow, RegistryHouseholdRow, ServiceFullRow, ServiceRecordRow, TableCounts,
    TrustRow, VolunteerRow, WriteTx, BULK_BATCH_ROWS,
};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::donations::{DonationInput, IdempotencyKey};
use crate::import::ImportKind;
use crate::orders::{OrderInput, ReasonInput, ReviewInput};
use crate::participants::SelfRegistration;
use crate::points::SkillActInput;
use crate::rewards::RedeemInput;
use crate::volunteering::{ActivityInput, CertificateInput, ScanCodeInput, TeamInput, VerifyInput};
use crate::{Actor, App, AppError, FixedClock, Result, Role, Vault};

/// The demo administrator's username.
pub const DEMO_ADMIN_USERNAME: &str = "admin";
/// The demo administrator's password. Published on purpose: the demo holds synthetic data only,
/// and `cishan demo` prints it so a visitor can sign in.
pub const DEMO_ADMIN_PASSWORD: &str = "cishan-demo-2021";
/// The demo administrator's display name.
pub const DEMO_ADMIN_DISPLAY_NAME: &str = "演示管理员";
/// The journal subject of every demo bookkeeping entry.
pub const DEMO_SUBJECT: &str = "demo";
/// The plan's years; the data's instants all fall in them (volunteers and organizations
/// registered earlier excepted: they count towards the first year).
pub const DEMO_YEARS: [i16; 3] = [2021, 2022, 2023];

/// Assistance categories of the low-income registry: stable code and Chinese name
/// (from the categories listed in the reference notes `rules.md`).
pub const ASSISTANCE_CATEGORIES: [(&str, &str); 6] = [
    ("subsistence", "最低生活保障"),
    ("near_subsistence", "低保边缘"),
    ("extreme_poverty", "特困人员供养"),
    ("expenditure_hardship", "支出型困难"),
    ("temporary", "临时救助"),
    ("medical", "医疗救助"),
];

/// Rows written per transaction in the big tables: large enough that commits are rare, small
/// enough that the SQLite WAL file and memory stay bounded.
const TX_ROWS: usize = 100_000;
/// Rows per `insert_all` call, and so how often progress is reported.
const PROGRESS_ROWS: usize = 10_000;
/// Who the demo's journal entries name as the actor.
const DEMO_ACTOR: &str = "demo";

/// Birth dates of demo residents lie in this inclusive range.
const FIRST_BIRTH: (i16, i8, i8) = (1940, 1, 1);
const LAST_BIRTH: (i16, i8, i8) = (2005, 12, 31);
/// Multiplier of the index → ID number bijection; any number coprime to the domain size works,
/// [`coprime_at_least`] moves up from here until it finds one.
const ID_MULTIPLIER: u64 = 1_000_003;
/// Multiplier of the resident → volunteer ordinal bijection.
const VOLUNTEER_MULTIPLIER: u64 = 999_983;

/// The GB 32100 alphabet, for the organization-code part of demo credit codes.
const CREDIT_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

// Independent random streams, one per kind of data, so that adding draws to one kind does not
// shift the values of another.
const STREAM_ORGS: u64 = 1;
const STREAM_PEOPLE: u64 = 2;
const STREAM_IDS: u64 = 3;
const STREAM_HOUSEHOLDS: u64 = 4;
const STREAM_SERVICES: u64 = 5;
const STREAM_DONATIONS: u64 = 6;
const STREAM_DISBURSEMENTS: u64 = 7;
const STREAM_SERVICE_RECORDS: u64 = 8;
const STREAM_INDICATORS: u64 = 9;

const STREAM_STORY: u64 = 10;
/// The registry's personal fields, needs and welfare jobs (drawn apart from the households'
/// shape, so adding them changed no household).
const STREAM_REGISTRY: u64 = 21;
/// The service orders' story.
const STREAM_ORDERS: u64 = 22;

/// One demo order: the state it ends in, how long before now it was made, its rating (when
/// reviewed) and whether a first provider rejected it.
struct OrderStory {
    state: &'static str,
    made_minutes_ago: i64,
    rating: i64,
    rejected_first: bool,
}

const fn story(
    state: &'static str,
    made_minutes_ago: i64,
    rating: i64,
    rejected_first: bool,
) -> OrderStory {
    OrderStory {
        state,
        made_minutes_ago,
        rating,
        rejected_first,
    }
}

const DAY_MINUTES: i64 = 24 * 60;

/// Twelve reviewed (two rated low, which raises warnings), completed, in service (two for more
/// than three days: overdue), accepted, dispatched (waiting to be accepted), open (three for
/// hours: overdue) and cancelled orders.
const ORDER_STORIES: [OrderStory; 34] = [
    story("reviewed", 20 * DAY_MINUTES, 5, false),
    story("reviewed", 19 * DAY_MINUTES, 5, false),
    story("reviewed", 18 * DAY_MINUTES, 4, true),
    story("reviewed", 17 * DAY_MINUTES, 5, false),
    story("reviewed", 16 * DAY_MINUTES, 3, false),
    story("reviewed", 15 * DAY_MINUTES, 4, false),
    story("reviewed", 14 * DAY_MINUTES, 5, false),
    story("reviewed", 12 * DAY_MINUTES, 2, false),
    story("reviewed", 11 * DAY_MINUTES, 5, false),
    story("reviewed", 10 * DAY_MINUTES, 1, true),
    story("reviewed", 9 * DAY_MINUTES, 4, false),
    story("reviewed", 8 * DAY_MINUTES, 5, false),
    story("completed", 6 * DAY_MINUTES, 0, false),
    story("completed", 5 * DAY_MINUTES, 0, false),
    story("completed", 4 * DAY_MINUTES, 0, true),
    story("completed", 3 * DAY_MINUTES, 0, false),
    story("in_service", 5 * DAY_MINUTES, 0, false),
    story("in_service", 4 * DAY_MINUTES, 0, false),
    story("in_service", 600, 0, false),
    story("in_service", 300, 0, false),
    story("accepted", 400, 0, false),
    story("accepted", 200, 0, true),
    story("accepted", 90, 0, false),
    story("dispatched", 20, 0, false),
    story("dispatched", 15, 0, false),
    story("dispatched", 10, 0, true),
    story("created", 240, 0, false),
    story("created", 180, 0, false),
    story("created", 150, 0, false),
    story("created", 20, 0, false),
    story("created", 5, 0, false),
    story("cancelled", 3 * DAY_MINUTES, 0, false),
    story("cancelled", 2 * DAY_MINUTES, 0, false),
    story("cancelled", 500, 0, false),
];

/// The demo member's sign-in (a volunteer who also gives): phone and password. Published on
/// purpose, like the administrator's, and printed by `cishan demo`.
pub const DEMO_MEMBER_PHONE: &str = "13900002021";
pub const DEMO_MEMBER_PASSWORD: &str = "cishan-member-2021";
/// The sign-in of the person who redeems rewards for a partner organization.
pub const DEMO_PARTNER_PHONE: &str = "13900002022";
pub const DEMO_PARTNER_PASSWORD: &str = "cishan-partner-2021";

/// Residents the demo registers as volunteers by roster import.
pub const STORY_VOLUNTEERS: usize = 40;
/// Roster volunteers at each past activity, besides the member.
pub const STORY_ATTENDEES: usize = 15;
const STORY_CAPACITY: i64 = 30;

/// A past activity of the story: instants are (days before the day of generation, hour,
/// minute), local time.
struct PastActivity {
    title: &'static str,
    category: &'static str,
    content: &'static str,
    recipients: &'static str,
    starts: (i64, i64, i64),
    ends: (i64, i64, i64),
}

/// Two week-long activities and a morning: with the daily maximum of 8 hours they give each
/// attendee 7 + 6 days × 8 h and 3.5 h, over 100 hours, the first star.
const PAST_ACTIVITIES: [PastActivity; 3] = [
    PastActivity {
        title: "社区助老服务周（演示）",
        category: "daily_care",
        content: "为社区独居老人上门送餐、打扫和陪伴",
        recipients: "社区独居、空巢老人",
        starts: (30, 8, 0),
        ends: (24, 18, 0),
    },
    PastActivity {
        title: "青少年课业辅导营（演示）",
        category: "schooling",
        content: "为困难家庭子女辅导功课、组织阅读",
        recipients: "困难家庭中小学生",
        starts: (20, 8, 30),
        ends: (15, 17, 30),
    },
    PastActivity {
        title: "健康义诊进社区（演示）",
        category: "health",
        content: "协助医生为居民量血压、测血糖、登记健康档案",
        recipients: "社区居民",
        starts: (7, 9, 0),
        ends: (7, 12, 30),
    },
];

/// The member's donations: (yuan, days before the day of generation).
const STORY_DONATIONS: [(i64, i64); 2] = [(2_000, 12), (500, 2)];

/// Skills listed in the demo roster.
const STORY_SKILLS: [&str; 6] = ["助老陪护", "急救", "课业辅导", "心理疏导", "摄影", "驾驶"];

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// A few thousand rows: for tests and a quick look (seconds).
    Small,
    /// The plan's district: 1.3 million residents, 470,000 volunteers (about a minute).
    District,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::District => "district",
        }
    }

    /// What this scale generates.
    pub fn plan(self) -> DemoPlan {
        match self {
            Scale::Small => DemoPlan {
                residents: 2_000,
                volunteers_by_year: [400, 450, 470],
                charity_organizations_by_year: [4, 6, 8],
                trusts_by_year: [1, 2, 3],
                funds: 10,
                projects_per_fund: 2,
                household_members: 80,
                services: 60,
                donations: 400,
                disbursements: 60,
                receipts: 40,
                service_records: 600,
            },
            Scale::District => DemoPlan {
                residents: 1_300_000,
                volunteers_by_year: [400_000, 450_000, 470_000],
                charity_organizations_by_year: [8, 12, 16],
                trusts_by_year: [1, 2, 3],
                funds: 57,
                projects_per_fund: 2,
                household_members: 7_660,
                services: 738,
                donations: 200_000,
                disbursements: 20_000,
                receipts: 2_000,
                service_records: 300_000,
            },
        }
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scale {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Scale, String> {
        match s {
            "small" => Ok(Scale::Small),
            "district" => Ok(Scale::District),
            other => Err(format!(
                "unknown demo scale `{other}`: use small or district"
            )),
        }
    }
}

/// The sizes a scale generates. Cumulative figures are counted at the end of each of
/// [`DEMO_YEARS`] in the region's time zone, the way the indicator table counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DemoPlan {
    /// People (participants of kind `person`).
    pub residents: u64,
    /// Registered volunteers at the end of each year, cumulative.
    pub volunteers_by_year: [u64; 3],
    /// Charity organizations at the end of each year, cumulative; the last is the total.
    pub charity_organizations_by_year: [u64; 3],
    /// Charity trusts filed by the end of each year, cumulative.
    pub trusts_by_year: [u64; 3],
    pub funds: u64,
    pub projects_per_fund: u64,
    /// People in the low-income registry: the sum of the households' member counts.
    pub household_members: u64,
    pub services: u64,
    pub donations: u64,
    pub disbursements: u64,
    /// The most recent donations, which get receipts through the app's own receipt path (so
    /// each is numbered and logged as a real one); older demo donations have none.
    pub receipts: u64,
    pub service_records: u64,
}

/// How to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    pub scale: Scale,
    pub seed: u64,
}

/// A step of the generation, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Accounts,
    Indicators,
    Organizations,
    Residents,
    Households,
    Services,
    Receipts,
    Donations,
    Disbursements,
    Ledger,
    ServiceRecords,
    /// The points rules and the partners' offers.
    Points,
    /// Demo members, a roster import, a team, activities with check-ins, points and rewards.
    Participation,
    /// Service orders in every state, played through the use cases.
    Orders,
}

impl Stage {
    /// A short label for a progress bar, in Chinese and English.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Accounts => "管理员 admin",
            Stage::Indicators => "指标 indicators",
            Stage::Organizations => "组织与基金 organizations",
            Stage::Residents => "居民与志愿者 residents",
            Stage::Households => "低收入家庭 households",
            Stage::Services => "服务项目 services",
            Stage::Donations => "捐赠 donations",
            Stage::Disbursements => "拨付 disbursements",
            Stage::Receipts => "捐赠票据 receipts",
            Stage::Ledger => "资金流向 ledger",
            Stage::ServiceRecords => "志愿服务 service records",
            Stage::Points => "积分规则与回馈 points rules",
            Stage::Participation => "会员与志愿活动 members",
            Stage::Orders => "服务订单 orders",
        }
    }
}

/// Where the generation is: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub done: u64,
    pub total: u64,
}

/// What a demo run produced (or found already there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoReport {
    pub seed: u64,
    pub scale: Scale,
    /// Row counts of the database after the run.
    pub counts: TableCounts,
    /// True when the database already held this demo and nothing was written.
    pub reused: bool,
    pub elapsed: Duration,
}

/// What `demo.started` and `demo.generated` record; unknown fields are ignored when reading.
#[derive(Debug, serde::Deserialize)]
struct Stamp {
    seed: u64,
    scale: Scale,
}

impl App {
    /// Fills an empty database with the demo data of `options`, or returns at once when it
    /// already holds exactly that demo. Refuses a database holding anything else.
    pub async fn generate_demo(
        &self,
        options: &DemoOptions,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<DemoReport> {
        let started = Instant::now();
        if self.check_demo_target(options).await? {
            return Ok(DemoReport {
                seed: options.seed,
                scale: options.scale,
                counts: self.store().table_counts().await?,
                reused: true,
                elapsed: started.elapsed(),
            });
        }
        let plan = options.scale.plan();
        tracing::info!(demo.seed = options.seed, demo.scale = %options.scale, "generating demo data");
        self.demo_note(
            "demo.started",
            serde_json::json!({ "seed": options.seed, "scale": options.scale, "plan": plan }),
        )
        .await?;

        progress(Progress {
            stage: Stage::Accounts,
            done: 0,
            total: 1,
        });
        let admin = self.demo_admin().await?;
        progress(Progress {
            stage: Stage::Accounts,
            done: 1,
            total: 1,
        });

        // Indicator actuals go first, while the tables are empty: each entry recomputes the
        // year's table, and counting volunteers is cheaper before there are any.
        let actuals = demo_actuals(self.pack(), options.seed);
        let total = u64_of(actuals.len());
        for (done, (code, year, value)) in actuals.iter().enumerate() {
            self.set_indicator_actual(&admin, code, *year, value)
                .await?;
            progress(Progress {
                stage: Stage::Indicators,
                done: u64_of(done + 1),
                total,
            });
        }

        let mut generator = Generator::new(self, options, plan, progress)?;
        let mut stage_started = started;
        let mut lap = |stage: &str| {
            tracing::debug!(
                demo.stage = stage,
                demo.elapsed_ms =
                    u64::try_from(stage_started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "demo stage written"
            );
            stage_started = Instant::now();
        };
        lap("accounts_and_indicators");
        generator.organizations().await?;
        lap("organizations");
        // The points rules and the partners' offers go in while there are no donations yet, so
        // publishing syncs nothing: the bulk donations below become points acts lazily, for
        // each participant when their balance is first read (or by `cishan points sync`), never
        // in one pass over the whole district.
        generator.report(Stage::Points, 0, 1);
        crate::rewards::seed_demo_points(self, &admin).await?;
        generator.report(Stage::Points, 1, 1);
        lap("points_rules_and_offers");
        generator.residents().await?;
        lap("residents");
        generator.households().await?;
        lap("households");
        generator.services().await?;
        lap("services");
        generator.projects_and_donations(&admin).await?;
        lap("donations");
        generator.disbursements().await?;
        lap("disbursements");
        generator.ledger().await?;
        lap("ledger");
        generator.service_records().await?;
        lap("service_records");
        generator.participation(&admin).await?;
        lap("participation");
        generator.service_orders(&admin).await?;
        lap("orders");

        let counts = self.store().table_counts().await?;
        self.demo_note(
            "demo.generated",
            serde_json::json!({ "seed": options.seed, "scale": options.scale, "counts": counts }),
        )
        .await?;
        let elapsed = started.elapsed();
        tracing::info!(
            demo.seed = options.seed,
            demo.scale = %options.scale,
            demo.elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "demo data generated"
        );
        Ok(DemoReport {
            seed: options.seed,
            scale: options.scale,
            counts,
            reused: false,
            elapsed,
        })
    }

    /// The seed and scale of the demo this database holds, if it holds one (so a server can say
    /// that its data is synthetic).
    pub async fn demo_in_database(&self) -> Result<Option<DemoOptions>> {
        let entries = self.store().journal_for_subject(DEMO_SUBJECT).await?;
        entries
            .iter()
            .rev()
            .find(|e| e.kind == "demo.generated")
            .map(|e| {
                serde_json::from_str::<Stamp>(&e.payload)
                    .map(|s| DemoOptions {
                        scale: s.scale,
                        seed: s.seed,
                    })
                    .map_err(AppError::internal)
            })
            .transpose()
    }

    /// `Ok(true)` when the database already holds this very demo, `Ok(false)` when it is empty,
    /// an error saying what to do otherwise.
    async fn check_demo_target(&self, options: &DemoOptions) -> Result<bool> {
        let entries = self.store().journal_for_subject(DEMO_SUBJECT).await?;
        let stamp_of = |kind: &str| -> Result<Option<Stamp>> {
            entries
                .iter()
                .rev()
                .find(|e| e.kind == kind)
                .map(|e| serde_json::from_str::<Stamp>(&e.payload).map_err(AppError::internal))
                .transpose()
        };
        if let Some(done) = stamp_of("demo.generated")? {
            if done.seed == options.seed && done.scale == options.scale {
                return Ok(true);
            }
            return Err(not_empty(&format!(
                "该数据库已有另一份演示数据（种子 {}，规模 {}）。 \
                 This database already holds demo data with seed {} and scale {}.",
                done.seed, done.scale, done.seed, done.scale
            )));
        }
        if let Some(begun) = stamp_of("demo.started")? {
            return Err(not_empty(&format!(
                "该数据库中有一次未完成的演示数据生成（种子 {}，规模 {}），可能被中断。 \
                 An earlier demo generation (seed {}, scale {}) did not finish.",
                begun.seed, begun.scale, begun.seed, begun.scale
            )));
        }
        let counts = self.store().table_counts().await?;
        let users = self.store().user_count().await?;
        let actuals = self.store().indicator_actuals().await?.len();
        let business_rows = [
            counts.participants,
            counts.organizations,
            counts.funds,
            counts.projects,
            counts.volunteers,
            counts.households,
            counts.services,
            counts.donations,
            counts.disbursements,
            counts.service_records,
            counts.trusts,
            users,
            i64::try_from(actuals).unwrap_or(i64::MAX),
        ];
        if business_rows.iter().any(|n| *n > 0) {
            return Err(not_empty(
                "该数据库中已有账号或业务数据，演示数据只能写入空数据库。 \
                 This database already holds accounts or records; demo data only goes into an empty database.",
            ));
        }
        Ok(false)
    }

    /// Appends one demo bookkeeping entry in its own transaction.
    async fn demo_note(&self, kind: &str, payload: serde_json::Value) -> Result<()> {
        let mut tx = self.store().begin().await?;
        tx.journal(
            self.clock().now(),
            NewEntry {
                actor: DEMO_ACTOR.into(),
                kind: kind.into(),
                subject: DEMO_SUBJECT.into(),
                payload,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The demo administrator, created unless it exists.
    async fn demo_admin(&self) -> Result<Actor> {
        if let Some(user) = self.store().user_by_username(DEMO_ADMIN_USERNAME).await? {
            if user.role != Role::Admin.as_str() {
                return Err(not_empty(
                    "已有名为 admin 的非管理员账号。 An account named admin exists and is not an administrator.",
                ));
            }
            return Ok(Actor {
                user_id: user.id,
                username: user.username,
                display_name: user.display_name,
                role: Role::Admin,
                participant_id: user.participant_id,
            });
        }
        self.create_user(
            None,
            DEMO_ADMIN_USERNAME,
            DEMO_ADMIN_DISPLAY_NAME,
            DEMO_ADMIN_PASSWORD,
            Role::Admin,
        )
        .await
    }
}

fn not_empty(what: &str) -> AppError {
    AppError::conflict(
        "demo.database_not_empty",
        format!(
            "{what} 请用 --db 指定另一个数据库文件，或删除该文件后重试。 \
             Use another --db, or delete the database file and try again."
        ),
    )
}

fn u64_of(n: usize) -> u64 {
    u64::try_from(n).expect("a count fits in u64")
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).expect("a demo count fits in i64")
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).expect("a demo count fits in usize")
}

/// A ChaCha8 stream for one kind of data.
fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A uniformly chosen element. Indexes with `u32` draws rather than `usize` so that the same
/// seed picks the same element on 32- and 64-bit machines.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[index_below(rng, items.len())]
}

/// An index drawn uniformly from `0..n` (with `u32` draws, as [`pick`]).
fn index_below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let n = u32::try_from(n).expect("fewer than 2^32 choices");
    assert!(n > 0, "an index below zero");
    usize::try_from(rng.gen_range(0..n)).expect("u32 fits in usize")
}

/// An index chosen with the given weights (any positive integers).
fn pick_weighted(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut draw = rng.gen_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if draw < *w {
            return i;
        }
        draw -= w;
    }
    weights.len() - 1
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The smallest number at least `start` that is coprime to `n`: `i ↦ (i·m + c) mod n` is then a
/// bijection of `0..n`.
fn coprime_at_least(start: u64, n: u64) -> u64 {
    let mut m = start;
    while gcd(m, n) != 1 {
        m += 1;
    }
    m
}

/// An instant drawn uniformly from `[from, until)`; `from` when the range is empty.
fn between(rng: &mut ChaCha8Rng, from: Timestamp, until: Timestamp) -> Timestamp {
    let (a, b) = (from.as_second(), until.as_second());
    if b <= a {
        return from;
    }
    Timestamp::from_second(rng.gen_range(a..b)).expect("between two valid instants")
}

fn plus_minutes(at: Timestamp, minutes: i64) -> Result<Timestamp> {
    at.checked_add(jiff::SignedDuration::from_mins(minutes))
        .map_err(AppError::internal)
}

fn plus_days(at: Timestamp, days: i64) -> Timestamp {
    at.checked_add(jiff::SignedDuration::from_hours(days * 24))
        .expect("demo instants are far from the limits")
}

/// Civil dates and instants in the region's time zone.
#[derive(Debug, Clone)]
struct Calendar {
    tz: TimeZone,
}

impl Calendar {
    fn new(pack: &RegionPack) -> Result<Calendar> {
        Ok(Calendar {
            tz: TimeZone::get(&pack.timezone).map_err(AppError::internal)?,
        })
    }

    /// Local midnight starting `date`.
    fn midnight(&self, date: Date) -> Timestamp {
        date.to_zoned(self.tz.clone())
            .expect("demo dates exist in the region's time zone")
            .timestamp()
    }

    /// Local midnight starting 1 January of `year`.
    fn year_start(&self, year: i16) -> Timestamp {
        self.midnight(Date::new(year, 1, 1).expect("1 January exists"))
    }

    /// The local date of an instant, as stored (`YYYY-MM-DD`).
    fn date_text(&self, at: Timestamp) -> String {
        self.tz.to_datetime(at).date().to_string()
    }
}

/// Drives one generation: shared picks (divisions, organizations, funds, projects) and the
/// instants every stage draws from.
struct Generator<'a> {
    app: &'a App,
    seed: u64,
    plan: DemoPlan,
    progress: &'a (dyn Fn(Progress) + Send + Sync),
    calendar: Calendar,
    /// Start of the first data year and end of the last (exclusive).
    data_start: Timestamp,
    data_end: Timestamp,
    /// Community and village codes, urban communities listed three times (more people live there).
    homes: Vec<String>,
    /// Community and village codes, each once.
    communities: Vec<(String, String)>,
    streets: Vec<String>,
    orgs: Vec<OrgInfo>,
    funds: Vec<FundInfo>,
    projects: Vec<ProjectInfo>,
    households: Vec<(String, i64)>,
    /// For volunteer ordinal `v`: the resident index and registration instant (seconds).
    volunteers: Vec<(u64, i64)>,
    /// Participant id of the first organization's participant row.
    org_participant_base: u64,
    /// Every donation, in id order, kept for the ledger replay.
    donations: Vec<DonationRow>,
    /// Whether `donations[i]` is one of the most recent, which get receipts.
    receipted: Vec<bool>,
    /// Every disbursement, in id order, kept for the ledger replay.
    disbursement_rows: Vec<DisbursementRow>,
}

#[derive(Debug)]
struct OrgInfo {
    id: String,
    participant_id: String,
    kind: &'static str,
    registered: Timestamp,
    created: Timestamp,
}

#[derive(Debug)]
struct FundInfo {
    id: String,
    org: usize,
    created: Timestamp,
    namesake: &'static str,
    theme: usize,
}

#[derive(Debug)]
struct ProjectInfo {
    row: ProjectRow,
    created: Timestamp,
    raised_fen: i64,
}

fn person_id(index: u64) -> String {
    format!("ptc_{:08}", index + 1)
}

impl<'a> Generator<'a> {
    fn new(
        app: &'a App,
        options: &DemoOptions,
        plan: DemoPlan,
        progress: &'a (dyn Fn(Progress) + Send + Sync),
    ) -> Result<Generator<'a>> {
        let pack = app.pack();
        let calendar = Calendar::new(pack)?;
        let mut homes = Vec::new();
        let mut communities = Vec::new();
        for d in &pack.divisions {
            let copies = match d.level {
                DivisionLevel::Community => 3,
                DivisionLevel::Village => 1,
                _ => 0,
            };
            for _ in 0..copies {
                homes.push(d.code.as_str().to_owned());
            }
            if copies > 0 {
                communities.push((d.code.as_str().to_owned(), short_name(&d.name)));
            }
        }
        let streets: Vec<String> = pack
            .streets_and_towns()
            .map(|d| d.code.as_str().to_owned())
            .collect();
        if communities.is_empty() || streets.is_empty() {
            return Err(AppError::invalid(
                "pack",
                "demo.pack_without_divisions",
                "区域数据包没有街道和社区，无法生成演示数据。 The region pack has no streets or communities.",
            ));
        }
        let data_start = calendar.year_start(DEMO_YEARS[0]);
        let data_end = calendar.year_start(DEMO_YEARS[2] + 1);
        Ok(Generator {
            app,
            seed: options.seed,
            plan,
            progress,
            calendar,
            data_start,
            data_end,
            homes,
            communities,
            streets,
            orgs: Vec::new(),
            funds: Vec::new(),
            projects: Vec::new(),
            households: Vec::new(),
            volunteers: Vec::new(),
            org_participant_base: plan.residents,
            donations: Vec::new(),
            receipted: Vec::new(),
            disbursement_rows: Vec::new(),
        })
    }

    fn report(&self, stage: Stage, done: u64, total: u64) {
        (self.progress)(Progress { stage, done, total });
    }

    async fn begin(&self) -> Result<WriteTx> {
        Ok(self.app.store().begin().await?)
    }

    /// Journals a batch: which table, how many rows, the id range. Never row contents.
    async fn note_batch(
        &self,
        tx: &mut WriteTx,
        table: &str,
        rows: usize,
        first: &str,
        last: &str,
    ) -> Result<()> {
        tx.journal(
            self.app.clock().now(),
            NewEntry {
                actor: DEMO_ACTOR.into(),
                kind: "demo.batch".into(),
                subject: DEMO_SUBJECT.into(),
                payload: serde_json::json!({
                    "table": table,
                    "rows": rows,
                    "first_id": first,
                    "last_id": last,
                    "synthetic": true,
                }),
            },
        )
        .await?;
        Ok(())
    }

    /// Organizations (with their participant rows), funds and charity trusts.
    async fn organizations(&mut self) -> Result<()> {
        let mut rng = rng_for(self.seed, STREAM_ORGS);
        let region = self.app.pack().code.as_str().to_owned();
        let cumulative = self.plan.charity_organizations_by_year;
        let count = usize_of(cumulative[2]);
        let total = u64_of(count) + self.plan.funds + 3;
        self.report(Stage::Organizations, 0, total);

        let mut participants = Vec::with_capacity(count);
        let mut organizations = Vec::with_capacity(count);
        let mut codes = HashSet::new();
        for (index, (name, kind)) in ORGANIZATIONS.iter().cycle().take(count).enumerate() {
            let ordinal = u64_of(index);
            // Registered before the end of the year whose cumulative target includes it; the
            // first cohort may predate the plan, and the last stops in autumn so its funds have
            // time to raise money.
            let (from, until) = if ordinal < cumulative[0] {
                (
                    self.calendar.year_start(2012),
                    self.calendar.year_start(DEMO_YEARS[0] + 1),
                )
            } else if ordinal < cumulative[1] {
                (
                    self.calendar.year_start(DEMO_YEARS[1]),
                    self.calendar.year_start(DEMO_YEARS[1] + 1),
                )
            } else {
                (
                    self.calendar.year_start(DEMO_YEARS[2]),
                    self.calendar
                        .midnight(Date::new(DEMO_YEARS[2], 10, 1).expect("a real date")),
                )
            };
            let registered_date = self.calendar.date_text(between(&mut rng, from, until));
            let registered = self.calendar.midnight(
                registered_date
                    .parse::<Date>()
                    .map_err(AppError::internal)?,
            );
            let created = between(
                &mut rng,
                registered.max(self.data_start),
                plus_days(registered.max(self.data_start), 30),
            );
            let category = match *kind {
                "foundation" => '3',
                "social_service" => '2',
                _ => '1',
            };
            let credit_code = loop {
                let mut org_code = String::from("MJ");
                for _ in 0..7 {
                    org_code.push(char::from(*pick(&mut rng, &CREDIT_ALPHABET[..10])));
                }
                let code = CreditCode::from_parts('5', category, &region, &org_code)
                    .map_err(AppError::internal)?;
                if codes.insert(code.as_str().to_owned()) {
                    break code;
                }
            };
            let id = format!("org_{:04}", index + 1);
            let participant_id = person_id(self.org_participant_base + ordinal);
            let division = pick(&mut rng, &self.streets).clone();
            let name = if index < ORGANIZATIONS.len() {
                format!("{name}（演示）")
            } else {
                format!("{name}{}（演示）", index / ORGANIZATIONS.len() + 1)
            };
            participants.push(ParticipantRow {
                id: participant_id.clone(),
                kind: "organization".into(),
                display_name: name.clone(),
                id_number_digest: None,
                id_number_masked: None,
                id_number_cipher: None,
                division_code: Some(division.clone()),
                created_at: format_instant(created),
                synthetic: true,
            });
            organizations.push(OrganizationRow {
                id: id.clone(),
                participant_id: Some(participant_id.clone()),
                name,
                credit_code: credit_code.as_str().to_owned(),
                kind: (*kind).to_owned(),
                division_code: Some(division),
                registered_on: registered_date,
                created_at: format_instant(created),
                is_charity: true,
                public_fundraising: *kind == "foundation" || index == 0,
                synthetic: true,
            });
            self.orgs.push(OrgInfo {
                id,
                participant_id,
                kind,
                registered,
                created,
            });
        }

        let mut funds = Vec::new();
        for k in 0..usize_of(self.plan.funds) {
            // Earlier organizations hold more funds, as the established ones do.
            let org = if rng.gen_ratio(1, 2) {
                k % self.orgs.len()
            } else {
                index_below(&mut rng, self.orgs.len().div_ceil(2))
            };
            let namesake = NAMESAKES[k % NAMESAKES.len()];
            let theme = (k / NAMESAKES.len() + k) % THEMES.len();
            let start = self.orgs[org].created.max(self.data_start);
            let created = between(&mut rng, start, plus_days(self.data_end, -120).max(start));
            let id = format!("fnd_{:04}", k + 1);
            funds.push(FundRow {
                id: id.clone(),
                org_id: self.orgs[org].id.clone(),
                name: format!("{namesake}{}慈善基金", THEMES[theme].0),
                created_at: format_instant(created),
            });
            self.funds.push(FundInfo {
                id,
                org,
                created,
                namesake,
                theme,
            });
        }

        let mut trusts = Vec::new();
        let mut filed = 0_u64;
        for (year_index, year) in DEMO_YEARS.iter().enumerate() {
            while filed < self.plan.trusts_by_year[year_index] {
                let from = self.calendar.year_start(*year);
                let until = self.calendar.year_start(year + 1);
                let filed_at = between(&mut rng, plus_days(from, 60), plus_days(until, -30));
                let trustee = self
                    .orgs
                    .iter()
                    .filter(|o| o.kind == "foundation" && o.registered < filed_at)
                    .nth(usize_of(filed))
                    .or_else(|| self.orgs.first())
                    .map(|o| o.id.clone());
                let name = TRUST_NAMES[usize_of(filed) % TRUST_NAMES.len()];
                trusts.push(TrustRow {
                    id: format!("tst_{:04}", filed + 1),
                    name: format!("{name}（演示）"),
                    trustee_org_id: trustee,
                    filed_on: self.calendar.date_text(filed_at),
                });
                filed += 1;
            }
        }

        let mut tx = self.begin().await?;
        tx.insert_all(&participants).await?;
        tx.insert_all(&organizations).await?;
        tx.insert_all(&funds).await?;
        tx.insert_all(&trusts).await?;
        self.note_batch(
            &mut tx,
            "organizations",
            organizations.len(),
            &organizations[0].id,
            &organizations[organizations.len() - 1].id,
        )
        .await?;
        if let (Some(first), Some(last)) = (funds.first(), funds.last()) {
            self.note_batch(&mut tx, "funds", funds.len(), &first.id, &last.id)
                .await?;
        }
        if let (Some(first), Some(last)) = (trusts.first(), trusts.last()) {
            self.note_batch(&mut tx, "trusts", trusts.len(), &first.id, &last.id)
                .await?;
        }
        tx.commit().await?;
        self.report(Stage::Organizations, total, total);
        Ok(())
    }

    /// Residents with ID numbers, and the volunteers among them. Rows are made on a blocking
    /// thread (hashing and encrypting ID numbers is the costly part) while the previous batch
    /// is written.
    async fn residents(&mut self) -> Result<()> {
        let total = self.plan.residents;
        self.report(Stage::Residents, 0, total);
        let mut people = People::new(self, Arc::clone(&self.app.vault))?;
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<PeopleBatch>(2);
        let producer = tokio::task::spawn_blocking(move || {
            while let Some(batch) = people.next_batch(PROGRESS_ROWS) {
                if sender.blocking_send(batch).is_err() {
                    break;
                }
            }
            people.volunteers
        });

        let mut tx: Option<WriteTx> = None;
        let mut in_tx = 0_usize;
        let mut tx_first = String::new();
        let mut done = 0_u64;
        while let Some(batch) = receiver.recv().await {
            let current = match tx.as_mut() {
                Some(current) => current,
                None => {
                    tx_first = batch.participants[0].id.clone();
                    tx.insert(self.begin().await?)
                }
            };
            insert_rows(current, &batch.participants).await?;
            insert_rows(current, &batch.volunteers).await?;
            in_tx += batch.participants.len();
            done += u64_of(batch.participants.len());
            let last = &batch.participants[batch.participants.len() - 1].id;
            if in_tx >= TX_ROWS || done == total {
                let mut current = tx.take().expect("a transaction is open");
                self.note_batch(&mut current, "participants", in_tx, &tx_first, last)
                    .await?;
                current.commit().await?;
                in_tx = 0;
            }
            self.report(Stage::Residents, done, total);
        }
        self.volunteers = producer.await.map_err(AppError::internal)?;
        if let Some(current) = tx.take() {
            // Only reached when the producer stopped early; keep what was written consistent.
            current.commit().await?;
        }
        Ok(())
    }

    /// The low-income registry: households whose members add up to the plan's figure exactly,
    /// each with its members' encrypted and masked personal fields, a per-capita income, consent;
    /// then a few open needs nothing has reached for a while, and welfare jobs with placements.
    /// The draws that shape the households (category, size, community, date) come from the
    /// households stream as before; the personal fields from a stream of their own.
    async fn households(&mut self) -> Result<()> {
        let mut rng = rng_for(self.seed, STREAM_HOUSEHOLDS);
        let mut personal = rng_for(self.seed, STREAM_REGISTRY);
        let target = i64_of(self.plan.household_members);
        self.report(Stage::Households, 0, self.plan.household_members);
        let import_end = self
            .calendar
            .midnight(Date::new(DEMO_YEARS[0], 4, 1).expect("a real date"));
        let weights = [450, 200, 80, 120, 80, 70];
        let vault = self.app.vault();
        let pack = self.app.pack();
        let mut rows = Vec::new();
        let mut member_rows = Vec::new();
        let mut births: HashMap<Date, u16> = HashMap::new();
        let mut members = 0_i64;
        while members < target {
            let category = ASSISTANCE_CATEGORIES[pick_weighted(&mut rng, &weights)].0;
            let drawn: i64 = if category == "extreme_poverty" {
                1
            } else {
                [1, 2, 3, 4, 5][pick_weighted(&mut rng, &[250, 300, 250, 130, 70])]
            };
            let size = drawn.min(target - members);
            members += size;
            let (community, community_name) = pick(&mut rng, &self.communities).clone();
            let created_at = format_instant(between(&mut rng, self.data_start, import_end));
            let id = format!("hh_{:06}", rows.len() + 1);
            self.households.push((id.clone(), size));
            let street = pack
                .division(&community)
                .and_then(|d| d.parent.as_ref())
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let street_name = pack.division(&street).map_or("", |d| d.name.as_str());
            let people = demo_household_people(&mut personal, category, size, &mut births);
            let head = &people[0];
            let phone = personal.gen_ratio(7, 10).then(|| {
                format!(
                    "1{}{:09}",
                    ['3', '5', '8', '9'][index_below(&mut personal, 4)],
                    personal.gen_range(0..1_000_000_000_u32)
                )
            });
            let address = format!(
                "鹿城区{street_name}{community_name}{}幢{}室",
                personal.gen_range(1..60),
                personal.gen_range(101..1_800)
            );
            let income_fen = demo_income_fen(&mut personal, category);
            for (i, p) in people.iter().enumerate() {
                let phone = if i == 0 { phone.as_deref() } else { None };
                member_rows.push(MemberRow {
                    id: format!("hm_{:06}_{:02}", rows.len() + 1, i + 1),
                    household_id: id.clone(),
                    participant_id: None,
                    relation: p.relation.to_owned(),
                    name_cipher: vault.encrypt(&p.name),
                    name_masked: cishan_core::mask_name(&p.name),
                    id_digest: vault.digest(p.id.expose()),
                    id_cipher: vault.encrypt(p.id.expose()),
                    id_masked: p.id.masked(),
                    phone_cipher: phone.map(|x| vault.encrypt(x)),
                    phone_masked: phone.map(cishan_core::mask_phone),
                    birth_year: i64::from(p.id.birth_date().year()),
                    category: None,
                    created_at: created_at.clone(),
                });
            }
            rows.push(RegistryHouseholdRow {
                id,
                street_code: street,
                community_code: community,
                category: category.to_owned(),
                member_count: size,
                head_name_cipher: vault.encrypt(&head.name),
                head_name_masked: cishan_core::mask_name(&head.name),
                head_id_digest: vault.digest(head.id.expose()),
                head_id_cipher: vault.encrypt(head.id.expose()),
                head_id_masked: head.id.masked(),
                phone_cipher: phone.as_deref().map(|x| vault.encrypt(x)),
                phone_masked: phone.as_deref().map(cishan_core::mask_phone),
                address_cipher: vault.encrypt(&address),
                address_masked: cishan_core::assistance::mask_address(&address),
                income_cipher: vault.encrypt(&income_fen.to_string()),
                consent_at: created_at.clone(),
                consent_by: DEMO_ACTOR.into(),
                registered_by: DEMO_ACTOR.into(),
                created_at: created_at.clone(),
                updated_at: created_at,
                synthetic: true,
            });
        }
        let mut tx = self.begin().await?;
        tx.insert_all(&rows).await?;
        self.note_batch(
            &mut tx,
            "households",
            rows.len(),
            &rows[0].id,
            &rows[rows.len() - 1].id,
        )
        .await?;
        tx.insert_all(&member_rows).await?;
        self.note_batch(
            &mut tx,
            "household_members",
            member_rows.len(),
            &member_rows[0].id,
            &member_rows[member_rows.len() - 1].id,
        )
        .await?;
        self.registry_needs(&mut tx, &mut personal, &rows).await?;
        self.welfare_jobs(&mut tx, &mut personal, &rows, &member_rows)
            .await?;
        tx.commit().await?;
        self.report(
            Stage::Households,
            self.plan.household_members,
            self.plan.household_members,
        );
        Ok(())
    }

    /// A few open needs registered months ago that nothing has reached since: the edge list's
    /// second part is not empty (the orders stage turns two of them into served orders). One
    /// household in 25, at least six.
    async fn registry_needs(
        &self,
        tx: &mut WriteTx,
        rng: &mut ChaCha8Rng,
        households: &[RegistryHouseholdRow],
    ) -> Result<()> {
        let categories = &self.app.pack().service_categories;
        if categories.is_empty() || households.is_empty() {
            return Ok(());
        }
        let latest = self.app.clock().now().min(self.data_end);
        let count = (households.len() / 25).max(6).min(households.len());
        let mut needs = Vec::with_capacity(count);
        let mut chosen = HashSet::new();
        while needs.len() < count {
            let h = pick(rng, households);
            if !chosen.insert(h.id.clone()) {
                continue;
            }
            let category = pick(rng, categories);
            let days = rng.gen_range(45..400_i64);
            let registered = latest
                .checked_sub(jiff::SignedDuration::from_hours(days * 24))
                .unwrap_or(self.data_start)
                .max(self.data_start);
            needs.push(NeedRow {
                id: format!("need_demo_{:05}", needs.len() + 1),
                household_id: h.id.clone(),
                member_id: None,
                category: category.code.clone(),
                description: demo_need_text(&category.code).to_owned(),
                state: "open".into(),
                registered_by: DEMO_ACTOR.into(),
                registered_at: format_instant(registered),
                last_served_at: None,
                closed_at: None,
                closed_by: None,
                close_reason: None,
            });
        }
        tx.insert_all(&needs).await?;
        self.note_batch(
            tx,
            "needs",
            needs.len(),
            &needs[0].id,
            &needs[needs.len() - 1].id,
        )
        .await
    }

    /// Welfare jobs at the district's employers, and registry members of working age placed
    /// in them; about one placement in five has ended.
    async fn welfare_jobs(
        &self,
        tx: &mut WriteTx,
        rng: &mut ChaCha8Rng,
        households: &[RegistryHouseholdRow],
        members: &[MemberRow],
    ) -> Result<()> {
        const TITLES: [&str; 8] = [
            "社区保洁员",
            "公共绿化养护员",
            "社区助老服务员",
            "停车秩序管理员",
            "图书馆管理员",
            "垃圾分类督导员",
            "河道保洁员",
            "社区平安巡防员",
        ];
        const END_REASONS: [&str; 3] = ["合同期满", "本人辞职", "已找到其他工作"];
        if self.orgs.is_empty() {
            return Ok(());
        }
        let year = DEMO_YEARS[2];
        let mut candidates: Vec<&MemberRow> = members
            .iter()
            .filter(|m| {
                i16::try_from(m.birth_year)
                    .is_ok_and(|b| cishan_core::assistance::is_working_age(b, year))
            })
            .collect();
        let count = if self.plan.household_members >= 1_000 {
            8
        } else {
            2
        };
        let street_of: HashMap<&str, &str> = households
            .iter()
            .map(|h| (h.id.as_str(), h.street_code.as_str()))
            .collect();
        let opened = self.calendar.year_start(DEMO_YEARS[1]);
        let mut jobs = Vec::new();
        let mut placements = Vec::new();
        for j in 0..count {
            let org = pick(rng, &self.orgs);
            let street = pick(rng, &self.streets).clone();
            let positions = rng.gen_range(3..=12_i64);
            let created = between(rng, opened, self.data_end);
            let id = format!("job_demo_{:03}", j + 1);
            let mut filled = 0;
            let wanted = positions * rng.gen_range(6..=10_i64) / 10;
            for _ in 0..wanted {
                if candidates.is_empty() {
                    break;
                }
                let m = candidates.swap_remove(index_below(rng, candidates.len()));
                let placed = between(rng, created, self.data_end);
                let ended = rng.gen_ratio(1, 5);
                let ended_at = ended.then(|| between(rng, placed, self.data_end));
                if !ended {
                    filled += 1;
                }
                placements.push(PlacementRow {
                    id: format!("plc_demo_{:05}", placements.len() + 1),
                    job_id: id.clone(),
                    member_id: m.id.clone(),
                    household_id: m.household_id.clone(),
                    street_code: street_of
                        .get(m.household_id.as_str())
                        .map_or_else(|| street.clone(), |s| (*s).to_owned()),
                    state: if ended { "ended" } else { "active" }.into(),
                    placed_by: DEMO_ACTOR.into(),
                    placed_at: format_instant(placed),
                    ended_by: ended.then(|| DEMO_ACTOR.to_owned()),
                    ended_at: ended_at.map(format_instant),
                    end_reason: ended.then(|| pick(rng, &END_REASONS).to_string()),
                });
            }
            jobs.push(JobRow {
                id,
                title: TITLES[j % TITLES.len()].to_owned(),
                org_id: org.id.clone(),
                street_code: street,
                kind: if j % 3 == 2 { "caring" } else { "welfare" }.into(),
                positions,
                filled,
                wage_fen_per_month: rng.gen_range(20..=32_i64) * 10_000,
                description: "面向低收入人口库中有劳动能力的人员，每周工作五天。".into(),
                state: "open".into(),
                created_by: DEMO_ACTOR.into(),
                created_at: format_instant(created),
                updated_at: format_instant(created),
                synthetic: true,
            });
        }
        tx.insert_all(&jobs).await?;
        self.note_batch(
            tx,
            "welfare_jobs",
            jobs.len(),
            &jobs[0].id,
            &jobs[jobs.len() - 1].id,
        )
        .await?;
        if !placements.is_empty() {
            tx.insert_all(&placements).await?;
            self.note_batch(
                tx,
                "job_placements",
                placements.len(),
                &placements[0].id,
                &placements[placements.len() - 1].id,
            )
            .await?;
        }
        Ok(())
    }

    /// The service library (制单): the pack's categories in turn, offered by organizations,
    /// each with what it is, where it serves (its community, its street or the district), its
    /// weekly windows and whom it is for; then every volunteer gets service categories (one,
    /// every third a second one), derived in one statement from their number.
    async fn services(&mut self) -> Result<()> {
        let mut rng = rng_for(self.seed, STREAM_SERVICES);
        let categories = self.app.pack().service_categories.clone();
        let total = self.plan.services;
        self.report(Stage::Services, 0, total);
        let mut rows = Vec::with_capacity(usize_of(total));
        for k in 0..usize_of(total) {
            let category = &categories[k % categories.len().max(1)];
            let template = SERVICE_TEMPLATES
                .iter()
                .find(|(code, _)| *code == category.code)
                .map_or(&[][..], |(_, names)| &names[..]);
            let what = if template.is_empty() {
                category.name.clone()
            } else {
                (*pick(&mut rng, template)).to_owned()
            };
            let (division, place) = pick(&mut rng, &self.communities).clone();
            let org = pick(&mut rng, &self.orgs);
            let start = org.created.max(self.data_start);
            let capacity = rng.gen_range(1_i64..=40) * 5;
            let created_at = format_instant(between(&mut rng, start, self.data_end));
            let scope = ["community", "street", "street", "district"][index_below(&mut rng, 4)];
            let windows = *pick(&mut rng, &SERVICE_WINDOWS);
            let eligibility = if rng.gen_ratio(1, 5) {
                "subsistence,extreme_poverty"
            } else {
                ""
            };
            rows.push(ServiceFullRow {
                id: format!("svc_{:04}", k + 1),
                provider_org_id: org.id.clone(),
                category: category.code.clone(),
                name: format!("{place}{what}"),
                division_code: Some(division),
                capacity_per_week: capacity,
                created_at: created_at.clone(),
                description: format!("{place}及周边{}：{what}", category.name),
                scope: scope.into(),
                time_windows: windows.into(),
                eligibility: eligibility.into(),
                state: "published".into(),
                team_id: None,
                created_by: Some(DEMO_ACTOR.into()),
                updated_at: Some(created_at),
            });
        }
        let mut tx = self.begin().await?;
        if !rows.is_empty() {
            tx.insert_all(&rows).await?;
            self.note_batch(
                &mut tx,
                "services",
                rows.len(),
                &rows[0].id,
                &rows[rows.len() - 1].id,
            )
            .await?;
        }
        let codes: Vec<String> = categories.iter().map(|c| c.code.clone()).collect();
        let given = tx.derive_volunteer_categories(&codes).await?;
        tx.journal(
            self.app.clock().now(),
            NewEntry {
                actor: DEMO_ACTOR.into(),
                kind: "demo.batch".into(),
                subject: DEMO_SUBJECT.into(),
                payload: serde_json::json!({ "table": "volunteer_categories", "rows": given, "synthetic": true }),
            },
        )
        .await?;
        tx.commit().await?;
        self.report(Stage::Services, total, total);
        Ok(())
    }

    /// Projects and the donations to them and to funds. Donations are drawn first so that each
    /// project's goal can be set against what it raised: some are fully funded, some not.
    async fn projects_and_donations(&mut self, admin: &Actor) -> Result<()> {
        let mut rng = rng_for(self.seed, STREAM_DONATIONS);
        let total = self.plan.donations;
        self.report(Stage::Donations, 0, total);
        for (f, fund) in self.funds.iter().enumerate() {
            for n in 0..self.plan.projects_per_fund {
                let theme = &THEMES[fund.theme];
                let project_name = theme.1[usize_of(n) % theme.1.len()];
                let (division, place) = pick(&mut rng, &self.communities).clone();
                let created = between(
                    &mut rng,
                    fund.created,
                    plus_days(self.data_end, -60).max(fund.created),
                );
                let id = format!("prj_{:04}", self.projects.len() + 1);
                self.projects.push(ProjectInfo {
                    row: ProjectRow {
                        id,
                        org_id: self.orgs[fund.org].id.clone(),
                        fund_id: Some(self.funds[f].id.clone()),
                        name: format!("{}{project_name}", fund.namesake),
                        summary: format!(
                            "为{place}及周边的困难群众提供{}帮扶（演示数据）。",
                            theme.0
                        ),
                        goal_fen: 0,
                        state: String::new(),
                        division_code: Some(division),
                        created_at: format_instant(created),
                    },
                    created,
                    raised_fen: 0,
                });
            }
        }

        let mut donations = Vec::with_capacity(usize_of(total));
        let project_count = self.projects.len();
        let fund_count = self.funds.len();
        for k in 0..total {
            // Amount: mostly small gifts, a few large ones; about ¥1,600 on average, so the
            // district scale raises about the plan's ¥320 million.
            let yuan: i64 = match pick_weighted(&mut rng, &[600, 280, 100, 20]) {
                0 => rng.gen_range(10..=300),
                1 => rng.gen_range(300..=3_000),
                2 => rng.gen_range(3_000..=10_000),
                _ => rng.gen_range(10_000..=30_000),
            };
            let amount_fen = yuan * 100;
            let restricted = project_count > 0 && (fund_count == 0 || rng.gen_ratio(3, 5));
            let (fund_id, project_id, from, org_id) = if restricted {
                let p = index_below(&mut rng, project_count);
                self.projects[p].raised_fen += amount_fen;
                (
                    None,
                    Some(self.projects[p].row.id.clone()),
                    self.projects[p].created,
                    self.projects[p].row.org_id.clone(),
                )
            } else {
                let f = index_below(&mut rng, fund_count);
                (
                    Some(self.funds[f].id.clone()),
                    None,
                    self.funds[f].created,
                    self.orgs[self.funds[f].org].id.clone(),
                )
            };
            let (donor, anonymous) = match pick_weighted(&mut rng, &[650, 300, 50]) {
                0 => (
                    Some(person_id(rng.gen_range(0..self.plan.residents))),
                    rng.gen_ratio(1, 10),
                ),
                // A walk-in gift at a desk or a box: nobody registered, sometimes anonymous.
                1 => (None, rng.gen_ratio(1, 3)),
                _ => (
                    Some(pick(&mut rng, &self.orgs).participant_id.clone()),
                    false,
                ),
            };
            donations.push(DonationRow {
                id: format!("don_{:08}", k + 1),
                donor_participant_id: donor,
                amount_fen,
                currency: "CNY".into(),
                fund_id,
                project_id,
                received_at: format_instant(between(&mut rng, from, self.data_end)),
                org_id: Some(org_id),
                kind: "money".into(),
                channel: "bank_transfer".into(),
                anonymous,
                ..DonationRow::default()
            });
        }

        // Goals and states against what each project raised.
        let closing = self.calendar.year_start(DEMO_YEARS[2]);
        for project in &mut self.projects {
            let raised = project.raised_fen;
            let funded = raised > 0 && rng.gen_ratio(1, 2);
            let goal_yuan = if raised == 0 {
                rng.gen_range(50_i64..=500) * 1_000
            } else if funded {
                // Rounded down to ¥1,000 so the goal stays at or under what was raised.
                (raised / 100 * rng.gen_range(700_i64..=1_000) / 1_000 / 1_000).max(1) * 1_000
            } else {
                // Rounded up to ¥1,000: the goal stays above what was raised.
                (raised / 100 * 1_000 / rng.gen_range(300_i64..=900)) / 1_000 * 1_000 + 1_000
            };
            project.row.goal_fen = goal_yuan * 100;
            let state = if project.row.goal_fen <= raised && project.created < closing {
                if rng.gen_ratio(2, 3) {
                    "closed"
                } else {
                    "executing"
                }
            } else if project.row.goal_fen <= raised {
                "executing"
            } else {
                "fundraising"
            };
            project.row.state = state.to_owned();
        }
        let projects: Vec<ProjectRow> = self.projects.iter().map(|p| p.row.clone()).collect();
        let mut tx = self.begin().await?;
        tx.insert_all(&projects).await?;
        if let (Some(first), Some(last)) = (projects.first(), projects.last()) {
            self.note_batch(&mut tx, "projects", projects.len(), &first.id, &last.id)
                .await?;
        }
        tx.commit().await?;

        // The most recent donations go through the app's receipt path, before the bulk: issuing
        // a receipt reads the organization's summary, which sums all its donations so far.
        let mut newest: Vec<(String, usize)> = donations
            .iter()
            .enumerate()
            .map(|(i, d)| (order_key(&d.received_at, &d.id), i))
            .collect();
        newest.sort_unstable();
        self.receipted = vec![false; donations.len()];
        for (_, i) in newest.iter().rev().take(usize_of(self.plan.receipts)) {
            self.receipted[*i] = true;
        }
        self.donations = donations;
        self.receipted_donations(admin).await?;
        let bulk: Vec<DonationRow> = self
            .donations
            .iter()
            .zip(&self.receipted)
            .filter(|(_, receipted)| !**receipted)
            .map(|(d, _)| d.clone())
            .collect();
        self.write_chunked(Stage::Donations, "donations", &bulk, |r| &r.id)
            .await
    }

    /// Disbursements from projects to registered households, never more than a project raised:
    /// closed projects spent nearly all of it, running ones part, fundraising ones little.
    async fn disbursements(&mut self) -> Result<()> {
        let mut rng = rng_for(self.seed, STREAM_DISBURSEMENTS);
        let wanted = self.plan.disbursements;
        self.report(Stage::Disbursements, 0, wanted);
        let budgets: Vec<i64> = self
            .projects
            .iter()
            .map(|p| {
                let per_mille = match p.row.state.as_str() {
                    "closed" => rng.gen_range(900_i64..=1_000),
                    "executing" => rng.gen_range(400_i64..=800),
                    _ => rng.gen_range(0_i64..=300),
                };
                p.raised_fen * per_mille / 1_000
            })
            .collect();
        if self.households.is_empty() {
            return Ok(());
        }
        let counts = apportion(wanted, &budgets);
        let mut rows = Vec::with_capacity(usize_of(wanted));
        for ((project, budget), count) in self.projects.iter().zip(&budgets).zip(&counts) {
            if *count == 0 {
                continue;
            }
            let count = i64_of(*count);
            let base = budget / count;
            for _ in 0..count {
                let mut amount = base * rng.gen_range(850_i64..=1_000) / 1_000;
                if amount >= 100 {
                    amount = amount / 100 * 100;
                }
                let amount = amount.max(1);
                let (household, members) = pick(&mut rng, &self.households);
                let from = plus_days(project.created, 14).min(plus_days(self.data_end, -1));
                rows.push(DisbursementRow {
                    id: format!("dsb_{:07}", rows.len() + 1),
                    project_id: project.row.id.clone(),
                    household_id: Some(household.clone()),
                    people_count: *members,
                    amount_fen: amount,
                    paid_at: format_instant(between(&mut rng, from, self.data_end)),
                    recipient_kind: "household".into(),
                    form: "cash".into(),
                    purpose: "charitable".into(),
                    state: "paid".into(),
                    ..DisbursementRow::default()
                });
            }
        }
        self.write_chunked(Stage::Disbursements, "disbursements", &rows, |r| &r.id)
            .await?;
        self.disbursement_rows = rows;
        Ok(())
    }

    /// The most recent donations, recorded through the app's own path
    /// ([`App::insert_donation`]): row, lot, double-entry transfer, journal entry and a receipt
    /// that is numbered and appended to the public log like any other. The ledger replay then
    /// takes what their lots gave to disbursements.
    async fn receipted_donations(&self, admin: &Actor) -> Result<()> {
        let rows: Vec<&DonationRow> = self
            .donations
            .iter()
            .zip(&self.receipted)
            .filter(|(_, receipted)| **receipted)
            .map(|(d, _)| d)
            .collect();
        let total = u64_of(rows.len());
        self.report(Stage::Receipts, 0, total);
        let started = Instant::now();
        let mut done = 0_u64;
        for batch in rows.chunks(RECEIPT_TX_ROWS) {
            let mut tx = self.begin().await?;
            for row in batch {
                self.app.insert_donation(&mut tx, admin, row).await?;
            }
            tx.commit().await?;
            done += u64_of(batch.len());
            self.report(Stage::Receipts, done, total);
        }
        tracing::debug!(
            demo.receipts = total,
            demo.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "demo receipts issued"
        );
        Ok(())
    }

    /// Replays donations and disbursements through the ledger engine the app uses
    /// ([`take_fifo`]) and writes what that gives: each donation's lot with what it still holds,
    /// the flows from lots to disbursements, and the double-entry transfers of both.
    async fn ledger(&mut self) -> Result<()> {
        let replay = replay_ledger(&self.donations, &self.disbursement_rows)?;
        let project_org: HashMap<&str, &str> = self
            .projects
            .iter()
            .map(|p| (p.row.id.as_str(), p.row.org_id.as_str()))
            .collect();
        let mut lots = Vec::with_capacity(self.donations.len());
        let mut entries =
            Vec::with_capacity(self.donations.len() * 2 + self.disbursement_rows.len() * 2);
        // Receipted donations already hold their lot and transfer; only what they gave changes.
        let mut taken = Vec::new();
        for ((d, remaining), receipted) in self
            .donations
            .iter()
            .zip(&replay.remaining)
            .zip(&self.receipted)
        {
            let (holder_kind, holder_id) = demo_holder(d);
            if *receipted {
                if *remaining < d.amount_fen {
                    taken.push((d, holder_kind, holder_id, d.amount_fen - remaining));
                }
                continue;
            }
            lots.push(LotRow {
                donation_id: d.id.clone(),
                holder_kind: holder_kind.to_owned(),
                holder_id: holder_id.to_owned(),
                order_key: order_key(&d.received_at, &d.id),
                remaining_fen: *remaining,
            });
            entries.extend(two_sided(
                &d.id,
                format!("cash:{}", d.org_id.as_deref().unwrap_or_default()),
                format!("{holder_kind}:{holder_id}"),
                d.amount_fen,
                &d.received_at,
            ));
        }
        for d in &self.disbursement_rows {
            let org = project_org
                .get(d.project_id.as_str())
                .copied()
                .unwrap_or_default();
            entries.extend(two_sided(
                &d.id,
                format!("project:{}", d.project_id),
                format!("paid:{org}"),
                d.amount_fen,
                &d.paid_at,
            ));
        }

        let total = u64_of(lots.len() + replay.flows.len() + entries.len());
        self.report(Stage::Ledger, 0, total);
        let mut done = 0;
        done = self
            .write_chunked_from(
                Stage::Ledger,
                "lots",
                &lots,
                |r| &r.donation_id,
                done,
                total,
            )
            .await?;
        done = self
            .write_chunked_from(
                Stage::Ledger,
                "flows",
                &replay.flows,
                |r| &r.ref_id,
                done,
                total,
            )
            .await?;
        self.write_chunked_from(
            Stage::Ledger,
            "ledger_entries",
            &entries,
            |r| &r.transfer_id,
            done,
            total,
        )
        .await?;
        if !taken.is_empty() {
            let mut tx = self.begin().await?;
            for (d, holder_kind, holder_id, amount) in &taken {
                if !tx
                    .take_from_lot(&d.id, holder_kind, holder_id, *amount)
                    .await?
                {
                    return Err(AppError::internal(std::io::Error::other(format!(
                        "demo ledger: the lot of {} holds less than the {amount} fen its disbursements took",
                        d.id
                    ))));
                }
            }
            self.note_batch(
                &mut tx,
                "lots_taken",
                taken.len(),
                &taken[0].0.id,
                &taken[taken.len() - 1].0.id,
            )
            .await?;
            tx.commit().await?;
        }
        self.report(Stage::Ledger, total, total);
        Ok(())
    }

    /// Volunteer service records: whole minutes, on days after the volunteer registered.
    async fn service_records(&mut self) -> Result<()> {
        let mut rng = rng_for(self.seed, STREAM_SERVICE_RECORDS);
        let total = self.plan.service_records;
        self.report(Stage::ServiceRecords, 0, total);
        let volunteers = u64_of(self.volunteers.len());
        if volunteers == 0 {
            return Ok(());
        }
        let mut written = 0_u64;
        while written < total {
            let n = (total - written).min(u64_of(TX_ROWS));
            let mut rows = Vec::with_capacity(usize_of(n));
            for k in written..written + n {
                let (person, registered) = self.volunteers[usize_of(rng.gen_range(0..volunteers))];
                let registered =
                    Timestamp::from_second(registered).expect("a stored registration instant");
                let served = between(&mut rng, registered.max(self.data_start), self.data_end);
                rows.push(ServiceRecordRow {
                    id: format!("vsr_{:08}", k + 1),
                    volunteer_participant_id: person_id(person),
                    duration_minutes: rng.gen_range(1_i64..=16) * 30,
                    served_on: self.calendar.date_text(served),
                    content: (*pick(&mut rng, &SERVICE_RECORD_CONTENT)).to_owned(),
                });
            }
            let mut tx = self.begin().await?;
            for (i, chunk) in rows.chunks(PROGRESS_ROWS).enumerate() {
                insert_rows(&mut tx, chunk).await?;
                self.report(
                    Stage::ServiceRecords,
                    written + u64_of(i * PROGRESS_ROWS + chunk.len()),
                    total,
                );
            }
            self.note_batch(
                &mut tx,
                "service_records",
                rows.len(),
                &rows[0].id,
                &rows[rows.len() - 1].id,
            )
            .await?;
            tx.commit().await?;
            written += n;
        }
        self.report(Stage::ServiceRecords, total, total);
        Ok(())
    }

    /// Participation seen from a newcomer's side, through the use cases themselves (each checks its
    /// actor, writes one transaction and journals it): a volunteer roster imported, two demo
    /// residents claimed as members with a known phone and password (a volunteer who also
    /// gives, and a partner organization's redeemer), a team, three past activities whose
    /// check-ins, check-outs and verifications give hours, a star and a certificate, donations
    /// and a skill donation that earn points, one redemption, and an activity open for check-in.
    ///
    /// The work is the same at every scale (a few dozen people), so the district demo does not
    /// slow down. Who takes part is drawn from the seed; instants are fixed offsets from the
    /// local day of generation, because points expire and offers are valid from today. The
    /// past activities run on a copy of the app whose clock the demo sets to each moment of the
    /// story (check-in only opens around an activity's time), so their journal entries carry
    /// those instants. Ids the use cases make (activities, attendances, teams…) are random, as
    /// they are for any user.
    /// Service orders (点单—派单—评单) in every state, through the use cases on a copy of the
    /// app whose clock the story sets: made by staff on a household's behalf (two from the
    /// registry's open needs), dispatched to the best provider (some rejected first and sent
    /// on), accepted, served, completed and rated from a follow-up call. Overdue ones raise
    /// early warnings.
    async fn service_orders(&self, admin: &Actor) -> Result<()> {
        let app = self.app;
        let total = u64_of(ORDER_STORIES.len());
        self.report(Stage::Orders, 0, total);
        if self.households.is_empty() {
            return Ok(());
        }
        let mut rng = rng_for(self.seed, STREAM_ORDERS);
        let codes: Vec<String> = app
            .pack()
            .service_categories
            .iter()
            .map(|c| c.code.clone())
            .collect();
        let now = app.clock().now();
        let clock = Arc::new(FixedClock::new(now));
        let past = app.with_clock(clock.clone());
        let minutes = |m: i64| jiff::SignedDuration::from_mins(m);
        let ago = |m: i64| -> Result<Timestamp> {
            now.checked_sub(minutes(m)).map_err(AppError::internal)
        };
        let mut needs = app
            .store()
            .needs_waiting(&format_instant(now), None, 2)
            .await?
            .into_iter();
        for (k, story) in ORDER_STORIES.iter().enumerate() {
            let made = ago(story.made_minutes_ago)?;
            clock.set(made);
            let need = if story.state == "reviewed" {
                needs.next()
            } else {
                None
            };
            let input = match &need {
                Some(n) => OrderInput {
                    need_id: Some(n.id.clone()),
                    ..OrderInput::default()
                },
                None => OrderInput {
                    household_id: Some(pick(&mut rng, &self.households).0.clone()),
                    category: Some(pick(&mut rng, &codes).clone()),
                    description: Some(pick(&mut rng, &ORDER_NOTES).to_string()),
                    ..OrderInput::default()
                },
            };
            let order = past.create_order(admin, None, &input).await?.value;
            self.report(Stage::Orders, u64_of(k + 1), total);
            let step = |m: i64| {
                let at = crate::Clock::now(clock.as_ref())
                    .checked_add(minutes(m))
                    .unwrap_or(made);
                clock.set(at.min(now));
            };
            match story.state {
                "created" => continue,
                "cancelled" => {
                    step(30);
                    past.cancel_order(
                        admin,
                        None,
                        &order.id,
                        &ReasonInput {
                            reason: Some("家属已自行安排".into()),
                        },
                    )
                    .await?;
                    continue;
                }
                _ => {}
            }
            step(3);
            if past
                .dispatch_order(
                    admin,
                    None,
                    &order.id,
                    &crate::dispatch::DispatchInput::default(),
                )
                .await
                .is_err()
            {
                continue;
            }
            if story.rejected_first {
                step(2);
                past.reject_order(
                    admin,
                    None,
                    &order.id,
                    &ReasonInput {
                        reason: Some("时间冲突".into()),
                    },
                )
                .await?;
            }
            if story.state == "dispatched" {
                continue;
            }
            step(12);
            if past.accept_order(admin, None, &order.id).await.is_err() {
                continue;
            }
            if story.state == "accepted" {
                continue;
            }
            step(60);
            past.start_order(admin, None, &order.id).await?;
            if story.state == "in_service" {
                continue;
            }
            step(rng.gen_range(45..=150));
            past.complete_order(admin, None, &order.id).await?;
            if story.state == "completed" {
                continue;
            }
            step(DAY_MINUTES);
            past.review_order(
                admin,
                None,
                &order.id,
                &ReviewInput {
                    rating: story.rating,
                    comment: Some(
                        (if story.rating <= 2 {
                            "回访：服务人员迟到，打扫不仔细"
                        } else {
                            "回访：服务周到，老人很满意"
                        })
                        .into(),
                    ),
                },
            )
            .await?;
        }
        self.report(Stage::Orders, total, total);
        Ok(())
    }

    async fn participation(&self, admin: &Actor) -> Result<()> {
        let app = self.app;
        let total = u64_of(STORY_VOLUNTEERS + 8);
        self.report(Stage::Participation, 0, total);
        if self.volunteers.is_empty() || self.orgs.is_empty() || self.funds.is_empty() {
            return Ok(());
        }
        let mut rng = rng_for(self.seed, STREAM_STORY);
        let now = app.clock().now();
        let today = self.calendar.tz.to_datetime(now).date();
        let local = |days_before: i64, hour: i64, minute: i64| -> Result<Timestamp> {
            let date = today
                .checked_sub(days_before.days())
                .map_err(AppError::internal)?;
            self.calendar
                .midnight(date)
                .checked_add(jiff::SignedDuration::from_mins(hour * 60 + minute))
                .map_err(AppError::internal)
        };

        // Who: a registered volunteer becomes the demo member; residents who are not volunteers
        // become the partner's redeemer and the roster's new volunteers.
        let member_index = self.volunteers[index_below(&mut rng, self.volunteers.len())].0;
        let volunteer_indexes: HashSet<u64> = self.volunteers.iter().map(|v| v.0).collect();
        let mut taken = HashSet::from([member_index]);
        let mut others = Vec::with_capacity(STORY_VOLUNTEERS + 1);
        while others.len() < STORY_VOLUNTEERS + 1 && taken.len() < usize_of(self.plan.residents) {
            let index = rng.gen_range(0..self.plan.residents);
            if !volunteer_indexes.contains(&index) && taken.insert(index) {
                others.push(index);
            }
        }
        let Some((&partner_index, roster_indexes)) = others.split_first() else {
            return Ok(());
        };

        // Volunteer registration by roster import (花名册), as a street office would upload it.
        let mut roster = String::from("姓名,身份证号码,志愿者编号,技能\n");
        for (k, index) in roster_indexes.iter().enumerate() {
            let (_, name, id_number) = self.resident(*index).await?;
            roster.push_str(&format!(
                "{name},{id_number},ZJ{}9{:07},{}\n",
                app.pack().code.as_str(),
                k + 1,
                pick(&mut rng, &STORY_SKILLS)
            ));
        }
        let job = app
            .create_import_job(admin, ImportKind::Volunteers, "演示志愿者花名册.csv")
            .await?;
        let summary = app
            .run_import(
                admin,
                &job,
                ImportKind::Volunteers,
                roster.as_bytes(),
                |_, _| {},
            )
            .await?;
        if summary.refused + summary.duplicate > 0 {
            return Err(AppError::internal(std::io::Error::other(format!(
                "the demo roster was not imported in full: {:?}",
                summary.rows
            ))));
        }
        let roster_ids: Vec<String> = roster_indexes.iter().map(|i| person_id(*i)).collect();
        // The roster's skills (技能) become the new volunteers' service categories.
        app.categories_from_skills(admin).await?;
        self.report(Stage::Participation, u64_of(roster_ids.len()), total);

        // Two residents claim their records with a phone and a password (as anyone can at
        // /register): the member, and the person who redeems for a partner organization.
        let (member_id, name, id_number) = self.resident(member_index).await?;
        let member = app
            .register_self(&SelfRegistration {
                name,
                id_number,
                phone: DEMO_MEMBER_PHONE.into(),
                division_code: None,
                password: DEMO_MEMBER_PASSWORD.into(),
            })
            .await?;
        for role in ["volunteer", "donor"] {
            app.attach_role(admin, &member_id, role, None).await?;
        }
        let offers = app.store().points_offers(None).await?;
        let partner_org = offers
            .iter()
            .find(|o| o.channel == "medical")
            .or(offers.first())
            .map_or_else(|| self.orgs[0].id.clone(), |o| o.org_id.clone());
        let (partner_id, name, id_number) = self.resident(partner_index).await?;
        let partner = app
            .register_self(&SelfRegistration {
                name,
                id_number,
                phone: DEMO_PARTNER_PHONE.into(),
                division_code: None,
                password: DEMO_PARTNER_PASSWORD.into(),
            })
            .await?;
        app.attach_role(admin, &partner_id, "partner", Some(&partner_org))
            .await?;
        let mut done = u64_of(roster_ids.len()) + 2;
        self.report(Stage::Participation, done, total);

        // A team of the volunteers' association (the fifth demo organization) with the member
        // and the new volunteers.
        let organizer = self.orgs.get(4).unwrap_or(&self.orgs[0]).id.clone();
        let team = app
            .create_team(
                admin,
                &TeamInput {
                    org_id: organizer.clone(),
                    name: "鹿城爱心志愿服务队（演示）".into(),
                },
            )
            .await?;
        for pid in std::iter::once(&member_id).chain(&roster_ids) {
            app.add_team_member(admin, &team.id, pid).await?;
        }

        // Past activities, replayed on a copy of the app whose clock the story sets. The copy
        // has writers of its own (they read its clock); its idle check-in writer task ends
        // with the runtime.
        let clock = Arc::new(FixedClock::new(now));
        let past = app.with_clock(clock.clone());
        let mut activity_ids = Vec::new();
        for (a, story) in PAST_ACTIVITIES.iter().enumerate() {
            let starts = local(story.starts.0, story.starts.1, story.starts.2)?;
            let ends = local(story.ends.0, story.ends.1, story.ends.2)?;
            let (division, place) = pick(&mut rng, &self.communities).clone();
            clock.set(plus_days(starts, -10));
            let activity = past
                .create_activity(
                    admin,
                    &ActivityInput {
                        title: story.title.into(),
                        category: story.category.into(),
                        content: Some(story.content.into()),
                        recipients: Some(story.recipients.into()),
                        organizer_org_id: organizer.clone(),
                        team_id: Some(team.id.clone()),
                        division_code: division,
                        address: format!("{place}党群服务中心（演示地址）"),
                        starts_at: starts.to_string(),
                        ends_at: ends.to_string(),
                        capacity: STORY_CAPACITY,
                    },
                )
                .await?;
            // The member scans the activity's code with their phone; the organizer scans
            // the others' personal codes (一码通), a fresh one for every scan.
            let attendees: Vec<&String> = std::iter::once(&member_id)
                .chain(
                    roster_ids
                        .iter()
                        .cycle()
                        .skip(a * STORY_ATTENDEES)
                        .take(STORY_ATTENDEES.min(roster_ids.len())),
                )
                .collect();
            let mut sessions = Vec::with_capacity(attendees.len());
            for (k, pid) in attendees.iter().enumerate() {
                let minutes = i64_of(u64_of(k % 10));
                clock.set(plus_minutes(starts, -minutes)?);
                let session = if **pid == member_id {
                    past.check_in(
                        &member,
                        &activity.id,
                        &ScanCodeInput {
                            code: activity.code.clone(),
                        },
                    )
                    .await?
                } else {
                    let code = past.participant_code(admin, pid).await?.payload;
                    past.check_in(admin, &activity.id, &ScanCodeInput { code })
                        .await?
                };
                sessions.push(session.attendance_id);
            }
            for (k, pid) in attendees.iter().enumerate() {
                let minutes = i64_of(u64_of(k % 7));
                clock.set(plus_minutes(ends, minutes)?);
                if **pid == member_id {
                    past.check_out(
                        &member,
                        &activity.id,
                        &ScanCodeInput {
                            code: activity.code.clone(),
                        },
                    )
                    .await?;
                } else {
                    let code = past.participant_code(admin, pid).await?.payload;
                    past.check_out(admin, &activity.id, &ScanCodeInput { code })
                        .await?;
                }
            }
            clock.set(plus_days(ends, 1));
            for (k, attendance) in sessions.iter().enumerate() {
                let evaluation = ["优秀", "良好", "合格"][k % 3];
                past.verify_attendance(
                    admin,
                    attendance,
                    &VerifyInput {
                        evaluation: Some(evaluation.into()),
                    },
                )
                .await?;
            }
            activity_ids.push(activity.id);
            done += 1;
            self.report(Stage::Participation, done, total);
        }
        drop(past);

        // Gifts on the real clock, dated when they arrived: two donations with receipts and a
        // skill donation a reviewer assessed.
        for (k, (yuan, days_before)) in STORY_DONATIONS.iter().enumerate() {
            let fund = &self.funds[k % self.funds.len()];
            app.record_donation(
                admin,
                &IdempotencyKey::parse(&format!("demo-story-donation-{}", k + 1))?,
                &DonationInput {
                    amount_fen: yuan * 100,
                    fund_id: Some(fund.id.clone()),
                    donor_participant_id: Some(member_id.clone()),
                    channel: "online".into(),
                    payment_ref: Some(format!("DEMO-{}-{}", self.seed, k + 1)),
                    received_at: Some(local(*days_before, 20, 15)?.to_string()),
                    ..DonationInput::default()
                },
            )
            .await?;
        }
        app.record_skill_act(
            admin,
            &IdempotencyKey::parse("demo-story-skill-1")?,
            &SkillActInput {
                participant_id: member_id.clone(),
                category: "education".into(),
                assessed_minutes: 180,
                occurred_at: local(5, 19, 0)?.to_string(),
                description: "线上为困难家庭学生讲授初中数学（演示）".into(),
            },
        )
        .await?;
        done += 1;
        self.report(Stage::Participation, done, total);

        // A certificate for the hours so far, and one redemption: the partner scans the
        // member's code for the medical offer.
        let certificate = app
            .issue_certificate(
                admin,
                &member_id,
                &CertificateInput {
                    issuing_org_id: organizer.clone(),
                    content: "社区助老、课业辅导、健康义诊等志愿服务（演示）".into(),
                    contact: Some("0577-88000000（演示）".into()),
                },
            )
            .await?;
        let medical = offers
            .iter()
            .find(|o| o.org_id == partner_org && o.channel == "medical")
            .or_else(|| offers.iter().find(|o| o.org_id == partner_org));
        let mut redeemed = None;
        if let Some(offer) = medical {
            let code = app.participant_code(&member, &member_id).await?.payload;
            let done = app
                .redeem(
                    &partner,
                    &IdempotencyKey::parse("demo-story-redemption-1")?,
                    &RedeemInput {
                        offer_id: offer.id.clone(),
                        code: Some(code),
                        participant_id: None,
                    },
                )
                .await?;
            redeemed = Some(done.value.id);
        }
        done += 1;
        self.report(Stage::Participation, done, total);

        // One activity open for check-in now: it starts at the next full hour (check-in opens
        // an hour before) and runs for a week, so a visitor can scan its code at once.
        let next_hour = Timestamp::from_second((now.as_second() / 3_600 + 1) * 3_600)
            .map_err(AppError::internal)?;
        let (division, place) = pick(&mut rng, &self.communities).clone();
        let upcoming = app
            .create_activity(
                admin,
                &ActivityInput {
                    title: "冬日暖心·社区志愿服务周（演示）".into(),
                    category: "emotional_support".into(),
                    content: Some("走访慰问困难老人，陪伴聊天，协助整理家务".into()),
                    recipients: Some("社区困难老人".into()),
                    organizer_org_id: organizer.clone(),
                    team_id: Some(team.id.clone()),
                    division_code: division,
                    address: format!("{place}党群服务中心（演示地址）"),
                    starts_at: next_hour.to_string(),
                    ends_at: plus_days(next_hour, 7).to_string(),
                    capacity: STORY_CAPACITY,
                },
            )
            .await?;
        activity_ids.push(upcoming.id);

        let mut tx = self.begin().await?;
        tx.journal(
            app.clock().now(),
            NewEntry {
                actor: DEMO_ACTOR.into(),
                kind: "demo.participation".into(),
                subject: DEMO_SUBJECT.into(),
                payload: serde_json::json!({
                    "member": member_id,
                    "partner": partner_id,
                    "partner_org": partner_org,
                    "import_job": job,
                    "volunteers_registered": roster_ids.len(),
                    "team": team.id,
                    "activities": activity_ids,
                    "certificate": certificate.number,
                    "redemption": redeemed,
                    "synthetic": true,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.report(Stage::Participation, total, total);
        Ok(())
    }

    /// A demo resident's participant id, name and ID number (decrypted from the stored record,
    /// as the roster and the sign-up form need them typed out).
    async fn resident(&self, index: u64) -> Result<(String, String, String)> {
        let id = person_id(index);
        let record = self
            .app
            .store()
            .participant_record(&id)
            .await?
            .ok_or_else(|| AppError::not_found("participant"))?;
        let cipher = record
            .id_number_cipher
            .as_deref()
            .ok_or_else(|| AppError::not_found("participant"))?;
        let id_number = self.app.vault().decrypt(cipher)?;
        Ok((id, record.display_name, id_number))
    }

    /// Writes `rows` in transactions of [`TX_ROWS`], journaling each, reporting progress.
    async fn write_chunked<R: BulkRow>(
        &self,
        stage: Stage,
        table: &str,
        rows: &[R],
        id: impl Fn(&R) -> &str,
    ) -> Result<()> {
        let total = u64_of(rows.len());
        self.write_chunked_from(stage, table, rows, id, 0, total)
            .await?;
        self.report(stage, total, total);
        Ok(())
    }

    /// As [`Generator::write_chunked`], for one of several tables written under one stage:
    /// progress counts on from `done` towards `total`. Returns the new `done`.
    async fn write_chunked_from<R: BulkRow>(
        &self,
        stage: Stage,
        table: &str,
        rows: &[R],
        id: impl Fn(&R) -> &str,
        mut done: u64,
        total: u64,
    ) -> Result<u64> {
        for batch in rows.chunks(TX_ROWS) {
            let mut tx = self.begin().await?;
            for chunk in batch.chunks(PROGRESS_ROWS) {
                insert_rows(&mut tx, chunk).await?;
                done += u64_of(chunk.len());
                self.report(stage, done, total);
            }
            self.note_batch(
                &mut tx,
                table,
                batch.len(),
                id(&batch[0]),
                id(&batch[batch.len() - 1]),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(done)
    }
}

/// Rows the receipt path writes per transaction.
const RECEIPT_TX_ROWS: usize = 500;

/// Bound parameters per multi-row INSERT. SQLite finds each `$N` by a linear scan of the
/// statement's parameter names, so a statement costs about the square of its parameters: wide
/// rows (a donation has 23 columns) go fewer to a statement than [`BULK_BATCH_ROWS`].
const STATEMENT_PARAMS: usize = 250;

/// `insert_all` in statements of at most [`STATEMENT_PARAMS`] parameters.
async fn insert_rows<R: BulkRow>(tx: &mut WriteTx, rows: &[R]) -> Result<()> {
    let per_statement = (STATEMENT_PARAMS / R::COLUMNS.len()).clamp(1, BULK_BATCH_ROWS);
    for chunk in rows.chunks(per_statement) {
        tx.insert_all(chunk).await?;
    }
    Ok(())
}

/// The FIFO order of a lot: exactly `order_key` of `donations.rs` (arrival, then donation id).
fn order_key(received_at: &str, donation_id: &str) -> String {
    format!("{received_at} {donation_id}")
}

/// The holder a demo donation's money is born in: its project (restricted) or its fund.
fn demo_holder(d: &DonationRow) -> (&'static str, &str) {
    match (&d.project_id, &d.fund_id) {
        (Some(p), _) => ("project", p.as_str()),
        (None, Some(f)) => ("fund", f.as_str()),
        (None, None) => ("fund", ""),
    }
}

/// A double-entry transfer: `from` gives `amount`, `to` receives it.
fn two_sided(id: &str, from: String, to: String, amount: i64, at: &str) -> [LedgerEntryRow; 2] {
    [
        LedgerEntryRow {
            transfer_id: id.to_owned(),
            account: from,
            amount_fen: -amount,
            at: at.to_owned(),
        },
        LedgerEntryRow {
            transfer_id: id.to_owned(),
            account: to,
            amount_fen: amount,
            at: at.to_owned(),
        },
    ]
}

/// What replaying the demo through the ledger engine gives.
#[derive(Debug)]
struct Replay {
    /// What each donation's lot still holds, in the order of the donations given.
    remaining: Vec<i64>,
    /// Lots to disbursements, disbursement by disbursement in payment order.
    flows: Vec<FlowRow>,
}

/// One project's restricted lots, oldest first.
#[derive(Debug, Default)]
struct ProjectLots {
    /// Index of each lot's donation.
    donation: Vec<usize>,
    held: Vec<i64>,
    /// Lots before this one are empty.
    next: usize,
}

/// Each donation starts as a lot in its fund or project; each project's disbursements, in
/// `paid_at` order, consume its lots oldest first with [`take_fifo`], as the app does. Fails
/// when a disbursement is not covered: the demo never pays out more than a project raised.
fn replay_ledger(donations: &[DonationRow], disbursements: &[DisbursementRow]) -> Result<Replay> {
    let mut keyed: Vec<(String, usize)> = donations
        .iter()
        .enumerate()
        .filter(|(_, d)| d.project_id.is_some())
        .map(|(i, d)| (order_key(&d.received_at, &d.id), i))
        .collect();
    keyed.sort_unstable();
    let mut projects: HashMap<&str, ProjectLots> = HashMap::new();
    for (_, i) in keyed {
        let d = &donations[i];
        let lots = projects
            .entry(d.project_id.as_deref().unwrap_or_default())
            .or_default();
        lots.donation.push(i);
        lots.held.push(d.amount_fen);
    }
    let mut order: Vec<&DisbursementRow> = disbursements.iter().collect();
    order.sort_by(|a, b| a.paid_at.cmp(&b.paid_at).then_with(|| a.id.cmp(&b.id)));
    let mut flows = Vec::new();
    for d in order {
        let mut empty = ProjectLots::default();
        let lots = projects
            .get_mut(d.project_id.as_str())
            .unwrap_or(&mut empty);
        let open = lots.next.min(lots.held.len());
        let takes = take_fifo(&lots.held[open..], d.amount_fen).map_err(|s| {
            AppError::conflict(
                "demo.disbursement_uncovered",
                format!(
                    "演示数据有误：拨付 {} 需要 {}，项目 {} 只有 {}。                      Demo disbursement {} is not covered by the restricted donations of project {}.",
                    d.id,
                    Fen::new(s.wanted),
                    d.project_id,
                    Fen::new(s.available),
                    d.id,
                    d.project_id
                ),
            )
        })?;
        for (k, take) in takes.into_iter().enumerate() {
            if take == 0 {
                continue;
            }
            lots.held[open + k] -= take;
            flows.push(FlowRow {
                donation_id: donations[lots.donation[open + k]].id.clone(),
                kind: "disbursement".into(),
                ref_id: d.id.clone(),
                from_id: d.project_id.clone(),
                to_id: d.id.clone(),
                amount_fen: take,
                at: d.paid_at.clone(),
            });
        }
        while lots.next < lots.held.len() && lots.held[lots.next] == 0 {
            lots.next += 1;
        }
    }
    let mut remaining: Vec<i64> = donations.iter().map(|d| d.amount_fen).collect();
    for lots in projects.values() {
        for (i, held) in lots.donation.iter().zip(&lots.held) {
            remaining[*i] = *held;
        }
    }
    Ok(Replay { remaining, flows })
}

/// Splits `total` items across the entries in proportion to `weights` (largest remainder, ties
/// to the earlier entry), never giving an entry more items than its weight.
fn apportion(total: u64, weights: &[i64]) -> Vec<u64> {
    let weights: Vec<u128> = weights
        .iter()
        .map(|w| u128::try_from((*w).max(0)).expect("non-negative"))
        .collect();
    let sum: u128 = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let total = u128::from(total);
    let mut shares: Vec<u128> = weights.iter().map(|w| w * total / sum).collect();
    let mut left = total - shares.iter().sum::<u128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(weights[*i] * total % sum));
    for i in order {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
        .iter()
        .zip(&weights)
        .map(|(s, w)| u64::try_from((*s).min(*w)).expect("a share fits in u64"))
        .collect()
}

/// One batch of residents and the volunteers among them.
#[derive(Debug)]
struct PeopleBatch {
    participants: Vec<ParticipantRow>,
    volunteers: Vec<VolunteerRow>,
}

/// Makes residents in index order. Owned and `Send`, so it runs on a blocking thread.
struct People {
    vault: Arc<Vault>,
    region: String,
    rng: ChaCha8Rng,
    residents: u64,
    next: u64,
    first_birth: Date,
    /// Size of the ID-number domain: birth days × 1,000 sequence numbers.
    id_domain: u64,
    id_multiplier: u64,
    id_offset: u64,
    volunteer_multiplier: u64,
    volunteer_offset: u64,
    /// Per year: first ordinal, end ordinal (exclusive), first and end instant (seconds).
    cohorts: [(u64, u64, i64, i64); 3],
    volunteer_total: u64,
    homes: Vec<String>,
    import: (Timestamp, Timestamp),
    volunteers: Vec<(u64, i64)>,
}

impl People {
    fn new(generator: &Generator<'_>, vault: Arc<Vault>) -> Result<People> {
        let plan = generator.plan;
        let calendar = &generator.calendar;
        let first_birth =
            Date::new(FIRST_BIRTH.0, FIRST_BIRTH.1, FIRST_BIRTH.2).map_err(AppError::internal)?;
        let last_birth =
            Date::new(LAST_BIRTH.0, LAST_BIRTH.1, LAST_BIRTH.2).map_err(AppError::internal)?;
        let days = first_birth
            .until(last_birth)
            .map_err(AppError::internal)?
            .get_days();
        let id_domain = (u64::try_from(days).map_err(AppError::internal)? + 1) * 1_000;
        assert!(
            plan.residents <= id_domain,
            "more residents than distinct demo ID numbers"
        );
        let mut ids = rng_for(generator.seed, STREAM_IDS);
        let id_offset = ids.gen_range(0..id_domain);
        let residents = plan.residents.max(1);
        let volunteer_offset = ids.gen_range(0..residents);
        let targets = plan.volunteers_by_year;
        assert!(
            targets[0] <= targets[1] && targets[1] <= targets[2] && targets[2] <= plan.residents,
            "volunteer targets grow and stay within the residents"
        );
        let cohort_start = [
            calendar.year_start(2017),
            calendar.year_start(DEMO_YEARS[1]),
            calendar.year_start(DEMO_YEARS[2]),
        ];
        let cohort_end = [
            calendar.year_start(DEMO_YEARS[0] + 1),
            calendar.year_start(DEMO_YEARS[1] + 1),
            calendar.year_start(DEMO_YEARS[2] + 1),
        ];
        let mut cohorts = [(0, 0, 0, 0); 3];
        let mut first = 0;
        for (i, cohort) in cohorts.iter_mut().enumerate() {
            *cohort = (
                first,
                targets[i],
                cohort_start[i].as_second(),
                cohort_end[i].as_second(),
            );
            first = targets[i];
        }
        Ok(People {
            vault,
            region: generator.app.pack().code.as_str().to_owned(),
            rng: rng_for(generator.seed, STREAM_PEOPLE),
            residents: plan.residents,
            next: 0,
            first_birth,
            id_domain,
            id_multiplier: coprime_at_least(ID_MULTIPLIER, id_domain),
            id_offset,
            volunteer_multiplier: coprime_at_least(VOLUNTEER_MULTIPLIER, residents),
            volunteer_offset,
            cohorts,
            volunteer_total: targets[2],
            homes: generator.homes.clone(),
            import: (
                generator.data_start,
                calendar.midnight(Date::new(DEMO_YEARS[0], 4, 1).expect("a real date")),
            ),
            volunteers: vec![(0, 0); usize_of(targets[2])],
        })
    }

    /// The ID number of resident `index`: a bijection from indexes to (birth day, sequence).
    fn id_number(&self, index: u64) -> IdNumber {
        let k = (u128::from(index) * u128::from(self.id_multiplier) + u128::from(self.id_offset))
            % u128::from(self.id_domain);
        let k = u64::try_from(k).expect("below the domain size");
        let day = i64::try_from(k / 1_000).expect("a day number");
        let sequence = u16::try_from(k % 1_000).expect("below 1000");
        let birth = self
            .first_birth
            .checked_add(day.days())
            .expect("inside the birth range");
        IdNumber::from_parts(&self.region, birth, sequence).expect("demo ID parts are valid")
    }

    /// The volunteer ordinal of resident `index`, if a volunteer: a bijection onto residents, of
    /// which the first `volunteer_total` ordinals are volunteers.
    fn volunteer_ordinal(&self, index: u64) -> Option<u64> {
        let v = (u128::from(index) * u128::from(self.volunteer_multiplier)
            + u128::from(self.volunteer_offset))
            % u128::from(self.residents);
        let v = u64::try_from(v).expect("below the resident count");
        (v < self.volunteer_total).then_some(v)
    }

    /// When volunteer `ordinal` registered: cohorts fill their year evenly, in ordinal order,
    /// with a jitter smaller than the spacing, so each year's cumulative count is exact.
    fn registered_at(&mut self, ordinal: u64) -> i64 {
        let (first, end, from, until) = self
            .cohorts
            .iter()
            .copied()
            .find(|c| ordinal < c.1)
            .expect("an ordinal below the total lies in a cohort");
        let size = i64_of(end - first);
        let span = until - from;
        let step = (span / size).max(1);
        from + i64_of(ordinal - first) * span / size + self.rng.gen_range(0..step)
    }

    fn next_batch(&mut self, rows: usize) -> Option<PeopleBatch> {
        if self.next >= self.residents {
            return None;
        }
        let end = (self.next + u64_of(rows)).min(self.residents);
        let mut participants = Vec::with_capacity(usize_of(end - self.next));
        let mut volunteers = Vec::new();
        for index in self.next..end {
            let id_number = self.id_number(index);
            let surname = *pick(&mut self.rng, &SURNAMES);
            let given_chars = if id_number.is_male() {
                &MALE_GIVEN[..]
            } else {
                &FEMALE_GIVEN[..]
            };
            let mut name = String::with_capacity(9);
            name.push_str(surname);
            name.push(*pick(&mut self.rng, given_chars));
            if self.rng.gen_ratio(7, 10) {
                name.push(*pick(&mut self.rng, given_chars));
            }
            let home = pick(&mut self.rng, &self.homes).clone();
            let mut created = between(&mut self.rng, self.import.0, self.import.1);
            let id = person_id(index);
            if let Some(ordinal) = self.volunteer_ordinal(index) {
                let registered = self.registered_at(ordinal);
                self.volunteers[usize_of(ordinal)] = (index, registered);
                let registered = Timestamp::from_second(registered).expect("a valid instant");
                created = created.min(registered);
                volunteers.push(VolunteerRow {
                    participant_id: id.clone(),
                    volunteer_number: format!("ZJ{}{:08}", self.region, ordinal + 1),
                    registered_at: format_instant(registered),
                });
            }
            participants.push(ParticipantRow {
                id,
                kind: "person".into(),
                display_name: name,
                id_number_digest: Some(self.vault.digest(id_number.expose())),
                id_number_masked: Some(id_number.masked()),
                id_number_cipher: Some(self.vault.encrypt(id_number.expose())),
                division_code: Some(home),
                created_at: format_instant(created),
                synthetic: true,
            });
        }
        self.next = end;
        Some(PeopleBatch {
            participants,
            volunteers,
        })
    }
}

/// Plausible actuals for the manual indicators: 2021 and 2022 near their targets (about seven
/// in ten met), the year before an "increase" target as its baseline, nothing for 2023 (left for
/// people to enter). Returns (indicator code, year, value as typed).
fn demo_actuals(pack: &RegionPack, seed: u64) -> Vec<(String, i16, String)> {
    let mut rng = rng_for(seed, STREAM_INDICATORS);
    let mut out = Vec::new();
    for def in &pack.indicators {
        if !matches!(def.source, IndicatorSource::Manual) {
            continue;
        }
        let Some(reference) = DEMO_YEARS
            .iter()
            .find_map(|y| def.targets.get(y).and_then(|t| t.value))
        else {
            continue;
        };
        let scale = reference.scale() + u32::from(reference.abs() < Decimal::ONE_HUNDRED);
        let mut previous: Option<Decimal> = None;
        for year in &DEMO_YEARS[..2] {
            let Some(target) = def.targets.get(year) else {
                continue;
            };
            let value = match (target.comparator, target.value) {
                (Some(Comparator::Increase), _) => {
                    let base = match previous {
                        Some(p) => p,
                        None => {
                            // No actual for the year before: enter a baseline below the
                            // reference, so "有所提高" can be judged.
                            let b = nudge(def, reference, -rng.gen_range(60_i64..=100), scale);
                            out.push((def.code.clone(), year - 1, b.normalize().to_string()));
                            b
                        }
                    };
                    nudge(def, base, rng.gen_range(10_i64..=40), scale)
                }
                (Some(comparator), Some(value)) => {
                    let met = rng.gen_ratio(7, 10);
                    let per_mille = match (met, comparator) {
                        (true, _) => rng.gen_range(0_i64..=25),
                        (false, Comparator::About) => -rng.gen_range(30_i64..=60),
                        (false, _) => -rng.gen_range(8_i64..=40),
                    };
                    let better = match comparator {
                        Comparator::Ge => Better::Higher,
                        Comparator::Le => Better::Lower,
                        _ => def.better,
                    };
                    nudge_towards(def, value, better, per_mille, scale)
                }
                _ => continue,
            };
            previous = Some(value);
            out.push((def.code.clone(), *year, value.normalize().to_string()));
        }
    }
    out
}

/// `value` moved by `per_mille` in the indicator's better direction (negative: worse).
fn nudge(def: &IndicatorDef, value: Decimal, per_mille: i64, scale: u32) -> Decimal {
    nudge_towards(def, value, def.better, per_mille, scale)
}

fn nudge_towards(
    def: &IndicatorDef,
    value: Decimal,
    better: Better,
    per_mille: i64,
    scale: u32,
) -> Decimal {
    let signed = match better {
        Better::Higher => per_mille,
        Better::Lower => -per_mille,
    };
    let moved = (value * Decimal::from(1_000 + signed) / Decimal::from(1_000)).round_dp(scale);
    if def.unit == "%" && moved > Decimal::ONE_HUNDRED {
        Decimal::ONE_HUNDRED
    } else {
        moved
    }
}

/// One person of a demo household.
struct DemoPerson {
    name: String,
    id: IdNumber,
    relation: &'static str,
}

/// The people of a demo household of `size`: a head, a spouse when there are two or more, then
/// children (the youngest a grandchild when the head is old). ID numbers are Lucheng's with a
/// birth date fitting the relation; `births` numbers the people born on each day, so no two
/// share a number.
fn demo_household_people(
    rng: &mut ChaCha8Rng,
    category: &str,
    size: i64,
    births: &mut HashMap<Date, u16>,
) -> Vec<DemoPerson> {
    let mut born = |rng: &mut ChaCha8Rng, from: i16, to: i16| -> IdNumber {
        loop {
            let year = rng.gen_range(from..=to.max(from));
            let month = rng.gen_range(1..=12_i8);
            let day = rng.gen_range(1..=28_i8);
            let date = Date::new(year, month, day).expect("a real date");
            let sequence = births.entry(date).or_insert(0);
            if *sequence < 999 {
                *sequence += 1;
                return IdNumber::from_parts("330302", date, *sequence)
                    .expect("demo ID parts are valid");
            }
        }
    };
    let head_year: (i16, i16) = if category == "extreme_poverty" {
        (1935, 1963)
    } else {
        (1945, 1990)
    };
    let mut people = Vec::new();
    let head = born(rng, head_year.0, head_year.1);
    let head_birth = head.birth_date().year();
    people.push((head, "head"));
    for i in 1..size {
        let (id, relation) = if i == 1 {
            (
                born(rng, head_birth - 5, (head_birth + 5).min(2000)),
                "spouse",
            )
        } else if i == size - 1 && head_birth < 1960 {
            (born(rng, 2000, 2018), "grandchild")
        } else {
            let from = (head_birth + 22).min(2018);
            (born(rng, from, (head_birth + 38).min(2020)), "child")
        };
        people.push((id, relation));
    }
    people
        .into_iter()
        .map(|(id, relation)| {
            let given = if id.is_male() {
                &MALE_GIVEN[..]
            } else {
                &FEMALE_GIVEN[..]
            };
            let mut name = String::with_capacity(9);
            let surname: &&str = pick(rng, &SURNAMES);
            name.push_str(surname);
            name.push(*pick(rng, given));
            if rng.gen_ratio(7, 10) {
                name.push(*pick(rng, given));
            }
            DemoPerson { name, id, relation }
        })
        .collect()
}

/// A plausible per-capita income, fen per year, for a household of `category`: subsistence
/// households under the standard, near-subsistence ones between the standard and the edge line
/// (¥17,250 in 2023), the others spread around and above it. Whole yuan.
fn demo_income_fen(rng: &mut ChaCha8Rng, category: &str) -> i64 {
    let (from, to) = match category {
        "subsistence" => (3_000, 10_500),
        "extreme_poverty" => (2_000, 9_000),
        "near_subsistence" => (11_000, 17_200),
        "expenditure_hardship" => (12_000, 30_000),
        "temporary" => (8_000, 40_000),
        _ => (10_000, 35_000),
    };
    rng.gen_range(from..=to) * 100
}

/// What a demo need says, by service category.
fn demo_need_text(category: &str) -> &'static str {
    match category {
        "daily_care" => "独居老人需要每周上门助洁、助餐",
        "health" => "慢性病需要定期上门测血压、代配药",
        "schooling" => "孩子上初中，需要课后辅导",
        "employment" => "户主有劳动能力，希望推荐就近工作",
        "emotional_support" => "丧偶后情绪低落，需要定期探访陪伴",
        "skills" => "希望参加家政或电商技能培训",
        _ => "需要上门了解情况",
    }
}

/// A division's everyday name: villages drop the committee suffix (`老涂村委会` → `老涂村`).
fn short_name(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("村委会") {
        format!("{stem}村")
    } else if let Some(stem) = name.strip_suffix("居委会") {
        format!("{stem}社区")
    } else {
        name.to_owned()
    }
}

/// The demo's organizations in registration order, with their kinds.
const ORGANIZATIONS: [(&str, &str); 16] = [
    ("温州市鹿城区慈善总会", "social_group"),
    ("鹿城区瓯江慈善基金会", "foundation"),
    ("鹿城区善行社会工作服务中心", "social_service"),
    ("鹿城区五马爱心慈善基金会", "foundation"),
    ("鹿城区志愿者协会", "social_group"),
    ("鹿城区阳光助残服务中心", "social_service"),
    ("鹿城区江心屿公益基金会", "foundation"),
    ("鹿城区松台颐养服务中心", "social_service"),
    ("鹿城区南郊助学慈善基金会", "foundation"),
    ("鹿城区蒲鞋市邻里互助会", "social_group"),
    ("鹿城区大南善亭公益服务中心", "social_service"),
    ("鹿城区七都乡村振兴慈善基金会", "foundation"),
    ("鹿城区义工联合会", "social_group"),
    ("鹿城区藤桥乡村公益服务中心", "social_service"),
    ("鹿城区滨江慈善基金会", "foundation"),
    ("鹿城区山福生态公益基金会", "foundation"),
];

const TRUST_NAMES: [&str; 3] = [
    "鹿城区共同富裕慈善信托",
    "瓯江助学慈善信托",
    "五马颐养慈善信托",
];

/// Who funds are named after: places and local names (18 of them, so with ten themes the
/// first 180 funds get distinct names).
const NAMESAKES: [&str; 18] = [
    "瓯越",
    "五马",
    "江心",
    "松台",
    "南塘",
    "滨江",
    "七都",
    "藤桥",
    "山福",
    "仰义",
    "双屿",
    "丰门",
    "大南",
    "南汇",
    "蒲鞋市",
    "广化",
    "南郊",
    "鹿城",
];

/// Fund themes and two project names each.
const THEMES: [(&str, [&str; 2]); 10] = [
    ("助学", ["春蕾助学行动", "寒门学子圆梦计划"]),
    ("助医", ["大病救助行动", "慢病关爱药箱"]),
    ("助老", ["空巢老人助餐", "银龄守护计划"]),
    ("助残", ["阳光助残康复", "无障碍改造行动"]),
    ("扶贫济困", ["困难家庭帮扶", "冬日暖心包"]),
    ("乡村振兴", ["乡村共富工坊", "村级善亭建设"]),
    ("关爱儿童", ["留守儿童陪伴", "儿童营养餐"]),
    ("应急救灾", ["台风应急救援", "防汛物资储备"]),
    ("善亭", ["善亭便民服务", "善亭爱心驿站"]),
    ("文化传承", ["瓯越非遗传承", "社区书房"]),
];

/// Service names by the Lucheng pack's category codes; other packs' categories use their name.
/// What the demo orders ask for.
const ORDER_NOTES: [&str; 6] = [
    "独居老人，希望每周上门打扫一次",
    "腿脚不便，需要陪同去医院复诊",
    "孩子功课跟不上，希望有人辅导数学",
    "想找一份离家近的工作",
    "老人情绪低落，希望有人常来聊天",
    "想学电脑和手机操作",
];

/// The weekly windows demo services are open in.
const SERVICE_WINDOWS: [&str; 4] = [
    "工作日 09:00-17:00",
    "工作日 08:30-11:30；周六 09:00-12:00",
    "每天 08:00-20:00",
    "",
];

const SERVICE_TEMPLATES: [(&str, [&str; 4]); 6] = [
    (
        "daily_care",
        ["助餐送餐", "上门助浴", "居家保洁", "代购代办"],
    ),
    ("health", ["义诊巡诊", "健康体检", "康复理疗", "慢病随访"]),
    (
        "schooling",
        ["课业辅导", "四点半课堂", "助学结对", "暑期托管"],
    ),
    (
        "employment",
        ["技能培训", "岗位推荐", "创业指导", "公益岗位对接"],
    ),
    (
        "emotional_support",
        ["心理疏导", "结对探访", "节日慰问", "陪伴聊天"],
    ),
    (
        "skills",
        ["智能手机培训", "手工编织课堂", "烹饪课堂", "防诈骗讲座"],
    ),
];

const SERVICE_RECORD_CONTENT: [&str; 10] = [
    "社区助老探访",
    "文明交通劝导",
    "垃圾分类宣传",
    "善亭值守",
    "助餐送餐",
    "四点半课堂辅导",
    "义诊协助",
    "防汛值守",
    "图书馆服务",
    "环境清洁",
];

/// Surnames, common ones in Wenzhou listed more than once.
const SURNAMES: [&str; 48] = [
    "陈", "陈", "陈", "林", "林", "王", "王", "张", "李", "黄", "黄", "郑", "郑", "吴", "周", "徐",
    "金", "胡", "潘", "叶", "朱", "杨", "蔡", "谢", "刘", "赵", "孙", "董", "郭", "池", "戴", "项",
    "应", "薛", "章", "姜", "余", "包", "夏", "程", "麻", "季", "施", "缪", "邵", "彭", "卢", "虞",
];

const MALE_GIVEN: [char; 32] = [
    '伟', '强', '磊', '军', '杰', '斌', '浩', '鹏', '涛', '明', '超', '俊', '峰', '建', '华', '文',
    '波', '辉', '宇', '晨', '志', '勇', '海', '东', '林', '晓', '阳', '凯', '翔', '毅', '瓯', '鸿',
];

const FEMALE_GIVEN: [char; 32] = [
    '芳', '娜', '敏', '静', '丽', '艳', '娟', '霞', '燕', '玲', '婷', '慧', '琳', '洁', '雪', '梅',
    '萍', '红', '颖', '倩', '佳', '晶', '欣', '悦', '璐', '蓉', '莉', '琴', '思', '雅', '晓', '丹',
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use cishan_core::{Metric, Status};

    use super::*;
    use crate::{Config, SystemClock};

    async fn open(dir: &Path) -> App {
        let config = Config {
            database_url: format!("sqlite://{}/demo.db", dir.display()),
            data_dir: dir.join("data"),
        };
        App::open(
            &config,
            cishan_core::region::embedded::lucheng(),
            Arc::new(SystemClock),
        )
        .await
        .expect("open a fresh app")
    }

    fn small(seed: u64) -> DemoOptions {
        DemoOptions {
            scale: Scale::Small,
            seed,
        }
    }

    fn quiet(_: Progress) {}

    #[tokio::test]
    async fn small_demo_fills_an_empty_database_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let app = open(dir.path()).await;
        let seen = std::sync::Mutex::new(Vec::new());
        let report = app
            .generate_demo(&small(2021), &|p| seen.lock().unwrap().push(p))
            .await
            .unwrap();
        assert!(!report.reused);
        let plan = Scale::Small.plan();
        let c = report.counts;
        assert_eq!(c.participants, 2_000 + 8, "residents plus organizations");
        assert_eq!(c.organizations, 8);
        assert_eq!(c.funds, 10);
        assert_eq!(c.projects, 20);
        assert_eq!(c.volunteers, 470 + i64_of(u64_of(STORY_VOLUNTEERS)));
        assert_eq!(c.household_members, 80);
        assert_eq!(c.services, 60);
        // The bulk donations and the demo member's, which go through the donation use case.
        let story_donations = i64_of(u64_of(STORY_DONATIONS.len()));
        assert_eq!(c.donations, 400 + story_donations);
        assert_eq!(c.disbursements, 60);
        // Each attendee of the past activities gets one record per local day served.
        let story_days: i64 = PAST_ACTIVITIES
            .iter()
            .map(|a| a.starts.0 - a.ends.0 + 1)
            .sum();
        let attendees = i64_of(u64_of(STORY_ATTENDEES + 1));
        // Volunteers' completed orders add one record per local day served.
        let served = app
            .store()
            .orders_page(
                &cishan_store::OrderFilter {
                    states: vec!["completed".into(), "reviewed".into()],
                    ..Default::default()
                },
                0,
                100,
            )
            .await
            .unwrap();
        // Only reviewed orders' minutes are verified (the review confirms the service); a
        // completed order's minutes wait, pending, with no record.
        let mut order_records = 0_i64;
        for o in served
            .iter()
            .filter(|o| o.provider_kind.as_deref() == Some("volunteer"))
        {
            let records = app
                .store()
                .service_records_of(o.provider_id.as_deref().unwrap(), 200)
                .await
                .unwrap();
            let of_order = i64_of(u64_of(
                records
                    .iter()
                    .filter(|r| r.record.content.contains(&o.id))
                    .count(),
            ));
            let reviewed = o.state == "reviewed";
            assert_eq!(o.credited, reviewed, "{}", o.id);
            if reviewed {
                // All confirmed (the daily maximum may still leave a day with no record).
                assert_eq!(o.verified_minutes, o.service_minutes, "{}", o.id);
            } else {
                assert_eq!(of_order, 0, "{}", o.id);
            }
            order_records += of_order;
        }
        assert!(order_records >= 1, "volunteers served some demo orders");
        assert_eq!(
            c.service_records,
            600 + story_days * attendees + order_records
        );
        let alerts = app
            .alerts(&app.demo_admin().await.unwrap(), &Default::default())
            .await
            .unwrap();
        for kind in ["not_dispatched", "not_completed", "low_rating"] {
            assert!(
                alerts.items.iter().any(|a| a.kind == kind),
                "a demo warning of kind {kind}"
            );
        }
        assert_eq!(c.trusts, 3);
        let seen = seen.into_inner().unwrap();
        assert!(seen
            .iter()
            .any(|p| p.stage == Stage::Residents && p.done == 2_000));

        for (i, year) in DEMO_YEARS.iter().enumerate() {
            let volunteers = app
                .metric_at_year_end(Metric::RegisteredVolunteers, *year)
                .await
                .unwrap();
            let orgs = app
                .metric_at_year_end(Metric::CharityOrganizations, *year)
                .await
                .unwrap();
            let trusts = app
                .metric_at_year_end(Metric::CharityTrusts, *year)
                .await
                .unwrap();
            assert_eq!(
                u64::try_from(volunteers).unwrap(),
                plan.volunteers_by_year[i]
            );
            assert_eq!(
                u64::try_from(orgs).unwrap(),
                plan.charity_organizations_by_year[i]
            );
            assert_eq!(u64::try_from(trusts).unwrap(), plan.trusts_by_year[i]);
        }

        // Every ID number opens, parses, is from the district and matches its mask and digest.
        let people = app.store().participants_page(0, 5_000).await.unwrap();
        let mut persons = 0;
        for p in people.iter().filter(|p| p.kind == "person") {
            persons += 1;
            assert!(p.synthetic);
            let clear = app
                .vault()
                .decrypt(p.id_number_cipher.as_deref().unwrap())
                .unwrap();
            let id = IdNumber::parse(&clear).expect("a valid ID number");
            assert_eq!(id.region_code(), "330302");
            assert_eq!(Some(id.masked()), p.id_number_masked);
            assert_eq!(Some(app.vault().digest(id.expose())), p.id_number_digest);
            let year = id.birth_date().year();
            assert!((1940..=2005).contains(&year));
        }
        assert_eq!(persons, 2_000);

        let orgs = app.store().organizations_page(0, 100).await.unwrap();
        assert_eq!(orgs.len(), 8);
        for org in &orgs {
            let code = CreditCode::parse(&org.credit_code).expect("a valid credit code");
            assert_eq!(code.division_code(), "330302");
            assert!(org.is_charity && org.name.ends_with("（演示）"));
        }

        // Never more disbursed from a project than raised for it; some projects fully funded.
        let projects = app.store().projects_page(None, 0, 100).await.unwrap();
        assert!(projects.iter().all(|p| p.disbursed_fen <= p.raised_fen));
        assert!(projects.iter().any(|p| p.raised_fen >= p.goal_fen));
        assert!(projects.iter().any(|p| p.raised_fen < p.goal_fen));

        // Manual indicators: 2021 and 2022 entered (some met, some not), 2023 left empty.
        for year in [2021, 2022] {
            let views = app.indicators(year).await.unwrap();
            let manual: Vec<_> = views.iter().filter(|v| v.manual).collect();
            assert!(manual.iter().all(|v| v.actual.is_some()), "{year} filled");
            assert!(manual.iter().any(|v| v.status == Status::Met));
            assert!(manual.iter().any(|v| v.status == Status::NotMet));
        }
        let indicator_2 = app.indicators(2021).await.unwrap();
        let indicator_2 = indicator_2.iter().find(|v| v.code == "2").unwrap();
        assert_ne!(indicator_2.status, Status::NoData, "2020 baseline entered");
        let views = app.indicators(2023).await.unwrap();
        assert!(views
            .iter()
            .filter(|v| v.manual)
            .all(|v| v.actual.is_none() && v.status == Status::NoData));

        // The ledger: every donation reconciles with its lot and flows, every transfer balances,
        // and a trace shows where each fen went.
        let store = app.store();
        assert_eq!(store.unreconciled_donations().await.unwrap(), vec![]);
        assert_eq!(store.unbalanced_transfers().await.unwrap(), vec![]);
        assert_eq!(
            store.count_rows("lots").await.unwrap(),
            400 + story_donations
        );
        assert_eq!(
            store.count_rows("receipts").await.unwrap(),
            i64_of(plan.receipts) + story_donations
        );
        assert!(store.count_rows("flows").await.unwrap() >= 60);
        let (mut with_disbursements, mut with_receipts) = (0, 0);
        for k in 1..=400 {
            let trace = app.trace(&format!("don_{k:08}")).await.unwrap();
            assert_eq!(
                trace.disbursed_fen + trace.remaining_fen + trace.refunded_fen,
                trace.donation.amount_fen,
                "don_{k:08}"
            );
            with_disbursements += usize::from(!trace.disbursements.is_empty());
            with_receipts += trace.receipts.len();
        }
        assert!(with_disbursements > 0);
        assert_eq!(u64_of(with_receipts), plan.receipts);

        let journal = app.store().verify_journal().await.unwrap();
        assert!(journal.is_intact(), "{:?}", journal.problems);

        // Same seed and scale again: nothing written.
        let again = app.generate_demo(&small(2021), &quiet).await.unwrap();
        assert!(again.reused);
        assert_eq!(again.counts, report.counts);
        assert_eq!(app.demo_in_database().await.unwrap(), Some(small(2021)));
        let after = app.store().verify_journal().await.unwrap();
        assert_eq!(after.entries, journal.entries);

        // Another seed or scale: refused, with advice.
        for other in [
            small(7),
            DemoOptions {
                scale: Scale::District,
                seed: 2021,
            },
        ] {
            let error = app.generate_demo(&other, &quiet).await.unwrap_err();
            assert_eq!(error.code, "demo.database_not_empty");
            assert!(error.message.contains("--db"), "{}", error.message);
        }
        assert_eq!(app.store().table_counts().await.unwrap(), report.counts);
        app.close().await;
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_rows() {
        let mut runs = Vec::new();
        for seed in [11, 11, 12] {
            let dir = tempfile::tempdir().unwrap();
            let app = open(dir.path()).await;
            let report = app.generate_demo(&small(seed), &quiet).await.unwrap();
            let people: Vec<_> = app
                .store()
                .participants_page(0, 50)
                .await
                .unwrap()
                .into_iter()
                .map(|p| {
                    (
                        p.id,
                        p.display_name,
                        p.id_number_masked,
                        p.division_code,
                        p.created_at,
                    )
                })
                .collect();
            let codes: Vec<_> = app
                .store()
                .organizations_page(0, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|o| (o.id, o.credit_code, o.registered_on, o.donated_fen))
                .collect();
            let projects = app.store().projects_page(None, 0, 100).await.unwrap();
            runs.push((report.counts, people, codes, projects));
            app.close().await;
        }
        assert_eq!(runs[0], runs[1]);
        assert_ne!(runs[0].1, runs[2].1, "another seed, other people");
        assert_ne!(runs[0].2, runs[2].2, "another seed, other organizations");
    }

    #[tokio::test]
    async fn a_database_with_other_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let app = open(dir.path()).await;
        app.create_user(None, "zhang", "张三", "a long enough password", Role::Admin)
            .await
            .unwrap();
        assert_eq!(app.demo_in_database().await.unwrap(), None);
        let error = app.generate_demo(&small(2021), &quiet).await.unwrap_err();
        assert_eq!(error.code, "demo.database_not_empty");
        assert_eq!(app.store().table_counts().await.unwrap().participants, 0);
        app.close().await;
    }

    #[test]
    fn generation_can_run_on_a_spawned_task() {
        fn assert_send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(open(dir.path()));
        let future = app.generate_demo(
            &DemoOptions {
                scale: Scale::Small,
                seed: 1,
            },
            &quiet,
        );
        assert_send(&future);
        drop(future);
        runtime.block_on(app.close());
    }

    #[test]
    fn scales_parse_and_print() {
        for scale in [Scale::Small, Scale::District] {
            assert_eq!(scale.as_str().parse::<Scale>(), Ok(scale));
        }
        assert!("huge".parse::<Scale>().is_err());
        let district = Scale::District.plan();
        assert_eq!(district.residents, 1_300_000);
        assert_eq!(district.volunteers_by_year, [400_000, 450_000, 470_000]);
        assert_eq!(district.charity_organizations_by_year[2], 16);
        assert_eq!(district.funds, 57);
        assert_eq!(district.services, 738);
        assert_eq!(district.household_members, 7_660);
    }

    #[test]
    fn affine_maps_with_a_coprime_multiplier_are_bijections() {
        for n in [1_u64, 2, 1_000, 2_000, 24_107] {
            let m = coprime_at_least(ID_MULTIPLIER, n);
            let images: HashSet<u64> = (0..n).map(|i| (i * m + 17) % n).collect();
            assert_eq!(u64_of(images.len()), n);
        }
    }

    #[test]
    fn apportion_keeps_the_total_and_the_caps() {
        assert_eq!(apportion(10, &[1, 1, 2]), vec![1, 1, 2], "capped by weight");
        assert_eq!(apportion(10, &[100, 300]), vec![3, 7]);
        assert_eq!(apportion(7, &[0, 0]), vec![0, 0]);
        let shares = apportion(20_000, &[5_000_000, 7_000_000, 3, 0, 11_000_000]);
        assert_eq!(shares.iter().sum::<u64>(), 20_000);
        assert_eq!(shares[3], 0);
    }

    fn donation(id: &str, project: Option<&str>, amount_fen: i64, at: &str) -> DonationRow {
        DonationRow {
            id: id.into(),
            amount_fen,
            fund_id: project.is_none().then(|| "fnd_1".into()),
            project_id: project.map(Into::into),
            received_at: at.into(),
            ..DonationRow::default()
        }
    }

    fn paid(id: &str, project: &str, amount_fen: i64, at: &str) -> DisbursementRow {
        DisbursementRow {
            id: id.into(),
            project_id: project.into(),
            amount_fen,
            paid_at: at.into(),
            ..DisbursementRow::default()
        }
    }

    #[test]
    fn the_ledger_replay_takes_oldest_lots_first_in_payment_order() {
        let donations = [
            donation("don_3", Some("prj_1"), 300, "2021-01-01"),
            donation("don_1", Some("prj_1"), 100, "2021-01-02"),
            donation("don_2", None, 500, "2021-01-01"),
            donation("don_4", Some("prj_2"), 50, "2021-01-03"),
        ];
        // Paid in the order d_b (250 from don_3), d_a (100: 50 from don_3, 50 from don_1).
        let paid_out = [
            paid("d_a", "prj_1", 100, "2021-02-02"),
            paid("d_b", "prj_1", 250, "2021-02-01"),
        ];
        let replay = replay_ledger(&donations, &paid_out).unwrap();
        assert_eq!(replay.remaining, vec![0, 50, 500, 50]);
        let flows: Vec<_> = replay
            .flows
            .iter()
            .map(|f| (f.ref_id.as_str(), f.donation_id.as_str(), f.amount_fen))
            .collect();
        assert_eq!(
            flows,
            vec![
                ("d_b", "don_3", 250),
                ("d_a", "don_3", 50),
                ("d_a", "don_1", 50)
            ]
        );
        assert!(replay
            .flows
            .iter()
            .all(|f| f.kind == "disbursement" && f.from_id == "prj_1" && f.to_id == f.ref_id));

        // More than the project's restricted donations: refused, unrestricted money untouched.
        let error =
            replay_ledger(&donations, &[paid("d_c", "prj_2", 51, "2021-02-01")]).unwrap_err();
        assert_eq!(error.code, "demo.disbursement_uncovered");
        let error =
            replay_ledger(&donations, &[paid("d_d", "prj_9", 1, "2021-02-01")]).unwrap_err();
        assert_eq!(error.code, "demo.disbursement_uncovered");
    }

    #[test]
    fn village_names_lose_the_committee_suffix() {
        assert_eq!(short_name("老涂村委会"), "老涂村");
        assert_eq!(short_name("鼓楼社区"), "鼓楼社区");
    }
}
