//! SQL for matching pools (配捐) and campaigns (一日捐).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::ledger::donation_from_row;
use crate::records::{bulk_row, AnyQuery, BulkRow};
use crate::{Result, Store, WriteTx};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MatchPoolRow {
    pub id: String,
    pub name: String,
    pub sponsor_participant_id: Option<String>,
    pub sponsor_name: String,
    pub ratio_num: i64,
    pub ratio_den: i64,
    pub cap_per_donation_fen: i64,
    pub cap_per_donor_fen: i64,
    pub cap_total_fen: i64,
    pub used_fen: i64,
    pub campaign_id: Option<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_at: String,
}
bulk_row!(MatchPoolRow, "match_pools",
    [id, name, sponsor_participant_id, sponsor_name, ratio_num, ratio_den, cap_per_donation_fen,
     cap_per_donor_fen, cap_total_fen, used_fen, campaign_id, starts_at, ends_at, created_at],
    flags []);

const POOL_COLUMNS: &str = "id, name, sponsor_participant_id, sponsor_name, ratio_num, ratio_den, \
    cap_per_donation_fen, cap_per_donor_fen, cap_total_fen, used_fen, campaign_id, starts_at, \
    ends_at, created_at";

fn pool_from_row(r: &AnyRow) -> Result<MatchPoolRow> {
    Ok(MatchPoolRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        sponsor_participant_id: r.try_get("sponsor_participant_id")?,
        sponsor_name: r.try_get("sponsor_name")?,
        ratio_num: r.try_get("ratio_num")?,
        ratio_den: r.try_get("ratio_den")?,
        cap_per_donation_fen: r.try_get("cap_per_donation_fen")?,
        cap_per_donor_fen: r.try_get("cap_per_donor_fen")?,
        cap_total_fen: r.try_get("cap_total_fen")?,
        used_fen: r.try_get("used_fen")?,
        campaign_id: r.try_get("campaign_id")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        created_at: r.try_get("created_at")?,
    })
}

impl WriteTx {
    pub async fn add_pool_project(&mut self, pool_id: &str, project_id: &str) -> Result<()> {
        self.flush().await?;
        sqlx::query("INSERT INTO match_pool_projects (pool_id, project_id) VALUES ($1, $2)")
            .bind(pool_id)
            .bind(project_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Pools whose period contains `at` and that cover the project or the campaign, oldest
    /// first, with money left.
    pub async fn eligible_pools(
        &mut self,
        project_id: Option<&str>,
        campaign_id: Option<&str>,
        at: &str,
    ) -> Result<Vec<MatchPoolRow>> {
        // With no pool at all (the common case) the staged path needs no statement: pools
        // are never staged, and none is created inside a donation's transaction.
        if self.staging().is_some() {
            let memo = self.staging().and_then(|s| s.any_pools);
            let any = match memo {
                Some(any) => any,
                None => {
                    let any = sqlx::query("SELECT id FROM match_pools LIMIT 1")
                        .fetch_optional(self.raw())
                        .await?
                        .is_some();
                    self.staging().expect("staging is on").any_pools = Some(any);
                    any
                }
            };
            if !any {
                return Ok(Vec::new());
            }
        }
        self.flush().await?;
        let sql = format!(
            "SELECT {POOL_COLUMNS} FROM match_pools p \
             WHERE p.starts_at <= $1 AND p.ends_at > $1 AND p.used_fen < p.cap_total_fen \
               AND (EXISTS (SELECT 1 FROM match_pool_projects pp WHERE pp.pool_id = p.id AND pp.project_id = $2) \
                    OR p.campaign_id = $3) \
             ORDER BY p.created_at, p.id"
        );
        let rows = sqlx::query(&sql)
            .bind(at)
            .bind(project_id.unwrap_or(""))
            .bind(campaign_id.unwrap_or(""))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(pool_from_row).collect()
    }

    /// What the pool has given (net of returns) to this donor's donations.
    pub async fn pool_used_by_donor(&mut self, pool_id: &str, donor: &str) -> Result<i64> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(m.amount_fen - m.refunded_fen), 0) AS BIGINT) AS used \
             FROM donations m JOIN donations o ON o.id = m.matched_donation_id \
             WHERE m.pool_id = $1 AND o.donor_participant_id = $2",
        )
        .bind(pool_id)
        .bind(donor)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("used")?)
    }

    /// Takes `amount` from the pool if the total cap allows; false (nothing changed) otherwise.
    pub async fn use_pool(&mut self, pool_id: &str, amount: i64) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE match_pools SET used_fen = used_fen + $1 \
             WHERE id = $2 AND used_fen + $1 <= cap_total_fen",
        )
        .bind(amount)
        .bind(pool_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives `amount` back to the pool.
    pub async fn release_pool(&mut self, pool_id: &str, amount: i64) -> Result<()> {
        self.flush().await?;
        sqlx::query("UPDATE match_pools SET used_fen = used_fen - $1 WHERE id = $2")
            .bind(amount)
            .bind(pool_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn pool(&mut self, id: &str) -> Result<Option<MatchPoolRow>> {
        self.flush().await?;
        let sql = format!("SELECT {POOL_COLUMNS} FROM match_pools WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(pool_from_row).transpose()
    }

    /// The match donation made for `donation_id`, if any.
    pub async fn match_of(&mut self, donation_id: &str) -> Result<Option<crate::DonationRow>> {
        self.flush().await?;
        let sql = format!(
            "SELECT {} FROM donations WHERE matched_donation_id = $1",
            crate::ledger::DONATION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(donation_id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(donation_from_row).transpose()
    }

    /// A campaign unit's campaign and the campaign's period, for attributing a donation.
    pub async fn campaign_unit(
        &mut self,
        unit_id: &str,
    ) -> Result<Option<(String, String, String, String)>> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT c.id, c.org_id, c.starts_on, c.ends_on FROM campaign_units u \
             JOIN campaigns c ON c.id = u.campaign_id WHERE u.id = $1",
        )
        .bind(unit_id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("org_id")?,
                r.try_get("starts_on")?,
                r.try_get("ends_on")?,
            ))
        })
        .transpose()
    }
}

impl Store {
    pub async fn match_pools(&self) -> Result<Vec<MatchPoolRow>> {
        let sql = format!("SELECT {POOL_COLUMNS} FROM match_pools ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(self.reader()).await?;
        rows.iter().map(pool_from_row).collect()
    }

    /// An organization participant's credit code (for receipts to organizations).
    pub async fn credit_code_of_participant(&self, participant_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT credit_code FROM organizations WHERE participant_id = $1")
            .bind(participant_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok(r.try_get("credit_code")?)).transpose()
    }
}
