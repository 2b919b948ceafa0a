//! SQL for campaigns (一日捐), bank card point conversions (银行卡积分捐赠), the public exports of an
//! organization, a fund or a project, and donors' yearly receipt summaries.
//!
//! Totals are computed by aggregate statements over the whole scope, never from a page of rows,
//! so every page, filter and format of an export shows the same totals.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::ledger::{donation_from_row, DONATION_COLUMNS};
use crate::records::{bulk_row, get_flag, AnyQuery, BulkRow};
use crate::{Result, Store, WriteTx};

/// A campaign (一日捐) of an organization, with its participation targets per unit type in
/// percent. The targets live on the row: a campaign keeps the targets it was created with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CampaignRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub fund_id: Option<String>,
    /// Local dates, `YYYY-MM-DD`, both inclusive.
    pub starts_on: String,
    pub ends_on: String,
    pub target_government_pct: i64,
    pub target_institution_pct: i64,
    pub target_enterprise_pct: i64,
    pub created_at: String,
}

const CAMPAIGN_COLUMNS: &str = "id, org_id, name, fund_id, starts_on, ends_on, \
    target_government_pct, target_institution_pct, target_enterprise_pct, created_at";

fn campaign_from_row(r: &AnyRow) -> Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        name: r.try_get("name")?,
        fund_id: r.try_get("fund_id")?,
        starts_on: r.try_get("starts_on")?,
        ends_on: r.try_get("ends_on")?,
        target_government_pct: r.try_get("target_government_pct")?,
        target_institution_pct: r.try_get("target_institution_pct")?,
        target_enterprise_pct: r.try_get("target_enterprise_pct")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A campaign about to be written. A target left `None` takes the schema's default, which is
/// the plan's (government 100, institution 100, enterprise 75): the numbers exist in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub fund_id: Option<String>,
    pub starts_on: String,
    pub ends_on: String,
    pub target_government_pct: Option<i64>,
    pub target_institution_pct: Option<i64>,
    pub target_enterprise_pct: Option<i64>,
    pub created_at: String,
}

/// A unit (government body, public institution or enterprise) taking part in a campaign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CampaignUnitRow {
    pub id: String,
    pub campaign_id: String,
    pub name: String,
    /// `government`, `institution` or `enterprise`.
    pub unit_type: String,
    pub headcount: i64,
}
bulk_row!(CampaignUnitRow, "campaign_units", [id, campaign_id, name, unit_type, headcount], flags []);

/// What the donations attributed to one unit add up to. Donations refunded in full no longer
/// count as donors; amounts are net of refunds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignUnitTally {
    pub unit: CampaignUnitRow,
    /// Distinct registered donors with at least one donation not refunded in full.
    pub registered_donors: i64,
    /// Walk-in donations not refunded in full (each counts as one donor).
    pub walk_in_donations: i64,
    /// Donations not refunded in full.
    pub donations: i64,
    pub amount_fen: i64,
    pub refunded_fen: i64,
}

/// One bank card point conversion: points of a cardholder turned into a donation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CardPointConversionRow {
    pub id: String,
    pub bank_participant_id: String,
    pub batch_ref: String,
    pub points: i64,
    pub points_per_yuan: i64,
    pub amount_fen: i64,
    pub donation_id: String,
    pub converted_at: String,
}
bulk_row!(CardPointConversionRow, "card_point_conversions",
    [id, bank_participant_id, batch_ref, points, points_per_yuan, amount_fen, donation_id,
     converted_at], flags []);

impl WriteTx {
    /// Inserts a campaign, letting the schema supply any target not given, and returns the row
    /// as stored.
    pub async fn insert_campaign(&mut self, c: &NewCampaign) -> Result<CampaignRow> {
        self.flush().await?;
        let mut columns = vec![
            "id",
            "org_id",
            "name",
            "fund_id",
            "starts_on",
            "ends_on",
            "created_at",
        ];
        let targets = [
            ("target_government_pct", c.target_government_pct),
            ("target_institution_pct", c.target_institution_pct),
            ("target_enterprise_pct", c.target_enterprise_pct),
        ];
        columns.extend(targets.iter().filter(|(_, v)| v.is_some()).map(|(n, _)| *n));
        let sql = format!(
            "INSERT INTO campaigns ({}) VALUES {}",
            columns.join(", "),
            crate::values_placeholders(1, columns.len())
        );
        let mut q: AnyQuery<'_> = sqlx::query(&sql)
            .bind(&c.id)
            .bind(&c.org_id)
            .bind(&c.name)
            .bind(&c.fund_id)
            .bind(&c.starts_on)
            .bind(&c.ends_on)
            .bind(&c.created_at);
        for value in targets.iter().filter_map(|(_, v)| *v) {
            q = q.bind(value);
        }
        q.execute(self.conn()).await?;
        self.campaign(&c.id)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt(format!("campaign {} vanished", c.id)))
    }

    pub async fn campaign(&mut self, id: &str) -> Result<Option<CampaignRow>> {
        self.flush().await?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    /// The names of a campaign's units, read inside the transaction.
    pub async fn campaign_unit_names(&mut self, campaign_id: &str) -> Result<Vec<String>> {
        self.flush().await?;
        let rows = sqlx::query("SELECT name FROM campaign_units WHERE campaign_id = $1")
            .bind(campaign_id)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// How many conversions a bank has already recorded under a batch reference.
    pub async fn card_point_batch_count(&mut self, bank: &str, batch_ref: &str) -> Result<i64> {
        self.flush().await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM card_point_conversions \
             WHERE bank_participant_id = $1 AND batch_ref = $2",
        )
        .bind(bank)
        .bind(batch_ref)
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get("n")?)
    }
}

impl Store {
    pub async fn campaign(&self, id: &str) -> Result<Option<CampaignRow>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    /// Every unit of a campaign with what its donations add up to, by type then name. Matches
    /// (配捐) are the sponsor's money, not the unit's staff, and carry no unit, so they are not
    /// counted here.
    pub async fn campaign_unit_tallies(&self, campaign_id: &str) -> Result<Vec<CampaignUnitTally>> {
        let rows = sqlx::query(
            "SELECT u.id, u.campaign_id, u.name, u.unit_type, u.headcount, \
               (SELECT COUNT(DISTINCT d.donor_participant_id) FROM donations d \
                  WHERE d.campaign_unit_id = u.id AND d.donor_participant_id IS NOT NULL \
                    AND d.amount_fen > d.refunded_fen) AS registered_donors, \
               (SELECT COUNT(*) FROM donations d \
                  WHERE d.campaign_unit_id = u.id AND d.donor_participant_id IS NULL \
                    AND d.amount_fen > d.refunded_fen) AS walk_in_donations, \
               (SELECT COUNT(*) FROM donations d \
                  WHERE d.campaign_unit_id = u.id AND d.amount_fen > d.refunded_fen) AS donations, \
               (SELECT CAST(COALESCE(SUM(d.amount_fen), 0) AS BIGINT) FROM donations d \
                  WHERE d.campaign_unit_id = u.id) AS amount_fen, \
               (SELECT CAST(COALESCE(SUM(d.refunded_fen), 0) AS BIGINT) FROM donations d \
                  WHERE d.campaign_unit_id = u.id) AS refunded_fen \
             FROM campaign_units u WHERE u.campaign_id = $1 ORDER BY u.unit_type, u.name, u.id",
        )
        .bind(campaign_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CampaignUnitTally {
                    unit: CampaignUnitRow {
                        id: r.try_get("id")?,
                        campaign_id: r.try_get("campaign_id")?,
                        name: r.try_get("name")?,
                        unit_type: r.try_get("unit_type")?,
                        headcount: r.try_get("headcount")?,
                    },
                    registered_donors: r.try_get("registered_donors")?,
                    walk_in_donations: r.try_get("walk_in_donations")?,
                    donations: r.try_get("donations")?,
                    amount_fen: r.try_get("amount_fen")?,
                    refunded_fen: r.try_get("refunded_fen")?,
                })
            })
            .collect()
    }

    /// The conversions recorded under a bank's batch reference, in insertion order.
    pub async fn card_point_conversions(
        &self,
        bank: &str,
        batch_ref: &str,
    ) -> Result<Vec<CardPointConversionRow>> {
        let rows = sqlx::query(
            "SELECT id, bank_participant_id, batch_ref, points, points_per_yuan, amount_fen, \
             donation_id, converted_at FROM card_point_conversions \
             WHERE bank_participant_id = $1 AND batch_ref = $2 ORDER BY converted_at, id",
        )
        .bind(bank)
        .bind(batch_ref)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CardPointConversionRow {
                    id: r.try_get("id")?,
                    bank_participant_id: r.try_get("bank_participant_id")?,
                    batch_ref: r.try_get("batch_ref")?,
                    points: r.try_get("points")?,
                    points_per_yuan: r.try_get("points_per_yuan")?,
                    amount_fen: r.try_get("amount_fen")?,
                    donation_id: r.try_get("donation_id")?,
                    converted_at: r.try_get("converted_at")?,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------

/// What an export covers: an organization (all its funds and projects), one fund (the money
/// donated to it, wherever it went), or one project (money donated to it or allocated to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportScope {
    Organization,
    Fund,
    Project,
}

/// The totals of an export's scope, over all time. See `cishan_app::exports` for what each
/// number means per scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ExportTotals {
    pub donations: i64,
    pub gross_fen: i64,
    pub refunded_fen: i64,
    pub allocated_fen: i64,
    pub disbursed_charitable_fen: i64,
    pub disbursed_management_fen: i64,
    pub remaining_fen: i64,
}

/// A donation in an export, with what is needed to show its donor publicly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDonation {
    pub row: crate::DonationRow,
    /// The registered donor's display name and kind (`person` or `organization`).
    pub donor_display_name: Option<String>,
    pub donor_kind: Option<String>,
    /// The fund or project the donation was made to.
    pub holder_name: String,
}

/// An allocation in an export, with the names of its fund and project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportAllocation {
    pub row: crate::AllocationRow,
    pub fund_name: String,
    pub project_name: String,
}

/// A disbursement in an export. `scope_fen` is the part paid with the scope's money, net of a
/// reversal (for an organization or a project that is the whole amount unless reversed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDisbursement {
    pub row: crate::DisbursementRow,
    pub project_name: String,
    pub scope_fen: i64,
}

/// Which rows of an export's lists to return: a window of received/paid instants (RFC 3339,
/// `[from, until)`) and a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportWindow {
    pub from: String,
    pub until: String,
    pub offset: i64,
    pub limit: i64,
}

/// The SQL that picks the scope's donations (`d`), allocations (`a`) and disbursement flows
/// (`f`, joined to `b`), each with `$1` the scope's id.
struct ScopeSql {
    donations: &'static str,
    allocations: &'static str,
    flows: &'static str,
    lots: &'static str,
}

fn scope_sql(scope: ExportScope) -> ScopeSql {
    match scope {
        ExportScope::Organization => ScopeSql {
            // By holder rather than `donations.org_id`, as the disclosure totals do.
            donations: "(d.fund_id IN (SELECT id FROM funds WHERE org_id = $1) \
                        OR d.project_id IN (SELECT id FROM projects WHERE org_id = $1))",
            allocations: "a.fund_id IN (SELECT id FROM funds WHERE org_id = $1)",
            flows: "b.project_id IN (SELECT id FROM projects WHERE org_id = $1)",
            lots: "((l.holder_kind = 'fund' AND l.holder_id IN (SELECT id FROM funds WHERE org_id = $1)) \
                   OR (l.holder_kind = 'project' AND l.holder_id IN (SELECT id FROM projects WHERE org_id = $1)))",
        },
        ExportScope::Fund => ScopeSql {
            donations: "d.fund_id = $1",
            allocations: "a.fund_id = $1",
            flows: "f.donation_id IN (SELECT id FROM donations WHERE fund_id = $1)",
            lots: "l.donation_id IN (SELECT id FROM donations WHERE fund_id = $1)",
        },
        ExportScope::Project => ScopeSql {
            donations: "d.project_id = $1",
            allocations: "a.project_id = $1",
            flows: "b.project_id = $1",
            lots: "l.holder_kind = 'project' AND l.holder_id = $1",
        },
    }
}

impl Store {
    /// The totals of a scope over all time. Unaffected by any window or page.
    pub async fn export_totals(&self, scope: ExportScope, id: &str) -> Result<ExportTotals> {
        let s = scope_sql(scope);
        let sql = format!(
            "SELECT \
               (SELECT COUNT(*) FROM donations d WHERE {don}) AS donations, \
               (SELECT CAST(COALESCE(SUM(d.amount_fen), 0) AS BIGINT) FROM donations d WHERE {don}) AS gross_fen, \
               (SELECT CAST(COALESCE(SUM(d.refunded_fen), 0) AS BIGINT) FROM donations d WHERE {don}) AS refunded_fen, \
               (SELECT CAST(COALESCE(SUM(a.amount_fen), 0) AS BIGINT) FROM allocations a WHERE {alc}) AS allocated_fen, \
               (SELECT CAST(COALESCE(SUM(CASE f.kind WHEN 'disbursement' THEN f.amount_fen ELSE -f.amount_fen END), 0) AS BIGINT) \
                  FROM flows f JOIN disbursements b ON b.id = f.ref_id \
                  WHERE f.kind IN ('disbursement', 'disbursement_reversed') AND b.purpose <> 'management' AND {flw}) AS charitable_fen, \
               (SELECT CAST(COALESCE(SUM(CASE f.kind WHEN 'disbursement' THEN f.amount_fen ELSE -f.amount_fen END), 0) AS BIGINT) \
                  FROM flows f JOIN disbursements b ON b.id = f.ref_id \
                  WHERE f.kind IN ('disbursement', 'disbursement_reversed') AND b.purpose = 'management' AND {flw}) AS management_fen, \
               (SELECT CAST(COALESCE(SUM(l.remaining_fen), 0) AS BIGINT) FROM lots l WHERE {lot}) AS remaining_fen",
            don = s.donations,
            alc = s.allocations,
            flw = s.flows,
            lot = s.lots,
        );
        let r = sqlx::query(&sql).bind(id).fetch_one(self.reader()).await?;
        Ok(ExportTotals {
            donations: r.try_get("donations")?,
            gross_fen: r.try_get("gross_fen")?,
            refunded_fen: r.try_get("refunded_fen")?,
            allocated_fen: r.try_get("allocated_fen")?,
            disbursed_charitable_fen: r.try_get("charitable_fen")?,
            disbursed_management_fen: r.try_get("management_fen")?,
            remaining_fen: r.try_get("remaining_fen")?,
        })
    }

    /// One page of a scope's donations received in the window, oldest first.
    pub async fn export_donations(
        &self,
        scope: ExportScope,
        id: &str,
        window: &ExportWindow,
    ) -> Result<Vec<ExportDonation>> {
        let s = scope_sql(scope);
        let columns = DONATION_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, pt.display_name AS donor_display_name, pt.kind AS donor_kind, \
               COALESCE(pj.name, fd.name, '') AS holder_name \
             FROM donations d \
             LEFT JOIN participants pt ON pt.id = d.donor_participant_id \
             LEFT JOIN projects pj ON pj.id = d.project_id \
             LEFT JOIN funds fd ON fd.id = d.fund_id \
             WHERE {don} AND d.received_at >= $2 AND d.received_at < $3 \
             ORDER BY d.received_at, d.id LIMIT $4 OFFSET $5",
            don = s.donations
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(&window.from)
            .bind(&window.until)
            .bind(window.limit)
            .bind(window.offset)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ExportDonation {
                    row: donation_from_row(r)?,
                    donor_display_name: r.try_get("donor_display_name")?,
                    donor_kind: r.try_get("donor_kind")?,
                    holder_name: r.try_get("holder_name")?,
                })
            })
            .collect()
    }

    /// One page of a scope's allocations made in the window, oldest first.
    pub async fn export_allocations(
        &self,
        scope: ExportScope,
        id: &str,
        window: &ExportWindow,
    ) -> Result<Vec<ExportAllocation>> {
        let s = scope_sql(scope);
        let sql = format!(
            "SELECT a.id, a.batch_id, a.fund_id, a.project_id, a.amount_fen, a.weight, \
               a.allocated_at, a.recorded_by, fd.name AS fund_name, pj.name AS project_name \
             FROM allocations a JOIN funds fd ON fd.id = a.fund_id \
             JOIN projects pj ON pj.id = a.project_id \
             WHERE {alc} AND a.allocated_at >= $2 AND a.allocated_at < $3 \
             ORDER BY a.allocated_at, a.id LIMIT $4 OFFSET $5",
            alc = s.allocations
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(&window.from)
            .bind(&window.until)
            .bind(window.limit)
            .bind(window.offset)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ExportAllocation {
                    row: crate::AllocationRow {
                        id: r.try_get("id")?,
                        batch_id: r.try_get("batch_id")?,
                        fund_id: r.try_get("fund_id")?,
                        project_id: r.try_get("project_id")?,
                        amount_fen: r.try_get("amount_fen")?,
                        weight: r.try_get("weight")?,
                        allocated_at: r.try_get("allocated_at")?,
                        recorded_by: r.try_get("recorded_by")?,
                    },
                    fund_name: r.try_get("fund_name")?,
                    project_name: r.try_get("project_name")?,
                })
            })
            .collect()
    }

    /// One page of the disbursements paid (at least partly) with the scope's money in the
    /// window, oldest first.
    pub async fn export_disbursements(
        &self,
        scope: ExportScope,
        id: &str,
        window: &ExportWindow,
    ) -> Result<Vec<ExportDisbursement>> {
        let s = scope_sql(scope);
        let sql = format!(
            "SELECT b.id, b.project_id, b.household_id, b.people_count, b.amount_fen, b.paid_at, \
               b.recipient_kind, b.recipient_participant_id, b.supplier_name, b.form, b.purpose, \
               b.description, b.state, b.recorded_by, pj.name AS project_name, \
               CAST(SUM(CASE f.kind WHEN 'disbursement' THEN f.amount_fen ELSE -f.amount_fen END) AS BIGINT) AS scope_fen \
             FROM flows f JOIN disbursements b ON b.id = f.ref_id \
             JOIN projects pj ON pj.id = b.project_id \
             WHERE f.kind IN ('disbursement', 'disbursement_reversed') AND {flw} \
               AND b.paid_at >= $2 AND b.paid_at < $3 \
             GROUP BY b.id, b.project_id, b.household_id, b.people_count, b.amount_fen, b.paid_at, \
               b.recipient_kind, b.recipient_participant_id, b.supplier_name, b.form, b.purpose, \
               b.description, b.state, b.recorded_by, pj.name \
             ORDER BY b.paid_at, b.id LIMIT $4 OFFSET $5",
            flw = s.flows
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(&window.from)
            .bind(&window.until)
            .bind(window.limit)
            .bind(window.offset)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ExportDisbursement {
                    row: crate::DisbursementRow {
                        id: r.try_get("id")?,
                        project_id: r.try_get("project_id")?,
                        household_id: r.try_get("household_id")?,
                        people_count: r.try_get("people_count")?,
                        amount_fen: r.try_get("amount_fen")?,
                        paid_at: r.try_get("paid_at")?,
                        recipient_kind: r.try_get("recipient_kind")?,
                        recipient_participant_id: r.try_get("recipient_participant_id")?,
                        supplier_name: r.try_get("supplier_name")?,
                        form: r.try_get("form")?,
                        purpose: r.try_get("purpose")?,
                        description: r.try_get("description")?,
                        state: r.try_get("state")?,
                        recorded_by: r.try_get("recorded_by")?,
                    },
                    project_name: r.try_get("project_name")?,
                    scope_fen: r.try_get("scope_fen")?,
                })
            })
            .collect()
    }

    /// The name and organization of a fund.
    pub async fn fund(&self, id: &str) -> Result<Option<crate::FundRow>> {
        let row = sqlx::query("SELECT id, org_id, name, created_at FROM funds WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| {
            Ok(crate::FundRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// The receipts issued in `[from, until)` for a donor's donations, oldest first, at most
    /// `limit`, voided ones left out, with whether the donation was anonymous.
    pub async fn donor_receipts_issued(
        &self,
        participant_id: &str,
        from: &str,
        until: &str,
        limit: i64,
    ) -> Result<Vec<(crate::ReceiptRow, bool)>> {
        let rows = sqlx::query(
            "SELECT r.number, r.org_id, r.year, r.seq, r.donation_id, r.amount_fen, r.payer_name, \
               r.payer_code, r.item, r.quantity, r.check_code, r.state, r.replaces_number, \
               r.issued_at, r.voided_at, d.anonymous \
             FROM receipts r JOIN donations d ON d.id = r.donation_id \
             WHERE d.donor_participant_id = $1 AND r.state <> 'voided' \
               AND r.issued_at >= $2 AND r.issued_at < $3 \
             ORDER BY r.issued_at, r.number LIMIT $4",
        )
        .bind(participant_id)
        .bind(from)
        .bind(until)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    crate::ReceiptRow {
                        number: r.try_get("number")?,
                        org_id: r.try_get("org_id")?,
                        year: r.try_get("year")?,
                        seq: r.try_get("seq")?,
                        donation_id: r.try_get("donation_id")?,
                        amount_fen: r.try_get("amount_fen")?,
                        payer_name: r.try_get("payer_name")?,
                        payer_code: r.try_get("payer_code")?,
                        item: r.try_get("item")?,
                        quantity: r.try_get("quantity")?,
                        check_code: r.try_get("check_code")?,
                        state: r.try_get("state")?,
                        replaces_number: r.try_get("replaces_number")?,
                        issued_at: r.try_get("issued_at")?,
                        voided_at: r.try_get("voided_at")?,
                    },
                    get_flag(r, "anonymous")?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_types_name_their_columns() {
        assert_eq!(CampaignUnitRow::COLUMNS.len(), 5);
        assert_eq!(CardPointConversionRow::COLUMNS.len(), 8);
        assert_eq!(CAMPAIGN_COLUMNS.split(", ").count(), 10);
    }
}
