//! SQL for the service catalogue and orders (制单—点单—派单—评单): services with their scope,
//! windows and eligibility, volunteers' categories, orders, their event history, dispatch
//! attempts, reviews and the per-provider counters (migration 0013).
//!
//! State changes are compare-and-set: `UPDATE orders … WHERE id = $1 AND state = $expected`,
//! whose row count the caller checks, so of two concurrent transitions only one can win. A
//! provider's weekly capacity is taken only by a conditional UPDATE against the capacity.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{bulk_row, flag, get_flag, AnyQuery, BulkRow};
use crate::{Result, Store, WriteTx};

/// A service with every column (the base of migration 0001 and the catalogue's of 0013).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceFullRow {
    pub id: String,
    pub provider_org_id: String,
    pub category: String,
    pub name: String,
    pub division_code: Option<String>,
    pub capacity_per_week: i64,
    pub created_at: String,
    pub description: String,
    /// `community`, `street` or `district`.
    pub scope: String,
    /// Canonical windows text; empty = any time.
    pub time_windows: String,
    /// Assistance categories, comma-separated; empty = everyone.
    pub eligibility: String,
    /// `published` or `withdrawn`.
    pub state: String,
    pub team_id: Option<String>,
    pub created_by: Option<String>,
    pub updated_at: Option<String>,
}
bulk_row!(ServiceFullRow, "services",
    [id, provider_org_id, category, name, division_code, capacity_per_week, created_at,
     description, scope, time_windows, eligibility, state, team_id, created_by, updated_at], flags []);

const SERVICE_COLUMNS: &str = "id, provider_org_id, category, name, division_code, \
    capacity_per_week, created_at, description, scope, time_windows, eligibility, state, team_id, \
    created_by, updated_at";

fn service_from_row(r: &AnyRow) -> Result<ServiceFullRow> {
    Ok(ServiceFullRow {
        id: r.try_get("id")?,
        provider_org_id: r.try_get("provider_org_id")?,
        category: r.try_get("category")?,
        name: r.try_get("name")?,
        division_code: r.try_get("division_code")?,
        capacity_per_week: r.try_get("capacity_per_week")?,
        created_at: r.try_get("created_at")?,
        description: r.try_get("description")?,
        scope: r.try_get("scope")?,
        time_windows: r.try_get("time_windows")?,
        eligibility: r.try_get("eligibility")?,
        state: r.try_get("state")?,
        team_id: r.try_get("team_id")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolunteerCategoryRow {
    pub participant_id: String,
    pub category: String,
    pub rank: i64,
}
bulk_row!(VolunteerCategoryRow, "volunteer_categories", [participant_id, category, rank], flags []);

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderRow {
    pub id: String,
    pub household_id: String,
    pub member_id: Option<String>,
    pub need_id: Option<String>,
    pub service_id: Option<String>,
    pub category: String,
    pub community_code: String,
    pub street_code: String,
    pub description: String,
    pub wanted_at: Option<String>,
    pub state: String,
    pub provider_kind: Option<String>,
    pub provider_id: Option<String>,
    pub provider_org_id: Option<String>,
    pub dispatch_week: Option<i64>,
    pub accept_deadline: Option<String>,
    pub passes: i64,
    pub requested_by: String,
    pub created_at: String,
    pub first_dispatched_at: Option<String>,
    pub dispatched_at: Option<String>,
    pub accepted_at: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub reviewed_at: Option<String>,
    pub cancelled_at: Option<String>,
    pub service_minutes: Option<i64>,
    /// A volunteer's minutes confirmed (by a review or staff), at most `service_minutes`.
    pub verified_minutes: Option<i64>,
    pub verified_by: Option<String>,
    pub verified_at: Option<String>,
    pub on_behalf: bool,
    /// The volunteer's minutes were verified and credited (once).
    pub credited: bool,
    pub synthetic: bool,
}
bulk_row!(OrderRow, "orders",
    [id, household_id, member_id, need_id, service_id, category, community_code, street_code,
     description, wanted_at, state, provider_kind, provider_id, provider_org_id, dispatch_week,
     accept_deadline, passes, requested_by, created_at, first_dispatched_at, dispatched_at,
     accepted_at, started_at, completed_at, reviewed_at, cancelled_at, service_minutes,
     verified_minutes, verified_by, verified_at],
    flags [on_behalf, credited, synthetic]);

const ORDER_COLUMNS: &str = "id, household_id, member_id, need_id, service_id, category, \
    community_code, street_code, description, wanted_at, state, provider_kind, provider_id, \
    provider_org_id, dispatch_week, accept_deadline, passes, requested_by, created_at, \
    first_dispatched_at, dispatched_at, accepted_at, started_at, completed_at, reviewed_at, \
    cancelled_at, service_minutes, verified_minutes, verified_by, verified_at, on_behalf, \
    credited, synthetic";

fn order_from_row(r: &AnyRow) -> Result<OrderRow> {
    Ok(OrderRow {
        id: r.try_get("id")?,
        household_id: r.try_get("household_id")?,
        member_id: r.try_get("member_id")?,
        need_id: r.try_get("need_id")?,
        service_id: r.try_get("service_id")?,
        category: r.try_get("category")?,
        community_code: r.try_get("community_code")?,
        street_code: r.try_get("street_code")?,
        description: r.try_get("description")?,
        wanted_at: r.try_get("wanted_at")?,
        state: r.try_get("state")?,
        provider_kind: r.try_get("provider_kind")?,
        provider_id: r.try_get("provider_id")?,
        provider_org_id: r.try_get("provider_org_id")?,
        dispatch_week: r.try_get("dispatch_week")?,
        accept_deadline: r.try_get("accept_deadline")?,
        passes: r.try_get("passes")?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
        first_dispatched_at: r.try_get("first_dispatched_at")?,
        dispatched_at: r.try_get("dispatched_at")?,
        accepted_at: r.try_get("accepted_at")?,
        started_at: r.try_get("started_at")?,
        completed_at: r.try_get("completed_at")?,
        reviewed_at: r.try_get("reviewed_at")?,
        cancelled_at: r.try_get("cancelled_at")?,
        service_minutes: r.try_get("service_minutes")?,
        verified_minutes: r.try_get("verified_minutes")?,
        verified_by: r.try_get("verified_by")?,
        verified_at: r.try_get("verified_at")?,
        on_behalf: get_flag(r, "on_behalf")?,
        credited: get_flag(r, "credited")?,
        synthetic: get_flag(r, "synthetic")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderEventRow {
    pub order_id: String,
    pub seq: i64,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub provider_id: Option<String>,
    pub actor: String,
    pub note: String,
    pub at: String,
    pub on_behalf: bool,
}
bulk_row!(
    OrderEventRow,
    "order_events",
    [
        order_id,
        seq,
        action,
        from_state,
        to_state,
        provider_id,
        actor,
        note,
        at
    ],
    flags[on_behalf]
);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DispatchAttemptRow {
    pub order_id: String,
    pub attempt: i64,
    pub provider_id: String,
    pub provider_kind: String,
    pub score: i64,
    /// JSON list of the chosen candidate's components.
    pub explanation: String,
    /// JSON list of the candidates considered (id, kind, score).
    pub candidates: String,
    /// `auto`, `override` or `batch`.
    pub chosen_by: String,
    /// `pending`, `accepted`, `rejected`, `expired` or `cancelled`.
    pub outcome: String,
    pub actor: String,
    pub dispatched_at: String,
    pub deadline: String,
    pub closed_at: Option<String>,
}
bulk_row!(DispatchAttemptRow, "dispatch_attempts",
    [order_id, attempt, provider_id, provider_kind, score, explanation, candidates, chosen_by,
     outcome, actor, dispatched_at, deadline, closed_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewRow {
    pub order_id: String,
    pub provider_id: String,
    pub provider_kind: String,
    pub provider_org_id: Option<String>,
    pub street_code: String,
    pub rating: i64,
    pub comment: String,
    pub reviewed_by: String,
    pub reviewed_at: String,
    pub on_behalf: bool,
}
bulk_row!(
    ReviewRow,
    "order_reviews",
    [
        order_id,
        provider_id,
        provider_kind,
        provider_org_id,
        street_code,
        rating,
        comment,
        reviewed_by,
        reviewed_at
    ],
    flags[on_behalf]
);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderStatsRow {
    pub provider_id: String,
    pub provider_kind: String,
    pub week: i64,
    pub week_used: i64,
    pub live_orders: i64,
    pub rating_sum: i64,
    pub rating_count: i64,
    pub completed: i64,
}
bulk_row!(ProviderStatsRow, "provider_stats",
    [provider_id, provider_kind, week, week_used, live_orders, rating_sum, rating_count, completed], flags []);

fn stats_from_row(r: &AnyRow) -> Result<ProviderStatsRow> {
    Ok(ProviderStatsRow {
        provider_id: r.try_get("provider_id")?,
        provider_kind: r.try_get("provider_kind")?,
        week: r.try_get("week")?,
        week_used: r.try_get("week_used")?,
        live_orders: r.try_get("live_orders")?,
        rating_sum: r.try_get("rating_sum")?,
        rating_count: r.try_get("rating_count")?,
        completed: r.try_get("completed")?,
    })
}

/// A volunteer as dispatch loads it: home community and categories in rank order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchVolunteer {
    pub participant_id: String,
    pub division_code: Option<String>,
    pub categories: Vec<String>,
}

/// Where a staff account works: a street (NULL: district-wide) and a provider organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserScope {
    pub division_code: Option<String>,
    pub org_id: Option<String>,
}

/// The household an order is for, as orders need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdPlace {
    pub id: String,
    pub community_code: String,
    pub street_code: Option<String>,
    pub category: String,
}

/// A need, as orders need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedBrief {
    pub id: String,
    pub household_id: String,
    pub member_id: Option<String>,
    pub category: String,
    pub description: String,
    pub state: String,
    pub registered_at: String,
}

/// Which orders a list shows. Every `Some` narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub states: Vec<String>,
    pub street_code: Option<String>,
    pub provider_id: Option<String>,
    pub provider_org_id: Option<String>,
    pub household_ids: Vec<String>,
    /// A member's own orders: those this participant holds as a volunteer, or (either) of
    /// these households.
    pub party: Option<(String, Vec<String>)>,
}

/// An open need that has waited since before a cut-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingNeed {
    pub id: String,
    pub household_id: String,
    pub street_code: Option<String>,
    pub community_code: String,
    pub category: String,
    pub registered_at: String,
}

/// An organization's reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatingTotals {
    pub rating_sum: i64,
    pub rating_count: i64,
}

fn push_in(sql: &mut String, binds: &mut Vec<String>, column: &str, values: &[String]) {
    sql.push_str(&format!(" AND {column} IN ("));
    for (k, v) in values.iter().enumerate() {
        if k > 0 {
            sql.push_str(", ");
        }
        binds.push(v.clone());
        sql.push_str(&format!("${}", binds.len()));
    }
    sql.push(')');
}

/// A need's street: its household's, or (for a household registered before streets were
/// stored) the parent of its community.
const NEED_STREET: &str = "COALESCE(h.street_code, \
     (SELECT d.parent_code FROM divisions d WHERE d.code = h.community_code))";

/// Which orders and reviews an alert query covers: a street, an organization, both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertScope {
    pub street: Option<String>,
    pub org_id: Option<String>,
}

/// One overdue check of the alerts: orders in `states` whose `column` instant is before
/// `before`, in `scope`.
#[derive(Debug, Clone)]
pub struct OverdueQuery<'a> {
    pub states: &'a [&'a str],
    pub column: OverdueColumn,
    pub before: &'a str,
    /// Leaves out orders first dispatched before this instant (they are another check's), so
    /// an order is counted by one check only.
    pub unless_first_dispatched_before: Option<&'a str>,
    pub scope: &'a AlertScope,
}

impl OverdueQuery<'_> {
    /// `select` with this check's WHERE clause, and its parameters from `$1`.
    fn where_clause(&self, select: &str) -> (String, Vec<String>) {
        let col = self.column.as_str();
        let mut binds = vec![self.before.to_owned()];
        let mut sql = format!("{select} WHERE {col} < $1");
        let states: Vec<String> = self.states.iter().map(|s| (*s).to_owned()).collect();
        push_in(&mut sql, &mut binds, "state", &states);
        if self.column == OverdueColumn::FirstDispatchedAt {
            sql.push_str(" AND accepted_at IS NULL");
        }
        if let Some(t) = self.unless_first_dispatched_before {
            binds.push(t.to_owned());
            sql.push_str(&format!(
                " AND (first_dispatched_at IS NULL OR first_dispatched_at >= ${})",
                binds.len()
            ));
        }
        if let Some(street) = &self.scope.street {
            binds.push(street.clone());
            sql.push_str(&format!(" AND street_code = ${}", binds.len()));
        }
        if let Some(org) = &self.scope.org_id {
            binds.push(org.clone());
            sql.push_str(&format!(" AND provider_org_id = ${}", binds.len()));
        }
        (sql, binds)
    }
}

/// `select` over `order_reviews` with the low-rating WHERE clause: `$1` is the maximum rating
/// (bound by the caller), the returned parameters follow from `$2`.
fn low_reviews_where(select: &str, since: &str, scope: &AlertScope) -> (String, Vec<String>) {
    let mut binds = vec![since.to_owned()];
    let mut sql = format!("{select} WHERE rating <= $1 AND reviewed_at >= $2");
    if let Some(street) = &scope.street {
        binds.push(street.clone());
        sql.push_str(&format!(" AND street_code = ${}", binds.len() + 1));
    }
    if let Some(org) = &scope.org_id {
        binds.push(org.clone());
        sql.push_str(&format!(" AND provider_org_id = ${}", binds.len() + 1));
    }
    (sql, binds)
}

fn street_counts(rows: &[AnyRow]) -> Result<Vec<(String, i64)>> {
    rows.iter()
        .map(|r| Ok((r.try_get("street")?, r.try_get("n")?)))
        .collect()
}

impl Store {
    /// The street and organization of a staff account.
    pub async fn user_scope(&self, user_id: &str) -> Result<UserScope> {
        let row = sqlx::query("SELECT division_code, org_id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(r) => UserScope {
                division_code: r.try_get("division_code")?,
                org_id: r.try_get("org_id")?,
            },
            None => UserScope::default(),
        })
    }

    pub async fn household_place(&self, id: &str) -> Result<Option<HouseholdPlace>> {
        let row = sqlx::query(
            "SELECT id, community_code, street_code, category FROM households WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(HouseholdPlace {
                id: r.try_get("id")?,
                community_code: r.try_get("community_code")?,
                street_code: r.try_get("street_code")?,
                category: r.try_get("category")?,
            })
        })
        .transpose()
    }

    /// The (member id, household id) pairs a signed-in participant is in the registry as.
    pub async fn registry_memberships(
        &self,
        participant_id: &str,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, household_id FROM household_members WHERE participant_id = $1 ORDER BY id",
        )
        .bind(participant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("household_id")?)))
            .collect()
    }

    /// The household of a registry member.
    pub async fn member_household(&self, member_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT household_id FROM household_members WHERE id = $1")
            .bind(member_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok(r.try_get("household_id")?)).transpose()
    }

    pub async fn need_brief(&self, id: &str) -> Result<Option<NeedBrief>> {
        let row = sqlx::query(
            "SELECT id, household_id, member_id, category, description, state, registered_at \
             FROM needs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(NeedBrief {
                id: r.try_get("id")?,
                household_id: r.try_get("household_id")?,
                member_id: r.try_get("member_id")?,
                category: r.try_get("category")?,
                description: r.try_get("description")?,
                state: r.try_get("state")?,
                registered_at: r.try_get("registered_at")?,
            })
        })
        .transpose()
    }

    pub async fn service_full(&self, id: &str) -> Result<Option<ServiceFullRow>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(service_from_row).transpose()
    }

    /// Services in id order, optionally of one category, organization or published only.
    pub async fn services_page(
        &self,
        category: Option<&str>,
        org_id: Option<&str>,
        published_only: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ServiceFullRow>> {
        let mut sql = format!("SELECT {SERVICE_COLUMNS} FROM services WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(c) = category {
            binds.push(c.to_owned());
            sql.push_str(&format!(" AND category = ${}", binds.len()));
        }
        if let Some(o) = org_id {
            binds.push(o.to_owned());
            sql.push_str(&format!(" AND provider_org_id = ${}", binds.len()));
        }
        if published_only {
            sql.push_str(" AND state = 'published'");
        }
        sql.push_str(&format!(
            " ORDER BY id LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        ));
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.bind(limit).bind(offset).fetch_all(self.reader()).await?;
        rows.iter().map(service_from_row).collect()
    }

    /// Every published service, for the dispatch index.
    pub async fn published_services(&self) -> Result<Vec<ServiceFullRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE state = 'published' ORDER BY id"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(service_from_row).collect()
    }

    /// Every volunteer with at least one category, with their home division, for the dispatch
    /// index (470,000 at district scale: one streamed query, grouped here).
    pub async fn dispatch_volunteers(&self) -> Result<Vec<DispatchVolunteer>> {
        const PAGE_ROWS: i64 = 50_000;
        let mut out: Vec<DispatchVolunteer> = Vec::new();
        let mut after = String::new();
        loop {
            let rows = sqlx::query(
                "SELECT vc.participant_id, p.division_code, vc.category FROM volunteer_categories vc \
                 JOIN participants p ON p.id = vc.participant_id \
                 WHERE vc.participant_id > $1 ORDER BY vc.participant_id, vc.rank LIMIT $2",
            )
            .bind(&after)
            .bind(PAGE_ROWS)
            .fetch_all(self.reader())
            .await?;
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == PAGE_ROWS;
            for r in &rows {
                let id: String = r.try_get("participant_id")?;
                let category: String = r.try_get("category")?;
                match out.last_mut() {
                    Some(last) if last.participant_id == id => last.categories.push(category),
                    _ => out.push(DispatchVolunteer {
                        participant_id: id,
                        division_code: r.try_get("division_code")?,
                        categories: vec![category],
                    }),
                }
            }
            if !full {
                break;
            }
            // The last volunteer of a full page may continue on the next: read them again whole.
            let last = out.pop().expect("a full page has rows");
            match out.last() {
                Some(previous) if previous.participant_id > after => {
                    after = previous.participant_id.clone();
                }
                _ => {
                    out.push(last);
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One volunteer's categories in rank order, and their home division.
    pub async fn volunteer_categories(&self, participant_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT category FROM volunteer_categories WHERE participant_id = $1 ORDER BY rank",
        )
        .bind(participant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("category")?)).collect()
    }

    pub async fn provider_stats_all(&self) -> Result<Vec<ProviderStatsRow>> {
        let rows = sqlx::query(
            "SELECT provider_id, provider_kind, week, week_used, live_orders, rating_sum, \
             rating_count, completed FROM provider_stats",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(stats_from_row).collect()
    }

    pub async fn provider_stats(&self, provider_id: &str) -> Result<Option<ProviderStatsRow>> {
        let row = sqlx::query(
            "SELECT provider_id, provider_kind, week, week_used, live_orders, rating_sum, \
             rating_count, completed FROM provider_stats WHERE provider_id = $1",
        )
        .bind(provider_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(stats_from_row).transpose()
    }

    pub async fn order(&self, id: &str) -> Result<Option<OrderRow>> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Orders matching the filter, newest first.
    pub async fn orders_page(
        &self,
        f: &OrderFilter,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<OrderRow>> {
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if !f.states.is_empty() {
            push_in(&mut sql, &mut binds, "state", &f.states);
        }
        if !f.household_ids.is_empty() {
            push_in(&mut sql, &mut binds, "household_id", &f.household_ids);
        }
        if let Some((provider, households)) = &f.party {
            binds.push(provider.clone());
            sql.push_str(&format!(" AND (provider_id = ${}", binds.len()));
            if !households.is_empty() {
                let mut within = String::new();
                push_in(&mut within, &mut binds, "household_id", households);
                // push_in writes " AND household_id IN (…)": the same list, OR-ed.
                sql.push_str(&within.replacen(" AND ", " OR ", 1));
            }
            sql.push(')');
        }
        for (column, value) in [
            ("street_code", &f.street_code),
            ("provider_id", &f.provider_id),
            ("provider_org_id", &f.provider_org_id),
        ] {
            if let Some(v) = value {
                binds.push(v.clone());
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        ));
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.bind(limit).bind(offset).fetch_all(self.reader()).await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Open orders (`created`), oldest first, at most `limit`; of `street` only if given.
    pub async fn open_orders(&self, limit: i64, street: Option<&str>) -> Result<Vec<OrderRow>> {
        let rows = match street {
            None => {
                sqlx::query(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE state = 'created' \
                     ORDER BY created_at, id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(self.reader())
                .await?
            }
            Some(street) => {
                sqlx::query(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE state = 'created' \
                     AND street_code = $1 ORDER BY created_at, id LIMIT $2"
                ))
                .bind(street)
                .bind(limit)
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(order_from_row).collect()
    }

    /// Dispatched orders whose accept deadline is before `now`, oldest deadline first.
    pub async fn orders_past_deadline(&self, now: &str, limit: i64) -> Result<Vec<OrderRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE state = 'dispatched' AND accept_deadline < $1 \
             ORDER BY accept_deadline, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Orders an overdue check finds (alerts), oldest first, at most `limit`; the street and
    /// organization filters are in the query, so a scoped list is not cut from a district one.
    pub async fn orders_overdue(&self, q: &OverdueQuery<'_>, limit: i64) -> Result<Vec<OrderRow>> {
        let (mut sql, binds) = q.where_clause(&format!("SELECT {ORDER_COLUMNS} FROM orders"));
        let col = q.column.as_str();
        sql.push_str(&format!(" ORDER BY {col}, id LIMIT ${}", binds.len() + 1));
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(limit).fetch_all(self.reader()).await?;
        rows.iter().map(order_from_row).collect()
    }

    /// How many orders an overdue check finds, per street (no cap).
    pub async fn orders_overdue_by_street(
        &self,
        q: &OverdueQuery<'_>,
    ) -> Result<Vec<(String, i64)>> {
        let (mut sql, binds) =
            q.where_clause("SELECT street_code AS street, COUNT(*) AS n FROM orders");
        sql.push_str(" GROUP BY street_code ORDER BY street_code");
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.reader()).await?;
        street_counts(&rows)
    }

    /// Reviews rated at most `max_rating` since `since` in the scope, newest first.
    pub async fn low_reviews(
        &self,
        max_rating: i64,
        since: &str,
        scope: &AlertScope,
        limit: i64,
    ) -> Result<Vec<ReviewRow>> {
        let (mut sql, binds) = low_reviews_where(
            "SELECT order_id, provider_id, provider_kind, provider_org_id, street_code, rating, \
             comment, reviewed_by, reviewed_at, on_behalf FROM order_reviews",
            since,
            scope,
        );
        sql.push_str(&format!(
            " ORDER BY reviewed_at DESC, order_id LIMIT ${}",
            binds.len() + 2
        ));
        let mut query = sqlx::query(&sql).bind(max_rating);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(limit).fetch_all(self.reader()).await?;
        rows.iter().map(review_from_row).collect()
    }

    /// How many low reviews [`Store::low_reviews`] would find, per street (no cap).
    pub async fn low_reviews_by_street(
        &self,
        max_rating: i64,
        since: &str,
        scope: &AlertScope,
    ) -> Result<Vec<(String, i64)>> {
        let (mut sql, binds) = low_reviews_where(
            "SELECT street_code AS street, COUNT(*) AS n FROM order_reviews",
            since,
            scope,
        );
        sql.push_str(" GROUP BY street_code ORDER BY street_code");
        let mut query = sqlx::query(&sql).bind(max_rating);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.reader()).await?;
        street_counts(&rows)
    }

    pub async fn review(&self, order_id: &str) -> Result<Option<ReviewRow>> {
        let row = sqlx::query(
            "SELECT order_id, provider_id, provider_kind, provider_org_id, street_code, rating, \
             comment, reviewed_by, reviewed_at, on_behalf FROM order_reviews WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(review_from_row).transpose()
    }

    /// Open needs registered before `before` (of `street` if given), oldest first, with their
    /// household's place.
    pub async fn needs_waiting(
        &self,
        before: &str,
        street: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WaitingNeed>> {
        let mut sql = format!(
            "SELECT n.id, n.household_id, {NEED_STREET} AS street_code, h.community_code, \
             n.category, n.registered_at \
             FROM needs n JOIN households h ON h.id = n.household_id \
             WHERE n.state = 'open' AND n.registered_at < $1"
        );
        if street.is_some() {
            sql.push_str(&format!(" AND {NEED_STREET} = $2"));
        }
        sql.push_str(&format!(
            " ORDER BY n.registered_at, n.id LIMIT ${}",
            if street.is_some() { 3 } else { 2 }
        ));
        let mut query = sqlx::query(&sql).bind(before);
        if let Some(s) = street {
            query = query.bind(s);
        }
        let rows = query.bind(limit).fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| {
                Ok(WaitingNeed {
                    id: r.try_get("id")?,
                    household_id: r.try_get("household_id")?,
                    street_code: r.try_get("street_code")?,
                    community_code: r.try_get("community_code")?,
                    category: r.try_get("category")?,
                    registered_at: r.try_get("registered_at")?,
                })
            })
            .collect()
    }

    /// How many open needs registered before `before` there are, per street (no cap).
    pub async fn needs_waiting_by_street(
        &self,
        before: &str,
        street: Option<&str>,
    ) -> Result<Vec<(String, i64)>> {
        // Grouped in an outer query: PostgreSQL does not group by an expression whose
        // subquery reads an ungrouped column.
        let mut sql = format!(
            "SELECT COALESCE({NEED_STREET}, '') AS street \
             FROM needs n JOIN households h ON h.id = n.household_id \
             WHERE n.state = 'open' AND n.registered_at < $1"
        );
        if street.is_some() {
            sql.push_str(&format!(" AND {NEED_STREET} = $2"));
        }
        let sql = format!(
            "SELECT street, COUNT(*) AS n FROM ({sql}) waiting GROUP BY street ORDER BY street"
        );
        let mut query = sqlx::query(&sql).bind(before);
        if let Some(s) = street {
            query = query.bind(s);
        }
        let rows = query.fetch_all(self.reader()).await?;
        street_counts(&rows)
    }

    /// The sum and count of an organization's reviews (all its services).
    pub async fn org_rating(&self, org_id: &str) -> Result<RatingTotals> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(rating), 0) AS BIGINT) AS s, COUNT(*) AS n \
             FROM order_reviews WHERE provider_org_id = $1",
        )
        .bind(org_id)
        .fetch_one(self.reader())
        .await?;
        Ok(RatingTotals {
            rating_sum: row.try_get("s")?,
            rating_count: row.try_get("n")?,
        })
    }

    pub async fn order_events(&self, order_id: &str) -> Result<Vec<OrderEventRow>> {
        let rows = sqlx::query(
            "SELECT order_id, seq, action, from_state, to_state, provider_id, actor, note, at, on_behalf \
             FROM order_events WHERE order_id = $1 ORDER BY seq",
        )
        .bind(order_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OrderEventRow {
                    order_id: r.try_get("order_id")?,
                    seq: r.try_get("seq")?,
                    action: r.try_get("action")?,
                    from_state: r.try_get("from_state")?,
                    to_state: r.try_get("to_state")?,
                    provider_id: r.try_get("provider_id")?,
                    actor: r.try_get("actor")?,
                    note: r.try_get("note")?,
                    at: r.try_get("at")?,
                    on_behalf: get_flag(r, "on_behalf")?,
                })
            })
            .collect()
    }

    pub async fn dispatch_attempts(&self, order_id: &str) -> Result<Vec<DispatchAttemptRow>> {
        let rows = sqlx::query(
            "SELECT order_id, attempt, provider_id, provider_kind, score, explanation, candidates, \
             chosen_by, outcome, actor, dispatched_at, deadline, closed_at \
             FROM dispatch_attempts WHERE order_id = $1 ORDER BY attempt",
        )
        .bind(order_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DispatchAttemptRow {
                    order_id: r.try_get("order_id")?,
                    attempt: r.try_get("attempt")?,
                    provider_id: r.try_get("provider_id")?,
                    provider_kind: r.try_get("provider_kind")?,
                    score: r.try_get("score")?,
                    explanation: r.try_get("explanation")?,
                    candidates: r.try_get("candidates")?,
                    chosen_by: r.try_get("chosen_by")?,
                    outcome: r.try_get("outcome")?,
                    actor: r.try_get("actor")?,
                    dispatched_at: r.try_get("dispatched_at")?,
                    deadline: r.try_get("deadline")?,
                    closed_at: r.try_get("closed_at")?,
                })
            })
            .collect()
    }

    /// An organization's name.
    pub async fn org_name(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT name FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok(r.try_get("name")?)).transpose()
    }

    /// Volunteers after `after` (in id order) with skills written but no service categories.
    pub async fn volunteers_with_skills_only(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT v.participant_id, v.skills FROM volunteers v WHERE v.skills <> '' AND v.participant_id > $2 \
             AND NOT EXISTS (SELECT 1 FROM volunteer_categories c WHERE c.participant_id = v.participant_id) \
             ORDER BY v.participant_id LIMIT $1",
        )
        .bind(limit)
        .bind(after)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("participant_id")?, r.try_get("skills")?)))
            .collect()
    }

    /// The display names of participants (for masking by the caller), by id.
    pub async fn display_names(&self, ids: &[String]) -> Result<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from("SELECT id, display_name FROM participants WHERE 1 = 1");
        let mut binds = Vec::new();
        push_in(&mut sql, &mut binds, "id", ids);
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("display_name")?)))
            .collect()
    }

    /// A participant's home division.
    pub async fn participant_division(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT division_code FROM participants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row
            .map(|r| r.try_get("division_code"))
            .transpose()?
            .flatten())
    }

    /// For every open order: the providers already passed over, and its household's category.
    pub async fn open_order_facts(&self) -> Result<(Vec<(String, String)>, Vec<(String, String)>)> {
        let passed = sqlx::query(
            "SELECT a.order_id, a.provider_id FROM dispatch_attempts a JOIN orders o ON o.id = a.order_id \
             WHERE o.state = 'created' AND a.outcome IN ('rejected', 'expired')",
        )
        .fetch_all(self.reader())
        .await?;
        let categories = sqlx::query(
            "SELECT o.id, h.category FROM orders o JOIN households h ON h.id = o.household_id \
             WHERE o.state = 'created'",
        )
        .fetch_all(self.reader())
        .await?;
        let pairs = |rows: &[AnyRow], a: &str, b: &str| -> Result<Vec<(String, String)>> {
            rows.iter()
                .map(|r| Ok((r.try_get(a)?, r.try_get(b)?)))
                .collect()
        };
        Ok((
            pairs(&passed, "order_id", "provider_id")?,
            pairs(&categories, "id", "category")?,
        ))
    }

    /// Orders by state (the dashboard and the board's counts).
    pub async fn order_state_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state ORDER BY state")
                .fetch_all(self.reader())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}

fn review_from_row(r: &AnyRow) -> Result<ReviewRow> {
    Ok(ReviewRow {
        order_id: r.try_get("order_id")?,
        provider_id: r.try_get("provider_id")?,
        provider_kind: r.try_get("provider_kind")?,
        provider_org_id: r.try_get("provider_org_id")?,
        street_code: r.try_get("street_code")?,
        rating: r.try_get("rating")?,
        comment: r.try_get("comment")?,
        reviewed_by: r.try_get("reviewed_by")?,
        reviewed_at: r.try_get("reviewed_at")?,
        on_behalf: get_flag(r, "on_behalf")?,
    })
}

/// The instant an overdue check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueColumn {
    CreatedAt,
    FirstDispatchedAt,
    AcceptedAt,
}

impl OverdueColumn {
    fn as_str(self) -> &'static str {
        match self {
            OverdueColumn::CreatedAt => "created_at",
            OverdueColumn::FirstDispatchedAt => "first_dispatched_at",
            OverdueColumn::AcceptedAt => "accepted_at",
        }
    }
}

/// The instant column a transition stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    AcceptedAt,
    StartedAt,
    ReviewedAt,
    CancelledAt,
}

impl Stamp {
    fn as_str(self) -> &'static str {
        match self {
            Stamp::AcceptedAt => "accepted_at",
            Stamp::StartedAt => "started_at",
            Stamp::ReviewedAt => "reviewed_at",
            Stamp::CancelledAt => "cancelled_at",
        }
    }
}

impl WriteTx {
    /// A batch dispatch's order moves in a few statements instead of one per order: each of
    /// `moves` is (order id, provider kind, provider id, provider's organization), moved only
    /// while the order is still `created`. Returns the ids that moved.
    pub async fn orders_dispatch_many(
        &mut self,
        moves: &[(String, String, String, Option<String>)],
        week: i64,
        deadline: &str,
        at: &str,
    ) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut moved = Vec::with_capacity(moves.len());
        for chunk in moves.chunks(crate::staging::rows_per_statement(conn, 7)) {
            // VALUES columns are named column1… on both SQLite and PostgreSQL.
            let sql = format!(
                "UPDATE orders SET state = 'dispatched', provider_kind = v.column2, \
                 provider_id = v.column3, provider_org_id = v.column4, dispatch_week = v.column5, \
                 accept_deadline = v.column6, dispatched_at = v.column7, \
                 first_dispatched_at = COALESCE(first_dispatched_at, v.column7) \
                 FROM (VALUES {}) AS v WHERE orders.id = v.column1 AND orders.state = 'created' \
                 RETURNING id",
                crate::bulk_values(conn, chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for (id, kind, provider, org) in chunk {
                q = q
                    .bind(id)
                    .bind(kind)
                    .bind(provider)
                    .bind(org.as_deref())
                    .bind(week)
                    .bind(deadline)
                    .bind(at);
            }
            for row in q.fetch_all(&mut *conn).await? {
                moved.push(row.try_get::<String, _>(0)?);
            }
        }
        Ok(moved)
    }

    /// [`WriteTx::ensure_provider_stats`] and [`WriteTx::take_provider_capacity`] for many
    /// providers, each (provider id, kind, weekly capacity, orders taken), in a few statements.
    /// False when any provider lacks the capacity; the caller must then roll back.
    pub async fn take_capacity_many(
        &mut self,
        takes: &[(String, String, i64, i64)],
        week: i64,
    ) -> Result<bool> {
        let conn = self.conn();
        for chunk in takes.chunks(crate::staging::rows_per_statement(conn, 2)) {
            let sql = format!(
                "INSERT INTO provider_stats (provider_id, provider_kind) VALUES {} \
                 ON CONFLICT (provider_id) DO NOTHING",
                crate::bulk_values(conn, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (id, kind, _, _) in chunk {
                q = q.bind(id).bind(kind);
            }
            q.execute(&mut *conn).await?;
        }
        let mut taken = 0;
        for chunk in takes.chunks(crate::staging::rows_per_statement(conn, 4)) {
            let sql = format!(
                "UPDATE provider_stats SET \
                 week_used = CASE WHEN week = v.column2 THEN week_used + v.column4 ELSE v.column4 END, \
                 week = v.column2, live_orders = live_orders + v.column4 \
                 FROM (VALUES {}) AS v WHERE provider_id = v.column1 \
                 AND ((week = v.column2 AND week_used + v.column4 <= v.column3) \
                 OR (week <> v.column2 AND v.column4 <= v.column3)) \
                 RETURNING provider_id",
                crate::bulk_values(conn, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (id, _, capacity, n) in chunk {
                q = q.bind(id).bind(week).bind(*capacity).bind(*n);
            }
            taken += q.fetch_all(&mut *conn).await?.len();
        }
        Ok(taken == takes.len())
    }

    /// The order, read inside the transaction.
    pub async fn order(&mut self, id: &str) -> Result<Option<OrderRow>> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Moves the order from `from` to `to`, stamping `stamp` with `at`. False when the order
    /// was not in `from` (someone else moved it first): nothing changed.
    pub async fn order_transition(
        &mut self,
        id: &str,
        from: &str,
        to: &str,
        stamp: Stamp,
        at: &str,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE orders SET state = $1, {} = $2 WHERE id = $3 AND state = $4",
            stamp.as_str()
        );
        let done = sqlx::query(&sql)
            .bind(to)
            .bind(at)
            .bind(id)
            .bind(from)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Dispatches a `created` order to a provider. False when it was no longer `created`.
    #[expect(clippy::too_many_arguments, reason = "one UPDATE's columns")]
    pub async fn order_dispatch(
        &mut self,
        id: &str,
        provider_kind: &str,
        provider_id: &str,
        provider_org_id: Option<&str>,
        week: i64,
        deadline: &str,
        at: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET state = 'dispatched', provider_kind = $1, provider_id = $2, \
             provider_org_id = $3, dispatch_week = $4, accept_deadline = $5, dispatched_at = $6, \
             first_dispatched_at = COALESCE(first_dispatched_at, $6) \
             WHERE id = $7 AND state = 'created'",
        )
        .bind(provider_kind)
        .bind(provider_id)
        .bind(provider_org_id)
        .bind(week)
        .bind(deadline)
        .bind(at)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the order back from its provider (a rejection or an expiry): `created` again, one
    /// more provider passed over. False when it was not in `from`.
    pub async fn order_take_back(&mut self, id: &str, from: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET state = 'created', provider_kind = NULL, provider_id = NULL, \
             provider_org_id = NULL, dispatch_week = NULL, accept_deadline = NULL, \
             accepted_at = NULL, passes = passes + 1 WHERE id = $1 AND state = $2",
        )
        .bind(id)
        .bind(from)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Completes an `in_service` order with its minutes of service.
    pub async fn order_complete(&mut self, id: &str, minutes: i64, at: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET state = 'completed', completed_at = $1, service_minutes = $2 \
             WHERE id = $3 AND state = 'in_service'",
        )
        .bind(at)
        .bind(minutes)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the order's volunteer minutes verified (`minutes` confirmed by `by` at `at`) and
    /// credited. False (nothing changed) when they already were: the compare-and-set on
    /// `credited` is what makes a review and a staff verification credit once between them.
    pub async fn order_mark_verified(
        &mut self,
        id: &str,
        minutes: i64,
        by: &str,
        at: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET credited = 1, verified_minutes = $1, verified_by = $2, \
             verified_at = $3 WHERE id = $4 AND credited = 0",
        )
        .bind(minutes)
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The next event number of an order (after its state changed, so the row is ours).
    pub async fn next_order_event_seq(&mut self, order_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS s FROM order_events WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get::<i64, _>("s")? + 1)
    }

    pub async fn next_dispatch_attempt(&mut self, order_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(attempt), 0) AS BIGINT) AS s FROM dispatch_attempts WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get::<i64, _>("s")? + 1)
    }

    /// For each order (in the order given): one more than its largest event number.
    pub async fn next_event_seqs(&mut self, order_ids: &[String]) -> Result<Vec<i64>> {
        self.next_numbers("order_events", "seq", order_ids).await
    }

    /// For each order (in the order given): one more than its largest dispatch attempt.
    pub async fn next_attempt_numbers(&mut self, order_ids: &[String]) -> Result<Vec<i64>> {
        self.next_numbers("dispatch_attempts", "attempt", order_ids)
            .await
    }

    async fn next_numbers(
        &mut self,
        table: &str,
        column: &str,
        order_ids: &[String],
    ) -> Result<Vec<i64>> {
        let mut max: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for chunk in order_ids.chunks(500) {
            let mut sql = format!(
                "SELECT order_id, CAST(MAX({column}) AS BIGINT) AS m FROM {table} WHERE 1 = 1"
            );
            let mut binds = Vec::new();
            push_in(&mut sql, &mut binds, "order_id", chunk);
            sql.push_str(" GROUP BY order_id");
            let mut q = sqlx::query(&sql);
            for b in &binds {
                q = q.bind(b);
            }
            for r in q.fetch_all(self.conn()).await? {
                max.insert(r.try_get("order_id")?, r.try_get("m")?);
            }
        }
        Ok(order_ids
            .iter()
            .map(|id| max.get(id).copied().unwrap_or(0) + 1)
            .collect())
    }

    /// Closes the order's open dispatch attempt (pending or accepted) with `outcome`.
    pub async fn close_dispatch_attempt(
        &mut self,
        order_id: &str,
        outcome: &str,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE dispatch_attempts SET outcome = $1, closed_at = $2 \
             WHERE order_id = $3 AND outcome IN ('pending', 'accepted') AND closed_at IS NULL",
        )
        .bind(outcome)
        .bind(at)
        .bind(order_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Marks the pending attempt accepted (it stays open until the order ends).
    pub async fn accept_dispatch_attempt(&mut self, order_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE dispatch_attempts SET outcome = 'accepted' WHERE order_id = $1 AND outcome = 'pending'",
        )
        .bind(order_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Providers who already rejected this order or let it expire.
    pub async fn passed_over(&mut self, order_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT provider_id FROM dispatch_attempts WHERE order_id = $1 \
             AND outcome IN ('rejected', 'expired') ORDER BY attempt",
        )
        .bind(order_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("provider_id")?)).collect()
    }

    /// Makes sure the provider has a counters row.
    pub async fn ensure_provider_stats(&mut self, provider_id: &str, kind: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO provider_stats (provider_id, provider_kind) VALUES ($1, $2) \
             ON CONFLICT (provider_id) DO NOTHING",
        )
        .bind(provider_id)
        .bind(kind)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Takes `n` of the provider's capacity in `week` and adds `n` orders in hand, only if that
    /// stays within `capacity`. False (nothing changed) when it would not.
    pub async fn take_provider_capacity(
        &mut self,
        provider_id: &str,
        week: i64,
        capacity: i64,
        n: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE provider_stats SET \
             week_used = CASE WHEN week = $2 THEN week_used + $4 ELSE $4 END, \
             week = $2, live_orders = live_orders + $4 \
             WHERE provider_id = $1 AND ((week = $2 AND week_used + $4 <= $3) OR (week <> $2 AND $4 <= $3))",
        )
        .bind(provider_id)
        .bind(week)
        .bind(capacity)
        .bind(n)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The provider no longer holds an order; with `give_back_week`, the weekly slot it took is
    /// returned if that week is still the counted one.
    pub async fn release_provider(
        &mut self,
        provider_id: &str,
        give_back_week: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE provider_stats SET \
             live_orders = CASE WHEN live_orders > 0 THEN live_orders - 1 ELSE 0 END, \
             week_used = CASE WHEN week = $2 AND week_used > 0 THEN week_used - 1 ELSE week_used END \
             WHERE provider_id = $1",
        )
        .bind(provider_id)
        .bind(give_back_week.unwrap_or(i64::MIN))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A completed order: one less in hand, one more completed.
    pub async fn provider_completed(&mut self, provider_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE provider_stats SET completed = completed + 1, \
             live_orders = CASE WHEN live_orders > 0 THEN live_orders - 1 ELSE 0 END \
             WHERE provider_id = $1",
        )
        .bind(provider_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn add_provider_rating(&mut self, provider_id: &str, rating: i64) -> Result<()> {
        sqlx::query(
            "UPDATE provider_stats SET rating_sum = rating_sum + $2, rating_count = rating_count + 1 \
             WHERE provider_id = $1",
        )
        .bind(provider_id)
        .bind(rating)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves a need from one of `from` to `to`; `served_at` sets last_served_at.
    pub async fn need_set_state(
        &mut self,
        id: &str,
        from: &[&str],
        to: &str,
        served_at: Option<&str>,
    ) -> Result<bool> {
        let mut binds: Vec<String> = vec![to.to_owned(), id.to_owned()];
        let mut sql = String::from("UPDATE needs SET state = $1");
        if let Some(at) = served_at {
            binds.push(at.to_owned());
            sql.push_str(&format!(", last_served_at = ${}", binds.len()));
        }
        sql.push_str(" WHERE id = $2");
        let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
        push_in(&mut sql, &mut binds, "state", &from);
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        Ok(q.execute(self.conn()).await?.rows_affected() == 1)
    }

    /// Orders of the need still alive (not cancelled), other than `except`.
    pub async fn live_orders_of_need(&mut self, need_id: &str, except: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM orders WHERE need_id = $1 AND id <> $2 \
             AND state IN ('created', 'dispatched', 'accepted', 'in_service')",
        )
        .bind(need_id)
        .bind(except)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Replaces a volunteer's categories.
    pub async fn set_volunteer_categories(
        &mut self,
        participant_id: &str,
        categories: &[String],
    ) -> Result<()> {
        sqlx::query("DELETE FROM volunteer_categories WHERE participant_id = $1")
            .bind(participant_id)
            .execute(self.conn())
            .await?;
        let rows: Vec<VolunteerCategoryRow> = categories
            .iter()
            .enumerate()
            .map(|(k, c)| VolunteerCategoryRow {
                participant_id: participant_id.to_owned(),
                category: c.clone(),
                rank: i64::try_from(k).unwrap_or(i64::MAX - 1) + 1,
            })
            .collect();
        if !rows.is_empty() {
            self.insert_all(&rows).await?;
        }
        Ok(())
    }

    /// Updates a service's catalogue fields.
    pub async fn update_service(&mut self, row: &ServiceFullRow) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE services SET category = $1, name = $2, division_code = $3, capacity_per_week = $4, \
             description = $5, scope = $6, time_windows = $7, eligibility = $8, state = $9, \
             team_id = $10, updated_at = $11 WHERE id = $12",
        )
        .bind(&row.category)
        .bind(&row.name)
        .bind(&row.division_code)
        .bind(row.capacity_per_week)
        .bind(&row.description)
        .bind(&row.scope)
        .bind(&row.time_windows)
        .bind(&row.eligibility)
        .bind(&row.state)
        .bind(&row.team_id)
        .bind(&row.updated_at)
        .bind(&row.id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives every volunteer without categories some, derived from the number in their
    /// participant id (`ptc_00000042` → 42): the main one `n mod k`, and for every third
    /// volunteer a second one. One statement per rank, so the district's 470,000 volunteers
    /// take seconds, not a row-by-row load. `categories` are the pack's codes in order.
    pub async fn derive_volunteer_categories(&mut self, categories: &[String]) -> Result<u64> {
        if categories.is_empty() {
            return Ok(0);
        }
        let k = categories.len();
        let case = |offset: usize| {
            let mut s =
                format!("CASE ((CAST(SUBSTR(v.participant_id, 5) AS BIGINT) + {offset}) % {k})");
            for (i, c) in categories.iter().enumerate() {
                s.push_str(&format!(" WHEN {i} THEN '{}'", c.replace('\'', "''")));
            }
            s.push_str(" END");
            s
        };
        let first = sqlx::query(&format!(
            "INSERT INTO volunteer_categories (participant_id, category, rank) \
             SELECT v.participant_id, {}, 1 FROM volunteers v \
             JOIN participants p ON p.id = v.participant_id WHERE p.synthetic = 1 \
             AND NOT EXISTS (SELECT 1 FROM volunteer_categories x WHERE x.participant_id = v.participant_id)",
            case(0)
        ))
        .execute(self.conn())
        .await?
        .rows_affected();
        if k > 1 {
            sqlx::query(&format!(
                "INSERT INTO volunteer_categories (participant_id, category, rank) \
                 SELECT v.participant_id, {}, 2 FROM volunteers v \
                 JOIN participants p ON p.id = v.participant_id WHERE p.synthetic = 1 \
                 AND CAST(SUBSTR(v.participant_id, 5) AS BIGINT) % 3 = 0 \
                 AND NOT EXISTS (SELECT 1 FROM volunteer_categories x WHERE x.participant_id = v.participant_id AND x.rank = 2)",
                case(1)
            ))
            .execute(self.conn())
            .await?;
        }
        Ok(first)
    }
}
