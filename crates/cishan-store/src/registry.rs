//! SQL for the beneficiary registry (低收入人口库): households with their encrypted and masked
//! personal fields, members, needs, staff scopes, welfare jobs and placements (migration 0012).
//!
//! This module sees only ciphertexts, keyed digests and masked forms; the app layer encrypts and
//! decrypts. Street scoping is a condition on `households.street_code` that the app passes in.
//! Caps are conditional UPDATEs whose row counts the caller checks: a job takes a placement only
//! `WHERE filled < positions`, a placement ends only from `active`.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{bulk_row, flag, get_flag, AnyQuery, BulkRow};
use crate::{Result, Store, WriteTx};

/// A household of the registry, every column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryHouseholdRow {
    pub id: String,
    pub street_code: String,
    pub community_code: String,
    pub category: String,
    pub member_count: i64,
    pub head_name_cipher: String,
    pub head_name_masked: String,
    pub head_id_digest: String,
    pub head_id_cipher: String,
    pub head_id_masked: String,
    pub phone_cipher: Option<String>,
    pub phone_masked: Option<String>,
    pub address_cipher: String,
    pub address_masked: String,
    /// Per-capita income, fen per year, as decimal text, encrypted.
    pub income_cipher: String,
    pub consent_at: String,
    pub consent_by: String,
    pub registered_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub synthetic: bool,
}
bulk_row!(
    RegistryHouseholdRow,
    "households",
    [
        id,
        street_code,
        community_code,
        category,
        member_count,
        head_name_cipher,
        head_name_masked,
        head_id_digest,
        head_id_cipher,
        head_id_masked,
        phone_cipher,
        phone_masked,
        address_cipher,
        address_masked,
        income_cipher,
        consent_at,
        consent_by,
        registered_by,
        created_at,
        updated_at
    ],
    flags[synthetic]
);

/// A household as read back. Households written before migration 0012 (or by older demo code)
/// have no personal fields, hence the options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HouseholdRecord {
    pub id: String,
    pub street_code: Option<String>,
    pub community_code: String,
    pub category: String,
    pub member_count: i64,
    pub head_name_cipher: Option<String>,
    pub head_name_masked: Option<String>,
    pub head_id_cipher: Option<String>,
    pub head_id_masked: Option<String>,
    pub phone_cipher: Option<String>,
    pub phone_masked: Option<String>,
    pub address_cipher: Option<String>,
    pub address_masked: Option<String>,
    pub income_cipher: Option<String>,
    pub consent_at: Option<String>,
    pub consent_by: Option<String>,
    pub registered_by: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub synthetic: bool,
}

const HOUSEHOLD_COLUMNS: &str = "h.id, h.street_code, h.community_code, h.category, \
    h.member_count, h.head_name_cipher, h.head_name_masked, h.head_id_cipher, h.head_id_masked, \
    h.phone_cipher, h.phone_masked, h.address_cipher, h.address_masked, h.income_cipher, \
    h.consent_at, h.consent_by, h.registered_by, h.created_at, h.updated_at, h.synthetic";

fn household_from_row(r: &AnyRow) -> Result<HouseholdRecord> {
    Ok(HouseholdRecord {
        id: r.try_get("id")?,
        street_code: r.try_get("street_code")?,
        community_code: r.try_get("community_code")?,
        category: r.try_get("category")?,
        member_count: r.try_get("member_count")?,
        head_name_cipher: r.try_get("head_name_cipher")?,
        head_name_masked: r.try_get("head_name_masked")?,
        head_id_cipher: r.try_get("head_id_cipher")?,
        head_id_masked: r.try_get("head_id_masked")?,
        phone_cipher: r.try_get("phone_cipher")?,
        phone_masked: r.try_get("phone_masked")?,
        address_cipher: r.try_get("address_cipher")?,
        address_masked: r.try_get("address_masked")?,
        income_cipher: r.try_get("income_cipher")?,
        consent_at: r.try_get("consent_at")?,
        consent_by: r.try_get("consent_by")?,
        registered_by: r.try_get("registered_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        synthetic: get_flag(r, "synthetic")?,
    })
}

/// One person of a household (the head included, relation `head`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberRow {
    pub id: String,
    pub household_id: String,
    pub participant_id: Option<String>,
    pub relation: String,
    pub name_cipher: String,
    pub name_masked: String,
    pub id_digest: String,
    pub id_cipher: String,
    pub id_masked: String,
    pub phone_cipher: Option<String>,
    pub phone_masked: Option<String>,
    pub birth_year: i64,
    pub category: Option<String>,
    pub created_at: String,
}
bulk_row!(MemberRow, "household_members",
    [id, household_id, participant_id, relation, name_cipher, name_masked, id_digest, id_cipher,
     id_masked, phone_cipher, phone_masked, birth_year, category, created_at], flags []);

const MEMBER_COLUMNS: &str = "m.id, m.household_id, m.participant_id, m.relation, m.name_cipher, \
    m.name_masked, m.id_digest, m.id_cipher, m.id_masked, m.phone_cipher, m.phone_masked, \
    m.birth_year, m.category, m.created_at";

fn member_from_row(r: &AnyRow) -> Result<MemberRow> {
    Ok(MemberRow {
        id: r.try_get("id")?,
        household_id: r.try_get("household_id")?,
        participant_id: r.try_get("participant_id")?,
        relation: r.try_get("relation")?,
        name_cipher: r.try_get("name_cipher")?,
        name_masked: r.try_get("name_masked")?,
        id_digest: r.try_get("id_digest")?,
        id_cipher: r.try_get("id_cipher")?,
        id_masked: r.try_get("id_masked")?,
        phone_cipher: r.try_get("phone_cipher")?,
        phone_masked: r.try_get("phone_masked")?,
        birth_year: r.try_get("birth_year")?,
        category: r.try_get("category")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A need registered for a household.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NeedRow {
    pub id: String,
    pub household_id: String,
    pub member_id: Option<String>,
    pub category: String,
    pub description: String,
    /// `open`, `ordered`, `met` or `closed`.
    pub state: String,
    pub registered_by: String,
    pub registered_at: String,
    pub last_served_at: Option<String>,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
}
bulk_row!(NeedRow, "needs",
    [id, household_id, member_id, category, description, state, registered_by, registered_at,
     last_served_at, closed_at, closed_by, close_reason], flags []);

const NEED_COLUMNS: &str = "n.id, n.household_id, n.member_id, n.category, n.description, \
    n.state, n.registered_by, n.registered_at, n.last_served_at, n.closed_at, n.closed_by, \
    n.close_reason";

fn need_from_row(r: &AnyRow) -> Result<NeedRow> {
    Ok(NeedRow {
        id: r.try_get("id")?,
        household_id: r.try_get("household_id")?,
        member_id: r.try_get("member_id")?,
        category: r.try_get("category")?,
        description: r.try_get("description")?,
        state: r.try_get("state")?,
        registered_by: r.try_get("registered_by")?,
        registered_at: r.try_get("registered_at")?,
        last_served_at: r.try_get("last_served_at")?,
        closed_at: r.try_get("closed_at")?,
        closed_by: r.try_get("closed_by")?,
        close_reason: r.try_get("close_reason")?,
    })
}

/// A need with what a list shows of its household (street, community, masked head name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NeedListed {
    pub need: NeedRow,
    pub street_code: Option<String>,
    pub community_code: String,
    pub head_name_masked: Option<String>,
    pub household_category: String,
}

fn need_listed_from_row(r: &AnyRow) -> Result<NeedListed> {
    Ok(NeedListed {
        need: need_from_row(r)?,
        street_code: r.try_get("street_code")?,
        community_code: r.try_get("community_code")?,
        head_name_masked: r.try_get("head_name_masked")?,
        household_category: r.try_get("household_category")?,
    })
}

/// What the registry needs to know of a staff account: its role and scope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffScopeRow {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// `None`: district-wide; a street code: that street only.
    pub division_code: Option<String>,
    pub org_id: Option<String>,
    pub can_unmask: bool,
}

const SCOPE_COLUMNS: &str = "id, username, display_name, role, division_code, org_id, can_unmask";

fn scope_from_row(r: &AnyRow) -> Result<StaffScopeRow> {
    Ok(StaffScopeRow {
        user_id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        division_code: r.try_get("division_code")?,
        org_id: r.try_get("org_id")?,
        can_unmask: get_flag(r, "can_unmask")?,
    })
}

/// A welfare job (公益岗位 / 爱心岗位).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRow {
    pub id: String,
    pub title: String,
    pub org_id: String,
    pub street_code: String,
    /// `welfare` (公益岗位) or `caring` (爱心岗位).
    pub kind: String,
    pub positions: i64,
    pub filled: i64,
    pub wage_fen_per_month: i64,
    pub description: String,
    /// `open` or `closed`.
    pub state: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub synthetic: bool,
}
bulk_row!(
    JobRow,
    "welfare_jobs",
    [
        id,
        title,
        org_id,
        street_code,
        kind,
        positions,
        filled,
        wage_fen_per_month,
        description,
        state,
        created_by,
        created_at,
        updated_at
    ],
    flags[synthetic]
);

const JOB_COLUMNS: &str = "j.id, j.title, j.org_id, j.street_code, j.kind, j.positions, j.filled, \
    j.wage_fen_per_month, j.description, j.state, j.created_by, j.created_at, j.updated_at, \
    j.synthetic";

fn job_from_row(r: &AnyRow) -> Result<JobRow> {
    Ok(JobRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        org_id: r.try_get("org_id")?,
        street_code: r.try_get("street_code")?,
        kind: r.try_get("kind")?,
        positions: r.try_get("positions")?,
        filled: r.try_get("filled")?,
        wage_fen_per_month: r.try_get("wage_fen_per_month")?,
        description: r.try_get("description")?,
        state: r.try_get("state")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        synthetic: get_flag(r, "synthetic")?,
    })
}

/// A job with its employer's name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobListed {
    pub job: JobRow,
    pub org_name: String,
}

/// A registry member placed in a job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlacementRow {
    pub id: String,
    pub job_id: String,
    pub member_id: String,
    pub household_id: String,
    pub street_code: String,
    /// `active` or `ended`.
    pub state: String,
    pub placed_by: String,
    pub placed_at: String,
    pub ended_by: Option<String>,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
}
bulk_row!(PlacementRow, "job_placements",
    [id, job_id, member_id, household_id, street_code, state, placed_by, placed_at, ended_by,
     ended_at, end_reason], flags []);

const PLACEMENT_COLUMNS: &str = "p.id, p.job_id, p.member_id, p.household_id, p.street_code, \
    p.state, p.placed_by, p.placed_at, p.ended_by, p.ended_at, p.end_reason";

fn placement_from_row(r: &AnyRow) -> Result<PlacementRow> {
    Ok(PlacementRow {
        id: r.try_get("id")?,
        job_id: r.try_get("job_id")?,
        member_id: r.try_get("member_id")?,
        household_id: r.try_get("household_id")?,
        street_code: r.try_get("street_code")?,
        state: r.try_get("state")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        ended_by: r.try_get("ended_by")?,
        ended_at: r.try_get("ended_at")?,
        end_reason: r.try_get("end_reason")?,
    })
}

/// A placement with the member's masked name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlacementListed {
    pub placement: PlacementRow,
    pub member_name_masked: String,
    pub job_title: String,
}

/// The fields of a household that change after registration (as stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdUpdateRow {
    pub id: String,
    pub category: String,
    pub phone_cipher: Option<String>,
    pub phone_masked: Option<String>,
    pub address_cipher: Option<String>,
    pub address_masked: Option<String>,
    pub income_cipher: Option<String>,
    pub updated_at: String,
}

/// Which households a list takes. Every condition is optional; `street_code` is also how the
/// app scopes a street's staff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HouseholdQuery {
    pub street_code: Option<String>,
    pub community_code: Option<String>,
    pub category: Option<String>,
    /// Only this household (an exact-ID search found it).
    pub household_id: Option<String>,
}

impl HouseholdQuery {
    /// The WHERE clause and its values, numbered from `$1`.
    fn clause(&self) -> (String, Vec<String>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (column, value) in [
            ("h.street_code", &self.street_code),
            ("h.community_code", &self.community_code),
            ("h.category", &self.category),
            ("h.id", &self.household_id),
        ] {
            if let Some(v) = value {
                values.push(v.clone());
                conditions.push(format!("{column} = ${}", values.len()));
            }
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        (clause, values)
    }
}

/// Placement counts of one street: members ever placed, members in a job now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EmploymentCounts {
    pub street_code: String,
    pub placed: i64,
    pub employed: i64,
}

/// Working-age members of one street and how many of them were ever placed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkingAgeCounts {
    pub street_code: String,
    pub working_age: i64,
    pub placed: i64,
}

fn bind_all<'q>(mut q: AnyQuery<'q>, values: &'q [String]) -> AnyQuery<'q> {
    for v in values {
        q = q.bind(v);
    }
    q
}

impl Store {
    /// The role and scope of an account.
    pub async fn staff_scope(&self, user_id: &str) -> Result<Option<StaffScopeRow>> {
        let sql = format!("SELECT {SCOPE_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(scope_from_row).transpose()
    }

    /// Staff and administrator accounts with their scopes, by username.
    pub async fn staff_accounts(&self) -> Result<Vec<StaffScopeRow>> {
        let sql = format!(
            "SELECT {SCOPE_COLUMNS} FROM users WHERE role IN ('admin', 'staff') ORDER BY username LIMIT 1000"
        );
        let rows = sqlx::query(&sql).fetch_all(self.reader()).await?;
        rows.iter().map(scope_from_row).collect()
    }

    /// A page of households, newest first, and how many match.
    pub async fn households_page(
        &self,
        query: &HouseholdQuery,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<HouseholdRecord>, i64)> {
        let (clause, values) = query.clause();
        let n = values.len();
        let sql = format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households h{clause} \
             ORDER BY h.created_at DESC, h.id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let rows = bind_all(sqlx::query(&sql), &values)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.reader())
            .await?;
        let count_sql = format!("SELECT COUNT(*) AS n FROM households h{clause}");
        let total: i64 = bind_all(sqlx::query(&count_sql), &values)
            .fetch_one(self.reader())
            .await?
            .try_get("n")?;
        let items = rows.iter().map(household_from_row).collect::<Result<_>>()?;
        Ok((items, total))
    }

    /// Every household of the query whose category is not one of `excluded`, for the edge list
    /// (the caller decrypts incomes). At most `limit`.
    pub async fn households_outside(
        &self,
        street_code: Option<&str>,
        excluded: &[&str],
        limit: i64,
    ) -> Result<Vec<HouseholdRecord>> {
        let mut values: Vec<String> = excluded.iter().map(|c| (*c).to_owned()).collect();
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
        let mut sql = format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households h WHERE h.income_cipher IS NOT NULL"
        );
        if !placeholders.is_empty() {
            sql.push_str(&format!(
                " AND h.category NOT IN ({})",
                placeholders.join(", ")
            ));
        }
        if let Some(street) = street_code {
            values.push(street.to_owned());
            sql.push_str(&format!(" AND h.street_code = ${}", values.len()));
        }
        sql.push_str(&format!(" ORDER BY h.id LIMIT ${}", values.len() + 1));
        let rows = bind_all(sqlx::query(&sql), &values)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(household_from_row).collect()
    }

    pub async fn household(&self, id: &str) -> Result<Option<HouseholdRecord>> {
        let sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households h WHERE h.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(household_from_row).transpose()
    }

    /// The members of a household, the head first.
    pub async fn household_members(&self, household_id: &str) -> Result<Vec<MemberRow>> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM household_members m WHERE m.household_id = $1 \
             ORDER BY CASE WHEN m.relation = 'head' THEN 0 ELSE 1 END, m.id LIMIT 100"
        );
        let rows = sqlx::query(&sql)
            .bind(household_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(member_from_row).collect()
    }

    pub async fn household_member(&self, id: &str) -> Result<Option<MemberRow>> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM household_members m WHERE m.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    /// The member whose ID number has this keyed digest.
    pub async fn member_by_id_digest(&self, digest: &str) -> Result<Option<MemberRow>> {
        let sql =
            format!("SELECT {MEMBER_COLUMNS} FROM household_members m WHERE m.id_digest = $1");
        let row = sqlx::query(&sql)
            .bind(digest)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    pub async fn need(&self, id: &str) -> Result<Option<NeedRow>> {
        let sql = format!("SELECT {NEED_COLUMNS} FROM needs n WHERE n.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(need_from_row).transpose()
    }

    /// Needs with their household's street: of one household, or (when `household_id` is
    /// `None`) of the street or district, in the given states, oldest first.
    pub async fn needs_listed(
        &self,
        household_id: Option<&str>,
        street_code: Option<&str>,
        states: &[&str],
        limit: i64,
    ) -> Result<Vec<NeedListed>> {
        let mut values: Vec<String> = states.iter().map(|s| (*s).to_owned()).collect();
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
        let mut sql = format!(
            "SELECT {NEED_COLUMNS}, h.street_code, h.community_code, h.head_name_masked, \
             h.category AS household_category FROM needs n JOIN households h ON h.id = n.household_id \
             WHERE n.state IN ({})",
            placeholders.join(", ")
        );
        if let Some(h) = household_id {
            values.push(h.to_owned());
            sql.push_str(&format!(" AND n.household_id = ${}", values.len()));
        }
        if let Some(street) = street_code {
            values.push(street.to_owned());
            sql.push_str(&format!(" AND h.street_code = ${}", values.len()));
        }
        sql.push_str(&format!(
            " ORDER BY n.registered_at, n.id LIMIT ${}",
            values.len() + 1
        ));
        let rows = bind_all(sqlx::query(&sql), &values)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(need_listed_from_row).collect()
    }

    /// Needs still open or ordered that nothing reached since `before`: their last service (or,
    /// never served, their registration) is earlier. Longest-waiting first, at most `limit`,
    /// and how many there are in all.
    pub async fn unreached_needs(
        &self,
        street_code: Option<&str>,
        before: &str,
        limit: i64,
    ) -> Result<(Vec<NeedListed>, i64)> {
        let mut values = vec![before.to_owned()];
        let mut clause = String::from(
            " FROM needs n JOIN households h ON h.id = n.household_id \
             WHERE n.state IN ('open', 'ordered') \
             AND COALESCE(n.last_served_at, n.registered_at) < $1",
        );
        if let Some(street) = street_code {
            values.push(street.to_owned());
            clause.push_str(" AND h.street_code = $2");
        }
        let sql = format!(
            "SELECT {NEED_COLUMNS}, h.street_code, h.community_code, h.head_name_masked, \
             h.category AS household_category{clause} \
             ORDER BY COALESCE(n.last_served_at, n.registered_at), n.id LIMIT ${}",
            values.len() + 1
        );
        let rows = bind_all(sqlx::query(&sql), &values)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        let total: i64 = bind_all(
            sqlx::query(&format!("SELECT COUNT(*) AS n{clause}")),
            &values,
        )
        .fetch_one(self.reader())
        .await?
        .try_get("n")?;
        let items = rows
            .iter()
            .map(need_listed_from_row)
            .collect::<Result<_>>()?;
        Ok((items, total))
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobListed>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS}, o.name AS org_name FROM welfare_jobs j \
             JOIN organizations o ON o.id = j.org_id WHERE j.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref()
            .map(|r| {
                Ok(JobListed {
                    job: job_from_row(r)?,
                    org_name: r.try_get("org_name")?,
                })
            })
            .transpose()
    }

    /// Jobs of a street (or all), open first, newest first.
    pub async fn jobs(
        &self,
        street_code: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<JobListed>> {
        let (clause, values) = match street_code {
            Some(s) => (" WHERE j.street_code = $1", vec![s.to_owned()]),
            None => ("", Vec::new()),
        };
        let n = values.len();
        let sql = format!(
            "SELECT {JOB_COLUMNS}, o.name AS org_name FROM welfare_jobs j \
             JOIN organizations o ON o.id = j.org_id{clause} \
             ORDER BY CASE WHEN j.state = 'open' THEN 0 ELSE 1 END, j.created_at DESC, j.id \
             LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let rows = bind_all(sqlx::query(&sql), &values)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(JobListed {
                    job: job_from_row(r)?,
                    org_name: r.try_get("org_name")?,
                })
            })
            .collect()
    }

    pub async fn placement(&self, id: &str) -> Result<Option<PlacementRow>> {
        let sql = format!("SELECT {PLACEMENT_COLUMNS} FROM job_placements p WHERE p.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(placement_from_row).transpose()
    }

    /// Placements of a job, or of a household's members, active first.
    pub async fn placements(
        &self,
        job_id: Option<&str>,
        household_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PlacementListed>> {
        let (column, value) = match (job_id, household_id) {
            (Some(j), _) => ("p.job_id", j),
            (None, Some(h)) => ("p.household_id", h),
            (None, None) => return Ok(Vec::new()),
        };
        let sql = format!(
            "SELECT {PLACEMENT_COLUMNS}, m.name_masked, j.title FROM job_placements p \
             JOIN household_members m ON m.id = p.member_id \
             JOIN welfare_jobs j ON j.id = p.job_id WHERE {column} = $1 \
             ORDER BY CASE WHEN p.state = 'active' THEN 0 ELSE 1 END, p.placed_at DESC, p.id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(value)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PlacementListed {
                    placement: placement_from_row(r)?,
                    member_name_masked: r.try_get("name_masked")?,
                    job_title: r.try_get("title")?,
                })
            })
            .collect()
    }

    /// Per street: members ever placed and members in a job now.
    pub async fn employment_counts(&self) -> Result<Vec<EmploymentCounts>> {
        let rows = sqlx::query(
            "SELECT street_code, COUNT(DISTINCT member_id) AS placed, \
             COUNT(DISTINCT CASE WHEN state = 'active' THEN member_id END) AS employed \
             FROM job_placements GROUP BY street_code ORDER BY street_code",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EmploymentCounts {
                    street_code: r.try_get("street_code")?,
                    placed: r.try_get("placed")?,
                    employed: r.try_get("employed")?,
                })
            })
            .collect()
    }

    /// Per street: registry members born in `born_from..=born_to` and how many were ever placed.
    pub async fn working_age_counts(
        &self,
        born_from: i64,
        born_to: i64,
    ) -> Result<Vec<WorkingAgeCounts>> {
        let rows = sqlx::query(
            "SELECT h.street_code, COUNT(*) AS working_age, \
             CAST(COALESCE(SUM(CASE WHEN p.member_id IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS placed \
             FROM household_members m JOIN households h ON h.id = m.household_id \
             LEFT JOIN (SELECT DISTINCT member_id FROM job_placements) p ON p.member_id = m.id \
             WHERE m.birth_year >= $1 AND m.birth_year <= $2 AND h.street_code IS NOT NULL \
             GROUP BY h.street_code ORDER BY h.street_code",
        )
        .bind(born_from)
        .bind(born_to)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkingAgeCounts {
                    street_code: r.try_get("street_code")?,
                    working_age: r.try_get("working_age")?,
                    placed: r.try_get("placed")?,
                })
            })
            .collect()
    }
}

impl WriteTx {
    /// Rewrites a household's category, phone, address and income (ciphertexts and masked
    /// forms as the caller made them). False when no such household.
    pub async fn update_household(&mut self, update: &HouseholdUpdateRow) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE households SET category = $1, phone_cipher = $2, phone_masked = $3, \
             address_cipher = $4, address_masked = $5, income_cipher = $6, updated_at = $7 \
             WHERE id = $8",
        )
        .bind(&update.category)
        .bind(&update.phone_cipher)
        .bind(&update.phone_masked)
        .bind(&update.address_cipher)
        .bind(&update.address_masked)
        .bind(&update.income_cipher)
        .bind(&update.updated_at)
        .bind(&update.id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets an account's scope. False when no such account.
    pub async fn set_staff_scope(
        &mut self,
        user_id: &str,
        division_code: Option<&str>,
        org_id: Option<&str>,
        can_unmask: bool,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE users SET division_code = $1, org_id = $2, can_unmask = $3 WHERE id = $4",
        )
        .bind(division_code)
        .bind(org_id)
        .bind(i64::from(can_unmask))
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a registry member has this ID digest already (read inside the transaction).
    pub async fn member_digest_taken(&mut self, digest: &str) -> Result<bool> {
        self.flush().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM household_members WHERE id_digest = $1")
            .bind(digest)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Closes a need that is open or met. False (nothing changed) otherwise.
    pub async fn close_need(&mut self, id: &str, by: &str, at: &str, reason: &str) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE needs SET state = 'closed', closed_at = $1, closed_by = $2, close_reason = $3 \
             WHERE id = $4 AND state IN ('open', 'met')",
        )
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes one position of an open job unless all are filled. False (nothing changed) when
    /// the job is full or closed.
    pub async fn take_job_position(&mut self, job_id: &str, at: &str) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE welfare_jobs SET filled = filled + 1, updated_at = $1 \
             WHERE id = $2 AND state = 'open' AND filled < positions",
        )
        .bind(at)
        .bind(job_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a position back (a placement ended).
    pub async fn release_job_position(&mut self, job_id: &str, at: &str) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE welfare_jobs SET filled = filled - 1, updated_at = $1 WHERE id = $2 AND filled > 0",
        )
        .bind(at)
        .bind(job_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Opens or closes a job. False when it was already in that state.
    pub async fn set_job_state(&mut self, job_id: &str, state: &str, at: &str) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE welfare_jobs SET state = $1, updated_at = $2 WHERE id = $3 AND state <> $1",
        )
        .bind(state)
        .bind(at)
        .bind(job_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The member's active placement, if any (read inside the transaction).
    pub async fn active_placement_of(&mut self, member_id: &str) -> Result<Option<PlacementRow>> {
        self.flush().await?;
        let sql = format!(
            "SELECT {PLACEMENT_COLUMNS} FROM job_placements p WHERE p.member_id = $1 AND p.state = 'active'"
        );
        let row = sqlx::query(&sql)
            .bind(member_id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(placement_from_row).transpose()
    }

    /// Ends an active placement. False (nothing changed) unless it was active.
    pub async fn end_placement(
        &mut self,
        id: &str,
        by: &str,
        at: &str,
        reason: &str,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE job_placements SET state = 'ended', ended_by = $1, ended_at = $2, end_reason = $3 \
             WHERE id = $4 AND state = 'active'",
        )
        .bind(by)
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
