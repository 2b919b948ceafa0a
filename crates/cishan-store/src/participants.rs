//! Participants with their contact fields, roles, member accounts and roster import jobs
//! (migration 0007). Personal identifiers arrive here already digested, encrypted and masked by
//! the app's vault: this crate never sees an ID number or phone in clear.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{bulk_row, flag, AnyQuery, BulkRow};
use crate::{values_placeholders, Result, Store, UserRow, WriteTx};

/// A participant with every column, including those 0007 added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantRecord {
    pub id: String,
    /// `person` or `organization`.
    pub kind: String,
    pub display_name: String,
    pub id_number_digest: Option<String>,
    pub id_number_masked: Option<String>,
    pub id_number_cipher: Option<String>,
    pub phone_digest: Option<String>,
    pub phone_masked: Option<String>,
    pub phone_cipher: Option<String>,
    pub credit_code: Option<String>,
    /// `male` or `female` (people only).
    pub sex: Option<String>,
    /// `YYYY-MM` (people only).
    pub birth_month: Option<String>,
    pub division_code: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub synthetic: bool,
}
bulk_row!(
    ParticipantRecord,
    "participants",
    [
        id,
        kind,
        display_name,
        id_number_digest,
        id_number_masked,
        id_number_cipher,
        phone_digest,
        phone_masked,
        phone_cipher,
        credit_code,
        sex,
        birth_month,
        division_code,
        created_at,
        updated_at
    ],
    flags[synthetic]
);

const PARTICIPANT_COLUMNS: &str = "id, kind, display_name, id_number_digest, id_number_masked, \
     id_number_cipher, phone_digest, phone_masked, phone_cipher, credit_code, sex, birth_month, \
     division_code, created_at, updated_at, synthetic";

fn participant_from_row(row: &AnyRow) -> Result<ParticipantRecord> {
    Ok(ParticipantRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        display_name: row.try_get("display_name")?,
        id_number_digest: row.try_get("id_number_digest")?,
        id_number_masked: row.try_get("id_number_masked")?,
        id_number_cipher: row.try_get("id_number_cipher")?,
        phone_digest: row.try_get("phone_digest")?,
        phone_masked: row.try_get("phone_masked")?,
        phone_cipher: row.try_get("phone_cipher")?,
        credit_code: row.try_get("credit_code")?,
        sex: row.try_get("sex")?,
        birth_month: row.try_get("birth_month")?,
        division_code: row.try_get("division_code")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        synthetic: crate::records::get_flag(row, "synthetic")?,
    })
}

/// One role a participant holds: donor | volunteer | beneficiary | partner | staff, optionally
/// within an organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParticipantRoleRow {
    pub participant_id: String,
    pub role: String,
    pub org_id: Option<String>,
    pub granted_by: String,
    pub granted_at: String,
}
bulk_row!(
    ParticipantRoleRow,
    "participant_roles",
    [participant_id, role, org_id, granted_by, granted_at],
    flags []
);

/// A volunteer registration with the skills a roster lists (0007 added `skills`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolunteerRecord {
    pub participant_id: String,
    pub volunteer_number: String,
    pub registered_at: String,
    pub skills: String,
}
bulk_row!(
    VolunteerRecord,
    "volunteers",
    [participant_id, volunteer_number, registered_at, skills],
    flags []
);

/// A roster import: progress the page polls, and the per-row report when done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportJobRow {
    pub id: String,
    pub kind: String,
    pub file_name: String,
    pub encoding: String,
    pub state: String,
    pub total: i64,
    pub processed: i64,
    pub imported: i64,
    pub updated: i64,
    pub present: i64,
    pub refused: i64,
    pub report: String,
    pub message: String,
    pub created_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}
bulk_row!(
    ImportJobRow,
    "import_jobs",
    [
        id,
        kind,
        file_name,
        encoding,
        state,
        total,
        processed,
        imported,
        updated,
        present,
        refused,
        report,
        message,
        created_by,
        created_at,
        finished_at
    ],
    flags []
);

fn role_from_row(row: &AnyRow) -> Result<ParticipantRoleRow> {
    Ok(ParticipantRoleRow {
        participant_id: row.try_get("participant_id")?,
        role: row.try_get("role")?,
        org_id: row.try_get("org_id")?,
        granted_by: row.try_get("granted_by")?,
        granted_at: row.try_get("granted_at")?,
    })
}

const USER_COLUMNS: &str =
    "id, username, display_name, password_hash, role, created_at, participant_id";

fn user_row(row: &AnyRow) -> Result<UserRow> {
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

/// Binds each text of `values` in turn.
fn bind_all<'q>(mut q: AnyQuery<'q>, values: &'q [String]) -> AnyQuery<'q> {
    for v in values {
        q = q.bind(v);
    }
    q
}

fn in_list(count: usize) -> String {
    values_placeholders(1, count)
}

impl Store {
    /// The roles a participant holds, ordered by role then organization.
    pub async fn participant_roles(&self, participant_id: &str) -> Result<Vec<ParticipantRoleRow>> {
        let rows = sqlx::query(
            "SELECT participant_id, role, org_id, granted_by, granted_at FROM participant_roles \
             WHERE participant_id = $1 ORDER BY role, org_id",
        )
        .bind(participant_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(role_from_row).collect()
    }

    /// A participant by id.
    pub async fn participant_record(&self, id: &str) -> Result<Option<ParticipantRecord>> {
        let sql = format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(participant_from_row).transpose()
    }

    /// The person whose ID number has this keyed digest.
    pub async fn participant_by_id_digest(
        &self,
        digest: &str,
    ) -> Result<Option<ParticipantRecord>> {
        let sql =
            format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id_number_digest = $1");
        let row = sqlx::query(&sql)
            .bind(digest)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(participant_from_row).transpose()
    }

    /// The people whose phone has this keyed digest (phones may be shared), by id.
    pub async fn participants_by_phone_digest(
        &self,
        digest: &str,
    ) -> Result<Vec<ParticipantRecord>> {
        let sql = format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE phone_digest = $1 ORDER BY id LIMIT 20"
        );
        let rows = sqlx::query(&sql)
            .bind(digest)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(participant_from_row).collect()
    }

    /// The organization participant with this credit code.
    pub async fn participant_by_credit_code(
        &self,
        code: &str,
    ) -> Result<Option<ParticipantRecord>> {
        let sql = format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE credit_code = $1");
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(participant_from_row).transpose()
    }

    /// The account of a participant, if they have one.
    pub async fn user_by_participant(&self, participant_id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE participant_id = $1");
        let row = sqlx::query(&sql)
            .bind(participant_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// The accounts of the people whose phone has this digest (at most a few).
    pub async fn users_by_phone_digest(&self, digest: &str) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.password_hash, u.role, u.created_at, \
             u.participant_id FROM users u JOIN participants p ON p.id = u.participant_id \
             WHERE p.phone_digest = $1 ORDER BY u.id LIMIT 20",
        )
        .bind(digest)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(user_row).collect()
    }

    /// The account of the person whose ID number has this digest.
    pub async fn user_by_id_digest(&self, digest: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.password_hash, u.role, u.created_at, \
             u.participant_id FROM users u JOIN participants p ON p.id = u.participant_id \
             WHERE p.id_number_digest = $1",
        )
        .bind(digest)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// True when an organization with this id exists.
    pub async fn organization_exists(&self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// The volunteer number of a participant, if they are a volunteer.
    pub async fn volunteer_number(&self, participant_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT volunteer_number FROM volunteers WHERE participant_id = $1")
            .bind(participant_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok(r.try_get("volunteer_number")?)).transpose()
    }

    /// Counts participants holding `role`.
    pub async fn count_participants_with_role(&self, role: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT participant_id) AS n FROM participant_roles WHERE role = $1",
        )
        .bind(role)
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// An import job by id.
    pub async fn import_job(&self, id: &str) -> Result<Option<ImportJobRow>> {
        let row = sqlx::query(
            "SELECT id, kind, file_name, encoding, state, total, processed, imported, updated, \
             present, refused, report, message, created_by, created_at, finished_at \
             FROM import_jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ImportJobRow {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            file_name: row.try_get("file_name")?,
            encoding: row.try_get("encoding")?,
            state: row.try_get("state")?,
            total: row.try_get("total")?,
            processed: row.try_get("processed")?,
            imported: row.try_get("imported")?,
            updated: row.try_get("updated")?,
            present: row.try_get("present")?,
            refused: row.try_get("refused")?,
            report: row.try_get("report")?,
            message: row.try_get("message")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
        }))
    }
}

/// Parameters per multi-row INSERT in roster imports: the budget `BULK_BATCH_ROWS` rows of the
/// demo's 9-column rows use (SQLite looks each numbered parameter up by a linear scan, so a
/// statement costs about the square of its parameter count), shared by wider rows.
pub const IMPORT_PARAMS_PER_STATEMENT: usize = crate::BULK_BATCH_ROWS * 9;

impl WriteTx {
    /// Inserts `rows` with multi-row INSERTs of at most [`IMPORT_PARAMS_PER_STATEMENT`]
    /// parameters each (fewer rows per statement for wide rows than `insert_all`).
    pub async fn insert_wide<R: BulkRow>(&mut self, rows: &[R]) -> Result<()> {
        let per_statement = (IMPORT_PARAMS_PER_STATEMENT / R::COLUMNS.len()).max(1);
        for chunk in rows.chunks(per_statement) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                R::TABLE,
                R::COLUMNS.join(", "),
                values_placeholders(chunk.len(), R::COLUMNS.len())
            );
            let mut q = sqlx::query(&sql);
            for row in chunk {
                q = row.bind(q);
            }
            q.execute(self.conn())
                .await
                .map_err(|e| crate::records::conflict(e, R::TABLE))?;
        }
        Ok(())
    }

    /// Gives a participant a role; `false` when they already held it.
    pub async fn grant_role(&mut self, row: &ParticipantRoleRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO participant_roles (participant_id, role, org_id, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&row.participant_id)
        .bind(&row.role)
        .bind(&row.org_id)
        .bind(&row.granted_by)
        .bind(&row.granted_at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives many roles at once, skipping those already held; returns how many were new.
    pub async fn grant_roles(&mut self, rows: &[ParticipantRoleRow]) -> Result<u64> {
        let mut added = 0;
        for chunk in rows.chunks(crate::BULK_BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO participant_roles (participant_id, role, org_id, granted_by, granted_at) \
                 VALUES {} ON CONFLICT DO NOTHING",
                values_placeholders(chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for row in chunk {
                q = row.bind(q);
            }
            added += q.execute(self.conn()).await?.rows_affected();
        }
        Ok(added)
    }

    /// Takes a role away; `false` when they did not hold it.
    pub async fn revoke_role(
        &mut self,
        participant_id: &str,
        role: &str,
        org_id: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM participant_roles WHERE participant_id = $1 AND role = $2 \
             AND COALESCE(org_id, '') = $3",
        )
        .bind(participant_id)
        .bind(role)
        .bind(org_id.unwrap_or(""))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Changes a participant's name, phone, division, sex and birth month.
    pub async fn update_participant(&mut self, row: &ParticipantRecord) -> Result<()> {
        sqlx::query(
            "UPDATE participants SET display_name = $2, phone_digest = $3, phone_masked = $4, \
             phone_cipher = $5, division_code = $6, sex = $7, birth_month = $8, updated_at = $9 \
             WHERE id = $1",
        )
        .bind(&row.id)
        .bind(&row.display_name)
        .bind(&row.phone_digest)
        .bind(&row.phone_masked)
        .bind(&row.phone_cipher)
        .bind(&row.division_code)
        .bind(&row.sex)
        .bind(&row.birth_month)
        .bind(&row.updated_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// For each ID-number digest that a participant already has: (digest, participant id).
    pub async fn participants_by_id_digests(
        &mut self,
        digests: &[String],
    ) -> Result<Vec<(String, ParticipantRecord)>> {
        let mut found = Vec::new();
        for chunk in digests.chunks(crate::BULK_BATCH_ROWS * 4) {
            let sql = format!(
                "SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id_number_digest IN {}",
                in_list(chunk.len())
            );
            let rows = bind_all(sqlx::query(&sql), chunk)
                .fetch_all(self.conn())
                .await?;
            for row in &rows {
                let p = participant_from_row(row)?;
                if let Some(d) = p.id_number_digest.clone() {
                    found.push((d, p));
                }
            }
        }
        Ok(found)
    }

    /// Which of these participants are already volunteers: (participant id, volunteer number).
    pub async fn volunteers_of(&mut self, ids: &[String]) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(crate::BULK_BATCH_ROWS * 4) {
            let sql = format!(
                "SELECT participant_id, volunteer_number FROM volunteers WHERE participant_id IN {}",
                in_list(chunk.len())
            );
            let rows = bind_all(sqlx::query(&sql), chunk)
                .fetch_all(self.conn())
                .await?;
            for row in &rows {
                found.push((
                    row.try_get("participant_id")?,
                    row.try_get("volunteer_number")?,
                ));
            }
        }
        Ok(found)
    }

    /// Which of these volunteer numbers are taken: (volunteer number, participant id).
    pub async fn volunteer_numbers_taken(
        &mut self,
        numbers: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for chunk in numbers.chunks(crate::BULK_BATCH_ROWS * 4) {
            let sql = format!(
                "SELECT participant_id, volunteer_number FROM volunteers WHERE volunteer_number IN {}",
                in_list(chunk.len())
            );
            let rows = bind_all(sqlx::query(&sql), chunk)
                .fetch_all(self.conn())
                .await?;
            for row in &rows {
                found.push((
                    row.try_get("volunteer_number")?,
                    row.try_get("participant_id")?,
                ));
            }
        }
        Ok(found)
    }

    /// Records a job's progress.
    pub async fn import_progress(&mut self, job: &ImportJobRow) -> Result<()> {
        sqlx::query(
            "UPDATE import_jobs SET encoding = $2, state = $3, total = $4, processed = $5, \
             imported = $6, updated = $7, present = $8, refused = $9, report = $10, message = $11, \
             finished_at = $12 WHERE id = $1",
        )
        .bind(&job.id)
        .bind(&job.encoding)
        .bind(&job.state)
        .bind(job.total)
        .bind(job.processed)
        .bind(job.imported)
        .bind(job.updated)
        .bind(job.present)
        .bind(job.refused)
        .bind(&job.report)
        .bind(&job.message)
        .bind(&job.finished_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
