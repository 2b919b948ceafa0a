//! Rows and the queries over them. Types here are storage shapes (plain strings and integers);
//! the app layer turns them into domain types. Money is `i64` fen, flags are `bool` in Rust and
//! integers 0/1 in the database.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::{bulk_values, Result, Store, StoreError, WriteTx, BULK_BATCH_ROWS};

pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// A row type that can be inserted many at a time.
pub trait BulkRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    /// Binds this row's values, in [`Self::COLUMNS`] order.
    fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q>;
}

impl WriteTx {
    /// Inserts `rows` with multi-row INSERTs of at most [`BULK_BATCH_ROWS`] rows each.
    pub async fn insert_all<R: BulkRow>(&mut self, rows: &[R]) -> Result<()> {
        self.flush().await?;
        for chunk in rows.chunks(BULK_BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                R::TABLE,
                R::COLUMNS.join(", "),
                bulk_values(self.raw(), chunk.len(), R::COLUMNS.len())
            );
            let mut q = sqlx::query(&sql);
            for row in chunk {
                q = row.bind(q);
            }
            q.execute(self.conn())
                .await
                .map_err(|e| conflict(e, R::TABLE))?;
        }
        Ok(())
    }

    /// Inserts one row.
    pub async fn insert<R: BulkRow>(&mut self, row: &R) -> Result<()> {
        self.insert_all(std::slice::from_ref(row)).await
    }
}

pub(crate) fn conflict(e: sqlx::Error, table: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what: table,
            // SQLite names no constraint; its message names the columns instead
            // ("UNIQUE constraint failed: donations.channel, donations.payment_ref").
            key: db.constraint().unwrap_or(db.message()).to_owned(),
        },
        _ => StoreError::Database(e),
    }
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn get_flag(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

macro_rules! bulk_row {
    ($ty:ident, $table:literal, [$($col:ident),+ $(,)?], flags [$($flag:ident),* $(,)?]) => {
        impl BulkRow for $ty {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($col)),+ $(, stringify!($flag))*];
            fn bind<'q>(&'q self, q: AnyQuery<'q>) -> AnyQuery<'q> {
                q $(.bind(&self.$col))+ $(.bind(flag(self.$flag)))*
            }
        }
    };
}
pub(crate) use bulk_row;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DivisionRow {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}
bulk_row!(DivisionRow, "divisions", [code, name, level, parent_code], flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: String,
    /// The participant a member account (or a staff member's own record) belongs to.
    pub participant_id: Option<String>,
}
bulk_row!(UserRow, "users", [id, username, display_name, password_hash, role, created_at, participant_id], flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: String,
    pub expires_at: String,
}
bulk_row!(SessionRow, "sessions", [token_hash, user_id, csrf_token, created_at, expires_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRow {
    pub id: String,
    pub kind: String,
    pub display_name: String,
    pub id_number_digest: Option<String>,
    pub id_number_masked: Option<String>,
    pub id_number_cipher: Option<String>,
    pub division_code: Option<String>,
    pub created_at: String,
    pub synthetic: bool,
}
bulk_row!(
    ParticipantRow,
    "participants",
    [
        id,
        kind,
        display_name,
        id_number_digest,
        id_number_masked,
        id_number_cipher,
        division_code,
        created_at
    ],
    flags[synthetic]
);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationRow {
    pub id: String,
    pub participant_id: Option<String>,
    pub name: String,
    pub credit_code: String,
    pub kind: String,
    pub division_code: Option<String>,
    pub registered_on: String,
    pub created_at: String,
    pub is_charity: bool,
    pub public_fundraising: bool,
    pub synthetic: bool,
}
bulk_row!(OrganizationRow, "organizations",
    [id, participant_id, name, credit_code, kind, division_code, registered_on, created_at],
    flags [is_charity, public_fundraising, synthetic]);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FundRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: String,
}
bulk_row!(FundRow, "funds", [id, org_id, name, created_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectRow {
    pub id: String,
    pub org_id: String,
    pub fund_id: Option<String>,
    pub name: String,
    pub summary: String,
    pub goal_fen: i64,
    pub state: String,
    pub division_code: Option<String>,
    pub created_at: String,
}
bulk_row!(ProjectRow, "projects",
    [id, org_id, fund_id, name, summary, goal_fen, state, division_code, created_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolunteerRow {
    pub participant_id: String,
    pub volunteer_number: String,
    pub registered_at: String,
}
bulk_row!(VolunteerRow, "volunteers", [participant_id, volunteer_number, registered_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdRow {
    pub id: String,
    pub community_code: String,
    pub category: String,
    pub member_count: i64,
    pub created_at: String,
    pub synthetic: bool,
}
bulk_row!(
    HouseholdRow,
    "households",
    [id, community_code, category, member_count, created_at],
    flags[synthetic]
);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceRow {
    pub id: String,
    pub provider_org_id: String,
    pub category: String,
    pub name: String,
    pub division_code: Option<String>,
    pub capacity_per_week: i64,
    pub created_at: String,
}
bulk_row!(ServiceRow, "services",
    [id, provider_org_id, category, name, division_code, capacity_per_week, created_at], flags []);

/// A donation as stored. `org_id` is the receiving organization (of the fund or project);
/// `donor_name` is a walk-in donor's name as given; goods donations carry the item, quantity,
/// unit and who valued them, with `amount_fen` the valuation.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct DonationRow {
    pub id: String,
    pub donor_participant_id: Option<String>,
    pub amount_fen: i64,
    pub currency: String,
    pub fund_id: Option<String>,
    pub project_id: Option<String>,
    pub received_at: String,
    pub org_id: Option<String>,
    pub kind: String,
    pub channel: String,
    pub payment_ref: Option<String>,
    pub donor_name: Option<String>,
    pub goods_item: Option<String>,
    pub goods_quantity: Option<i64>,
    pub goods_unit: Option<String>,
    pub valued_by: Option<String>,
    pub refunded_fen: i64,
    pub matched_donation_id: Option<String>,
    pub pool_id: Option<String>,
    pub campaign_id: Option<String>,
    pub campaign_unit_id: Option<String>,
    pub recorded_by: Option<String>,
    pub anonymous: bool,
}
bulk_row!(
    DonationRow,
    "donations",
    [
        id,
        donor_participant_id,
        amount_fen,
        currency,
        fund_id,
        project_id,
        received_at,
        org_id,
        kind,
        channel,
        payment_ref,
        donor_name,
        goods_item,
        goods_quantity,
        goods_unit,
        valued_by,
        refunded_fen,
        matched_donation_id,
        pool_id,
        campaign_id,
        campaign_unit_id,
        recorded_by
    ],
    flags[anonymous]
);

/// Money or goods paid from a project to a household, a participant or a supplier.
/// `purpose` is `charitable` or `management` (management costs are recorded as such).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct DisbursementRow {
    pub id: String,
    pub project_id: String,
    pub household_id: Option<String>,
    pub people_count: i64,
    pub amount_fen: i64,
    pub paid_at: String,
    pub recipient_kind: String,
    pub recipient_participant_id: Option<String>,
    pub supplier_name: Option<String>,
    pub form: String,
    pub purpose: String,
    pub description: String,
    pub state: String,
    pub recorded_by: Option<String>,
}
bulk_row!(DisbursementRow, "disbursements",
    [id, project_id, household_id, people_count, amount_fen, paid_at, recipient_kind,
     recipient_participant_id, supplier_name, form, purpose, description, state, recorded_by],
    flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecordRow {
    pub id: String,
    pub volunteer_participant_id: String,
    pub duration_minutes: i64,
    pub served_on: String,
    pub content: String,
}
bulk_row!(ServiceRecordRow, "service_records",
    [id, volunteer_participant_id, duration_minutes, served_on, content], flags []);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRow {
    pub id: String,
    pub name: String,
    pub trustee_org_id: Option<String>,
    pub filed_on: String,
}
bulk_row!(TrustRow, "trusts", [id, name, trustee_org_id, filed_on], flags []);

/// An indicator's actual value for one year. `value` is exact decimal text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndicatorActualRow {
    pub indicator_code: String,
    pub year: i64,
    pub value: String,
    pub entered_by: String,
    pub entered_at: String,
    pub journal_seq: i64,
}

/// The platform-wide disclosure figures the plan asks to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DisclosureSummary {
    /// Distinct registered donors plus one per walk-in donation.
    pub donors: i64,
    pub donated_fen: i64,
    /// Person-times helped by disbursements.
    pub people_helped: i64,
    pub projects: i64,
    pub organizations: i64,
}

/// An organization with its public totals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationSummary {
    pub id: String,
    pub name: String,
    pub credit_code: String,
    pub kind: String,
    pub division_code: Option<String>,
    pub is_charity: bool,
    pub registered_on: String,
    pub funds: i64,
    pub projects: i64,
    pub donated_fen: i64,
}

/// A project with its public totals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectSummary {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub name: String,
    pub summary: String,
    pub state: String,
    pub goal_fen: i64,
    pub raised_fen: i64,
    pub disbursed_fen: i64,
    pub people_helped: i64,
}

/// Row counts of the main tables, for the demo report and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TableCounts {
    pub divisions: i64,
    pub participants: i64,
    pub organizations: i64,
    pub funds: i64,
    pub projects: i64,
    pub volunteers: i64,
    pub households: i64,
    pub household_members: i64,
    pub services: i64,
    pub donations: i64,
    pub disbursements: i64,
    pub service_records: i64,
    pub trusts: i64,
}

impl WriteTx {
    /// Inserts or updates the divisions of the region pack.
    pub async fn upsert_divisions(&mut self, rows: &[DivisionRow]) -> Result<()> {
        self.flush().await?;
        for d in rows {
            sqlx::query(
                "INSERT INTO divisions (code, name, level, parent_code) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, \
                 parent_code = excluded.parent_code",
            )
            .bind(&d.code)
            .bind(&d.name)
            .bind(&d.level)
            .bind(&d.parent_code)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Sets (inserts or replaces) an indicator's actual value for a year.
    pub async fn set_indicator_actual(&mut self, row: &IndicatorActualRow) -> Result<()> {
        self.flush().await?;
        sqlx::query(
            "INSERT INTO indicator_actuals (indicator_code, year, value, entered_by, entered_at, journal_seq) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (indicator_code, year) DO UPDATE SET value = excluded.value, \
             entered_by = excluded.entered_by, entered_at = excluded.entered_at, \
             journal_seq = excluded.journal_seq",
        )
        .bind(&row.indicator_code)
        .bind(row.year)
        .bind(&row.value)
        .bind(&row.entered_by)
        .bind(&row.entered_at)
        .bind(row.journal_seq)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        self.flush().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Removes sessions that expired before `now` (RFC 3339 text).
    pub async fn delete_expired_sessions(&mut self, now: &str) -> Result<u64> {
        self.flush().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }
}

fn user_from_row(row: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
        participant_id: row.try_get("participant_id")?,
    })
}

fn actual_from_row(row: &AnyRow) -> Result<IndicatorActualRow> {
    Ok(IndicatorActualRow {
        indicator_code: row.try_get("indicator_code")?,
        year: row.try_get("year")?,
        value: row.try_get("value")?,
        entered_by: row.try_get("entered_by")?,
        entered_at: row.try_get("entered_at")?,
        journal_seq: row.try_get("journal_seq")?,
    })
}

impl Store {
    pub async fn divisions(&self) -> Result<Vec<DivisionRow>> {
        let rows =
            sqlx::query("SELECT code, name, level, parent_code FROM divisions ORDER BY code")
                .fetch_all(self.reader())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(DivisionRow {
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                    level: r.try_get("level")?,
                    parent_code: r.try_get("parent_code")?,
                })
            })
            .collect()
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT id, username, display_name, password_hash, role, created_at, participant_id FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The session with this token hash and its user, if the session exists.
    pub async fn session(&self, token_hash: &str) -> Result<Option<(SessionRow, UserRow)>> {
        let row = sqlx::query(
            "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.expires_at, \
             u.id, u.username, u.display_name, u.password_hash, u.role, u.created_at, u.participant_id \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = SessionRow {
            token_hash: row.try_get("token_hash")?,
            user_id: row.try_get("user_id")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("s_created_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok(Some((session, user_from_row(&row)?)))
    }

    pub async fn indicator_actuals(&self) -> Result<Vec<IndicatorActualRow>> {
        let rows = sqlx::query(
            "SELECT indicator_code, year, value, entered_by, entered_at, journal_seq \
             FROM indicator_actuals ORDER BY indicator_code, year",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(actual_from_row).collect()
    }

    pub async fn disclosure_summary(&self) -> Result<DisclosureSummary> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(DISTINCT donor_participant_id) FROM donations WHERE amount_fen > refunded_fen) \
                 + (SELECT COUNT(*) FROM donations WHERE donor_participant_id IS NULL AND amount_fen > refunded_fen) AS donors, \
               (SELECT CAST(COALESCE(SUM(amount_fen - refunded_fen), 0) AS BIGINT) FROM donations) AS donated_fen, \
               (SELECT CAST(COALESCE(SUM(people_count), 0) AS BIGINT) FROM disbursements WHERE state = 'paid') AS people_helped, \
               (SELECT COUNT(*) FROM projects) AS projects, \
               (SELECT COUNT(*) FROM organizations) AS organizations",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(DisclosureSummary {
            donors: row.try_get("donors")?,
            donated_fen: row.try_get("donated_fen")?,
            people_helped: row.try_get("people_helped")?,
            projects: row.try_get("projects")?,
            organizations: row.try_get("organizations")?,
        })
    }

    /// Recognized charity organizations registered before `date` (`YYYY-MM-DD`, exclusive).
    pub async fn count_charity_organizations_before(&self, date: &str) -> Result<i64> {
        self.count(
            "SELECT COUNT(*) FROM organizations WHERE is_charity = 1 AND registered_on < $1",
            date,
        )
        .await
    }

    /// Charity trusts filed before `date` (`YYYY-MM-DD`, exclusive).
    pub async fn count_trusts_before(&self, date: &str) -> Result<i64> {
        self.count("SELECT COUNT(*) FROM trusts WHERE filed_on < $1", date)
            .await
    }

    /// Volunteers registered before the instant `at` (RFC 3339 text, exclusive).
    pub async fn count_volunteers_before(&self, at: &str) -> Result<i64> {
        self.count(
            "SELECT COUNT(*) FROM volunteers WHERE registered_at < $1",
            at,
        )
        .await
    }

    async fn count(&self, sql: &str, arg: &str) -> Result<i64> {
        let row = sqlx::query(sql).bind(arg).fetch_one(self.reader()).await?;
        Ok(row.try_get(0)?)
    }

    pub async fn table_counts(&self) -> Result<TableCounts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM divisions) AS divisions, \
             (SELECT COUNT(*) FROM participants) AS participants, \
             (SELECT COUNT(*) FROM organizations) AS organizations, \
             (SELECT COUNT(*) FROM funds) AS funds, \
             (SELECT COUNT(*) FROM projects) AS projects, \
             (SELECT COUNT(*) FROM volunteers) AS volunteers, \
             (SELECT COUNT(*) FROM households) AS households, \
             (SELECT CAST(COALESCE(SUM(member_count), 0) AS BIGINT) FROM households) AS household_members, \
             (SELECT COUNT(*) FROM services) AS services, \
             (SELECT COUNT(*) FROM donations) AS donations, \
             (SELECT COUNT(*) FROM disbursements) AS disbursements, \
             (SELECT COUNT(*) FROM service_records) AS service_records, \
             (SELECT COUNT(*) FROM trusts) AS trusts",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(TableCounts {
            divisions: row.try_get("divisions")?,
            participants: row.try_get("participants")?,
            organizations: row.try_get("organizations")?,
            funds: row.try_get("funds")?,
            projects: row.try_get("projects")?,
            volunteers: row.try_get("volunteers")?,
            households: row.try_get("households")?,
            household_members: row.try_get("household_members")?,
            services: row.try_get("services")?,
            donations: row.try_get("donations")?,
            disbursements: row.try_get("disbursements")?,
            service_records: row.try_get("service_records")?,
            trusts: row.try_get("trusts")?,
        })
    }

    /// Organizations with their totals, ordered by name then id, one page.
    pub async fn organizations_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<OrganizationSummary>> {
        let rows = sqlx::query(&format!(
            "{ORG_SUMMARY_SQL} ORDER BY o.name, o.id LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(org_summary_from_row).collect()
    }

    pub async fn organization(&self, id: &str) -> Result<Option<OrganizationSummary>> {
        let row = sqlx::query(&format!("{ORG_SUMMARY_SQL} WHERE o.id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(org_summary_from_row).transpose()
    }

    /// Projects with their totals, optionally of one organization, ordered by name then id.
    pub async fn projects_page(
        &self,
        org_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ProjectSummary>> {
        // Two statements rather than `$1 IS NULL OR …`: PostgreSQL cannot type an untyped NULL.
        let rows = match org_id {
            Some(org_id) => {
                sqlx::query(&format!(
                    "{PROJECT_SUMMARY_SQL} WHERE p.org_id = $1 ORDER BY p.name, p.id LIMIT $2 OFFSET $3"
                ))
                .bind(org_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "{PROJECT_SUMMARY_SQL} ORDER BY p.name, p.id LIMIT $1 OFFSET $2"
                ))
                .bind(limit)
                .bind(offset)
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(project_summary_from_row).collect()
    }

    pub async fn project(&self, id: &str) -> Result<Option<ProjectSummary>> {
        let row = sqlx::query(&format!("{PROJECT_SUMMARY_SQL} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(project_summary_from_row).transpose()
    }

    /// Funds of one organization.
    pub async fn funds_of(&self, org_id: &str) -> Result<Vec<FundRow>> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, created_at FROM funds WHERE org_id = $1 ORDER BY name, id",
        )
        .bind(org_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FundRow {
                    id: r.try_get("id")?,
                    org_id: r.try_get("org_id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

// Totals come from correlated subqueries so that no join multiplies rows; every page, filter
// and detail view reads the same expressions and therefore shows the same totals.
const ORG_SUMMARY_SQL: &str =
    "SELECT o.id, o.name, o.credit_code, o.kind, o.division_code, o.is_charity, o.registered_on, \
     (SELECT COUNT(*) FROM funds f WHERE f.org_id = o.id) AS funds, \
     (SELECT COUNT(*) FROM projects p WHERE p.org_id = o.id) AS projects, \
     (SELECT CAST(COALESCE(SUM(d.amount_fen - d.refunded_fen), 0) AS BIGINT) FROM donations d \
        WHERE d.org_id = o.id) AS donated_fen \
     FROM organizations o";

const PROJECT_SUMMARY_SQL: &str = "SELECT p.id, p.org_id, o.name AS org_name, p.name, p.summary, p.state, p.goal_fen, \
     (SELECT CAST(COALESCE(SUM(d.amount_fen - d.refunded_fen), 0) AS BIGINT) FROM donations d WHERE d.project_id = p.id) \
       + (SELECT CAST(COALESCE(SUM(a.amount_fen), 0) AS BIGINT) FROM allocations a WHERE a.project_id = p.id) AS raised_fen, \
     (SELECT CAST(COALESCE(SUM(b.amount_fen), 0) AS BIGINT) FROM disbursements b WHERE b.project_id = p.id AND b.state = 'paid') AS disbursed_fen, \
     (SELECT CAST(COALESCE(SUM(b.people_count), 0) AS BIGINT) FROM disbursements b WHERE b.project_id = p.id AND b.state = 'paid') AS people_helped \
     FROM projects p JOIN organizations o ON o.id = p.org_id";

fn org_summary_from_row(r: &AnyRow) -> Result<OrganizationSummary> {
    Ok(OrganizationSummary {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        credit_code: r.try_get("credit_code")?,
        kind: r.try_get("kind")?,
        division_code: r.try_get("division_code")?,
        is_charity: get_flag(r, "is_charity")?,
        registered_on: r.try_get("registered_on")?,
        funds: r.try_get("funds")?,
        projects: r.try_get("projects")?,
        donated_fen: r.try_get("donated_fen")?,
    })
}

fn project_summary_from_row(r: &AnyRow) -> Result<ProjectSummary> {
    Ok(ProjectSummary {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        name: r.try_get("name")?,
        summary: r.try_get("summary")?,
        state: r.try_get("state")?,
        goal_fen: r.try_get("goal_fen")?,
        raised_fen: r.try_get("raised_fen")?,
        disbursed_fen: r.try_get("disbursed_fen")?,
        people_helped: r.try_get("people_helped")?,
    })
}

impl Store {
    /// The number of accounts (a fresh deployment has none and must create an administrator).
    pub async fn user_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Participants ordered by id, one page: for checks, exports and tests. The rows carry the
    /// sealed and masked ID numbers only, never the number in clear.
    pub async fn participants_page(&self, offset: i64, limit: i64) -> Result<Vec<ParticipantRow>> {
        let rows = sqlx::query(
            "SELECT id, kind, display_name, id_number_digest, id_number_masked, id_number_cipher, \
             division_code, created_at, synthetic FROM participants ORDER BY id LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ParticipantRow {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    display_name: r.try_get("display_name")?,
                    id_number_digest: r.try_get("id_number_digest")?,
                    id_number_masked: r.try_get("id_number_masked")?,
                    id_number_cipher: r.try_get("id_number_cipher")?,
                    division_code: r.try_get("division_code")?,
                    created_at: r.try_get("created_at")?,
                    synthetic: get_flag(r, "synthetic")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// A deployment setting, if set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| r.try_get("value").map_err(StoreError::from))
            .transpose()
    }
}

impl WriteTx {
    /// Sets a deployment setting once; an existing value is a conflict.
    pub async fn insert_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.flush().await?;
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
            .bind(name)
            .bind(value)
            .execute(self.conn())
            .await
            .map_err(|e| conflict(e, "settings"))?;
        Ok(())
    }
}
