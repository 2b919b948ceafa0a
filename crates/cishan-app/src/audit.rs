//! Checking the ledger against itself and against the public log: every donation reconciles
//! (`amount = refunded + lots + disbursed`), every double-entry transfer sums to zero, and every
//! receipt in the database still says what its transparency-log leaf says (so an amount, payer
//! or number edited directly in the database is found).

use cishan_core::ANONYMOUS_ZH;
use sha2::Digest;

use crate::donations::ReceiptFact;
use crate::{App, AppError, Result};

/// Leaves read per query while auditing.
const AUDIT_PAGE: i64 = 2_000;

impl App {
    /// Every inconsistency in the ledger and between receipts and the log, as sentences.
    pub async fn verify_ledger(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for (id, amount, accounted) in self.store().unreconciled_donations().await? {
            problems.push(format!(
                "donation {id}: amount {amount} fen but refunds, lots and disbursements account for {accounted} fen"
            ));
        }
        for (transfer, sum) in self.store().unbalanced_transfers().await? {
            problems.push(format!(
                "transfer {transfer}: its ledger entries sum to {sum} fen, not 0"
            ));
        }
        problems.extend(self.store().ledger_cross_check().await?);
        for (id, sha) in self.store().evidence_hashes().await? {
            let path = self.data_dir().join("evidence").join(&sha);
            let intact = std::fs::read(&path)
                .map(|bytes| hex::encode(sha2::Sha256::digest(&bytes)) == sha)
                .unwrap_or(false);
            if !intact {
                problems.push(format!(
                    "evidence {id}: no stored file has the recorded SHA-256 {sha} (file or hash changed)"
                ));
            }
        }
        let mut voided_in_log = std::collections::BTreeSet::new();
        let mut logged_receipts = 0_i64;
        let mut issued_numbers = Vec::new();
        let mut from = 0_u64;
        loop {
            let leaves = self.store().log_leaves_page(from, AUDIT_PAGE).await?;
            let Some(last) = leaves.last() else { break };
            from = last.leaf_index + 1;
            for leaf in leaves.iter().filter(|l| l.kind == "receipt.voided") {
                voided_in_log.insert(leaf.subject.clone());
            }
            for leaf in leaves.iter().filter(|l| l.kind == "receipt.issued") {
                logged_receipts += 1;
                let value: serde_json::Value =
                    serde_json::from_str(&leaf.leaf).map_err(AppError::internal)?;
                let logged: ReceiptFact =
                    serde_json::from_value(value["receipt"].clone()).map_err(AppError::internal)?;
                match self.current_fact(&leaf.subject).await? {
                    None => problems.push(format!(
                        "receipt {}: in the log (leaf {}) but not in the database",
                        leaf.subject, leaf.leaf_index
                    )),
                    Some(fact) if fact != logged => problems.push(format!(
                        "receipt {}: the database no longer matches log leaf {} (edited outside the platform)",
                        leaf.subject, leaf.leaf_index
                    )),
                    Some(_) => {}
                }
                issued_numbers.push(leaf.subject.clone());
            }
        }
        for number in issued_numbers {
            let Some(row) = self.store().receipt(&number).await? else {
                continue;
            };
            let voided = voided_in_log.contains(&number);
            if voided != (row.state == "voided") {
                problems.push(format!(
                    "receipt {number}: the database says `{}` but the log says it was {}",
                    row.state,
                    if voided { "voided" } else { "never voided" }
                ));
            }
        }
        let receipts = self.store().count_rows("receipts").await?;
        if receipts != logged_receipts {
            problems.push(format!(
                "{receipts} receipts in the database but {logged_receipts} in the log (receipts inserted or deleted outside the platform)"
            ));
        }
        Ok(problems)
    }

    /// A receipt's public fields as the database holds them now.
    async fn current_fact(&self, number: &str) -> Result<Option<ReceiptFact>> {
        let Some(receipt) = self.store().receipt(number).await? else {
            return Ok(None);
        };
        let anonymous = match self.store().donation(&receipt.donation_id).await? {
            Some(d) => d.anonymous,
            None => receipt.payer_name == ANONYMOUS_ZH,
        };
        let (issuer, code) = self.org_name_and_code(&receipt.org_id).await?;
        Ok(Some(self.receipt_fact(&receipt, anonymous, &issuer, &code)))
    }
}
