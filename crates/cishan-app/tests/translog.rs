//! The transparency log through the app layer, on a real SQLite file: the key binding, facts
//! appended with their change, signed heads, proofs a client can check, and `verify_log`
//! catching every kind of tampering.

use std::sync::Arc;

use cishan_app::{App, Config, FixedClock};
use cishan_core::region::embedded::lucheng;
use cishan_translog::{
    decode_hash, leaf_hash, parse_public_key, verify_consistency, verify_head, verify_inclusion,
    verify_receipt, Hash, ReceiptDocument,
};
use serde_json::json;

struct Fixture {
    app: App,
    clock: Arc<FixedClock>,
    db_url: String,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2026-12-03T08:00:00Z".parse().unwrap()));
    let db_url = format!("sqlite://{}/app.db", dir.path().display());
    let config = Config {
        database_url: db_url.clone(),
        data_dir: dir.path().join("data"),
    };
    let app = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    Fixture {
        app,
        clock,
        db_url,
        dir,
    }
}

fn receipt(n: u64) -> serde_json::Value {
    json!({
        "number": format!("2026-LC01-{n:07}"), "issuer": "鹿城区慈善总会",
        "issuer_credit_code": "51330302MJ0000000X", "payer": "王*测", "issued_on": "2026-12-03",
        "item": "捐赠", "quantity": 1, "amount_fen": 100_000 + n, "state": "issued",
        "check_code": "8F3A", "donation_id": format!("don_{n}"), "replaces": null
    })
}

/// Appends receipts `from..to`, one transaction each, journaled like a real change.
async fn issue(app: &App, from: u64, to: u64) {
    for n in from..to {
        let mut tx = app.store().begin().await.unwrap();
        let number = format!("2026-LC01-{n:07}");
        let index = app
            .append_public_fact(
                &mut tx,
                "receipt.issued",
                &number,
                &json!({ "receipt": receipt(n) }),
            )
            .await
            .unwrap();
        assert_eq!(index, n);
        tx.commit().await.unwrap();
    }
}

/// Runs one statement behind the app's back, as an intruder with file access would.
async fn tamper(db_url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{db_url}?mode=rw"))
        .await
        .unwrap();
    sqlx::Executor::execute(&mut conn, sql).await.unwrap();
    sqlx::Connection::close(conn).await.unwrap();
}

fn hashes(hex: &[String]) -> Vec<Hash> {
    hex.iter().map(|h| decode_hash(h).unwrap()).collect()
}

#[tokio::test]
async fn the_log_key_is_created_private_bound_and_served() {
    let f = fixture().await;
    let path = f.dir.path().join("data/keys/log.key");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let served = f.app.log_public_key();
    assert_eq!(served.algorithm, "ed25519");
    assert_eq!(served.key_id.len(), 16);
    assert_eq!(
        f.app.store().setting("log_key_id").await.unwrap(),
        Some(served.key_id.clone())
    );
    // What `/api/v1/log/key` serves is what a verifier reads.
    let text = serde_json::to_string(&served).unwrap();
    let key = parse_public_key(&text).unwrap();
    assert_eq!(cishan_translog::key_id(&key), served.key_id);

    let journal = f.app.store().recent_journal(10).await.unwrap();
    let bound = journal
        .iter()
        .find(|e| e.kind == "translog.key_bound")
        .unwrap();
    assert!(bound.payload.contains(&served.key_id));
}

#[tokio::test]
async fn the_database_refuses_a_missing_or_different_log_key() {
    let f = fixture().await;
    f.app.close().await;
    let clock = f.clock.clone();
    let config = |data: &str| Config {
        database_url: f.db_url.clone(),
        data_dir: f.dir.path().join(data),
    };
    // Same vault key, no log key.
    let keys = f.dir.path().join("moved/keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(
        f.dir.path().join("data/keys/vault.key"),
        keys.join("vault.key"),
    )
    .unwrap();
    let err = App::open(&config("moved"), lucheng(), clock.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code, "translog.key_missing");
    assert!(!keys.join("log.key").exists(), "no new key is made");

    // Same vault key, another log key.
    std::fs::write(keys.join("log.key"), [42_u8; 32]).unwrap();
    let err = App::open(&config("moved"), lucheng(), clock.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code, "translog.key_mismatch");

    // A damaged key file.
    std::fs::write(keys.join("log.key"), b"short").unwrap();
    let err = App::open(&config("moved"), lucheng(), clock.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code, "translog.key_invalid");

    let again = App::open(&config("data"), lucheng(), clock).await.unwrap();
    again.close().await;
}

#[tokio::test]
async fn heads_are_signed_once_per_size_and_verify() {
    let f = fixture().await;
    let key = parse_public_key(&f.app.log_public_key().public_key).unwrap();

    let empty = f.app.signed_head().await.unwrap();
    assert_eq!(empty.tree_size, 0);
    assert_eq!(empty.root_hash, hex::encode(cishan_translog::empty_root()));
    verify_head(&key, &empty).unwrap();

    issue(&f.app, 0, 5).await;
    f.clock.set("2026-12-03T09:00:00Z".parse().unwrap());
    let head = f.app.signed_head().await.unwrap();
    assert_eq!(head.tree_size, 5);
    assert_eq!(head.timestamp, "2026-12-03T09:00:00.000000Z");
    verify_head(&key, &head).unwrap();
    let expected = cishan_translog::root(
        &(0..5)
            .map(|n| {
                let leaf =
                    cishan_translog::fact_leaf("receipt.issued", &json!({ "receipt": receipt(n) }))
                        .unwrap();
                leaf_hash(leaf.as_bytes())
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(head.root_hash, hex::encode(expected));

    // Nothing new: the same head, not a new signature.
    f.clock.set("2026-12-03T10:00:00Z".parse().unwrap());
    assert_eq!(f.app.signed_head().await.unwrap(), head);
    let signed: Vec<_> = f
        .app
        .store()
        .recent_journal(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "translog.head_signed")
        .collect();
    assert_eq!(signed.len(), 2, "sizes 0 and 5");
    assert!(!signed[0].payload.contains("王"), "nothing personal");
}

#[tokio::test]
async fn a_rolled_back_change_logs_nothing() {
    let f = fixture().await;
    issue(&f.app, 0, 2).await;
    let mut tx = f.app.store().begin().await.unwrap();
    f.app
        .append_public_fact(
            &mut tx,
            "receipt.issued",
            "x",
            &json!({ "receipt": receipt(9) }),
        )
        .await
        .unwrap();
    drop(tx);
    assert_eq!(f.app.store().log_size().await.unwrap(), 2);
    assert_eq!(f.app.signed_head().await.unwrap().tree_size, 2);
    assert!(f.app.verify_log().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_fact_that_is_not_an_object_is_refused() {
    let f = fixture().await;
    let mut tx = f.app.store().begin().await.unwrap();
    let err = f
        .app
        .append_public_fact(&mut tx, "receipt.issued", "x", &json!({ "kind": "other" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, "internal");
}

#[tokio::test]
async fn inclusion_proofs_verify_and_build_a_receipt_document() {
    let f = fixture().await;
    issue(&f.app, 0, 11).await;
    let key = parse_public_key(&f.app.log_public_key().public_key).unwrap();

    let proof = f.app.inclusion_proof(7, None).await.unwrap();
    let head = proof.tree_head.clone().unwrap();
    assert_eq!(head.tree_size, 11);
    assert_eq!(proof.root_hash, head.root_hash);
    assert_eq!(
        proof.leaf,
        cishan_translog::fact_leaf("receipt.issued", &json!({ "receipt": receipt(7) })).unwrap()
    );
    let leaf = leaf_hash(proof.leaf.as_bytes());
    assert_eq!(proof.leaf_hash, hex::encode(leaf));
    verify_inclusion(
        7,
        11,
        &leaf,
        &hashes(&proof.proof),
        &decode_hash(&head.root_hash).unwrap(),
    )
    .unwrap();

    // Exactly what a receipt document carries, checked as `cishan verify --receipt` does.
    let document = ReceiptDocument {
        receipt: receipt(7),
        leaf_index: proof.leaf_index,
        leaf: proof.leaf.clone(),
        tree_head: head,
        inclusion_proof: proof.proof.clone(),
    };
    assert!(verify_receipt(&document, &key).all_passed());

    // An earlier size that was never signed: the proof and its root, without a head.
    let old = f.app.inclusion_proof(2, Some(4)).await.unwrap();
    assert_eq!(old.tree_size, 4);
    assert_eq!(old.tree_head, None);
    verify_inclusion(
        2,
        4,
        &decode_hash(&old.leaf_hash).unwrap(),
        &hashes(&old.proof),
        &decode_hash(&old.root_hash).unwrap(),
    )
    .unwrap();

    let err = f.app.inclusion_proof(11, None).await.unwrap_err();
    assert_eq!(err.code, "log_leaf.not_found");
    let err = f.app.inclusion_proof(5, Some(5)).await.unwrap_err();
    assert_eq!(err.code, "translog.leaf_not_in_tree");
    assert_eq!(err.field.as_deref(), Some("tree_size"));
    let err = f.app.inclusion_proof(0, Some(12)).await.unwrap_err();
    assert_eq!(err.code, "translog.size_out_of_range");
}

#[tokio::test]
async fn consistency_proofs_link_heads() {
    let f = fixture().await;
    issue(&f.app, 0, 6).await;
    let first = f.app.signed_head().await.unwrap();
    issue(&f.app, 6, 19).await;
    let second = f.app.signed_head().await.unwrap();
    let proof = f.app.consistency_proof(6, 19).await.unwrap();
    assert_eq!(proof.first_root, first.root_hash);
    assert_eq!(proof.second_root, second.root_hash);
    verify_consistency(
        6,
        19,
        &hashes(&proof.proof),
        &decode_hash(&first.root_hash).unwrap(),
        &decode_hash(&second.root_hash).unwrap(),
    )
    .unwrap();
    assert_eq!(
        f.app.consistency_proof(7, 6).await.unwrap_err().code,
        "translog.sizes_out_of_order"
    );
    assert_eq!(
        f.app.consistency_proof(1, 20).await.unwrap_err().code,
        "translog.size_out_of_range"
    );
}

#[tokio::test]
async fn verify_log_finds_every_kind_of_tampering() {
    let f = fixture().await;
    issue(&f.app, 0, 9).await;
    f.app.signed_head().await.unwrap();
    assert_eq!(f.app.verify_log().await.unwrap(), Vec::<String>::new());

    // An edited leaf text: its hash no longer matches, nor does its level-0 node.
    tamper(
        &f.db_url,
        "UPDATE log_leaves SET leaf = replace(leaf, '100003', '900003') WHERE leaf_index = 3",
    )
    .await;
    let problems = f.app.verify_log().await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains("leaf 3: its text")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("node (level 0, index 3)")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn verify_log_finds_a_rewritten_tree_and_a_forged_head() {
    let f = fixture().await;
    issue(&f.app, 0, 9).await;
    f.app.signed_head().await.unwrap();

    // A consistent rewrite of leaf 8 (text, hash and its nodes) still breaks the signed root.
    let forged =
        cishan_translog::fact_leaf("receipt.issued", &json!({ "receipt": receipt(99) })).unwrap();
    let forged_hash = hex::encode(leaf_hash(forged.as_bytes()));
    tamper(
        &f.db_url,
        &format!(
            "UPDATE log_leaves SET leaf = '{forged}', leaf_hash = '{forged_hash}' WHERE leaf_index = 8"
        ),
    )
    .await;
    tamper(
        &f.db_url,
        &format!("UPDATE log_nodes SET hash = '{forged_hash}' WHERE level = 0 AND idx = 8"),
    )
    .await;
    let problems = f.app.verify_log().await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("the log was rewritten"),
        "{problems:?}"
    );

    // A head whose signature does not match.
    tamper(
        &f.db_url,
        "UPDATE log_heads SET timestamp = '2027-01-01T00:00:00.000000Z' WHERE tree_size = 9",
    )
    .await;
    let problems = f.app.verify_log().await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains("signature")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn verify_log_finds_deleted_and_inserted_rows() {
    let f = fixture().await;
    issue(&f.app, 0, 9).await;
    f.app.signed_head().await.unwrap();
    tamper(&f.db_url, "DELETE FROM log_leaves WHERE leaf_index = 4").await;
    tamper(
        &f.db_url,
        "DELETE FROM log_nodes WHERE level = 1 AND idx = 1",
    )
    .await;
    tamper(
        &f.db_url,
        "INSERT INTO log_nodes (level, idx, hash) VALUES (3, 1, 'ab')",
    )
    .await;
    let problems = f.app.verify_log().await.unwrap();
    for wanted in [
        "leaves: 4 is missing",
        "level-1 nodes: 1 is missing",
        "node (level 3, index 1) lies beyond",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(wanted)),
            "{wanted}: {problems:?}"
        );
    }

    // A truncated log: the size goes back, but the signed head remembers.
    tamper(&f.db_url, "UPDATE log_state SET size = 7").await;
    let problems = f.app.verify_log().await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains("the log holds only 7")),
        "{problems:?}"
    );
}
