//! Exports of an organization, a fund and a project, and donors' yearly tax summaries, through
//! the app layer on a real SQLite file: the CSV opens in Chinese Excel (BOM, CRLF, yuan text),
//! formula-like cells are neutralised, anonymous donors stay anonymous everywhere, and totals are
//! the same in every format, page and window.

use std::collections::BTreeMap;
use std::sync::Arc;

use cishan_app::donations::{
    AllocationInput, AllocationPart, DisbursementInput, DonationInput, IdempotencyKey, RefundInput,
};
use cishan_app::exports::{yuan_text, Export, ExportKind, ExportQuery, UTF8_BOM};
use cishan_app::{Actor, App, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_store::{
    format_instant, FundRow, NewEntry, OrganizationRow, ParticipantRow, ProjectRow,
};

struct Fixture {
    app: App,
    clock: Arc<FixedClock>,
    actor: Actor,
    _dir: tempfile::TempDir,
}

const ORG: &str = "org_1";
const FUND: &str = "fnd_1";
const P1: &str = "prj_1";
const P2: &str = "prj_2";
/// An organization donor whose name is a spreadsheet formula.
const FORMULA: &str = "=HYPERLINK(\"http://evil.example/\",\"点我领奖\")";
/// A donor who gives anonymously: this name must not appear in any export.
const SECRET: &str = "欧阳秘密";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2023-06-01T08:00:00Z".parse().unwrap()));
    let config = Config {
        database_url: format!("sqlite://{}/app.db", dir.path().display()),
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
        participant("ptc_secret", SECRET, "person"),
        participant("ptc_formula", FORMULA, "organization"),
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
        clock,
        actor,
        _dir: dir,
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn donation(amount_fen: i64, fund: Option<&str>, project: Option<&str>) -> DonationInput {
    DonationInput {
        amount_fen,
        fund_id: fund.map(Into::into),
        project_id: project.map(Into::into),
        channel: "cash".into(),
        ..DonationInput::default()
    }
}

async fn give(f: &Fixture, k: &str, input: DonationInput) -> String {
    f.app
        .record_donation(&f.actor, &key(k), &input)
        .await
        .unwrap()
        .value
        .donation_id
}

/// A ledger with every kind of movement: donations to the fund and to a project, an anonymous
/// one, a partial refund, an allocation, charitable and management disbursements. Donations
/// arrive a minute apart so that money is consumed in a known order.
async fn history(f: &Fixture) {
    let minute = |m: u32| {
        f.clock
            .set(format!("2023-06-01T08:{m:02}:00Z").parse().unwrap())
    };
    minute(0);
    let wang = give(
        f,
        "d1",
        DonationInput {
            donor_participant_id: Some("ptc_wang".into()),
            ..donation(100_000, Some(FUND), None)
        },
    )
    .await;
    minute(1);
    give(
        f,
        "d2",
        DonationInput {
            donor_participant_id: Some("ptc_formula".into()),
            ..donation(50_000, Some(FUND), None)
        },
    )
    .await;
    minute(2);
    give(
        f,
        "d3",
        DonationInput {
            donor_participant_id: Some("ptc_secret".into()),
            anonymous: true,
            ..donation(30_000, None, Some(P1))
        },
    )
    .await;
    minute(3);
    give(
        f,
        "d4",
        DonationInput {
            donor_name: Some("@SUM(A1)".into()),
            ..donation(1_234, None, Some(P2))
        },
    )
    .await;
    minute(10);
    f.app
        .refund_donation(
            &f.actor,
            &key("r1"),
            &wang,
            &RefundInput {
                amount_fen: 10_000,
                reason: "捐赠人申请".into(),
            },
        )
        .await
        .unwrap();
    f.app
        .allocate(
            &f.actor,
            &key("a1"),
            &AllocationInput {
                fund_id: FUND.into(),
                amount_fen: 60_000,
                parts: vec![AllocationPart {
                    project_id: P1.into(),
                    weight: 1,
                }],
            },
        )
        .await
        .unwrap();
    for (k, amount, purpose) in [("b1", 40_000, "charitable"), ("b2", 5_000, "management")] {
        f.app
            .disburse(
                &f.actor,
                &key(k),
                &DisbursementInput {
                    project_id: P1.into(),
                    amount_fen: amount,
                    recipient_kind: "supplier".into(),
                    household_id: None,
                    recipient_participant_id: None,
                    supplier_name: Some("鹿城文具店".into()),
                    form: "goods".into(),
                    purpose: Some(purpose.into()),
                    description: "学习用品".into(),
                    people_count: 20,
                    evidence: Vec::new(),
                },
            )
            .await
            .unwrap();
    }
}

/// The CSV's rows, after checking the bytes Excel needs.
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(bytes.starts_with(UTF8_BOM), "UTF-8 BOM first");
    let text = std::str::from_utf8(&bytes[UTF8_BOM.len()..]).unwrap();
    assert!(text.ends_with("\r\n"));
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "every line ends with CRLF"
    );
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The totals section of a CSV, label → yuan text.
fn csv_totals(rows: &[Vec<String>]) -> BTreeMap<String, String> {
    let start = rows.iter().position(|r| r[0].starts_with("合计")).unwrap();
    rows[start + 1..]
        .iter()
        .take_while(|r| r.len() == 2)
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn expected_totals(e: &Export) -> BTreeMap<String, String> {
    let t = &e.totals;
    [
        ("捐赠笔数", t.donations.to_string()),
        ("捐赠总额（含已退款）", yuan_text(t.gross_fen)),
        ("已退款", yuan_text(t.refunded_fen)),
        ("净捐赠", yuan_text(t.net_fen)),
        ("已拨付到项目", yuan_text(t.allocated_fen)),
        ("慈善活动支出", yuan_text(t.disbursed_charitable_fen)),
        ("管理费用", yuan_text(t.disbursed_management_fen)),
        ("支出合计", yuan_text(t.disbursed_fen)),
        ("结余", yuan_text(t.remaining_fen)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test]
async fn the_csv_opens_in_excel_and_neutralises_formulas() {
    let f = fixture().await;
    history(&f).await;
    let export = f
        .app
        .export(ExportKind::Organization, ORG, &ExportQuery::default())
        .await
        .unwrap();
    let bytes = export.to_csv().unwrap();
    let rows = csv_rows(&bytes);
    let donors: Vec<&str> = {
        let start = rows.iter().position(|r| r[0] == "捐赠明细").unwrap() + 2;
        rows[start..]
            .iter()
            .take_while(|r| r.len() > 1)
            .map(|r| r[2].as_str())
            .collect()
    };
    assert_eq!(donors.len(), 4);
    assert!(donors.contains(&"王*测"));
    assert!(donors.contains(&"匿名"));
    assert!(
        donors.contains(&format!("'{FORMULA}").as_str()),
        "{donors:?}"
    );
    assert!(donors.contains(&"'@******)"), "{donors:?}");
    // No cell anywhere starts a formula.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
    // Amounts are yuan text with two decimals.
    let wang = rows
        .iter()
        .find(|r| r.len() > 2 && r[2] == "王*测")
        .unwrap();
    assert_eq!(
        (wang[9].as_str(), wang[10].as_str(), wang[11].as_str()),
        ("1000.00", "100.00", "900.00")
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains(SECRET) && !text.contains("欧**密"), "{text}");
}

#[tokio::test]
async fn an_unnamed_walk_in_is_unnamed_and_only_an_anonymous_donation_is_anonymous() {
    let f = fixture().await;
    give(&f, "walk-in", donation(5_000, Some(FUND), None)).await;
    give(
        &f,
        "anonymous",
        DonationInput {
            donor_participant_id: Some("ptc_wang".into()),
            anonymous: true,
            ..donation(3_000, Some(FUND), None)
        },
    )
    .await;
    let export = f
        .app
        .export(ExportKind::Organization, ORG, &ExportQuery::default())
        .await
        .unwrap();
    let mut donors: Vec<&str> = export.donations.iter().map(|d| d.donor.as_str()).collect();
    donors.sort_unstable();
    // As on the trace pages: 未留名 for the walk-in, 匿名 only for the anonymous donation.
    assert_eq!(donors, ["匿名", "未留名"]);
    let rows = csv_rows(&export.to_csv().unwrap());
    let start = rows.iter().position(|r| r[0] == "捐赠明细").unwrap() + 2;
    let mut csv_donors: Vec<&str> = rows[start..]
        .iter()
        .take_while(|r| r.len() > 1)
        .map(|r| r[2].as_str())
        .collect();
    csv_donors.sort_unstable();
    assert_eq!(csv_donors, ["匿名", "未留名"]);
}

#[tokio::test]
async fn the_totals_say_which_donation_total_is_gross_and_which_is_net() {
    let f = fixture().await;
    history(&f).await;
    let export = f
        .app
        .export(ExportKind::Organization, ORG, &ExportQuery::default())
        .await
        .unwrap();
    let rows = csv_rows(&export.to_csv().unwrap());
    let labels: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    // 捐赠总额 is the gross, said so; the net (the home page's figure) is 净捐赠.
    assert!(labels.contains(&"捐赠总额（含已退款）"), "{labels:?}");
    assert!(labels.contains(&"净捐赠"), "{labels:?}");
    assert!(!labels.contains(&"捐赠总额"), "{labels:?}");
}

#[tokio::test]
async fn the_json_keeps_the_original_text_and_hides_the_anonymous_donor() {
    let f = fixture().await;
    history(&f).await;
    for (kind, id) in [
        (ExportKind::Organization, ORG),
        (ExportKind::Fund, FUND),
        (ExportKind::Project, P1),
    ] {
        let export = f
            .app
            .export(kind, id, &ExportQuery::default())
            .await
            .unwrap();
        let json = serde_json::to_string(&export).unwrap();
        assert!(!json.contains(SECRET) && !json.contains("欧**密"), "{json}");
        let csv = String::from_utf8(export.to_csv().unwrap()).unwrap();
        assert!(!csv.contains(SECRET), "{csv}");
    }
    let export = f
        .app
        .export(ExportKind::Organization, ORG, &ExportQuery::default())
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::to_value(&export).unwrap();
    let donors: Vec<&str> = json["donations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["donor"].as_str().unwrap())
        .collect();
    assert!(donors.contains(&FORMULA), "JSON keeps the text: {donors:?}");
    assert!(donors.contains(&"匿名"));
}

#[tokio::test]
async fn totals_are_the_same_in_every_format_page_and_window() {
    let f = fixture().await;
    history(&f).await;
    for (kind, id) in [
        (ExportKind::Organization, ORG),
        (ExportKind::Fund, FUND),
        (ExportKind::Project, P1),
    ] {
        let whole = f
            .app
            .export(kind, id, &ExportQuery::default())
            .await
            .unwrap();
        // CSV and JSON carry the same totals.
        assert_eq!(
            csv_totals(&csv_rows(&whole.to_csv().unwrap())),
            expected_totals(&whole),
            "{kind:?}"
        );
        let json: serde_json::Value = serde_json::to_value(&whole).unwrap();
        assert_eq!(json["totals"]["net_fen"], whole.totals.net_fen);
        // Pages and windows change the lists, never the totals.
        let page1 = ExportQuery {
            per_page: Some(1),
            ..ExportQuery::default()
        };
        let page2 = ExportQuery {
            page: Some(2),
            ..page1.clone()
        };
        let empty_window = ExportQuery {
            from: Some("2020-01-01".into()),
            until: Some("2020-12-31".into()),
            ..ExportQuery::default()
        };
        for q in [page1, page2, empty_window] {
            let part = f.app.export(kind, id, &q).await.unwrap();
            assert_eq!(part.totals, whole.totals, "{kind:?} {q:?}");
            assert!(part.donations.len() <= 1 || q.per_page.is_none());
        }
        let windowed = f
            .app
            .export(
                kind,
                id,
                &ExportQuery {
                    from: Some("2020-01-01".into()),
                    until: Some("2020-12-31".into()),
                    ..ExportQuery::default()
                },
            )
            .await
            .unwrap();
        assert!(windowed.donations.is_empty() && windowed.disbursements.is_empty());
    }

    let org = f
        .app
        .export(ExportKind::Organization, ORG, &ExportQuery::default())
        .await
        .unwrap()
        .totals;
    assert_eq!(
        (org.donations, org.gross_fen, org.refunded_fen, org.net_fen),
        (4, 181_234, 10_000, 171_234)
    );
    assert_eq!(
        (
            org.allocated_fen,
            org.disbursed_charitable_fen,
            org.disbursed_management_fen
        ),
        (60_000, 40_000, 5_000)
    );
    assert_eq!(org.net_fen, org.disbursed_fen + org.remaining_fen);

    // The fund: 王 (900 after the refund) and the formula donor (500); 600 of 王's money
    // allocated to 春蕾, which paid 450 oldest-first: all of it 王's, since the restricted 300
    // arrived two minutes later.
    let fund = f
        .app
        .export(ExportKind::Fund, FUND, &ExportQuery::default())
        .await
        .unwrap()
        .totals;
    assert_eq!(
        (fund.gross_fen, fund.net_fen, fund.allocated_fen),
        (150_000, 140_000, 60_000)
    );
    assert_eq!(fund.disbursed_fen, 45_000);
    assert_eq!(fund.net_fen, fund.disbursed_fen + fund.remaining_fen);

    // 春蕾: 300 restricted + 600 allocated − 450 paid = 450 held.
    let p1 = f
        .app
        .export(ExportKind::Project, P1, &ExportQuery::default())
        .await
        .unwrap();
    assert_eq!(
        (
            p1.totals.net_fen,
            p1.totals.allocated_fen,
            p1.totals.disbursed_fen,
            p1.totals.remaining_fen
        ),
        (30_000, 60_000, 45_000, 45_000)
    );
    assert_eq!(p1.disbursements.len(), 2);
    assert_eq!(p1.disbursements[0].recipient, "鹿城文具店");
    assert_eq!(p1.allocations.len(), 1);

    // Paging walks the donations without losing or repeating one.
    let mut seen = Vec::new();
    let mut page = Some(1);
    while let Some(n) = page {
        let part = f
            .app
            .export(
                ExportKind::Organization,
                ORG,
                &ExportQuery {
                    page: Some(n),
                    per_page: Some(3),
                    ..ExportQuery::default()
                },
            )
            .await
            .unwrap();
        seen.extend(part.donations.into_iter().map(|d| d.donation_id));
        page = part.next_page;
    }
    assert_eq!(seen.len(), 4);
    seen.dedup();
    assert_eq!(seen.len(), 4);

    let err = f
        .app
        .export(ExportKind::Fund, "fnd_nope", &ExportQuery::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = f
        .app
        .export(
            ExportKind::Fund,
            FUND,
            &ExportQuery {
                from: Some("2023/01/01".into()),
                ..ExportQuery::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("from"));
}

#[tokio::test]
async fn the_tax_summary_lists_receipts_in_force_by_shanghai_year() {
    let f = fixture().await;
    let wang = |amount| DonationInput {
        donor_participant_id: Some("ptc_wang".into()),
        ..donation(amount, Some(FUND), None)
    };
    let first = give(&f, "t1", wang(100_000)).await;
    // A partial refund voids the first receipt and reissues one for 800.00.
    f.app
        .refund_donation(
            &f.actor,
            &key("t1-refund"),
            &first,
            &RefundInput {
                amount_fen: 20_000,
                reason: "多捐".into(),
            },
        )
        .await
        .unwrap();
    // 2023-12-31T17:00Z is 2024-01-01 01:00 in Shanghai: a 2024 receipt.
    f.clock.set("2023-12-31T17:00:00Z".parse().unwrap());
    give(&f, "t2", wang(5_000)).await;
    // 2023-12-31T15:59Z is still 2023 in Shanghai.
    f.clock.set("2023-12-31T15:59:00Z".parse().unwrap());
    give(&f, "t3", wang(7_000)).await;
    // Someone else's donation is not in 王's summary.
    give(
        &f,
        "t4",
        DonationInput {
            donor_participant_id: Some("ptc_secret".into()),
            ..donation(9_900, Some(FUND), None)
        },
    )
    .await;

    let y2023 = f
        .app
        .donor_tax_summary(&f.actor, "ptc_wang", 2023)
        .await
        .unwrap();
    let amounts: Vec<i64> = y2023.receipts.iter().map(|r| r.amount_fen).collect();
    assert_eq!(amounts, [80_000, 7_000]);
    assert_eq!((y2023.receipt_count, y2023.total_fen), (2, 87_000));
    assert!(
        y2023.receipts[0].replaces.is_some(),
        "the reissued receipt names the voided one"
    );
    assert_eq!(y2023.receipts[1].issued_on, "2023-12-31");
    assert_eq!(y2023.donor_name, "王小测");
    assert_eq!(y2023.timezone, "Asia/Shanghai");

    let y2024 = f
        .app
        .donor_tax_summary(&f.actor, "ptc_wang", 2024)
        .await
        .unwrap();
    assert_eq!((y2024.receipt_count, y2024.total_fen), (1, 5_000));
    assert_eq!(y2024.receipts[0].issued_on, "2024-01-01");
    assert!(y2024.receipts[0].number.starts_with("2024-"));

    let none = f
        .app
        .donor_tax_summary(&f.actor, "ptc_wang", 2022)
        .await
        .unwrap();
    assert_eq!((none.receipt_count, none.total_fen), (0, 0));
    let err = f
        .app
        .donor_tax_summary(&f.actor, "ptc_nope", 2023)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}
