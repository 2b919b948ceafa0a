//! The donation ledger through the app layer, on a real SQLite file (and PostgreSQL when
//! `CISHAN_TEST_POSTGRES_URL` is set for the conformance run): idempotency, FIFO flows,
//! refunds, reversals, receipts, matching caps under concurrency, and the per-donation identity
//! `amount = refunded + lots + disbursed` after random histories.

mod db_support;

use std::sync::Arc;

use cishan_app::donations::DonationRecorded;
use cishan_app::donations::{
    AllocationInput, AllocationPart, DisbursementInput, DonationInput, EvidenceFile,
    IdempotencyKey, RefundInput,
};
use cishan_app::matching::MatchPoolInput;
use cishan_app::{Actor, App, AppError, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_store::{
    format_instant, FundRow, NewEntry, OrganizationRow, ParticipantRow, ProjectRow,
};
use proptest::prelude::*;

struct Fixture {
    app: App,
    actor: Actor,
    clock: Arc<FixedClock>,
    url: String,
    _dir: tempfile::TempDir,
}

const ORG: &str = "org_1";
const FUND: &str = "fnd_1";
const P1: &str = "prj_1";
const P2: &str = "prj_2";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2023-06-01T08:00:00Z".parse().unwrap()));
    let url = db_support::database_url(dir.path(), "ledger").await;
    let config = Config {
        database_url: url.clone(),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    let actor = app
        .create_user(
            None,
            "staff",
            "工作人员",
            "correct horse battery",
            Role::Admin,
        )
        .await
        .unwrap();
    let at = format_instant("2023-01-01T00:00:00Z".parse().unwrap());
    let mut tx = app.store().begin().await.unwrap();
    let person = |id: &str, name: &str, kind: &str| ParticipantRow {
        id: id.into(),
        kind: kind.into(),
        display_name: name.into(),
        id_number_digest: None,
        id_number_masked: None,
        id_number_cipher: None,
        division_code: None,
        created_at: at.clone(),
        synthetic: false,
    };
    tx.insert_all(&[
        person("ptc_wang", "王小测", "person"),
        person("ptc_li", "李四", "person"),
        person("ptc_bank", "鹿城农商银行", "organization"),
        person("ptc_org", "鹿城区慈善总会", "organization"),
    ])
    .await
    .unwrap();
    tx.insert(&OrganizationRow {
        id: ORG.into(),
        participant_id: Some("ptc_org".into()),
        name: "鹿城区慈善总会".into(),
        credit_code: "51330302MJ8998765X".into(),
        kind: "social_group".into(),
        division_code: None,
        registered_on: "2010-01-01".into(),
        created_at: at.clone(),
        is_charity: true,
        public_fundraising: true,
        synthetic: false,
    })
    .await
    .unwrap();
    tx.insert(&FundRow {
        id: FUND.into(),
        org_id: ORG.into(),
        name: "助学基金".into(),
        created_at: at.clone(),
    })
    .await
    .unwrap();
    for (id, name) in [(P1, "春蕾助学"), (P2, "爱心午餐")] {
        tx.insert(&ProjectRow {
            id: id.into(),
            org_id: ORG.into(),
            fund_id: Some(FUND.into()),
            name: name.into(),
            summary: String::new(),
            goal_fen: 1_000_000,
            state: "fundraising".into(),
            division_code: None,
            created_at: at.clone(),
        })
        .await
        .unwrap();
    }
    tx.journal(
        "2023-01-01T00:00:00Z".parse().unwrap(),
        NewEntry {
            actor: "test".into(),
            kind: "test.seeded".into(),
            subject: ORG.into(),
            payload: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Fixture {
        app,
        actor,
        clock,
        url,
        _dir: dir,
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn money(amount_fen: i64, fund: Option<&str>, project: Option<&str>) -> DonationInput {
    DonationInput {
        amount_fen,
        fund_id: fund.map(Into::into),
        project_id: project.map(Into::into),
        donor_participant_id: Some("ptc_wang".into()),
        channel: "cash".into(),
        ..DonationInput::default()
    }
}

async fn count(app: &App, table: &str) -> i64 {
    app.store().count_rows(table).await.unwrap()
}

async fn assert_reconciled(app: &App) {
    assert_eq!(app.store().unreconciled_donations().await.unwrap(), vec![]);
    assert_eq!(app.store().unbalanced_transfers().await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_retry_returns_the_first_result_and_writes_nothing() {
    let f = fixture().await;
    let input = money(10_000, Some(FUND), None);
    let first = f
        .app
        .record_donation(&f.actor, &key("k-1"), &input)
        .await
        .unwrap();
    assert!(!first.replayed);
    let journal = count(&f.app, "journal").await;
    let again = f
        .app
        .record_donation(&f.actor, &key("k-1"), &input)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(count(&f.app, "donations").await, 1);
    assert_eq!(count(&f.app, "receipts").await, 1);
    assert_eq!(count(&f.app, "journal").await, journal);
    // The same key with another body is refused and writes nothing.
    let other = f
        .app
        .record_donation(&f.actor, &key("k-1"), &money(20_000, Some(FUND), None))
        .await
        .unwrap_err();
    assert_eq!(other.code, "idempotency.key_reused");
    assert_eq!(count(&f.app, "donations").await, 1);
}

#[tokio::test]
async fn simultaneous_copies_of_one_request_record_once() {
    let f = fixture().await;
    let input = money(5_000, Some(FUND), None);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let app = f.app.clone();
            let actor = f.actor.clone();
            let input = input.clone();
            tokio::spawn(async move { app.record_donation(&actor, &key("same"), &input).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().value.donation_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(count(&f.app, "donations").await, 1);
}

fn bank_transfer(payment_ref: &str) -> DonationInput {
    DonationInput {
        channel: "bank_transfer".into(),
        payment_ref: Some(payment_ref.into()),
        ..money(10_000, Some(FUND), None)
    }
}

#[tokio::test]
async fn a_payment_reference_is_recorded_once_per_channel() {
    let f = fixture().await;
    let first = f
        .app
        .record_donation(&f.actor, &key("bt-1"), &bank_transfer("BT-001"))
        .await
        .unwrap();
    // Another key, the same transfer: refused, naming the field and the donation.
    let again = f
        .app
        .record_donation(&f.actor, &key("bt-2"), &bank_transfer("BT-001"))
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    assert_eq!(again.code, "donation.payment_ref_taken");
    assert_eq!(again.field.as_deref(), Some("payment_ref"));
    assert!(
        again.message.contains(&first.value.donation_id),
        "{}",
        again.message
    );
    // The first key still replays its result.
    let replay = f
        .app
        .record_donation(&f.actor, &key("bt-1"), &bank_transfer("BT-001"))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.value, first.value);
    // The same reference on another channel is another payment.
    f.app
        .record_donation(
            &f.actor,
            &key("on-1"),
            &DonationInput {
                channel: "online".into(),
                ..bank_transfer("BT-001")
            },
        )
        .await
        .unwrap();
    assert_eq!(count(&f.app, "donations").await, 2);
    assert_eq!(count(&f.app, "receipts").await, 2);
}

#[tokio::test]
async fn simultaneous_donations_with_one_payment_reference_record_once() {
    let f = fixture().await;
    // Different keys, so each is a new request; several land in one group-commit batch.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = f.app.clone();
            let actor = f.actor.clone();
            tokio::spawn(async move {
                app.record_donation(&actor, &key(&format!("dup-{i}")), &bank_transfer("BT-777"))
                    .await
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(done) => recorded.push(done.value.donation_id),
            Err(e) => assert_eq!(e.code, "donation.payment_ref_taken", "{e}"),
        }
    }
    assert_eq!(recorded.len(), 1);
    assert_eq!(count(&f.app, "donations").await, 1);
    assert_eq!(count(&f.app, "receipts").await, 1);
    assert_reconciled(&f.app).await;
}

#[tokio::test]
async fn a_bad_request_in_a_group_fails_alone() {
    let f = fixture().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = f.app.clone();
        let actor = f.actor.clone();
        // Every fifth names a project that does not exist.
        let input = if i % 5 == 0 {
            money(100, None, Some("prj_missing"))
        } else {
            money(100, Some(FUND), None)
        };
        tasks.push(tokio::spawn(async move {
            app.record_donation(&actor, &key(&format!("g-{i}")), &input)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code, "donation.target_unknown"),
        }
    }
    assert_eq!(ok, 16);
    assert_eq!(count(&f.app, "donations").await, 16);
    assert_eq!(count(&f.app, "receipts").await, 16);
}

#[tokio::test]
async fn bad_input_names_the_field_and_records_nothing() {
    let f = fixture().await;
    let cases = [
        (money(0, Some(FUND), None), "amount_fen"),
        (money(100, None, None), "fund_id"),
        (money(100, Some(FUND), Some(P1)), "project_id"),
        (
            DonationInput {
                channel: "bank_transfer".into(),
                ..money(100, Some(FUND), None)
            },
            "payment_ref",
        ),
        (
            DonationInput {
                kind: Some("goods".into()),
                goods_item: Some("棉被".into()),
                goods_quantity: Some(10),
                goods_unit: Some("床".into()),
                ..money(100, Some(FUND), None)
            },
            "valued_by",
        ),
        (
            DonationInput {
                currency: Some("USD".into()),
                ..money(100, Some(FUND), None)
            },
            "currency",
        ),
        (
            DonationInput {
                donor_participant_id: Some("ptc_missing".into()),
                ..money(100, Some(FUND), None)
            },
            "donor_participant_id",
        ),
    ];
    for (i, (input, field)) in cases.into_iter().enumerate() {
        let e = f
            .app
            .record_donation(&f.actor, &key(&format!("bad-{i}")), &input)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{field}");
        assert_eq!(e.field.as_deref(), Some(field));
        assert!(!e.message.is_empty());
    }
    assert_eq!(count(&f.app, "donations").await, 0);
}

#[tokio::test]
async fn money_flows_oldest_first_and_refunds_and_reversals_undo_everything() {
    let f = fixture().await;
    let a = &f.actor;
    // Money arrives a minute apart, so "oldest first" is decided by time, not by id.
    let minute = |m: i64| {
        let at: jiff::Timestamp = "2023-06-01T08:00:00Z".parse().unwrap();
        f.clock.set(at + jiff::SignedDuration::from_mins(m));
    };
    minute(1);
    let d1 = f
        .app
        .record_donation(a, &key("d1"), &money(30_000, Some(FUND), None))
        .await
        .unwrap()
        .value;
    minute(2);
    let d2 = f
        .app
        .record_donation(a, &key("d2"), &money(50_000, Some(FUND), None))
        .await
        .unwrap()
        .value;
    minute(3);
    let d3 = f
        .app
        .record_donation(a, &key("d3"), &money(10_000, None, Some(P1)))
        .await
        .unwrap()
        .value;
    // ¥500 from the fund split 1:1 between the two projects: the oldest donation goes first.
    let alloc = f
        .app
        .allocate(
            a,
            &key("a1"),
            &AllocationInput {
                fund_id: FUND.into(),
                amount_fen: 50_001,
                parts: vec![
                    AllocationPart {
                        project_id: P1.into(),
                        weight: 1,
                    },
                    AllocationPart {
                        project_id: P2.into(),
                        weight: 1,
                    },
                ],
            },
        )
        .await
        .unwrap()
        .value;
    let amounts: Vec<i64> = alloc.allocations.iter().map(|r| r.amount_fen).collect();
    assert_eq!(amounts, [25_001, 25_000]);
    // P1 now holds d1's 25,001 (allocated; older) and d3's 10,000 (restricted).
    let paid = f
        .app
        .disburse(
            a,
            &key("p1"),
            &DisbursementInput {
                project_id: P1.into(),
                amount_fen: 30_000,
                recipient_kind: "household".into(),
                household_id: Some("hh_1".into()),
                recipient_participant_id: None,
                supplier_name: None,
                form: "cash".into(),
                purpose: None,
                description: "助学金".into(),
                people_count: 3,
                evidence: vec![EvidenceFile {
                    file_name: "发票.pdf".into(),
                    content_type: "application/pdf".into(),
                    bytes: b"%PDF-1.4 test".to_vec(),
                }],
            },
        )
        .await;
    // The household does not exist: the disbursement names a household by id only when it is
    // registered, so this fails and nothing is half-written.
    assert!(paid.is_err());
    assert_reconciled(&f.app).await;
    let paid = f
        .app
        .disburse(
            a,
            &key("p2"),
            &DisbursementInput {
                project_id: P1.into(),
                amount_fen: 30_000,
                recipient_kind: "supplier".into(),
                household_id: None,
                recipient_participant_id: None,
                supplier_name: Some("鹿城文具店".into()),
                form: "goods".into(),
                purpose: None,
                description: "学习用品".into(),
                people_count: 0,
                evidence: vec![EvidenceFile {
                    file_name: "发票.pdf".into(),
                    content_type: "application/pdf".into(),
                    bytes: b"%PDF-1.4 test".to_vec(),
                }],
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(paid.donations, 2);
    let t1 = f.app.trace(&d1.donation_id).await.unwrap();
    assert_eq!(t1.disbursed_fen, 25_001);
    assert_eq!(t1.remaining_fen, 30_000 - 25_001);
    assert_eq!(t1.disbursements[0].evidence_sha256, paid.evidence_sha256);
    assert_eq!(t1.donation.donor, "王*测");
    let t3 = f.app.trace(&d3.donation_id).await.unwrap();
    assert_eq!(t3.disbursed_fen, 30_000 - 25_001);
    assert_reconciled(&f.app).await;

    // d1 has ¥49.99 unspent; refunding more than that is refused, even though it is under
    // the amount, because the rest was paid out.
    let too_much = f
        .app
        .refund_donation(
            a,
            &key("r0"),
            &d1.donation_id,
            &RefundInput {
                amount_fen: 5_000,
                reason: "捐赠人要求".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(too_much.code, "refund.already_spent");
    // Reverse the disbursement: every fen returns to its lot.
    f.app
        .reverse_disbursement(a, &key("rv"), &paid.disbursement_id, "收款方信息有误")
        .await
        .unwrap();
    let again = f
        .app
        .reverse_disbursement(a, &key("rv2"), &paid.disbursement_id, "收款方信息有误")
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    let t1 = f.app.trace(&d1.donation_id).await.unwrap();
    assert_eq!(t1.disbursed_fen, 0);
    assert_eq!(t1.remaining_fen, 30_000);
    assert_reconciled(&f.app).await;

    // Now a partial refund works: the receipt is voided and reissued for the rest.
    let refund = f
        .app
        .refund_donation(
            a,
            &key("r1"),
            &d2.donation_id,
            &RefundInput {
                amount_fen: 20_000,
                reason: "重复转账".into(),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(refund.net_fen, 30_000);
    let voided = refund.voided_receipt.clone().unwrap();
    let reissued = refund.new_receipt.clone().unwrap();
    assert_eq!(voided, d2.receipt_number);
    assert_ne!(voided, reissued);
    let t2 = f.app.trace(&d2.donation_id).await.unwrap();
    assert_eq!(t2.receipts.len(), 2);
    assert_eq!(t2.receipts[1].amount_fen, 30_000);
    assert_eq!(t2.receipts[1].replaces.as_deref(), Some(voided.as_str()));
    // Cumulative refunds can never exceed the amount.
    let over = f
        .app
        .refund_donation(
            a,
            &key("r2"),
            &d2.donation_id,
            &RefundInput {
                amount_fen: 30_001,
                reason: "再退".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(over.code, "refund.exceeds");
    assert_reconciled(&f.app).await;
}

#[tokio::test]
async fn receipt_numbers_run_without_gaps_per_organization_and_year() {
    let f = fixture().await;
    let mut numbers = Vec::new();
    for i in 0..5 {
        let r = f
            .app
            .record_donation(
                &f.actor,
                &key(&format!("n{i}")),
                &money(100, Some(FUND), None),
            )
            .await
            .unwrap()
            .value;
        numbers.push(r.receipt_number);
    }
    let seqs: Vec<String> = numbers
        .iter()
        .map(|n| n.rsplit('-').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        seqs,
        ["0000001", "0000002", "0000003", "0000004", "0000005"]
    );
    assert!(numbers[0].starts_with("2023-"));
}

#[tokio::test]
async fn an_anonymous_donor_stays_anonymous_in_the_trace_and_receipt() {
    let f = fixture().await;
    let input = DonationInput {
        anonymous: true,
        ..money(8_800, Some(FUND), None)
    };
    let r = f
        .app
        .record_donation(&f.actor, &key("anon"), &input)
        .await
        .unwrap()
        .value;
    let trace = f.app.trace(&r.donation_id).await.unwrap();
    assert_eq!(trace.donation.donor, "匿名");
    assert_eq!(trace.receipts[0].payer, "匿名");
    let text = serde_json::to_string(&trace).unwrap();
    assert!(!text.contains("王小测") && !text.contains("王*测"));
}

#[tokio::test]
async fn a_donor_whose_only_donation_was_refunded_is_no_longer_counted() {
    let f = fixture().await;
    let before = f.app.disclosure_summary().await.unwrap().donors;
    let walk_in = DonationInput {
        donor_participant_id: None,
        donor_name: Some("李小测".into()),
        ..money(2_000, Some(FUND), None)
    };
    f.app
        .record_donation(&f.actor, &key("walk-in"), &walk_in)
        .await
        .unwrap();
    let named = f
        .app
        .record_donation(&f.actor, &key("named"), &money(3_000, Some(FUND), None))
        .await
        .unwrap()
        .value;
    assert_eq!(f.app.disclosure_summary().await.unwrap().donors, before + 2);
    f.app
        .refund_donation(
            &f.actor,
            &key("refund-all"),
            &named.donation_id,
            &RefundInput {
                amount_fen: 3_000,
                reason: "捐赠人要求".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        f.app.disclosure_summary().await.unwrap().donors,
        before + 1,
        "a fully refunded donation no longer makes its donor a donor"
    );
}

async fn pool(f: &Fixture, cap_total: i64) {
    f.app
        .create_match_pool(
            &f.actor,
            &MatchPoolInput {
                name: "农商银行 1:1 配捐".into(),
                sponsor_participant_id: "ptc_bank".into(),
                ratio_num: 1,
                ratio_den: 1,
                cap_per_donation_fen: 5_000,
                cap_per_donor_fen: 1_000_000,
                cap_total_fen: cap_total,
                project_ids: vec![P1.into()],
                campaign_id: None,
                starts_at: "2023-01-01T00:00:00+08:00".into(),
                ends_at: "2024-01-01T00:00:00+08:00".into(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn simultaneous_donations_never_overshoot_the_pool_and_a_refund_returns_the_match() {
    let f = fixture().await;
    pool(&f, 12_345).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let app = f.app.clone();
            let actor = f.actor.clone();
            tokio::spawn(async move {
                app.record_donation(
                    &actor,
                    &key(&format!("m{i}")),
                    &money(3_000, None, Some(P1)),
                )
                .await
                .unwrap()
                .value
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for t in tasks {
        recorded.push(t.await.unwrap());
    }
    let matched: i64 = recorded.iter().map(|r| r.match_fen).sum();
    assert_eq!(matched, 12_345);
    let pools = f.app.store().match_pools().await.unwrap();
    assert_eq!(pools[0].used_fen, 12_345);
    // Refund one fully matched donation in full: its match goes back to the pool.
    let full = recorded.iter().find(|r| r.match_fen == 3_000).unwrap();
    let refund = f
        .app
        .refund_donation(
            &f.actor,
            &key("mr"),
            &full.donation_id,
            &RefundInput {
                amount_fen: 3_000,
                reason: "捐赠人撤回".into(),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(refund.match_returned_fen, 3_000);
    let pools = f.app.store().match_pools().await.unwrap();
    assert_eq!(pools[0].used_fen, 12_345 - 3_000);
    assert_reconciled(&f.app).await;
}

// ---- Random histories against the database. ----

#[derive(Debug, Clone)]
enum Op {
    Donate(i64, bool),
    Allocate(i64, i64, i64),
    Disburse(bool, i64),
    Refund(usize, i64),
    Reverse(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1_i64..50_000, any::<bool>()).prop_map(|(a, r)| Op::Donate(a, r)),
        2 => (1_i64..60_000, 1_i64..5, 1_i64..5).prop_map(|(a, w1, w2)| Op::Allocate(a, w1, w2)),
        2 => (any::<bool>(), 1_i64..40_000).prop_map(|(p, a)| Op::Disburse(p, a)),
        1 => (0_usize..12, 1_i64..30_000).prop_map(|(d, a)| Op::Refund(d, a)),
        1 => (0_usize..6).prop_map(Op::Reverse),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn every_donation_reconciles_after_any_history(ops in prop::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let f = fixture().await;
            let a = &f.actor;
            let mut donations = Vec::new();
            let mut disbursements = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                let k = key(&format!("op-{i}"));
                match op {
                    Op::Donate(amount, restricted) => {
                        let input = if *restricted { money(*amount, None, Some(P2)) } else { money(*amount, Some(FUND), None) };
                        donations.push(f.app.record_donation(a, &k, &input).await.unwrap().value.donation_id);
                    }
                    Op::Allocate(amount, w1, w2) => {
                        let _ = f.app.allocate(a, &k, &AllocationInput {
                            fund_id: FUND.into(), amount_fen: *amount,
                            parts: vec![AllocationPart { project_id: P1.into(), weight: *w1 },
                                        AllocationPart { project_id: P2.into(), weight: *w2 }],
                        }).await;
                    }
                    Op::Disburse(first, amount) => {
                        let r = f.app.disburse(a, &k, &DisbursementInput {
                            project_id: if *first { P1.into() } else { P2.into() },
                            amount_fen: *amount, recipient_kind: "supplier".into(),
                            household_id: None, recipient_participant_id: None,
                            supplier_name: Some("供应商".into()), form: "service".into(),
                            purpose: None, description: String::new(), people_count: 0, evidence: vec![],
                        }).await;
                        if let Ok(r) = r { disbursements.push(r.value.disbursement_id); }
                    }
                    Op::Refund(d, amount) => {
                        if let Some(id) = donations.get(*d) {
                            let _ = f.app.refund_donation(a, &k, id, &RefundInput { amount_fen: *amount, reason: "测试".into() }).await;
                        }
                    }
                    Op::Reverse(d) => {
                        if let Some(id) = disbursements.get(*d) {
                            let _ = f.app.reverse_disbursement(a, &k, id, "测试").await;
                        }
                    }
                }
                assert_reconciled(&f.app).await;
            }
        });
    }
}

/// Runs one statement on the database file directly, behind the platform's back.
async fn tamper(f: &Fixture, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&f.url).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn verification_finds_a_receipt_or_donation_edited_in_the_database() {
    let f = fixture().await;
    let r = f
        .app
        .record_donation(&f.actor, &key("v1"), &money(10_000, Some(FUND), None))
        .await
        .unwrap()
        .value;
    assert_eq!(f.app.verify_ledger().await.unwrap(), Vec::<String>::new());
    assert_eq!(f.app.verify_log().await.unwrap(), Vec::<String>::new());

    tamper(
        &f,
        &format!(
            "UPDATE receipts SET amount_fen = 1000000 WHERE number = '{}'",
            r.receipt_number
        ),
    )
    .await;
    let problems = f.app.verify_ledger().await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains(&r.receipt_number)),
        "{problems:?}"
    );

    tamper(
        &f,
        &format!(
            "UPDATE donations SET amount_fen = 1 WHERE id = '{}'",
            r.donation_id
        ),
    )
    .await;
    let problems = f.app.verify_ledger().await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains(&r.donation_id)),
        "{problems:?}"
    );
}

#[tokio::test]
async fn verification_finds_states_and_totals_changed_behind_the_platforms_back() {
    let f = fixture().await;
    pool(&f, 100_000).await;
    let a = &f.actor;
    let d = f
        .app
        .record_donation(a, &key("t1"), &money(20_000, None, Some(P1)))
        .await
        .unwrap()
        .value;
    let paid = f
        .app
        .disburse(
            a,
            &key("t2"),
            &DisbursementInput {
                project_id: P1.into(),
                amount_fen: 1_000,
                recipient_kind: "supplier".into(),
                household_id: None,
                recipient_participant_id: None,
                supplier_name: Some("供应商".into()),
                form: "cash".into(),
                purpose: None,
                description: String::new(),
                people_count: 0,
                evidence: vec![EvidenceFile {
                    file_name: "invoice.pdf".into(),
                    content_type: "application/pdf".into(),
                    bytes: b"%PDF invoice".to_vec(),
                }],
            },
        )
        .await
        .unwrap()
        .value;
    f.app
        .reverse_disbursement(a, &key("t3"), &paid.disbursement_id, "冲正")
        .await
        .unwrap();
    let refund = f
        .app
        .refund_donation(
            a,
            &key("t4"),
            &d.donation_id,
            &RefundInput {
                amount_fen: 500,
                reason: "测试".into(),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(f.app.verify_ledger().await.unwrap(), Vec::<String>::new());

    let cases = [
        (
            format!(
                "UPDATE disbursements SET state = 'paid' WHERE id = '{}'",
                paid.disbursement_id
            ),
            paid.disbursement_id.clone(),
        ),
        (
            format!(
                "UPDATE receipts SET state = 'issued' WHERE number = '{}'",
                refund.voided_receipt.clone().unwrap()
            ),
            refund.voided_receipt.clone().unwrap(),
        ),
        (
            format!("DELETE FROM refunds WHERE id = '{}'", refund.refund_id),
            d.donation_id.clone(),
        ),
        (
            "UPDATE match_pools SET used_fen = 0".to_owned(),
            "pool_".to_owned(),
        ),
        (
            "UPDATE evidence SET sha256 = 'ff'".to_owned(),
            "evidence".to_owned(),
        ),
        (
            format!(
                "UPDATE donations SET project_id = '{P2}' WHERE id = '{}'",
                d.donation_id
            ),
            d.donation_id.clone(),
        ),
    ];
    for (sql, named) in cases {
        tamper(&f, &sql).await;
        let problems = f.app.verify_ledger().await.unwrap();
        assert!(
            problems.iter().any(|p| p.contains(&named)),
            "{sql}: {problems:?}"
        );
    }
}

/// Records `n` donations at once (so the writer commits them in groups), every other one to
/// project `P1` and the rest to the fund.
async fn donate_together(
    app: &App,
    actor: &Actor,
    prefix: &str,
    n: i64,
) -> Vec<(bool, Result<DonationRecorded, AppError>)> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (app, actor) = (app.clone(), actor.clone());
        let to_project = i % 2 == 1;
        let input = if to_project {
            money(1_000 + i, None, Some(P1))
        } else {
            money(1_000 + i, Some(FUND), None)
        };
        let key = key(&format!("{prefix}-{i}"));
        tasks.push(tokio::spawn(async move {
            let result = app.record_donation(&actor, &key, &input).await;
            (to_project, result.map(|o| o.value))
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

async fn scalar(f: &Fixture, sql: &str) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&f.url).await.unwrap();
    let value = sqlx::query(sql).fetch_one(&mut conn).await.unwrap().get(0);
    conn.close().await.unwrap();
    value
}

/// The donation writer starts each group commit from what the last one knew (journal head,
/// log frontier, receipt counters, projects, whether any match pool exists) when nothing else
/// was written in between. A write in between, by this process or by another connection to
/// the same database, must make it read afresh: a new pool must match the next donations, a
/// project closed behind its back must refuse them, and journal, log and receipt numbers must
/// stay whole.
#[tokio::test]
async fn group_commits_see_every_write_made_between_them() {
    let f = fixture().await;
    let first = donate_together(&f.app, &f.actor, "a", 40).await;
    assert!(first
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|d| d.match_fen == 0)));

    // This process creates a pool for P1: the next group's donations to P1 are matched.
    pool(&f, 1_000_000).await;
    for (to_project, result) in donate_together(&f.app, &f.actor, "b", 40).await {
        let recorded = result.unwrap();
        assert_eq!(recorded.match_fen > 0, to_project, "{recorded:?}");
    }

    // Another connection closes P1: the next group's donations to it are refused.
    tamper(
        &f,
        "UPDATE projects SET state = 'closed' WHERE id = 'prj_1'",
    )
    .await;
    for (to_project, result) in donate_together(&f.app, &f.actor, "c", 40).await {
        match result {
            Ok(_) => assert!(!to_project),
            Err(e) => {
                assert!(to_project);
                assert_eq!(e.code, "donation.project_closed");
            }
        }
    }

    // A second app on the same database (as another process would be) records donations with
    // its own writer, between two groups of this one.
    let other = App::open(
        &Config {
            database_url: f.url.clone(),
            data_dir: f._dir.path().to_owned(),
        },
        lucheng(),
        f.clock.clone(),
    )
    .await
    .unwrap();
    for (_, result) in donate_together(&other, &f.actor, "d", 20).await {
        assert!(result.is_ok() || result.is_err_and(|e| e.code == "donation.project_closed"));
    }
    other.close().await;
    let last = donate_together(&f.app, &f.actor, "e", 40).await;
    assert_eq!(last.iter().filter(|(_, r)| r.is_ok()).count(), 20);

    let journal = f.app.store().verify_journal().await.unwrap();
    assert!(journal.is_intact(), "{:?}", journal.problems);
    assert_eq!(f.app.verify_log().await.unwrap(), Vec::<String>::new());
    assert_eq!(f.app.verify_ledger().await.unwrap(), Vec::<String>::new());
    assert_reconciled(&f.app).await;
    // Receipt numbers: each once, without gaps.
    let receipts = scalar(&f, "SELECT COUNT(*) FROM receipts").await;
    assert_eq!(receipts, 40 + 60 + 20 + 10 + 20);
    assert_eq!(scalar(&f, "SELECT MAX(seq) FROM receipts").await, receipts);
    assert_eq!(
        scalar(&f, "SELECT COUNT(DISTINCT seq) FROM receipts").await,
        receipts
    );
}

/// A goods donation is refunded whole: a receipt for the remainder would still list every item.
/// Its quantity is bounded, since the receipt prints it.
#[tokio::test]
async fn goods_are_refunded_whole_and_counted_within_bounds() {
    let f = fixture().await;
    let goods = |quantity: i64| DonationInput {
        kind: Some("goods".into()),
        amount_fen: 30_000,
        fund_id: Some(FUND.into()),
        goods_item: Some("棉被".into()),
        goods_quantity: Some(quantity),
        goods_unit: Some("床".into()),
        valued_by: Some("采购发票".into()),
        channel: "cash".into(),
        ..DonationInput::default()
    };
    let too_many = f
        .app
        .record_donation(&f.actor, &key("g0"), &goods(1_000_000_001))
        .await
        .unwrap_err();
    assert_eq!(too_many.code, "donation.goods_quantity_invalid");
    let d = f
        .app
        .record_donation(&f.actor, &key("g1"), &goods(20))
        .await
        .unwrap()
        .value;
    let refund = |amount_fen: i64, k: &'static str| {
        let (app, actor, id) = (f.app.clone(), f.actor.clone(), d.donation_id.clone());
        async move {
            app.refund_donation(
                &actor,
                &key(k),
                &id,
                &RefundInput {
                    amount_fen,
                    reason: "物品退回".into(),
                },
            )
            .await
        }
    };
    let partial = refund(10_050, "gr1").await.unwrap_err();
    assert_eq!(partial.code, "refund.goods_partial");
    assert_eq!(count(&f.app, "refunds").await, 0);
    let whole = refund(30_000, "gr2").await.unwrap().value;
    assert_eq!(whole.net_fen, 0);
    assert_eq!(whole.new_receipt, None);
    assert_reconciled(&f.app).await;
}
