//! The transparency log's storage on both backends: the stored tree agrees with the reference
//! hashing of `cishan-translog`, its proofs verify, and a rolled-back append leaves no trace.
//!
//! By default every test gets a fresh SQLite file. With `CISHAN_TEST_POSTGRES_URL` set to a
//! server URL (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), every test instead gets a
//! fresh PostgreSQL database on that server, created for it and dropped afterwards.

use cishan_store::*;
use cishan_translog::{
    leaf_hash, root, verify_consistency, verify_head, verify_inclusion, Hash, LogKey,
};
use jiff::Timestamp;

struct TestDb {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl TestDb {
    async fn new() -> TestDb {
        match std::env::var("CISHAN_TEST_POSTGRES_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!(
                    "cishan_test_{}_{}",
                    std::process::id(),
                    rand::random::<u32>()
                );
                raw(&admin_url, &format!("CREATE DATABASE {name}")).await;
                let (base, _) = admin_url.rsplit_once('/').expect("URL names a database");
                let url = format!("{base}/{name}");
                let store = Store::connect(&url).await.expect("connect to test db");
                store.migrate().await.expect("migrate");
                TestDb {
                    store,
                    _dir: None,
                    drop_pg: Some((admin_url, name)),
                }
            }
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/test.db", dir.path().display());
                let store = Store::connect(&url).await.expect("connect");
                store.migrate().await.expect("migrate");
                TestDb {
                    store,
                    _dir: Some(dir),
                    drop_pg: None,
                }
            }
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.drop_pg {
            raw(&admin_url, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
        }
    }
}

async fn raw(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .expect("raw connect");
    sqlx::Executor::execute(&mut conn, sql)
        .await
        .expect("raw statement");
    sqlx::Connection::close(conn).await.unwrap();
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn leaf_text(n: u64) -> String {
    format!(
        r#"{{"kind":"test.fact","n":{n},"subject":"thing_{}"}}"#,
        n % 5
    )
}

/// Appends leaves `from..to` in transactions of `per_tx` leaves each.
async fn append(store: &Store, from: u64, to: u64, per_tx: u64) {
    let mut n = from;
    while n < to {
        let mut tx = store.begin().await.unwrap();
        for _ in 0..per_tx.min(to - n) {
            let index = tx
                .append_leaf(
                    at("2026-12-03T01:02:03Z"),
                    "test.fact",
                    &format!("thing_{}", n % 5),
                    &leaf_text(n),
                )
                .await
                .unwrap();
            assert_eq!(index, n, "indices are dense and in order");
            n += 1;
        }
        tx.commit().await.unwrap();
    }
}

fn reference_hashes(size: u64) -> Vec<Hash> {
    (0..size)
        .map(|n| leaf_hash(leaf_text(n).as_bytes()))
        .collect()
}

#[tokio::test]
async fn the_stored_tree_matches_the_reference_root_at_every_size() {
    let db = TestDb::new().await;
    let store = &db.store;
    assert_eq!(store.log_size().await.unwrap(), 0);
    assert_eq!(
        store.log_root(0).await.unwrap(),
        Some(cishan_translog::empty_root())
    );
    append(store, 0, 13, 1).await;
    append(store, 13, 40, 9).await;
    append(store, 40, 45, 5).await;
    assert_eq!(store.log_size().await.unwrap(), 45);
    let hashes = reference_hashes(45);
    for size in 0..=45_u64 {
        let expected = root(&hashes[..usize::try_from(size).unwrap()]);
        assert_eq!(
            store.log_root(size).await.unwrap(),
            Some(expected),
            "size {size}"
        );
    }
    assert_eq!(store.log_root(46).await.unwrap(), None);
    db.finish().await;
}

#[tokio::test]
async fn stored_proofs_verify() {
    let db = TestDb::new().await;
    let store = &db.store;
    append(store, 0, 37, 4).await;
    let hashes = reference_hashes(37);
    for size in [1_u64, 2, 3, 8, 17, 32, 37] {
        let root_n = store.log_root(size).await.unwrap().unwrap();
        for index in 0..size {
            let proof = store.inclusion_proof(index, size).await.unwrap().unwrap();
            let leaf = hashes[usize::try_from(index).unwrap()];
            verify_inclusion(index, size, &leaf, &proof, &root_n)
                .unwrap_or_else(|e| panic!("leaf {index} in {size}: {e}"));
        }
        for first in 0..=size {
            let root_m = store.log_root(first).await.unwrap().unwrap();
            let proof = store.consistency_proof(first, size).await.unwrap().unwrap();
            verify_consistency(first, size, &proof, &root_m, &root_n)
                .unwrap_or_else(|e| panic!("{first} to {size}: {e}"));
        }
    }
    assert_eq!(store.inclusion_proof(37, 37).await.unwrap(), None);
    assert_eq!(store.inclusion_proof(0, 38).await.unwrap(), None);
    assert_eq!(store.consistency_proof(5, 4).await.unwrap(), None);
    assert_eq!(store.consistency_proof(5, 38).await.unwrap(), None);
    db.finish().await;
}

#[tokio::test]
async fn leaves_are_read_back_exactly() {
    let db = TestDb::new().await;
    let store = &db.store;
    append(store, 0, 12, 3).await;
    let leaf = store.log_leaf(7).await.unwrap().unwrap();
    assert_eq!(leaf.leaf_index, 7);
    assert_eq!(leaf.leaf, leaf_text(7));
    assert_eq!(leaf.kind, "test.fact");
    assert_eq!(leaf.subject, "thing_2");
    assert_eq!(
        leaf.leaf_hash,
        hex::encode(leaf_hash(leaf_text(7).as_bytes()))
    );
    assert_eq!(leaf.recorded_at, "2026-12-03T01:02:03.000000Z");
    assert_eq!(store.log_leaf(12).await.unwrap(), None);

    let page = store.log_leaves_page(5, 4).await.unwrap();
    let indices: Vec<u64> = page.iter().map(|l| l.leaf_index).collect();
    assert_eq!(indices, [5, 6, 7, 8]);
    assert_eq!(store.log_leaves_page(10, 100).await.unwrap().len(), 2);

    // The latest leaf about a subject: thing_2 is the subject of leaves 2 and 7.
    let latest = store
        .log_leaf_by_subject("test.fact", "thing_2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.leaf_index, 7);
    assert_eq!(
        store
            .log_leaf_by_subject("other.kind", "thing_2")
            .await
            .unwrap(),
        None
    );

    let level1 = store.log_nodes_page(1, 0, 100).await.unwrap();
    assert_eq!(level1.len(), 6, "12 leaves make 6 pairs");
    assert_eq!(store.log_top_level().await.unwrap(), Some(3));
    db.finish().await;
}

#[tokio::test]
async fn a_rolled_back_append_leaves_no_trace() {
    let db = TestDb::new().await;
    let store = &db.store;
    append(store, 0, 3, 3).await;
    let root_before = store.log_root(3).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    for n in 3..6 {
        tx.append_leaf(at("2026-12-03T01:02:03Z"), "test.fact", "x", &leaf_text(n))
            .await
            .unwrap();
    }
    assert_eq!(tx.log_size().await.unwrap(), 6);
    drop(tx);
    assert_eq!(store.log_size().await.unwrap(), 3);
    assert_eq!(store.log_leaf(3).await.unwrap(), None);
    assert_eq!(store.log_nodes_page(0, 0, 100).await.unwrap().len(), 3);
    assert_eq!(store.log_nodes_page(1, 0, 100).await.unwrap().len(), 1);
    assert_eq!(store.log_nodes_page(2, 0, 100).await.unwrap().len(), 0);
    assert_eq!(store.log_root(3).await.unwrap(), root_before);
    // The next append reuses the index the rolled-back one had reserved.
    append(store, 3, 8, 5).await;
    assert_eq!(
        store.log_root(8).await.unwrap(),
        Some(root(&reference_hashes(8)))
    );
    db.finish().await;
}

#[tokio::test]
async fn signed_heads_are_stored_once_per_size() {
    let db = TestDb::new().await;
    let store = &db.store;
    let key = LogKey::from_seed([5; 32]);
    assert_eq!(store.latest_log_head().await.unwrap(), None);
    append(store, 0, 4, 4).await;
    for size in [2_u64, 4] {
        let root_n = store.log_root(size).await.unwrap().unwrap();
        let head = key.sign_head(size, &root_n, at("2026-12-03T02:00:00Z"));
        let mut tx = store.begin().await.unwrap();
        tx.insert_log_head(&head).await.unwrap();
        tx.commit().await.unwrap();
    }
    let latest = store.latest_log_head().await.unwrap().unwrap();
    assert_eq!(latest.tree_size, 4);
    verify_head(&key.public_key(), &latest).unwrap();
    assert_eq!(store.log_head(2).await.unwrap().unwrap().tree_size, 2);
    assert_eq!(store.log_head(3).await.unwrap(), None);
    let sizes: Vec<u64> = store
        .log_heads_page(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|h| h.tree_size)
        .collect();
    assert_eq!(sizes, [2, 4]);

    let again = key.sign_head(4, &[0; 32], at("2026-12-03T03:00:00Z"));
    let mut tx = store.begin().await.unwrap();
    let err = tx.insert_log_head(&again).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    // Closing the store waits for every connection, so the failed transaction goes first.
    drop(tx);
    db.finish().await;
}

#[tokio::test]
async fn concurrent_appends_get_dense_indices_and_a_consistent_tree() {
    let db = TestDb::new().await;
    let mut tasks = Vec::new();
    for task in 0..4_u64 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut indices = Vec::new();
            for n in 0..10_u64 {
                let mut tx = store.begin().await.unwrap();
                let text = format!(r#"{{"kind":"test.fact","task":{task},"n":{n}}}"#);
                let index = tx
                    .append_leaf(at("2026-12-03T01:02:03Z"), "test.fact", "x", &text)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                indices.push(index);
            }
            indices
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<u64>>());
    let leaves = db.store.log_leaves_page(0, 100).await.unwrap();
    let hashes: Vec<Hash> = leaves
        .iter()
        .map(|l| leaf_hash(l.leaf.as_bytes()))
        .collect();
    assert_eq!(db.store.log_root(40).await.unwrap(), Some(root(&hashes)));
    db.finish().await;
}

/// Staged appends (group commit) build the same tree and the same journal chain as appends
/// written one statement at a time, across flushes in the middle of a transaction.
#[tokio::test]
async fn staged_appends_match_the_reference_and_keep_the_journal_intact() {
    let db = TestDb::new().await;
    let store = &db.store;
    append(store, 0, 7, 1).await;
    let mut n = 7_u64;
    for (per_tx, flush_every) in [(1_u64, 1_u64), (50, 7), (300, 1000), (129, 64)] {
        let mut tx = store.begin().await.unwrap();
        tx.stage_writes();
        for i in 0..per_tx {
            let index = tx
                .append_leaf(
                    at("2026-12-03T01:02:03Z"),
                    "test.fact",
                    &format!("thing_{}", n % 5),
                    &leaf_text(n),
                )
                .await
                .unwrap();
            assert_eq!(index, n, "indices are dense and in order while staged");
            tx.journal(
                at("2026-12-03T01:02:03Z"),
                NewEntry {
                    actor: "test".into(),
                    kind: "test.staged".into(),
                    subject: format!("thing_{n}"),
                    payload: serde_json::json!({ "n": n }),
                },
            )
            .await
            .unwrap();
            n += 1;
            if (i + 1) % flush_every == 0 {
                tx.flush().await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    // A staged transaction that is dropped leaves nothing behind.
    let mut tx = store.begin().await.unwrap();
    tx.stage_writes();
    tx.append_leaf(at("2026-12-03T01:02:03Z"), "test.fact", "gone", "{}")
        .await
        .unwrap();
    drop(tx);
    assert_eq!(store.log_size().await.unwrap(), n);
    let hashes = reference_hashes(n);
    for size in [1, 7, 8, 57, 64, 357, 358, 486, n] {
        assert_eq!(
            store.log_root(size).await.unwrap(),
            Some(root(&hashes[..usize::try_from(size).unwrap()])),
            "size {size}"
        );
    }
    let proof = store.inclusion_proof(300, n).await.unwrap().unwrap();
    verify_inclusion(300, n, &hashes[300], &proof, &root(&hashes)).unwrap();
    let report = store.verify_journal().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    db.finish().await;
}
