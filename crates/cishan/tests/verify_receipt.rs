//! `cishan verify --receipt FILE --key FILE` on documents built in memory with the translog
//! crate: a genuine document passes; one flipped byte anywhere that matters fails.

// The binary has no library target, so the module is compiled into this test directly.
#[path = "../src/verify_receipt.rs"]
mod verify_receipt;

use std::path::{Path, PathBuf};

use cishan_translog::{encode_hashes, fact_leaf, inclusion_proof, LogKey, MemoryTree};
use serde_json::{json, Value};

/// A signed log of 13 receipts and the receipt document of leaf 9, as the API serves it.
fn document(key: &LogKey) -> Value {
    let mut tree = MemoryTree::new();
    let mut leaves = Vec::new();
    for n in 0..13_u64 {
        let receipt = json!({
            "number": format!("2026-LC01-{n:07}"), "issuer": "鹿城区慈善总会",
            "issuer_credit_code": "51330302MJ0000000X", "payer": "匿名",
            "issued_on": "2026-12-03", "item": "捐赠", "quantity": 1,
            "amount_fen": 50_000 + n, "state": "issued", "check_code": "7C21",
            "donation_id": format!("don_{n}"), "replaces": null
        });
        let leaf = fact_leaf("receipt.issued", &json!({ "receipt": receipt })).unwrap();
        tree.append(leaf.as_bytes());
        leaves.push((receipt, leaf));
    }
    let head = key.sign_head(
        13,
        &tree.root(13).unwrap(),
        "2026-12-03T13:41:02Z".parse().unwrap(),
    );
    let (receipt, leaf) = leaves.swap_remove(9);
    json!({
        "receipt": receipt,
        "status": "issued",
        "leaf_index": 9,
        "leaf": leaf,
        "tree_head": head,
        "inclusion_proof": encode_hashes(&inclusion_proof(&tree, 9, 13).unwrap()),
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn verify(receipt: &Path, key: &Path) -> (bool, String) {
    let mut out = Vec::new();
    let ok = verify_receipt::run_to(receipt, key, &mut out).unwrap();
    (ok, String::from_utf8(out).unwrap())
}

#[test]
fn a_genuine_receipt_verifies_with_either_key_format() {
    let dir = tempfile::tempdir().unwrap();
    let key = LogKey::from_seed([11; 32]);
    let receipt = write(
        dir.path(),
        "receipt.json",
        &serde_json::to_string_pretty(&document(&key)).unwrap(),
    );
    let served = json!({
        "algorithm": "ed25519", "public_key": key.public_key_base64(), "key_id": key.key_id()
    });
    let json_key = write(dir.path(), "key.json", &served.to_string());
    let bare_key = write(
        dir.path(),
        "key.txt",
        &format!("{}\n", key.public_key_base64()),
    );
    for key_file in [&json_key, &bare_key] {
        let (ok, out) = verify(&receipt, key_file);
        assert!(ok, "{out}");
        assert_eq!(out.matches("[通过 PASS]").count(), 4, "{out}");
        assert!(out.contains("有效 VALID"), "{out}");
    }
    assert!(verify_receipt::run(&receipt, &json_key).unwrap());
}

#[test]
fn one_flipped_byte_fails() {
    let dir = tempfile::tempdir().unwrap();
    let key = LogKey::from_seed([11; 32]);
    let key_file = write(dir.path(), "key.txt", &key.public_key_base64());
    let genuine = document(&key);

    // The amount shown on the receipt.
    let mut amount = genuine.clone();
    amount["receipt"]["amount_fen"] = json!(50_010);
    // One byte of the logged leaf text (and the receipt kept in step with it).
    let mut leaf = genuine.clone();
    let text = genuine["leaf"].as_str().unwrap().replace("50009", "50019");
    leaf["leaf"] = json!(text);
    leaf["receipt"]["amount_fen"] = json!(50_019);
    // One hex digit of the proof.
    let mut proof = genuine.clone();
    let first = proof["inclusion_proof"][0].as_str().unwrap().to_owned();
    let flipped = if first.starts_with('0') { "1" } else { "0" };
    proof["inclusion_proof"][0] = json!(format!("{flipped}{}", &first[1..]));
    // One digit of the signed tree size.
    let mut head = genuine.clone();
    head["tree_head"]["tree_size"] = json!(14);

    for (name, bad, failing) in [
        ("amount", amount, "[失败 FAIL] leaf_matches_receipt"),
        ("leaf", leaf, "[失败 FAIL] inclusion"),
        ("proof", proof, "[失败 FAIL] inclusion"),
        ("head", head, "[失败 FAIL] signature"),
    ] {
        let file = write(dir.path(), &format!("{name}.json"), &bad.to_string());
        let (ok, out) = verify(&file, &key_file);
        assert!(!ok, "{name}: {out}");
        assert!(out.contains(failing), "{name}: {out}");
        assert!(out.contains("无效 INVALID"), "{name}: {out}");
    }

    // Another platform's key.
    let other = write(
        dir.path(),
        "other.txt",
        &LogKey::from_seed([12; 32]).public_key_base64(),
    );
    let good = write(dir.path(), "good.json", &genuine.to_string());
    let (ok, out) = verify(&good, &other);
    assert!(!ok);
    assert!(out.contains("[失败 FAIL] signature"), "{out}");
}

#[test]
fn unreadable_inputs_are_errors_that_say_which_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = LogKey::from_seed([11; 32]);
    let receipt = write(dir.path(), "r.json", &document(&key).to_string());
    let missing = dir.path().join("nope.json");
    let err = verify_receipt::run_to(&receipt, &missing, &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("nope.json"), "{err:#}");
    let garbage = write(dir.path(), "k.txt", "not a key");
    let err = verify_receipt::run_to(&receipt, &garbage, &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("k.txt"), "{err:#}");

    let not_json = write(dir.path(), "x.json", "hello");
    let key_file = write(dir.path(), "key.txt", &key.public_key_base64());
    let (ok, out) = verify(&not_json, &key_file);
    assert!(!ok);
    assert!(out.contains("[失败 FAIL] document"), "{out}");
}
