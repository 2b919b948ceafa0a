//! SQL for the donation ledger: lots, flows, double-entry transfers, refunds, allocations,
//! receipts and idempotency keys. The rules (what to take from where) live in
//! `cishan_core::ledger` and the app layer; this module only reads and writes rows, and turns
//! caps into conditional updates whose row counts are checked.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::records::{bulk_row, get_flag, AnyQuery, BulkRow};
use crate::{Result, Store, StoreError, WriteTx};

/// One movement of a donation's money (see docs/ledger.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowRow {
    pub donation_id: String,
    pub kind: String,
    pub ref_id: String,
    pub from_id: String,
    pub to_id: String,
    pub amount_fen: i64,
    pub at: String,
}
bulk_row!(FlowRow, "flows", [donation_id, kind, ref_id, from_id, to_id, amount_fen, at], flags []);

/// One side of a double-entry transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntryRow {
    pub transfer_id: String,
    pub account: String,
    pub amount_fen: i64,
    pub at: String,
}
bulk_row!(LedgerEntryRow, "ledger_entries", [transfer_id, account, amount_fen, at], flags []);

/// Part of a donation held by a fund or a project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LotRow {
    pub donation_id: String,
    pub holder_kind: String,
    pub holder_id: String,
    pub order_key: String,
    pub remaining_fen: i64,
}
bulk_row!(LotRow, "lots", [donation_id, holder_kind, holder_id, order_key, remaining_fen], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AllocationRow {
    pub id: String,
    pub batch_id: String,
    pub fund_id: String,
    pub project_id: String,
    pub amount_fen: i64,
    pub weight: i64,
    pub allocated_at: String,
    pub recorded_by: String,
}
bulk_row!(AllocationRow, "allocations",
    [id, batch_id, fund_id, project_id, amount_fen, weight, allocated_at, recorded_by], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefundRow {
    pub id: String,
    pub donation_id: String,
    pub amount_fen: i64,
    pub reason: String,
    pub refunded_at: String,
    pub recorded_by: String,
}
bulk_row!(RefundRow, "refunds", [id, donation_id, amount_fen, reason, refunded_at, recorded_by], flags []);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceRow {
    pub id: String,
    pub disbursement_id: String,
    pub file_name: String,
    pub content_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub uploaded_at: String,
}
bulk_row!(EvidenceRow, "evidence",
    [id, disbursement_id, file_name, content_type, sha256, size_bytes, uploaded_at], flags []);

/// A donation receipt (公益事业捐赠票据).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiptRow {
    pub number: String,
    pub org_id: String,
    pub year: i64,
    pub seq: i64,
    pub donation_id: String,
    pub amount_fen: i64,
    pub payer_name: String,
    pub payer_code: Option<String>,
    pub item: String,
    pub quantity: i64,
    pub check_code: String,
    pub state: String,
    pub replaces_number: Option<String>,
    pub issued_at: String,
    pub voided_at: Option<String>,
}
bulk_row!(ReceiptRow, "receipts",
    [number, org_id, year, seq, donation_id, amount_fen, payer_name, payer_code, item, quantity,
     check_code, state, replaces_number, issued_at, voided_at], flags []);

/// A stored response to a request made with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    pub request_hash: String,
    pub status: i64,
    pub response: String,
}

/// An `idempotency_keys` row, as staged.
#[derive(Debug, Clone)]
struct IdempotencyRow {
    scope: String,
    key: String,
    request_hash: String,
    status: i64,
    response: String,
    created_at: String,
}
bulk_row!(IdempotencyRow, "idempotency_keys",
    [scope, key, request_hash, status, response, created_at], flags []);

pub(crate) const DONATION_COLUMNS: &str =
    "id, donor_participant_id, amount_fen, currency, fund_id, project_id, \
    received_at, org_id, kind, channel, payment_ref, donor_name, goods_item, goods_quantity, \
    goods_unit, valued_by, refunded_fen, matched_donation_id, pool_id, campaign_id, \
    campaign_unit_id, recorded_by, anonymous";

const DISBURSEMENT_COLUMNS: &str = "id, project_id, household_id, people_count, amount_fen, \
    paid_at, recipient_kind, recipient_participant_id, supplier_name, form, purpose, description, \
    state, recorded_by";

const RECEIPT_COLUMNS: &str = "number, org_id, year, seq, donation_id, amount_fen, payer_name, \
    payer_code, item, quantity, check_code, state, replaces_number, issued_at, voided_at";

pub(crate) fn donation_from_row(r: &AnyRow) -> Result<crate::DonationRow> {
    Ok(crate::DonationRow {
        id: r.try_get("id")?,
        donor_participant_id: r.try_get("donor_participant_id")?,
        amount_fen: r.try_get("amount_fen")?,
        currency: r.try_get("currency")?,
        fund_id: r.try_get("fund_id")?,
        project_id: r.try_get("project_id")?,
        received_at: r.try_get("received_at")?,
        org_id: r.try_get("org_id")?,
        kind: r.try_get("kind")?,
        channel: r.try_get("channel")?,
        payment_ref: r.try_get("payment_ref")?,
        donor_name: r.try_get("donor_name")?,
        goods_item: r.try_get("goods_item")?,
        goods_quantity: r.try_get("goods_quantity")?,
        goods_unit: r.try_get("goods_unit")?,
        valued_by: r.try_get("valued_by")?,
        refunded_fen: r.try_get("refunded_fen")?,
        matched_donation_id: r.try_get("matched_donation_id")?,
        pool_id: r.try_get("pool_id")?,
        campaign_id: r.try_get("campaign_id")?,
        campaign_unit_id: r.try_get("campaign_unit_id")?,
        recorded_by: r.try_get("recorded_by")?,
        anonymous: get_flag(r, "anonymous")?,
    })
}

fn disbursement_from_row(r: &AnyRow) -> Result<crate::DisbursementRow> {
    Ok(crate::DisbursementRow {
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
    })
}

fn receipt_from_row(r: &AnyRow) -> Result<ReceiptRow> {
    Ok(ReceiptRow {
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
    })
}

fn flow_from_row(r: &AnyRow) -> Result<FlowRow> {
    Ok(FlowRow {
        donation_id: r.try_get("donation_id")?,
        kind: r.try_get("kind")?,
        ref_id: r.try_get("ref_id")?,
        from_id: r.try_get("from_id")?,
        to_id: r.try_get("to_id")?,
        amount_fen: r.try_get("amount_fen")?,
        at: r.try_get("at")?,
    })
}

fn lot_from_row(r: &AnyRow) -> Result<LotRow> {
    Ok(LotRow {
        donation_id: r.try_get("donation_id")?,
        holder_kind: r.try_get("holder_kind")?,
        holder_id: r.try_get("holder_id")?,
        order_key: r.try_get("order_key")?,
        remaining_fen: r.try_get("remaining_fen")?,
    })
}

impl WriteTx {
    /// Serialises this transaction against every other writer before it reads balances: bumps
    /// the journal head row, whose row lock PostgreSQL holds until commit (SQLite has one
    /// writer already). Call it first in every transaction that moves money.
    pub async fn lock_writes(&mut self) -> Result<()> {
        self.flush().await?;
        if crate::anonymous_params(self.raw()) {
            // SQLite: `Store::begin` took the write lock with `BEGIN IMMEDIATE`.
            return Ok(());
        }
        sqlx::query("UPDATE journal_head SET seq = seq WHERE id = 1")
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The stored response for `(scope, key)`, if a request with that key already committed
    /// (or was saved earlier in this transaction).
    pub async fn idempotent_response(
        &mut self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotentResponse>> {
        let memo_key = (scope.to_owned(), key.to_owned());
        if let Some(known) = self.staging().and_then(|s| s.idempotency.get(&memo_key)) {
            return Ok(known.clone());
        }
        // Keys saved while staging are all in the memo above, so the stored rows are current.
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(self.raw())
        .await?;
        let found = row.as_ref().map(idempotent_from_row).transpose()?;
        if let Some(staging) = self.staging() {
            staging.idempotency.insert(memo_key, found.clone());
        }
        Ok(found)
    }

    /// Looks up many keys of one scope in one statement and remembers the answers for
    /// [`WriteTx::idempotent_response`]; does nothing unless staging is on.
    pub async fn prefetch_idempotency(&mut self, scope: &str, keys: &[&str]) -> Result<()> {
        if self.staging().is_none() {
            return Ok(());
        }
        let per_statement = crate::staging::rows_per_statement(self.raw(), 1);
        let anonymous = crate::anonymous_params(self.raw());
        for chunk in keys.chunks(per_statement) {
            // The list is padded to a power of two (repeating its last key) so that the
            // statement takes one of a few shapes and stays compiled in the connection's cache.
            let padded = if anonymous {
                chunk.len().next_power_of_two().min(per_statement)
            } else {
                chunk.len()
            };
            let list = (0..padded)
                .map(|i| {
                    if anonymous {
                        "?".to_owned()
                    } else {
                        format!("${}", i + 2)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT key, request_hash, status, response FROM idempotency_keys \
                 WHERE scope = {} AND key IN ({list})",
                if anonymous { "?" } else { "$1" }
            );
            let mut q = sqlx::query(&sql).bind(scope);
            for i in 0..padded {
                q = q.bind(chunk[i.min(chunk.len() - 1)]);
            }
            let rows = q.fetch_all(self.raw()).await?;
            let staging = self.staging().expect("staging is on");
            for key in chunk {
                staging
                    .idempotency
                    .entry((scope.to_owned(), (*key).to_owned()))
                    .or_insert(None);
            }
            for row in &rows {
                let key: String = row.try_get("key")?;
                staging
                    .idempotency
                    .insert((scope.to_owned(), key), Some(idempotent_from_row(row)?));
            }
        }
        Ok(())
    }

    /// Records the response to a request made with `(scope, key)`, in the same transaction as
    /// its effects.
    pub async fn save_idempotent_response(
        &mut self,
        scope: &str,
        key: &str,
        saved: &IdempotentResponse,
        now: &str,
    ) -> Result<()> {
        if let Some(staging) = self.staging() {
            staging
                .idempotency
                .insert((scope.to_owned(), key.to_owned()), Some(saved.clone()));
        }
        self.stage(IdempotencyRow {
            scope: scope.to_owned(),
            key: key.to_owned(),
            request_hash: saved.request_hash.clone(),
            status: saved.status,
            response: saved.response.clone(),
            created_at: now.to_owned(),
        })
        .await
    }

    /// A donation, read inside the transaction.
    pub async fn donation(&mut self, id: &str) -> Result<Option<crate::DonationRow>> {
        self.flush().await?;
        let sql = format!("SELECT {DONATION_COLUMNS} FROM donations WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(donation_from_row).transpose()
    }

    /// The donation already recorded with this payment reference on this channel, if any
    /// (channels whose references are unique: see migration 0011). Deliberately does not flush
    /// (flushing per donation would undo group commit), so it reads on the raw connection and
    /// does not see donations staged in this batch: the unique index refuses a duplicate among
    /// them when the batch commits, after which the writer retries one request at a time and
    /// this check then sees the first.
    pub async fn donation_with_payment_ref(
        &mut self,
        channel: &str,
        payment_ref: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(DONATION_BY_PAYMENT_REF)
            .bind(channel)
            .bind(payment_ref)
            .fetch_optional(self.raw())
            .await?;
        row.map(|r| r.try_get("id")).transpose().map_err(Into::into)
    }

    /// Adds `amount` to a donation's refunded total unless that would exceed the amount.
    /// Returns false (and changes nothing) when it would.
    pub async fn add_refunded(&mut self, donation_id: &str, amount: i64) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE donations SET refunded_fen = refunded_fen + $1 \
             WHERE id = $2 AND refunded_fen + $1 <= amount_fen",
        )
        .bind(amount)
        .bind(donation_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The lots of one holder that still hold money, oldest first.
    pub async fn open_lots(&mut self, holder_kind: &str, holder_id: &str) -> Result<Vec<LotRow>> {
        self.flush().await?;
        let rows = sqlx::query(
            "SELECT donation_id, holder_kind, holder_id, order_key, remaining_fen FROM lots \
             WHERE holder_kind = $1 AND holder_id = $2 AND remaining_fen > 0 ORDER BY order_key",
        )
        .bind(holder_kind)
        .bind(holder_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// Every lot of one donation (including empty ones), in holder order.
    pub async fn lots_of_donation(&mut self, donation_id: &str) -> Result<Vec<LotRow>> {
        self.flush().await?;
        let rows = sqlx::query(
            "SELECT donation_id, holder_kind, holder_id, order_key, remaining_fen FROM lots \
             WHERE donation_id = $1 ORDER BY holder_kind, holder_id",
        )
        .bind(donation_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// Adds `amount` (which may be negative) to a lot, creating it when missing. A change that
    /// would make the lot negative is refused by the table's CHECK and fails the transaction.
    pub async fn add_to_lot(&mut self, lot: &LotRow) -> Result<()> {
        self.flush().await?;
        sqlx::query(
            "INSERT INTO lots (donation_id, holder_kind, holder_id, order_key, remaining_fen) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (donation_id, holder_kind, holder_id) \
             DO UPDATE SET remaining_fen = lots.remaining_fen + excluded.remaining_fen",
        )
        .bind(&lot.donation_id)
        .bind(&lot.holder_kind)
        .bind(&lot.holder_id)
        .bind(&lot.order_key)
        .bind(lot.remaining_fen)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Takes `amount` from a lot if it holds that much; false (and nothing changed) otherwise.
    pub async fn take_from_lot(
        &mut self,
        donation_id: &str,
        holder_kind: &str,
        holder_id: &str,
        amount: i64,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE lots SET remaining_fen = remaining_fen - $1 \
             WHERE donation_id = $2 AND holder_kind = $3 AND holder_id = $4 AND remaining_fen >= $1",
        )
        .bind(amount)
        .bind(donation_id)
        .bind(holder_kind)
        .bind(holder_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The flows recorded under one reference (an allocation, disbursement or refund).
    pub async fn flows_of_ref(&mut self, ref_id: &str) -> Result<Vec<FlowRow>> {
        self.flush().await?;
        let rows = sqlx::query(
            "SELECT donation_id, kind, ref_id, from_id, to_id, amount_fen, at FROM flows \
             WHERE ref_id = $1 ORDER BY id",
        )
        .bind(ref_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(flow_from_row).collect()
    }

    pub async fn disbursement(&mut self, id: &str) -> Result<Option<crate::DisbursementRow>> {
        self.flush().await?;
        let sql = format!("SELECT {DISBURSEMENT_COLUMNS} FROM disbursements WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(disbursement_from_row).transpose()
    }

    /// Marks a paid disbursement reversed; false when it is not (or no longer) paid.
    pub async fn mark_disbursement_reversed(
        &mut self,
        id: &str,
        at: &str,
        reason: &str,
    ) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE disbursements SET state = 'reversed', reversed_at = $1, reversal_reason = $2 \
             WHERE id = $3 AND state = 'paid'",
        )
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The next receipt sequence number of an organization in a year (1, 2, 3… with no gaps:
    /// the counter moves only inside the transaction that issues the receipt).
    pub async fn next_receipt_seq(&mut self, org_id: &str, year: i64) -> Result<i64> {
        if self.staging().is_none() {
            let row = sqlx::query(
                "INSERT INTO receipt_counters (org_id, year, last_seq) VALUES ($1, $2, 1) \
                 ON CONFLICT (org_id, year) DO UPDATE SET last_seq = receipt_counters.last_seq + 1 \
                 RETURNING last_seq",
            )
            .bind(org_id)
            .bind(year)
            .fetch_one(self.conn())
            .await?;
            return Ok(row.try_get("last_seq")?);
        }
        let memo_key = (org_id.to_owned(), year);
        let last = match self.staging().and_then(|s| s.receipt_seqs.get(&memo_key)) {
            Some((last, _)) => *last,
            None => {
                // Counters change only through this memo while staging is on.
                let row = sqlx::query(
                    "SELECT last_seq FROM receipt_counters WHERE org_id = $1 AND year = $2",
                )
                .bind(org_id)
                .bind(year)
                .fetch_optional(self.raw())
                .await?;
                row.map(|r| r.try_get::<i64, _>("last_seq"))
                    .transpose()?
                    .unwrap_or(0)
            }
        };
        let next = last + 1;
        self.staging()
            .expect("staging is on")
            .receipt_seqs
            .insert(memo_key, (next, true));
        Ok(next)
    }

    /// The receipt currently in force for a donation, if any.
    pub async fn issued_receipt_of(&mut self, donation_id: &str) -> Result<Option<ReceiptRow>> {
        self.flush().await?;
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE donation_id = $1 AND state = 'issued'"
        );
        let row = sqlx::query(&sql)
            .bind(donation_id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(receipt_from_row).transpose()
    }

    /// Voids an issued receipt; false when it was not in force.
    pub async fn void_receipt(&mut self, number: &str, at: &str) -> Result<bool> {
        self.flush().await?;
        let done = sqlx::query(
            "UPDATE receipts SET state = 'voided', voided_at = $1 WHERE number = $2 AND state = 'issued'",
        )
        .bind(at)
        .bind(number)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Name and organization of a fund, or of a project (with its fund), for validation.
    pub async fn holder_org(&mut self, holder_kind: &str, id: &str) -> Result<Option<String>> {
        let memo_key = (holder_kind.to_owned(), id.to_owned());
        if let Some(known) = self.staging().and_then(|s| s.holder_orgs.get(&memo_key)) {
            return Ok(known.clone());
        }
        let sql = match holder_kind {
            "fund" => "SELECT org_id FROM funds WHERE id = $1",
            "project" => "SELECT org_id FROM projects WHERE id = $1",
            other => return Err(StoreError::Corrupt(format!("unknown holder kind {other}"))),
        };
        // Funds and projects are never staged.
        let row = sqlx::query(sql).bind(id).fetch_optional(self.raw()).await?;
        let org = row.map(|r| r.try_get("org_id")).transpose()?;
        if let Some(staging) = self.staging() {
            staging.holder_orgs.insert(memo_key, org.clone());
        }
        Ok(org)
    }

    /// A project's state, read inside the transaction (remembered while staging: nothing on
    /// the staged path changes a project).
    pub async fn project_state(&mut self, id: &str) -> Result<Option<(String, String)>> {
        if let Some(known) = self.staging().and_then(|s| s.project_states.get(id)) {
            return Ok(known.clone());
        }
        let row = sqlx::query("SELECT org_id, state FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(self.raw())
            .await?;
        let state = row
            .map(|r| Ok::<_, StoreError>((r.try_get("org_id")?, r.try_get("state")?)))
            .transpose()?;
        if let Some(staging) = self.staging() {
            staging.project_states.insert(id.to_owned(), state.clone());
        }
        Ok(state)
    }

    /// An organization's name and credit code, read inside the transaction (remembered while
    /// staging).
    pub async fn organization_identity(
        &mut self,
        org_id: &str,
    ) -> Result<Option<(String, String)>> {
        if let Some(known) = self.staging().and_then(|s| s.organizations.get(org_id)) {
            return Ok(known.clone());
        }
        let row = sqlx::query("SELECT name, credit_code FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(self.raw())
            .await?;
        let identity = row
            .map(|r| Ok::<_, StoreError>((r.try_get("name")?, r.try_get("credit_code")?)))
            .transpose()?;
        if let Some(staging) = self.staging() {
            staging
                .organizations
                .insert(org_id.to_owned(), identity.clone());
        }
        Ok(identity)
    }
}

fn idempotent_from_row(r: &AnyRow) -> Result<IdempotentResponse> {
    Ok(IdempotentResponse {
        request_hash: r.try_get("request_hash")?,
        status: r.try_get("status")?,
        response: r.try_get("response")?,
    })
}

/// What a trace shows about one disbursement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TracedDisbursement {
    pub row: crate::DisbursementRow,
    pub project_name: String,
    pub evidence: Vec<EvidenceRow>,
}

/// Repeats the WHERE clause of the unique index `donations_payment_ref` (migration 0011) so
/// that SQLite uses it.
const DONATION_BY_PAYMENT_REF: &str = "SELECT id FROM donations \
    WHERE channel = $1 AND payment_ref = $2 AND channel NOT IN ('match', 'card_points')";

/// Channels whose donations share a payment reference by design (matches: the pool; card point
/// conversions: the bank's batch), left out of the unique index.
pub const SHARED_PAYMENT_REF_CHANNELS: [&str; 2] = ["match", "card_points"];

impl Store {
    /// An organization's name and credit code, without its totals (receipts need only these).
    pub async fn organization_identity(&self, org_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT name, credit_code FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok((r.try_get("name")?, r.try_get("credit_code")?)))
            .transpose()
    }

    /// The donation recorded with this payment reference on this channel, if any.
    pub async fn donation_with_payment_ref(
        &self,
        channel: &str,
        payment_ref: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(DONATION_BY_PAYMENT_REF)
            .bind(channel)
            .bind(payment_ref)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| r.try_get("id")).transpose().map_err(Into::into)
    }

    pub async fn donation(&self, id: &str) -> Result<Option<crate::DonationRow>> {
        let sql = format!("SELECT {DONATION_COLUMNS} FROM donations WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(donation_from_row).transpose()
    }

    /// The flows of one donation, oldest first.
    pub async fn flows_of_donation(&self, donation_id: &str) -> Result<Vec<FlowRow>> {
        let rows = sqlx::query(
            "SELECT donation_id, kind, ref_id, from_id, to_id, amount_fen, at FROM flows \
             WHERE donation_id = $1 ORDER BY id",
        )
        .bind(donation_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(flow_from_row).collect()
    }

    pub async fn lots_of_donation(&self, donation_id: &str) -> Result<Vec<LotRow>> {
        let rows = sqlx::query(
            "SELECT donation_id, holder_kind, holder_id, order_key, remaining_fen FROM lots \
             WHERE donation_id = $1 ORDER BY holder_kind, holder_id",
        )
        .bind(donation_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(lot_from_row).collect()
    }

    /// Disbursements by id, with their project's name and evidence.
    pub async fn traced_disbursements(&self, ids: &[String]) -> Result<Vec<TracedDisbursement>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let sql = format!(
                "SELECT d.{}, p.name AS project_name FROM disbursements d \
                 JOIN projects p ON p.id = d.project_id WHERE d.id = $1",
                DISBURSEMENT_COLUMNS.replace(", ", ", d.")
            );
            let Some(row) = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(self.reader())
                .await?
            else {
                continue;
            };
            let evidence = sqlx::query(
                "SELECT id, disbursement_id, file_name, content_type, sha256, size_bytes, uploaded_at \
                 FROM evidence WHERE disbursement_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| {
                Ok(EvidenceRow {
                    id: r.try_get("id")?,
                    disbursement_id: r.try_get("disbursement_id")?,
                    file_name: r.try_get("file_name")?,
                    content_type: r.try_get("content_type")?,
                    sha256: r.try_get("sha256")?,
                    size_bytes: r.try_get("size_bytes")?,
                    uploaded_at: r.try_get("uploaded_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            out.push(TracedDisbursement {
                row: disbursement_from_row(&row)?,
                project_name: row.try_get("project_name")?,
                evidence,
            });
        }
        Ok(out)
    }

    pub async fn receipt(&self, number: &str) -> Result<Option<ReceiptRow>> {
        let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE number = $1");
        let row = sqlx::query(&sql)
            .bind(number)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(receipt_from_row).transpose()
    }

    /// Every receipt of a donation, oldest first (voided ones included).
    pub async fn receipts_of_donation(&self, donation_id: &str) -> Result<Vec<ReceiptRow>> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE donation_id = $1 ORDER BY issued_at, number"
        );
        let rows = sqlx::query(&sql)
            .bind(donation_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(receipt_from_row).collect()
    }

    /// The donations of one donor, newest first.
    pub async fn donations_of_donor(
        &self,
        participant_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<crate::DonationRow>> {
        let sql = format!(
            "SELECT {DONATION_COLUMNS} FROM donations WHERE donor_participant_id = $1 \
             ORDER BY received_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(participant_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(donation_from_row).collect()
    }

    /// The display name of a participant (used to name registered donors, masked by callers).
    pub async fn participant_name(&self, id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT display_name, kind FROM participants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| Ok((r.try_get("display_name")?, r.try_get("kind")?)))
            .transpose()
    }

    /// Sums of ledger entries per account whose entries do not balance per transfer: each
    /// returned transfer id is a double-entry violation.
    pub async fn unbalanced_transfers(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT transfer_id, CAST(SUM(amount_fen) AS BIGINT) AS total FROM ledger_entries \
             GROUP BY transfer_id HAVING SUM(amount_fen) <> 0 ORDER BY transfer_id LIMIT 100",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("transfer_id")?, r.try_get("total")?)))
            .collect()
    }

    /// Donations whose amount is not equal to refunded + lots + net disbursed flows.
    pub async fn unreconciled_donations(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT d.id, d.amount_fen, \
               d.refunded_fen \
               + COALESCE((SELECT CAST(SUM(l.remaining_fen) AS BIGINT) FROM lots l WHERE l.donation_id = d.id), 0) \
               + COALESCE((SELECT CAST(SUM(CASE f.kind WHEN 'disbursement' THEN f.amount_fen \
                    WHEN 'disbursement_reversed' THEN -f.amount_fen ELSE 0 END) AS BIGINT) \
                    FROM flows f WHERE f.donation_id = d.id), 0) AS accounted \
             FROM donations d WHERE EXISTS (SELECT 1 FROM lots l WHERE l.donation_id = d.id)",
        )
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let amount: i64 = r.try_get("amount_fen")?;
            let accounted: i64 = r.try_get("accounted")?;
            if amount != accounted {
                out.push((r.try_get("id")?, amount, accounted));
            }
        }
        Ok(out)
    }
}

/// Cross-checks between the ledger's tables, each a query returning `(key, detail)` rows that
/// should not exist. Used by `cishan verify`.
const CROSS_CHECKS: &[(&str, &str)] = &[
    (
        "a fund's or project's lots do not equal its double-entry balance",
        "SELECT h.account AS k, CAST(h.lots AS BIGINT) AS a, CAST(COALESCE(e.total, 0) AS BIGINT) AS b FROM \
           (SELECT holder_kind || ':' || holder_id AS account, SUM(remaining_fen) AS lots \
              FROM lots GROUP BY holder_kind, holder_id) h \
           LEFT JOIN (SELECT account, SUM(amount_fen) AS total FROM ledger_entries GROUP BY account) e \
             ON e.account = h.account \
         WHERE h.lots <> COALESCE(e.total, 0)",
    ),
    (
        "a disbursement's amount or state does not match the money its flows moved",
        "SELECT d.id AS k, d.amount_fen AS a, CAST(COALESCE(SUM(CASE f.kind \
             WHEN 'disbursement' THEN f.amount_fen WHEN 'disbursement_reversed' THEN -f.amount_fen \
             ELSE 0 END), 0) AS BIGINT) AS b \
         FROM disbursements d LEFT JOIN flows f ON f.ref_id = d.id \
         WHERE EXISTS (SELECT 1 FROM flows x WHERE x.ref_id = d.id) \
         GROUP BY d.id, d.amount_fen, d.state \
         HAVING (d.state = 'paid' AND COALESCE(SUM(CASE f.kind WHEN 'disbursement' THEN f.amount_fen \
                   WHEN 'disbursement_reversed' THEN -f.amount_fen ELSE 0 END), 0) <> d.amount_fen) \
             OR (d.state <> 'paid' AND COALESCE(SUM(CASE f.kind WHEN 'disbursement' THEN f.amount_fen \
                   WHEN 'disbursement_reversed' THEN -f.amount_fen ELSE 0 END), 0) <> 0)",
    ),
    (
        "an allocation's amount does not match the money its flows moved",
        "SELECT a.id AS k, a.amount_fen AS a, CAST(COALESCE(SUM(f.amount_fen), 0) AS BIGINT) AS b \
         FROM allocations a LEFT JOIN flows f ON f.ref_id = a.id AND f.kind = 'allocation' \
         GROUP BY a.id, a.amount_fen HAVING COALESCE(SUM(f.amount_fen), 0) <> a.amount_fen",
    ),
    (
        "a donation's refunded total does not match its refunds",
        "SELECT d.id AS k, d.refunded_fen AS a, \
           CAST(COALESCE((SELECT SUM(r.amount_fen) FROM refunds r WHERE r.donation_id = d.id), 0) AS BIGINT) AS b \
         FROM donations d \
         WHERE d.refunded_fen <> COALESCE((SELECT SUM(r.amount_fen) FROM refunds r WHERE r.donation_id = d.id), 0)",
    ),
    (
        "a donation names a fund or project that holds none of its money (moved outside the platform)",
        "SELECT d.id AS k, d.amount_fen AS a, 0 AS b FROM donations d \
         WHERE EXISTS (SELECT 1 FROM lots l2 WHERE l2.donation_id = d.id) \
           AND NOT EXISTS (SELECT 1 FROM lots l WHERE l.donation_id = d.id AND \
             ((d.project_id IS NOT NULL AND l.holder_kind = 'project' AND l.holder_id = d.project_id) \
              OR (d.project_id IS NULL AND l.holder_kind = 'fund' AND l.holder_id = d.fund_id)))",
    ),
    (
        "a matching pool's used total does not match the matches it gave",
        "SELECT p.id AS k, p.used_fen AS a, \
           CAST(COALESCE((SELECT SUM(m.amount_fen - m.refunded_fen) FROM donations m WHERE m.pool_id = p.id), 0) AS BIGINT) AS b \
         FROM match_pools p \
         WHERE p.used_fen <> COALESCE((SELECT SUM(m.amount_fen - m.refunded_fen) FROM donations m WHERE m.pool_id = p.id), 0)",
    ),
];

impl Store {
    /// Every row the cross-checks find, as sentences.
    pub async fn ledger_cross_check(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for (what, sql) in CROSS_CHECKS {
            let rows = sqlx::query(sql).fetch_all(self.reader()).await?;
            for r in rows.iter().take(100) {
                let key: String = r.try_get("k")?;
                let a: i64 = r.try_get("a")?;
                let b: i64 = r.try_get("b")?;
                problems.push(format!("{key}: {what} ({a} vs {b})"));
            }
        }
        Ok(problems)
    }

    /// Every evidence file's recorded SHA-256.
    pub async fn evidence_hashes(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, sha256 FROM evidence ORDER BY id")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("sha256")?)))
            .collect()
    }
}

/// Tables whose rows tests and reports may count.
const COUNTABLE: &[&str] = &[
    "journal",
    "donations",
    "receipts",
    "lots",
    "flows",
    "ledger_entries",
    "allocations",
    "disbursements",
    "refunds",
    "evidence",
    "idempotency_keys",
    "card_point_conversions",
    "log_leaves",
];

impl Store {
    /// The number of rows in one of the ledger's tables.
    pub async fn count_rows(&self, table: &str) -> Result<i64> {
        if !COUNTABLE.contains(&table) {
            return Err(StoreError::Corrupt(format!("{table} is not countable")));
        }
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("n")?)
    }
}

impl WriteTx {
    /// Whether a row with this id exists in `households` or `participants`.
    pub async fn exists(&mut self, table: &str, id: &str) -> Result<bool> {
        self.flush().await?;
        let sql = match table {
            "households" => "SELECT COUNT(*) AS n FROM households WHERE id = $1",
            "participants" => "SELECT COUNT(*) AS n FROM participants WHERE id = $1",
            other => return Err(StoreError::Corrupt(format!("{other} is not checkable"))),
        };
        let row = sqlx::query(sql).bind(id).fetch_one(self.conn()).await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn column_lists_match_row_types() {
        use super::*;
        assert_eq!(
            DONATION_COLUMNS.split(", ").count(),
            <crate::DonationRow as BulkRow>::COLUMNS.len()
        );
        assert_eq!(
            DISBURSEMENT_COLUMNS.split(", ").count(),
            <crate::DisbursementRow as BulkRow>::COLUMNS.len()
        );
        assert_eq!(
            RECEIPT_COLUMNS.split(", ").count(),
            ReceiptRow::COLUMNS.len()
        );
    }
}
