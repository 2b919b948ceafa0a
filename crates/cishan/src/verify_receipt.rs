//! `cishan verify --receipt FILE --key FILE`: checks a receipt document offline, with nothing but
//! the document (from `GET /api/v1/receipts/{number}`) and the log's public key (the JSON of
//! `GET /api/v1/log/key`, or its bare base64 public key). No database, no network.
//!
//! The checks themselves are `cishan_translog::verify_receipt`'s; this module reads the files
//! and prints one line per check.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Verifies `receipt` with the public key in `key`, prints every check to standard output and
/// returns whether all of them passed. Unreadable files and an unusable key are errors.
pub fn run(receipt: &Path, key: &Path) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    run_to(receipt, key, &mut out)
}

/// [`run`], printing to `out`.
pub fn run_to(receipt: &Path, key: &Path, out: &mut impl Write) -> anyhow::Result<bool> {
    let key_text = std::fs::read_to_string(key).with_context(|| {
        format!(
            "无法读取公钥文件 cannot read the public key file {}",
            key.display()
        )
    })?;
    let public_key = cishan_translog::parse_public_key(&key_text).with_context(|| {
        format!(
            "公钥文件无效 {} is not the log's public key (save the JSON of GET /api/v1/log/key, or its \"public_key\" value)",
            key.display()
        )
    })?;
    let document = std::fs::read_to_string(receipt).with_context(|| {
        format!(
            "无法读取收据文件 cannot read the receipt document {}",
            receipt.display()
        )
    })?;
    let report = cishan_translog::verify_receipt_text(&document, &public_key);
    writeln!(
        out,
        "收据验证 receipt document {} (key {})",
        receipt.display(),
        cishan_translog::key_id(&public_key)
    )?;
    for check in &report.checks {
        let mark = if check.passed {
            "通过 PASS"
        } else {
            "失败 FAIL"
        };
        writeln!(out, "  [{mark}] {}: {}", check.name, check.message)?;
    }
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    // The proofs show the receipt was issued into the log. A refund voids it by a later leaf,
    // which the document reports as its status; a voided receipt no longer counts.
    let status = serde_json::from_str::<serde_json::Value>(&document)
        .ok()
        .and_then(|d| d["status"].as_str().map(str::to_owned));
    let voided = match status.as_deref() {
        Some("issued") => false,
        Some("voided") => true,
        other => {
            // Not signed, so not proof of anything, but a document without a status of either
            // kind was not served by the platform and cannot be vouched for.
            writeln!(
                out,
                "无效 INVALID: the document's status is {}, not \"issued\" or \"voided\"",
                other.map_or("missing".to_owned(), |s| format!("\"{s}\""))
            )?;
            out.flush()?;
            return Ok(false);
        }
    };
    if report.all_passed() && voided {
        writeln!(
            out,
            "已作废 VOIDED: the receipt was issued into the signed log but later voided by a refund; it no longer counts (its replacement, if any, has a new number)"
        )?;
        out.flush()?;
        return Ok(false);
    }
    if report.all_passed() {
        writeln!(
            out,
            "有效 VALID: the receipt was issued into the platform's signed public log. \
             Whether it was voided later is recorded in the log too: check its current status at GET /api/v1/receipts/{{number}}"
        )?;
    } else {
        writeln!(
            out,
            "无效 INVALID: {failed} of {} check(s) failed",
            report.checks.len()
        )?;
    }
    out.flush()?;
    Ok(report.all_passed())
}
