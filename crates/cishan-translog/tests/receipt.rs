//! The receipt document verifier, on documents built in memory.

use cishan_translog::receipt::check;
use cishan_translog::*;
use serde_json::{json, Value};

fn receipt(number: &str, amount_fen: i64) -> Value {
    json!({
        "number": number, "issuer": "鹿城区慈善总会", "issuer_credit_code": "51330302MJ0000000X",
        "payer": "王*测", "issued_on": "2026-12-03", "item": "捐赠", "quantity": 1,
        "amount_fen": amount_fen, "state": "issued", "check_code": "8F3A", "donation_id": "don_1",
        "replaces": null
    })
}

/// A log of `size` facts whose leaf `index` is a receipt, and that receipt's document.
fn document(key: &LogKey, size: u64, index: u64) -> ReceiptDocument {
    let mut tree = MemoryTree::new();
    let mut wanted = None;
    for i in 0..size {
        let number = format!("2026-LC01-{i:07}");
        let fact = json!({ "receipt": receipt(&number, 1000 + i64::try_from(i).unwrap()) });
        let leaf = fact_leaf("receipt.issued", &fact).unwrap();
        tree.append(leaf.as_bytes());
        if i == index {
            wanted = Some((fact["receipt"].clone(), leaf));
        }
    }
    let (receipt, leaf) = wanted.unwrap();
    let head = key.sign_head(
        size,
        &tree.root(size).unwrap(),
        "2026-12-03T13:41:02Z".parse().unwrap(),
    );
    ReceiptDocument {
        receipt,
        leaf_index: index,
        leaf,
        tree_head: head,
        inclusion_proof: encode_hashes(&inclusion_proof(&tree, index, size).unwrap()),
    }
}

fn failed(report: &VerificationReport) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

#[test]
fn a_genuine_document_passes_every_check() {
    let key = LogKey::from_seed([3; 32]);
    for (size, index) in [(1, 0), (7, 0), (7, 6), (57, 41)] {
        let doc = document(&key, size, index);
        let report = verify_receipt(&doc, &key.public_key());
        assert!(report.all_passed(), "{size}/{index}: {report:?}");
        assert_eq!(report.checks.len(), 4);
        let text = serde_json::to_string_pretty(&doc).unwrap();
        assert!(verify_receipt_text(&text, &key.public_key()).all_passed());
    }
}

#[test]
fn an_edited_receipt_is_caught_by_the_leaf_check() {
    let key = LogKey::from_seed([3; 32]);
    let mut doc = document(&key, 9, 4);
    doc.receipt["amount_fen"] = json!(999_999);
    let report = verify_receipt(&doc, &key.public_key());
    assert_eq!(failed(&report), [check::LEAF_MATCHES_RECEIPT]);
    assert!(report.checks[1].message.contains("amount_fen"));
}

#[test]
fn an_edited_leaf_is_caught_by_the_inclusion_check() {
    let key = LogKey::from_seed([3; 32]);
    let mut doc = document(&key, 9, 4);
    doc.leaf = doc.leaf.replace("1004", "9004");
    doc.receipt["amount_fen"] = json!(9004);
    let report = verify_receipt(&doc, &key.public_key());
    assert_eq!(failed(&report), [check::INCLUSION]);
}

#[test]
fn a_changed_proof_index_or_size_fails_inclusion() {
    let key = LogKey::from_seed([3; 32]);
    let doc = document(&key, 9, 4);
    let mut bad_proof = doc.clone();
    let first = if bad_proof.inclusion_proof[1].starts_with('0') {
        "1"
    } else {
        "0"
    };
    bad_proof.inclusion_proof[1].replace_range(0..1, first);
    let mut bad_index = doc.clone();
    bad_index.leaf_index = 5;
    let mut not_hex = doc.clone();
    not_hex.inclusion_proof[0] = "zz".into();
    for bad in [bad_proof, bad_index, not_hex] {
        let report = verify_receipt(&bad, &key.public_key());
        assert_eq!(failed(&report), [check::INCLUSION], "{report:?}");
    }
    let mut bad_size = doc.clone();
    bad_size.tree_head.tree_size = 10;
    let report = verify_receipt(&bad_size, &key.public_key());
    // An audit path can fit more than one tree size (leaf 4's path is the same in trees of 9
    // and 10 leaves), so it is the signature that pins the size down.
    assert_eq!(failed(&report), [check::SIGNATURE]);
    bad_size.tree_head.tree_size = 17;
    let report = verify_receipt(&bad_size, &key.public_key());
    assert_eq!(failed(&report), [check::INCLUSION, check::SIGNATURE]);
}

#[test]
fn another_key_or_an_edited_head_fails_the_signature() {
    let key = LogKey::from_seed([3; 32]);
    let doc = document(&key, 9, 4);
    let other = LogKey::from_seed([4; 32]);
    let report = verify_receipt(&doc, &other.public_key());
    assert_eq!(failed(&report), [check::SIGNATURE]);
    let mut later = doc.clone();
    later.tree_head.timestamp = "2027-01-01T00:00:00.000000Z".into();
    assert_eq!(
        failed(&verify_receipt(&later, &key.public_key())),
        [check::SIGNATURE]
    );
}

#[test]
fn text_that_is_not_a_document_fails_one_check() {
    let key = LogKey::from_seed([3; 32]);
    let report = verify_receipt_text("{\"receipt\": 1}", &key.public_key());
    assert!(!report.all_passed());
    assert_eq!(failed(&report), [check::DOCUMENT]);
}
