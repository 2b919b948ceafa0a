//! SQL for codes (一码通) and volunteering (志愿服务): used-up code nonces, teams, activities,
//! attendances (check-in and check-out), verified service records, certificates.
//!
//! Caps are conditional UPDATEs whose row counts the caller checks: an activity admits a
//! volunteer only `WHERE checked_in + n <= capacity`, an attendance is checked out only from
//! `checked_in`, verified only from `checked_out`.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{bulk_row, AnyQuery, BulkRow};
use crate::{Result, Store, WriteTx};

/// A volunteer team of an organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TeamRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: String,
}
bulk_row!(TeamRow, "volunteer_teams", [id, org_id, name, created_by, created_at], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TeamMemberRow {
    pub team_id: String,
    pub participant_id: String,
    pub joined_at: String,
}
bulk_row!(TeamMemberRow, "volunteer_team_members", [team_id, participant_id, joined_at], flags []);

/// A volunteer activity. Instants are stored text (UTC, microseconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivityRow {
    pub id: String,
    pub title: String,
    pub category: String,
    pub content: String,
    pub recipients: String,
    pub organizer_org_id: String,
    pub team_id: Option<String>,
    pub division_code: String,
    pub address: String,
    pub starts_at: String,
    pub ends_at: String,
    pub capacity: i64,
    pub checked_in: i64,
    pub created_by: String,
    pub created_at: String,
}
bulk_row!(ActivityRow, "activities",
    [id, title, category, content, recipients, organizer_org_id, team_id, division_code, address,
     starts_at, ends_at, capacity, checked_in, created_by, created_at], flags []);

const ACTIVITY_COLUMNS: &str = "id, title, category, content, recipients, organizer_org_id, \
    team_id, division_code, address, starts_at, ends_at, capacity, checked_in, created_by, created_at";

fn activity_from_row(r: &AnyRow) -> Result<ActivityRow> {
    Ok(ActivityRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        category: r.try_get("category")?,
        content: r.try_get("content")?,
        recipients: r.try_get("recipients")?,
        organizer_org_id: r.try_get("organizer_org_id")?,
        team_id: r.try_get("team_id")?,
        division_code: r.try_get("division_code")?,
        address: r.try_get("address")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        capacity: r.try_get("capacity")?,
        checked_in: r.try_get("checked_in")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

/// One volunteer at one activity. `state` is `checked_in`, `checked_out` or `verified`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttendanceRow {
    pub id: String,
    pub activity_id: String,
    pub participant_id: String,
    pub state: String,
    pub checked_in_at: String,
    pub check_in_by: String,
    /// `activity_code` (the volunteer scanned the activity) or `participant_code` (the
    /// organizer scanned the volunteer).
    pub check_in_method: String,
    pub checked_out_at: Option<String>,
    pub check_out_by: Option<String>,
    pub duration_minutes: Option<i64>,
    pub credited_minutes: i64,
    pub evaluation: Option<String>,
    pub verified_by: Option<String>,
    pub verified_at: Option<String>,
}
bulk_row!(AttendanceRow, "attendances",
    [id, activity_id, participant_id, state, checked_in_at, check_in_by, check_in_method,
     checked_out_at, check_out_by, duration_minutes, credited_minutes, evaluation, verified_by,
     verified_at], flags []);

const ATTENDANCE_COLUMNS: &str = "id, activity_id, participant_id, state, checked_in_at, \
    check_in_by, check_in_method, checked_out_at, check_out_by, duration_minutes, \
    credited_minutes, evaluation, verified_by, verified_at";

fn attendance_from_row(r: &AnyRow) -> Result<AttendanceRow> {
    Ok(AttendanceRow {
        id: r.try_get("id")?,
        activity_id: r.try_get("activity_id")?,
        participant_id: r.try_get("participant_id")?,
        state: r.try_get("state")?,
        checked_in_at: r.try_get("checked_in_at")?,
        check_in_by: r.try_get("check_in_by")?,
        check_in_method: r.try_get("check_in_method")?,
        checked_out_at: r.try_get("checked_out_at")?,
        check_out_by: r.try_get("check_out_by")?,
        duration_minutes: r.try_get("duration_minutes")?,
        credited_minutes: r.try_get("credited_minutes")?,
        evaluation: r.try_get("evaluation")?,
        verified_by: r.try_get("verified_by")?,
        verified_at: r.try_get("verified_at")?,
    })
}

/// A service record with the fields of the national measures (one per local day of a verified
/// session).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceRecordDetail {
    pub id: String,
    pub volunteer_participant_id: String,
    pub duration_minutes: i64,
    pub served_on: String,
    pub content: String,
    pub attendance_id: Option<String>,
    pub activity_id: Option<String>,
    pub place: Option<String>,
    pub recipients: Option<String>,
    pub evaluation: Option<String>,
    pub organizer_org_id: Option<String>,
    pub recorded_by: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub state: String,
}
bulk_row!(ServiceRecordDetail, "service_records",
    [id, volunteer_participant_id, duration_minutes, served_on, content, attendance_id,
     activity_id, place, recipients, evaluation, organizer_org_id, recorded_by, started_at,
     ended_at, state], flags []);

/// A service record as the volunteer's page lists it: with the activity's title and the
/// organizer's name when known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceRecordListed {
    pub record: ServiceRecordDetail,
    pub activity_title: Option<String>,
    pub organizer_name: Option<String>,
}

const RECORD_COLUMNS: &str = "s.id, s.volunteer_participant_id, s.duration_minutes, s.served_on, \
    s.content, s.attendance_id, s.activity_id, s.place, s.recipients, s.evaluation, \
    s.organizer_org_id, s.recorded_by, s.started_at, s.ended_at, s.state";

fn record_from_row(r: &AnyRow) -> Result<ServiceRecordDetail> {
    Ok(ServiceRecordDetail {
        id: r.try_get("id")?,
        volunteer_participant_id: r.try_get("volunteer_participant_id")?,
        duration_minutes: r.try_get("duration_minutes")?,
        served_on: r.try_get("served_on")?,
        content: r.try_get("content")?,
        attendance_id: r.try_get("attendance_id")?,
        activity_id: r.try_get("activity_id")?,
        place: r.try_get("place")?,
        recipients: r.try_get("recipients")?,
        evaluation: r.try_get("evaluation")?,
        organizer_org_id: r.try_get("organizer_org_id")?,
        recorded_by: r.try_get("recorded_by")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        state: r.try_get("state")?,
    })
}

/// A volunteer service certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateRow {
    pub number: String,
    pub participant_id: String,
    pub issuing_org_id: String,
    pub issued_on: String,
    pub minutes: i64,
    pub content: String,
    pub contact: String,
    pub issued_by: String,
    pub issued_at: String,
}
bulk_row!(CertificateRow, "volunteer_certificates",
    [number, participant_id, issuing_org_id, issued_on, minutes, content, contact, issued_by,
     issued_at], flags []);

const CERTIFICATE_COLUMNS: &str =
    "number, participant_id, issuing_org_id, issued_on, minutes, content, contact, issued_by, issued_at";

fn certificate_from_row(r: &AnyRow) -> Result<CertificateRow> {
    Ok(CertificateRow {
        number: r.try_get("number")?,
        participant_id: r.try_get("participant_id")?,
        issuing_org_id: r.try_get("issuing_org_id")?,
        issued_on: r.try_get("issued_on")?,
        minutes: r.try_get("minutes")?,
        content: r.try_get("content")?,
        contact: r.try_get("contact")?,
        issued_by: r.try_get("issued_by")?,
        issued_at: r.try_get("issued_at")?,
    })
}

/// A participant as a volunteer: name (for masking by the caller), masked ID number, and the
/// volunteer number when registered as a volunteer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolunteerIdentity {
    pub participant_id: String,
    pub display_name: String,
    pub kind: String,
    pub id_number_masked: Option<String>,
    pub volunteer_number: Option<String>,
}

fn identity_from_row(r: &AnyRow) -> Result<VolunteerIdentity> {
    Ok(VolunteerIdentity {
        participant_id: r.try_get("id")?,
        display_name: r.try_get("display_name")?,
        kind: r.try_get("kind")?,
        id_number_masked: r.try_get("id_number_masked")?,
        volunteer_number: r.try_get("volunteer_number")?,
    })
}

const IDENTITY_SQL: &str = "SELECT p.id, p.display_name, p.kind, p.id_number_masked, \
    v.volunteer_number FROM participants p LEFT JOIN volunteers v ON v.participant_id = p.id \
    WHERE p.id = $1";

/// What a check-in needs to know about one volunteer at one activity, in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInLookup {
    pub identity: VolunteerIdentity,
    pub attendance: Option<AttendanceRow>,
}

impl WriteTx {
    /// Records that a code's nonce was used. False (and nothing written) when it was already
    /// used: the code is a replay.
    pub async fn use_code_nonce(
        &mut self,
        nonce: &str,
        participant_id: &str,
        purpose: &str,
        used_at: &str,
        expires_at: &str,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "INSERT INTO code_nonces (nonce, participant_id, purpose, used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(participant_id)
        .bind(purpose)
        .bind(used_at)
        .bind(expires_at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes nonces of codes that expired before `before`: such codes are refused anyway.
    pub async fn prune_code_nonces(&mut self, before: &str) -> Result<u64> {
        self.flush().await?;
        let done = sqlx::query("DELETE FROM code_nonces WHERE expires_at < $1")
            .bind(before)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn activity(&mut self, id: &str) -> Result<Option<ActivityRow>> {
        self.flush().await?;
        let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(activity_from_row).transpose()
    }

    /// Admits `n` more volunteers to an activity unless that would pass its capacity. False
    /// (and nothing changed) when it would.
    pub async fn admit_to_activity(&mut self, activity_id: &str, n: i64) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE activities SET checked_in = checked_in + $1 \
             WHERE id = $2 AND checked_in + $1 <= capacity",
        )
        .bind(n)
        .bind(activity_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The participant (with volunteer number, if registered) and their attendance at the
    /// activity, if any; `None` when the participant does not exist.
    pub async fn check_in_lookup(
        &mut self,
        activity_id: &str,
        participant_id: &str,
    ) -> Result<Option<CheckInLookup>> {
        self.flush().await?;
        let Some(row) = sqlx::query(IDENTITY_SQL)
            .bind(participant_id)
            .fetch_optional(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let identity = identity_from_row(&row)?;
        let attendance = self.attendance_at(activity_id, participant_id).await?;
        Ok(Some(CheckInLookup {
            identity,
            attendance,
        }))
    }

    pub async fn attendance_at(
        &mut self,
        activity_id: &str,
        participant_id: &str,
    ) -> Result<Option<AttendanceRow>> {
        self.flush().await?;
        let sql = format!(
            "SELECT {ATTENDANCE_COLUMNS} FROM attendances WHERE activity_id = $1 AND participant_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(activity_id)
            .bind(participant_id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(attendance_from_row).transpose()
    }

    pub async fn attendance(&mut self, id: &str) -> Result<Option<AttendanceRow>> {
        self.flush().await?;
        let sql = format!("SELECT {ATTENDANCE_COLUMNS} FROM attendances WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(attendance_from_row).transpose()
    }

    /// Checks an attendance out. False (nothing changed) unless it was checked in.
    pub async fn check_out_attendance(
        &mut self,
        id: &str,
        at: &str,
        by: &str,
        duration_minutes: i64,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE attendances SET state = 'checked_out', checked_out_at = $1, check_out_by = $2, \
             duration_minutes = $3 WHERE id = $4 AND state = 'checked_in'",
        )
        .bind(at)
        .bind(by)
        .bind(duration_minutes)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a checked-out attendance verified with its credited minutes. False (nothing
    /// changed) unless it was checked out.
    pub async fn verify_attendance(
        &mut self,
        id: &str,
        by: &str,
        at: &str,
        credited_minutes: i64,
        evaluation: Option<&str>,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE attendances SET state = 'verified', verified_by = $1, verified_at = $2, \
             credited_minutes = $3, evaluation = $4 WHERE id = $5 AND state = 'checked_out'",
        )
        .bind(by)
        .bind(at)
        .bind(credited_minutes)
        .bind(evaluation)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes a verification back: the attendance returns to `checked_out` with nothing
    /// credited. False (nothing changed) unless it was verified.
    pub async fn unverify_attendance(&mut self, id: &str) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE attendances SET state = 'checked_out', verified_by = NULL, verified_at = NULL, \
             credited_minutes = 0 WHERE id = $1 AND state = 'verified'",
        )
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Minutes already credited to a volunteer on a local day (valid service records).
    pub async fn credited_minutes_on(&mut self, participant_id: &str, day: &str) -> Result<i64> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(duration_minutes), 0) AS BIGINT) AS total FROM service_records \
             WHERE volunteer_participant_id = $1 AND served_on = $2 AND state = 'valid'",
        )
        .bind(participant_id)
        .bind(day)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("total")?)
    }

    /// Marks the service records of an attendance withdrawn; returns how many.
    pub async fn withdraw_service_records(&mut self, attendance_id: &str) -> Result<u64> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE service_records SET state = 'withdrawn' WHERE attendance_id = $1 AND state = 'valid'",
        )
        .bind(attendance_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }

    /// Certificates whose number starts with `prefix` (to number the next one).
    pub async fn count_certificates_with_prefix(&mut self, prefix: &str) -> Result<i64> {
        self.flush().await?;
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM volunteer_certificates WHERE number LIKE $1")
                .bind(format!("{prefix}%"))
                .fetch_one(self.conn())
                .await?;
        Ok(row.try_get("n")?)
    }

    /// Verified minutes of a volunteer (valid service records), read inside the transaction.
    pub async fn verified_minutes(&mut self, participant_id: &str) -> Result<i64> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(duration_minutes), 0) AS BIGINT) AS total FROM service_records \
             WHERE volunteer_participant_id = $1 AND state = 'valid'",
        )
        .bind(participant_id)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("total")?)
    }

    /// Inserts or replaces a deployment setting.
    pub async fn upsert_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.flush().await?;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Whether a participant is registered as a volunteer.
    pub async fn is_volunteer(&mut self, participant_id: &str) -> Result<bool> {
        self.flush().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM volunteers WHERE participant_id = $1")
            .bind(participant_id)
            .fetch_one(self.conn())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

impl Store {
    pub async fn activity(&self, id: &str) -> Result<Option<ActivityRow>> {
        let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(activity_from_row).transpose()
    }

    /// Activities, the latest start first.
    pub async fn activities_page(&self, offset: i64, limit: i64) -> Result<Vec<ActivityRow>> {
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities ORDER BY starts_at DESC, id LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query(&sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(activity_from_row).collect()
    }

    pub async fn attendance(&self, id: &str) -> Result<Option<AttendanceRow>> {
        let sql = format!("SELECT {ATTENDANCE_COLUMNS} FROM attendances WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(attendance_from_row).transpose()
    }

    /// The attendances of an activity with each volunteer's name, in check-in order (at most
    /// `limit`).
    pub async fn attendances_of_activity(
        &self,
        activity_id: &str,
        limit: i64,
    ) -> Result<Vec<(AttendanceRow, String)>> {
        let columns: String = ATTENDANCE_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, p.display_name FROM attendances a \
             JOIN participants p ON p.id = a.participant_id \
             WHERE a.activity_id = $1 ORDER BY a.checked_in_at, a.id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(activity_id)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((attendance_from_row(r)?, r.try_get("display_name")?)))
            .collect()
    }

    /// A volunteer's attendances, the latest first (at most `limit`).
    pub async fn attendances_of_participant(
        &self,
        participant_id: &str,
        limit: i64,
    ) -> Result<Vec<AttendanceRow>> {
        let sql = format!(
            "SELECT {ATTENDANCE_COLUMNS} FROM attendances WHERE participant_id = $1 \
             ORDER BY checked_in_at DESC, id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(participant_id)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(attendance_from_row).collect()
    }

    /// Verified minutes of a volunteer: the sum of their valid service records.
    pub async fn verified_minutes(&self, participant_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(duration_minutes), 0) AS BIGINT) AS total FROM service_records \
             WHERE volunteer_participant_id = $1 AND state = 'valid'",
        )
        .bind(participant_id)
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get("total")?)
    }

    /// A volunteer's service records, the latest day first (at most `limit`), valid and
    /// withdrawn alike.
    pub async fn service_records_of(
        &self,
        participant_id: &str,
        limit: i64,
    ) -> Result<Vec<ServiceRecordListed>> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, a.title AS activity_title, o.name AS organizer_name \
             FROM service_records s \
             LEFT JOIN activities a ON a.id = s.activity_id \
             LEFT JOIN organizations o ON o.id = s.organizer_org_id \
             WHERE s.volunteer_participant_id = $1 ORDER BY s.served_on DESC, s.id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(participant_id)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceRecordListed {
                    record: record_from_row(r)?,
                    activity_title: r.try_get("activity_title")?,
                    organizer_name: r.try_get("organizer_name")?,
                })
            })
            .collect()
    }

    pub async fn certificate(&self, number: &str) -> Result<Option<CertificateRow>> {
        let sql =
            format!("SELECT {CERTIFICATE_COLUMNS} FROM volunteer_certificates WHERE number = $1");
        let row = sqlx::query(&sql)
            .bind(number)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(certificate_from_row).transpose()
    }

    pub async fn certificates_of(&self, participant_id: &str) -> Result<Vec<CertificateRow>> {
        let sql = format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM volunteer_certificates WHERE participant_id = $1 \
             ORDER BY issued_at DESC, number"
        );
        let rows = sqlx::query(&sql)
            .bind(participant_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    /// A participant with their volunteer number (if registered), or `None`.
    pub async fn volunteer_identity(
        &self,
        participant_id: &str,
    ) -> Result<Option<VolunteerIdentity>> {
        let row = sqlx::query(IDENTITY_SQL)
            .bind(participant_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(identity_from_row).transpose()
    }

    pub async fn team(&self, id: &str) -> Result<Option<TeamRow>> {
        let row = sqlx::query(
            "SELECT id, org_id, name, created_by, created_at FROM volunteer_teams WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(TeamRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                name: r.try_get("name")?,
                created_by: r.try_get("created_by")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// How many attendances are recorded (for benchmarks and tests).
    pub async fn count_attendances(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM attendances")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// How many nonces are recorded (for tests and pruning checks).
    pub async fn count_code_nonces(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM code_nonces")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("n")?)
    }
}
