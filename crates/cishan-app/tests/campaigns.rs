//! Campaigns (一日捐) and bank card point donations through the app layer, on a real SQLite file:
//! participation rates per unit and per unit type against the campaign's own targets (refunds
//! included), duplicate units, and card point batches that round down, refuse items worth less
//! than a fen, are all-or-nothing and write nothing on a retry.

use std::sync::Arc;

use cishan_app::campaigns::{CampaignInput, CampaignUnitInput};
use cishan_app::card_points::{CardPointItem, CardPointsInput};
use cishan_app::donations::{DonationInput, IdempotencyKey, RefundInput};
use cishan_app::{Actor, App, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_store::{
    format_instant, FundRow, NewEntry, OrganizationRow, ParticipantRow, ProjectRow,
};

struct Fixture {
    app: App,
    actor: Actor,
    _dir: tempfile::TempDir,
}

const ORG: &str = "org_1";
const FUND: &str = "fnd_1";
const PROJECT: &str = "prj_1";
const BANK: &str = "ptc_bank";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // 16:00 in Shanghai on 2023-06-01.
    let clock = Arc::new(FixedClock::new("2023-06-01T08:00:00Z".parse().unwrap()));
    let config = Config {
        database_url: format!("sqlite://{}/app.db", dir.path().display()),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock).await.unwrap();
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
    let participant = |id: &str, name: &str, kind: &str| ParticipantRow {
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
    let mut tx = app.store().begin().await.unwrap();
    tx.insert_all(&[
        participant("ptc_wang", "王小测", "person"),
        participant("ptc_li", "李四", "person"),
        participant("ptc_zhao", "赵五", "person"),
        participant(BANK, "鹿城农商银行", "organization"),
        participant("ptc_org", "鹿城区慈善总会", "organization"),
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
        name: "一日捐基金".into(),
        created_at: at.clone(),
    })
    .await
    .unwrap();
    tx.insert(&ProjectRow {
        id: PROJECT.into(),
        org_id: ORG.into(),
        fund_id: Some(FUND.into()),
        name: "春蕾助学".into(),
        summary: String::new(),
        goal_fen: 1_000_000,
        state: "fundraising".into(),
        division_code: None,
        created_at: at.clone(),
    })
    .await
    .unwrap();
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
        _dir: dir,
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn campaign_input() -> CampaignInput {
    CampaignInput {
        org_id: ORG.into(),
        name: "2023 年慈善一日捐".into(),
        fund_id: Some(FUND.into()),
        starts_on: "2023-06-01".into(),
        ends_on: "2023-06-30".into(),
        ..CampaignInput::default()
    }
}

fn unit(name: &str, unit_type: &str, headcount: i64) -> CampaignUnitInput {
    CampaignUnitInput {
        name: name.into(),
        unit_type: unit_type.into(),
        headcount,
    }
}

async fn give(f: &Fixture, k: &str, unit_id: &str, donor: Option<&str>, amount_fen: i64) -> String {
    let input = DonationInput {
        amount_fen,
        fund_id: Some(FUND.into()),
        donor_participant_id: donor.map(Into::into),
        donor_name: donor.is_none().then(|| "路人甲".to_owned()),
        channel: "cash".into(),
        campaign_unit_id: Some(unit_id.into()),
        ..DonationInput::default()
    };
    f.app
        .record_donation(&f.actor, &key(k), &input)
        .await
        .unwrap()
        .value
        .donation_id
}

async fn refund(f: &Fixture, k: &str, donation_id: &str, amount_fen: i64) {
    f.app
        .refund_donation(
            &f.actor,
            &key(k),
            donation_id,
            &RefundInput {
                amount_fen,
                reason: "捐赠人申请退款".into(),
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_campaign_carries_the_plan_targets_unless_given_its_own() {
    let f = fixture().await;
    let c = f
        .app
        .create_campaign(&f.actor, &campaign_input())
        .await
        .unwrap();
    assert_eq!(
        (
            c.target_government_pct,
            c.target_institution_pct,
            c.target_enterprise_pct
        ),
        (100, 100, 75)
    );
    let own = f
        .app
        .create_campaign(
            &f.actor,
            &CampaignInput {
                target_enterprise_pct: Some(60),
                ..campaign_input()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (own.target_government_pct, own.target_enterprise_pct),
        (100, 60)
    );
    let journal = f.app.store().journal_for_subject(&c.id).await.unwrap();
    assert_eq!(journal[0].kind, "campaign.created");

    for (input, field) in [
        (
            CampaignInput {
                ends_on: "2023-05-31".into(),
                ..campaign_input()
            },
            "ends_on",
        ),
        (
            CampaignInput {
                starts_on: "2023-6-1".into(),
                ..campaign_input()
            },
            "starts_on",
        ),
        (
            CampaignInput {
                target_government_pct: Some(101),
                ..campaign_input()
            },
            "target_government_pct",
        ),
        (
            CampaignInput {
                fund_id: Some("fnd_other".into()),
                ..campaign_input()
            },
            "fund_id",
        ),
        (
            CampaignInput {
                org_id: "org_nope".into(),
                ..campaign_input()
            },
            "org_id",
        ),
    ] {
        let err = f.app.create_campaign(&f.actor, &input).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{field}");
        assert_eq!(err.field.as_deref(), Some(field), "{}", err.message);
    }
}

#[tokio::test]
async fn duplicate_unit_names_are_refused_naming_the_row() {
    let f = fixture().await;
    let c = f
        .app
        .create_campaign(&f.actor, &campaign_input())
        .await
        .unwrap();
    let err = f
        .app
        .add_campaign_units(
            &f.actor,
            &c.id,
            &[
                unit("区财政局", "government", 40),
                unit("区教育局", "government", 30),
                unit(" 区财政局 ", "government", 40),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("units[2].name"));
    assert!(
        err.message.contains("第 3 行“区财政局”与第 1 行重名"),
        "{}",
        err.message
    );

    f.app
        .add_campaign_units(&f.actor, &c.id, &[unit("区财政局", "government", 40)])
        .await
        .unwrap();
    let err = f
        .app
        .add_campaign_units(
            &f.actor,
            &c.id,
            &[
                unit("区民政局", "government", 20),
                unit("区财政局", "government", 40),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(
        err.message
            .contains("第 2 行“区财政局”已经是该活动的参与单位"),
        "{}",
        err.message
    );

    let err = f
        .app
        .add_campaign_units(&f.actor, &c.id, &[unit("鹿城银行", "bank", 20)])
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("units[0].unit_type"));
    let err = f
        .app
        .add_campaign_units(&f.actor, &c.id, &[unit("鹿城银行", "enterprise", 0)])
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("units[0].headcount"));
    // Nothing but the one good unit was added.
    let report = f.app.campaign_report(&c.id).await.unwrap();
    assert_eq!(report.units.len(), 1);
    let err = f.app.campaign_report("cmp_nope").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn participation_rates_count_donors_and_units_and_drop_full_refunds() {
    let f = fixture().await;
    let c = f
        .app
        .create_campaign(&f.actor, &campaign_input())
        .await
        .unwrap();
    let units = f
        .app
        .add_campaign_units(
            &f.actor,
            &c.id,
            &[
                unit("区财政局", "government", 4),
                unit("区民政局", "government", 10),
                unit("第一中学", "institution", 3),
                unit("甲公司", "enterprise", 10),
                unit("乙公司", "enterprise", 10),
                unit("丙公司", "enterprise", 10),
                unit("丁公司", "enterprise", 10),
            ],
        )
        .await
        .unwrap();
    let id = |name: &str| units.iter().find(|u| u.name == name).unwrap().id.clone();

    // 财政局: 王 twice (one donor), 李, and a walk-in: 3 donors of 4.
    give(&f, "k1", &id("区财政局"), Some("ptc_wang"), 10_000).await;
    give(&f, "k2", &id("区财政局"), Some("ptc_wang"), 5_000).await;
    give(&f, "k3", &id("区财政局"), Some("ptc_li"), 20_000).await;
    give(&f, "k4", &id("区财政局"), None, 3_000).await;
    // 民政局: one donation, refunded in full: no longer a participant.
    let gone = give(&f, "k5", &id("区民政局"), Some("ptc_zhao"), 8_000).await;
    refund(&f, "r5", &gone, 8_000).await;
    // 第一中学: one walk-in of 3 staff.
    give(&f, "k6", &id("第一中学"), None, 1_000).await;
    // Enterprises: three of four take part; 丙's partial refund leaves money, so it counts.
    give(&f, "k7", &id("甲公司"), Some("ptc_li"), 1_000).await;
    give(&f, "k8", &id("乙公司"), Some("ptc_zhao"), 2_000).await;
    let partly = give(&f, "k9", &id("丙公司"), Some("ptc_wang"), 3_000).await;
    refund(&f, "r9", &partly, 1_000).await;

    let report = f.app.campaign_report(&c.id).await.unwrap();
    let line = |name: &str| report.units.iter().find(|u| u.name == name).unwrap();

    let finance = line("区财政局");
    assert_eq!((finance.donors, finance.headcount), (3, 4));
    assert_eq!(
        (finance.registered_donors, finance.walk_in_donations),
        (2, 1)
    );
    assert_eq!(finance.staff_participation.permille, 750);
    assert_eq!(finance.staff_participation.percent_text, "75.0");
    assert_eq!(finance.net_fen, 38_000);
    assert!(finance.participated);

    let civil = line("区民政局");
    assert_eq!((civil.donors, civil.donations), (0, 0));
    assert_eq!(
        (civil.amount_fen, civil.refunded_fen, civil.net_fen),
        (8_000, 8_000, 0)
    );
    assert!(!civil.participated);

    let school = line("第一中学");
    assert_eq!(
        school.staff_participation.permille, 333,
        "1 of 3, rounded down"
    );
    assert_eq!(
        (
            school.staff_participation.numerator,
            school.staff_participation.denominator
        ),
        (1, 3)
    );

    let bing = line("丙公司");
    assert_eq!((bing.net_fen, bing.donors), (2_000, 1));
    assert!(bing.participated);
    assert!(!line("丁公司").participated);

    let by_type = |t: &str| report.unit_types.iter().find(|u| u.unit_type == t).unwrap();
    let gov = by_type("government");
    assert_eq!(
        (gov.units, gov.participating_units, gov.target_pct),
        (2, 1, 100)
    );
    assert_eq!(gov.unit_participation.as_ref().unwrap().permille, 500);
    assert_eq!(gov.met, Some(false));
    let inst = by_type("institution");
    assert_eq!(
        (inst.units, inst.participating_units, inst.met),
        (1, 1, Some(true))
    );
    let ent = by_type("enterprise");
    assert_eq!(
        (ent.units, ent.participating_units, ent.target_pct),
        (4, 3, 75)
    );
    assert_eq!(ent.unit_participation.as_ref().unwrap().permille, 750);
    assert_eq!(ent.met, Some(true), "3 of 4 is exactly the 75 % target");
    assert_eq!(ent.net_fen, 5_000);
    assert_eq!(report.donors, 3 + 1 + 3);
    assert_eq!(report.net_fen, 38_000 + 1_000 + 5_000);

    // A campaign with a lower enterprise target judges by its own number, not a constant.
    let lenient = f
        .app
        .create_campaign(
            &f.actor,
            &CampaignInput {
                target_government_pct: Some(50),
                ..campaign_input()
            },
        )
        .await
        .unwrap();
    let u = f
        .app
        .add_campaign_units(
            &f.actor,
            &lenient.id,
            &[
                unit("区财政局", "government", 4),
                unit("区民政局", "government", 4),
            ],
        )
        .await
        .unwrap();
    give(&f, "k10", &u[0].id, Some("ptc_wang"), 100).await;
    let report = f.app.campaign_report(&lenient.id).await.unwrap();
    assert_eq!(report.unit_types[0].met, Some(true), "1 of 2 meets 50 %");
}

// ---------------------------------------------------------------------------------------------
// Bank card points
// ---------------------------------------------------------------------------------------------

fn item(
    points: i64,
    fund: Option<&str>,
    project: Option<&str>,
    holder: Option<&str>,
) -> CardPointItem {
    CardPointItem {
        points,
        fund_id: fund.map(Into::into),
        project_id: project.map(Into::into),
        cardholder_participant_id: holder.map(Into::into),
        anonymous: false,
    }
}

fn batch(batch_ref: &str, items: Vec<CardPointItem>) -> CardPointsInput {
    CardPointsInput {
        bank_participant_id: BANK.into(),
        batch_ref: batch_ref.into(),
        points_per_yuan: 1000,
        items,
    }
}

async fn counts(app: &App) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "donations",
        "receipts",
        "lots",
        "ledger_entries",
        "journal",
        "idempotency_keys",
        "card_point_conversions",
        "log_leaves",
    ] {
        out.push(app.store().count_rows(table).await.unwrap());
    }
    out
}

#[tokio::test]
async fn card_points_round_down_and_become_donations() {
    let f = fixture().await;
    let mut anonymous = item(999, None, Some(PROJECT), Some("ptc_li"));
    anonymous.anonymous = true;
    let input = batch(
        "LCB-2023-06-001",
        vec![
            item(12_345, Some(FUND), None, Some("ptc_wang")),
            anonymous,
            item(1_000, Some(FUND), None, None),
        ],
    );
    let done = f
        .app
        .convert_card_points(&f.actor, &key("cp-1"), &input)
        .await
        .unwrap();
    assert!(!done.replayed);
    let v = &done.value;
    // 12345 × 100 / 1000 = 1234.5 → 1234 fen; 999 → 99.9 → 99 fen; 1000 → 100 fen.
    let fen: Vec<i64> = v.items.iter().map(|i| i.amount_fen).collect();
    assert_eq!(fen, [1234, 99, 100]);
    assert_eq!((v.total_points, v.total_fen), (14_344, 1433));

    for converted in &v.items {
        let d = f
            .app
            .store()
            .donation(&converted.donation_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.channel, "card_points");
        assert_eq!(d.payment_ref.as_deref(), Some("LCB-2023-06-001"));
        assert_eq!(d.amount_fen, converted.amount_fen);
        assert!(!converted.receipt_number.is_empty());
    }
    let second = f
        .app
        .store()
        .donation(&v.items[1].donation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(second.anonymous);
    assert_eq!(second.project_id.as_deref(), Some(PROJECT));
    let rows = f
        .app
        .store()
        .card_point_conversions(BANK, "LCB-2023-06-001")
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.points_per_yuan == 1000));
    assert_eq!(rows.iter().map(|r| r.points).sum::<i64>(), 14_344);
    assert_eq!(
        f.app.store().unreconciled_donations().await.unwrap(),
        vec![]
    );
    assert_eq!(f.app.store().unbalanced_transfers().await.unwrap(), vec![]);
}

#[tokio::test]
async fn a_card_point_retry_returns_the_first_result_and_writes_nothing() {
    let f = fixture().await;
    let input = batch(
        "LCB-7",
        vec![item(5_000, Some(FUND), None, Some("ptc_wang"))],
    );
    let first = f
        .app
        .convert_card_points(&f.actor, &key("cp-retry"), &input)
        .await
        .unwrap();
    let before = counts(&f.app).await;
    let again = f
        .app
        .convert_card_points(&f.actor, &key("cp-retry"), &input)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(counts(&f.app).await, before, "a retry writes nothing");

    // The same key with another body is refused; the same batch under a new key too.
    let other = batch("LCB-7", vec![item(6_000, Some(FUND), None, None)]);
    let err = f
        .app
        .convert_card_points(&f.actor, &key("cp-retry"), &other)
        .await
        .unwrap_err();
    assert_eq!(err.code, "idempotency.key_reused");
    let err = f
        .app
        .convert_card_points(&f.actor, &key("cp-new-key"), &input)
        .await
        .unwrap_err();
    assert_eq!(err.code, "card_points.batch_duplicate");
    assert_eq!(counts(&f.app).await, before);
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_names_the_bad_item() {
    let f = fixture().await;
    let before = counts(&f.app).await;

    // 5 points at 1000 a yuan is half a fen: refused before anything is written.
    let err = f
        .app
        .convert_card_points(
            &f.actor,
            &key("cp-zero"),
            &batch(
                "LCB-8",
                vec![
                    item(2_000, Some(FUND), None, None),
                    item(5, Some(FUND), None, None),
                ],
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "card_points.below_one_fen");
    assert_eq!(err.field.as_deref(), Some("items[1].points"));
    assert!(err.message.contains("第 2 项"), "{}", err.message);

    // An unknown project in the second item is found inside the transaction: the first
    // item's donation, receipt and conversion roll back with it.
    let err = f
        .app
        .convert_card_points(
            &f.actor,
            &key("cp-bad"),
            &batch(
                "LCB-9",
                vec![
                    item(2_000, Some(FUND), None, None),
                    item(3_000, None, Some("prj_nope"), None),
                ],
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("items[1].project_id"),
        "{}",
        err.message
    );
    assert!(err.message.contains("第 2 项"), "{}", err.message);

    let err = f
        .app
        .convert_card_points(
            &f.actor,
            &key("cp-holder"),
            &batch(
                "LCB-10",
                vec![item(2_000, Some(FUND), None, Some("ptc_nope"))],
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("items[0].cardholder_participant_id")
    );

    let err = f
        .app
        .convert_card_points(
            &f.actor,
            &key("cp-person-bank"),
            &CardPointsInput {
                bank_participant_id: "ptc_wang".into(),
                ..batch("LCB-11", vec![item(2_000, Some(FUND), None, None)])
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "card_points.bank_unknown");

    let err = f
        .app
        .convert_card_points(
            &f.actor,
            &key("cp-rate"),
            &CardPointsInput {
                points_per_yuan: 0,
                ..batch("LCB-12", vec![item(2_000, Some(FUND), None, None)])
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("points_per_yuan"));

    assert_eq!(
        counts(&f.app).await,
        before,
        "no refused batch left a trace"
    );
    // The refused keys were not consumed: the corrected batch goes through under one of them.
    f.app
        .convert_card_points(
            &f.actor,
            &key("cp-bad"),
            &batch("LCB-9", vec![item(2_000, Some(FUND), None, None)]),
        )
        .await
        .unwrap();
}
