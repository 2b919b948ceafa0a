//! The store conformance suite: the same tests on both backends.
//!
//! By default every test gets a fresh SQLite file. With `CISHAN_TEST_POSTGRES_URL` set to a
//! server URL (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), every test instead gets a
//! fresh PostgreSQL database on that server, created for it and dropped afterwards.

use cishan_store::*;
use jiff::Timestamp;
use serde_json::json;

struct TestDb {
    store: Store,
    url: String,
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
                    url,
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
                    url,
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

    /// Changes the database behind the store's back, as an intruder with file access would.
    async fn tamper(&self, sql: &str) {
        raw(&self.url, sql).await;
    }
}

async fn raw(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rw")
    } else {
        url.to_owned()
    };
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
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

fn entry(kind: &str, subject: &str, n: i64) -> NewEntry {
    NewEntry {
        actor: "usr_test".into(),
        kind: kind.into(),
        subject: subject.into(),
        payload: json!({ "n": n }),
    }
}

async fn append(store: &Store, count: i64) {
    for n in 0..count {
        let mut tx = store.begin().await.unwrap();
        tx.journal(
            at("2026-12-03T01:02:03Z"),
            entry("test.appended", "thing_1", n),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

async fn seed_org(tx: &mut WriteTx, id: &str, code: &str) {
    tx.insert(&OrganizationRow {
        id: id.into(),
        participant_id: None,
        name: format!("测试组织{id}"),
        credit_code: code.into(),
        kind: "foundation".into(),
        division_code: None,
        registered_on: "2021-05-01".into(),
        created_at: format_instant(at("2021-05-01T00:00:00Z")),
        is_charity: true,
        public_fundraising: false,
        synthetic: true,
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn migrations_apply_twice_without_harm() {
    let db = TestDb::new().await;
    db.store.migrate().await.unwrap();
    assert_eq!(
        db.store.table_counts().await.unwrap(),
        TableCounts::default()
    );
    db.finish().await;
}

#[tokio::test]
async fn journal_entries_chain_and_verify() {
    let db = TestDb::new().await;
    append(&db.store, 5).await;
    let report = db.store.verify_journal().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.entries, 5);
    let recent = db.store.recent_journal(10).await.unwrap();
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0].seq, 5);
    assert_eq!(recent[0].prev_hash, recent[1].hash);
    assert_eq!(report.head_hash, recent[0].hash);
    db.finish().await;
}

#[tokio::test]
async fn an_edited_journal_row_is_detected() {
    let db = TestDb::new().await;
    append(&db.store, 4).await;
    db.tamper("UPDATE journal SET payload = '{\"n\":99}' WHERE seq = 2")
        .await;
    let report = db.store.verify_journal().await.unwrap();
    assert_eq!(
        report.problems,
        vec![JournalProblem::HashMismatch { seq: 2 }]
    );
    db.finish().await;
}

#[tokio::test]
async fn a_deleted_journal_row_is_detected() {
    let db = TestDb::new().await;
    append(&db.store, 4).await;
    db.tamper("DELETE FROM journal WHERE seq = 2").await;
    let report = db.store.verify_journal().await.unwrap();
    assert!(report.problems.contains(&JournalProblem::Gap {
        expected: 2,
        found: 3
    }));
    assert!(report
        .problems
        .contains(&JournalProblem::BrokenLink { seq: 3 }));
    db.finish().await;
}

#[tokio::test]
async fn a_truncated_journal_is_detected() {
    let db = TestDb::new().await;
    append(&db.store, 3).await;
    db.tamper("DELETE FROM journal WHERE seq = 3").await;
    let report = db.store.verify_journal().await.unwrap();
    assert_eq!(
        report.problems,
        vec![JournalProblem::HeadMismatch {
            head_seq: 3,
            last_seq: 2
        }]
    );
    db.finish().await;
}

#[tokio::test]
async fn an_uncommitted_transaction_writes_nothing() {
    let db = TestDb::new().await;
    {
        let mut tx = db.store.begin().await.unwrap();
        tx.journal(at("2026-12-03T00:00:00Z"), entry("org.created", "org_1", 1))
            .await
            .unwrap();
        seed_org(&mut tx, "org_1", "91350100M000100Y43").await;
        // Dropped without commit: rolled back.
    }
    assert_eq!(db.store.table_counts().await.unwrap().organizations, 0);
    let report = db.store.verify_journal().await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.entries, 0);
    db.finish().await;
}

#[tokio::test]
async fn concurrent_appends_make_one_gapless_chain() {
    let db = TestDb::new().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                let mut tx = store.begin().await.unwrap();
                tx.journal(
                    Timestamp::now(),
                    entry("test.concurrent", &format!("t{t}"), n),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = db.store.verify_journal().await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.entries, 80);
    db.finish().await;
}

#[tokio::test]
async fn unique_keys_are_reported_as_conflicts() {
    let db = TestDb::new().await;
    let mut tx = db.store.begin().await.unwrap();
    seed_org(&mut tx, "org_1", "91350100M000100Y43").await;
    tx.commit().await.unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let err = tx
        .insert(&OrganizationRow {
            id: "org_2".into(),
            participant_id: None,
            name: "重复".into(),
            credit_code: "91350100M000100Y43".into(),
            kind: "foundation".into(),
            division_code: None,
            registered_on: "2021-01-01".into(),
            created_at: format_instant(at("2021-01-01T00:00:00Z")),
            is_charity: false,
            public_fundraising: false,
            synthetic: true,
        })
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    drop(tx);
    db.finish().await;
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let db = TestDb::new().await;
    let mut tx = db.store.begin().await.unwrap();
    let err = tx
        .insert(&FundRow {
            id: "fnd_1".into(),
            org_id: "org_missing".into(),
            name: "无主基金".into(),
            created_at: format_instant(at("2021-01-01T00:00:00Z")),
        })
        .await;
    assert!(
        err.is_err(),
        "a fund of an unknown organization must be refused"
    );
    drop(tx);
    db.finish().await;
}

#[tokio::test]
async fn totals_agree_between_summary_lists_and_details() {
    let db = TestDb::new().await;
    let mut tx = db.store.begin().await.unwrap();
    seed_org(&mut tx, "org_1", "91350100M000100Y43").await;
    tx.insert(&FundRow {
        id: "fnd_1".into(),
        org_id: "org_1".into(),
        name: "助学基金".into(),
        created_at: format_instant(at("2021-01-01T00:00:00Z")),
    })
    .await
    .unwrap();
    tx.insert(&ProjectRow {
        id: "prj_1".into(),
        org_id: "org_1".into(),
        fund_id: Some("fnd_1".into()),
        name: "助学".into(),
        summary: String::new(),
        goal_fen: 1_000_000,
        state: "fundraising".into(),
        division_code: None,
        created_at: format_instant(at("2021-01-01T00:00:00Z")),
    })
    .await
    .unwrap();
    let people: Vec<ParticipantRow> = (0..3)
        .map(|i| ParticipantRow {
            id: format!("ptc_{i}"),
            kind: "person".into(),
            display_name: format!("测试{i}"),
            id_number_digest: None,
            id_number_masked: None,
            id_number_cipher: None,
            division_code: None,
            created_at: format_instant(at("2021-01-01T00:00:00Z")),
            synthetic: true,
        })
        .collect();
    tx.insert_all(&people).await.unwrap();
    let donation = |id: &str, donor: Option<&str>, fen: i64, project: Option<&str>| DonationRow {
        id: id.into(),
        donor_participant_id: donor.map(Into::into),
        amount_fen: fen,
        currency: "CNY".into(),
        fund_id: Some("fnd_1".into()),
        project_id: project.map(Into::into),
        org_id: Some("org_1".into()),
        received_at: format_instant(at("2022-01-01T00:00:00Z")),
        kind: "money".into(),
        channel: "cash".into(),
        ..DonationRow::default()
    };
    tx.insert_all(&[
        donation("don_1", Some("ptc_0"), 100, Some("prj_1")),
        donation("don_2", Some("ptc_0"), 250, None),
        donation("don_3", Some("ptc_1"), 1, Some("prj_1")),
        donation("don_4", None, 9_999, None),
    ])
    .await
    .unwrap();
    tx.insert(&DisbursementRow {
        id: "dsb_1".into(),
        project_id: "prj_1".into(),
        household_id: None,
        people_count: 3,
        amount_fen: 50,
        paid_at: format_instant(at("2022-02-01T00:00:00Z")),
        recipient_kind: "household".into(),
        form: "cash".into(),
        purpose: "charitable".into(),
        state: "paid".into(),
        ..DisbursementRow::default()
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let s = db.store.disclosure_summary().await.unwrap();
    assert_eq!(
        s,
        DisclosureSummary {
            donors: 3,
            donated_fen: 10_350,
            people_helped: 3,
            projects: 1,
            organizations: 1
        }
    );
    let orgs = db.store.organizations_page(0, 10).await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].donated_fen, 10_350);
    assert_eq!(
        db.store.organization("org_1").await.unwrap().unwrap(),
        orgs[0]
    );
    let projects = db.store.projects_page(Some("org_1"), 0, 10).await.unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(
        (projects[0].raised_fen, projects[0].disbursed_fen),
        (101, 50)
    );
    assert_eq!(
        db.store.project("prj_1").await.unwrap().unwrap(),
        projects[0]
    );
    assert_eq!(db.store.projects_page(None, 0, 10).await.unwrap(), projects);
    assert!(db
        .store
        .projects_page(Some("org_x"), 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.store
            .count_charity_organizations_before("2021-05-01")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db.store
            .count_charity_organizations_before("2021-05-02")
            .await
            .unwrap(),
        1
    );
    db.finish().await;
}

#[tokio::test]
async fn indicator_actuals_are_replaced_not_duplicated() {
    let db = TestDb::new().await;
    let mut row = IndicatorActualRow {
        indicator_code: "T3".into(),
        year: 2022,
        value: "45.10".into(),
        entered_by: "usr_admin".into(),
        entered_at: format_instant(at("2022-12-31T00:00:00Z")),
        journal_seq: 1,
    };
    let mut tx = db.store.begin().await.unwrap();
    tx.set_indicator_actual(&row).await.unwrap();
    row.value = "46".into();
    row.journal_seq = 2;
    tx.set_indicator_actual(&row).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.store.indicator_actuals().await.unwrap(), vec![row]);
    db.finish().await;
}

#[tokio::test]
async fn divisions_upsert_and_list_in_code_order() {
    let db = TestDb::new().await;
    let rows = vec![
        DivisionRow {
            code: "330302006".into(),
            name: "五马街道".into(),
            level: "street".into(),
            parent_code: Some("330302".into()),
        },
        DivisionRow {
            code: "330302".into(),
            name: "鹿城区".into(),
            level: "district".into(),
            parent_code: Some("3303".into()),
        },
    ];
    let mut tx = db.store.begin().await.unwrap();
    tx.upsert_divisions(&rows).await.unwrap();
    tx.upsert_divisions(&rows).await.unwrap();
    tx.commit().await.unwrap();
    let listed = db.store.divisions().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].code, "330302");
    db.finish().await;
}

async fn set_actual(store: &Store, code: &str, year: i64, value: &str) {
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .journal(
            at("2023-01-01T00:00:00Z"),
            NewEntry {
                actor: "usr_admin".into(),
                kind: "indicator.actual_set".into(),
                subject: format!("indicator_{code}_{year}"),
                payload: json!({ "indicator": code, "year": year, "value": value }),
            },
        )
        .await
        .unwrap();
    tx.set_indicator_actual(&IndicatorActualRow {
        indicator_code: code.into(),
        year,
        value: value.into(),
        entered_by: "admin".into(),
        entered_at: e.recorded_at.clone(),
        journal_seq: e.seq,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn business_rows_edited_or_deleted_behind_the_journal_are_detected() {
    let db = TestDb::new().await;
    set_actual(&db.store, "1", 2023, "11").await;
    set_actual(&db.store, "1", 2023, "12").await;
    set_actual(&db.store, "5", 2022, "80000").await;
    assert!(db.store.verify_journal().await.unwrap().is_intact());

    db.tamper("UPDATE indicator_actuals SET value = '13' WHERE indicator_code = '1'")
        .await;
    db.tamper("DELETE FROM indicator_actuals WHERE indicator_code = '5'")
        .await;
    let report = db.store.verify_journal().await.unwrap();
    let keys: Vec<String> = report
        .problems
        .iter()
        .map(|p| match p {
            JournalProblem::StateMismatch { key, .. } => key.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(keys, vec!["1/2023".to_owned(), "5/2022".to_owned()]);
    db.finish().await;
}
