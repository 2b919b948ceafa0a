//! The beneficiary registry, the edge list and welfare jobs through the app layer on a real
//! database (SQLite file, or PostgreSQL with `CISHAN_TEST_POSTGRES_URL`): ciphertext at rest,
//! exact-ID search, masking by default, unmasking by role and reason with a journal entry that
//! holds no plaintext, street scoping (404 for another street), the edge line's boundary,
//! needs unreached after N days, the positions cap under concurrency, the employment rate.

mod db_support;

use std::sync::Arc;

use cishan_app::jobs::{EndPlacementInput, JobInput, PlacementInput};
use cishan_app::registry::{
    CloseNeedInput, EdgeQuery, HouseholdFilter, HouseholdInput, MemberInput, NeedFilter, NeedInput,
    StaffScopeInput, UnmaskInput,
};
use cishan_app::{Actor, App, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_store::{format_instant, NewEntry, OrganizationRow};
use jiff::Timestamp;
use sqlx::{Connection, Row};

const WUMA: &str = "330302006";
const WUMA_COMMUNITY: &str = "330302006044";
const BINJIANG: &str = "330302024";
const BINJIANG_COMMUNITY: &str = "330302024001";
const ORG: &str = "org_employer";

const HEAD_ID: &str = "330302198001010019";
const SPOUSE_ID: &str = "330302198202020029";
const CHILD_ID: &str = "330302201003030034";
const OTHER_IDS: [&str; 10] = [
    "330302195004040041",
    "330302199005050055",
    "330302199206060065",
    "330302199407070075",
    "330302199608080085",
    "330302197009090098",
    "330302197510100106",
    "330302198511110116",
    "330302198812120123",
    "330302199912010137",
];
const HEAD_PHONE: &str = "13812345678";
const ADDRESS: &str = "鹿城区五马街道解放街12号301室";

/// 2023 in Shanghai: the standard is ¥11,500, the edge line ×1.5 = ¥17,250 a year.
const EDGE_LINE_FEN: i64 = 1_725_000;

struct Fixture {
    app: App,
    admin: Actor,
    /// District-wide staff, may not unmask.
    district: Actor,
    /// Staff of 五马街道, may unmask.
    wuma: Actor,
    /// Staff of 滨江街道.
    binjiang: Actor,
    clock: Arc<FixedClock>,
    url: String,
    _dir: tempfile::TempDir,
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(at("2023-06-01T02:00:00Z")));
    let url = db_support::database_url(dir.path(), "registry").await;
    let config = Config {
        database_url: url.clone(),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    let admin = app
        .create_user(
            None,
            "admin",
            "管理员",
            "correct horse battery",
            Role::Admin,
        )
        .await
        .unwrap();
    let mut staff = Vec::new();
    for name in ["district", "wuma", "binjiang"] {
        staff.push(
            app.create_user(
                Some(&admin),
                name,
                name,
                "correct horse battery",
                Role::Staff,
            )
            .await
            .unwrap(),
        );
    }
    let [district, wuma, binjiang] = <[Actor; 3]>::try_from(staff).unwrap();
    app.set_staff_scope(
        &admin,
        &wuma.user_id,
        &StaffScopeInput {
            division_code: Some(WUMA.into()),
            org_id: None,
            can_unmask: true,
        },
    )
    .await
    .unwrap();
    app.set_staff_scope(
        &admin,
        &binjiang.user_id,
        &StaffScopeInput {
            division_code: Some(BINJIANG.into()),
            org_id: None,
            can_unmask: true,
        },
    )
    .await
    .unwrap();
    let mut tx = app.store().begin().await.unwrap();
    tx.insert(&OrganizationRow {
        id: ORG.into(),
        participant_id: None,
        name: "鹿城区物业服务中心".into(),
        credit_code: "51330302MJ8998765X".into(),
        kind: "social_service".into(),
        division_code: None,
        registered_on: "2010-01-01".into(),
        created_at: format_instant(at("2020-01-01T00:00:00Z")),
        is_charity: false,
        public_fundraising: false,
        synthetic: false,
    })
    .await
    .unwrap();
    tx.journal(
        at("2020-01-01T00:00:00Z"),
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
        admin,
        district,
        wuma,
        binjiang,
        clock,
        url,
        _dir: dir,
    }
}

fn wuma_household() -> HouseholdInput {
    HouseholdInput {
        category: "near_subsistence".into(),
        street_code: WUMA.into(),
        community_code: WUMA_COMMUNITY.into(),
        head_name: "王小测".into(),
        head_id_number: HEAD_ID.into(),
        phone: Some(HEAD_PHONE.into()),
        address: ADDRESS.into(),
        per_capita_income_fen: 1_200_000,
        members: vec![
            MemberInput {
                name: "李测芳".into(),
                id_number: SPOUSE_ID.into(),
                relation: "spouse".into(),
                phone: None,
                category: None,
            },
            MemberInput {
                name: "王小小".into(),
                id_number: CHILD_ID.into(),
                relation: "child".into(),
                phone: None,
                category: Some("education".into()),
            },
        ],
        consent: true,
    }
}

/// A one-person household in `street` with this ID number, category and income.
fn single(street: &str, id: &str, category: &str, income_fen: i64) -> HouseholdInput {
    HouseholdInput {
        category: category.into(),
        street_code: street.into(),
        community_code: if street == WUMA {
            WUMA_COMMUNITY.into()
        } else {
            BINJIANG_COMMUNITY.into()
        },
        head_name: "赵测一".into(),
        head_id_number: id.into(),
        phone: None,
        address: "鹿城区某街道某路1号".into(),
        per_capita_income_fen: income_fen,
        members: Vec::new(),
        consent: true,
    }
}

/// Every text column of a table, concatenated, read straight from the database.
async fn raw_table_text(url: &str, table: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut all = String::new();
    for row in &rows {
        for i in 0..row.len() {
            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                all.push_str(&text);
                all.push('|');
            }
        }
    }
    all
}

#[tokio::test]
async fn personal_fields_are_ciphertext_at_rest_and_masked_by_default() {
    let f = fixture().await;
    let view = f
        .app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    assert_eq!(view.member_count, 3);
    assert_eq!(view.street_name, "五马街道");
    assert_eq!(view.community_name, "鼓楼社区");
    assert_eq!(view.category_name, "低保边缘");
    assert_eq!(view.head_name_masked, "王*测");
    assert_eq!(view.head_id_masked, "330302********0019");
    assert_eq!(view.phone_masked.as_deref(), Some("138****5678"));
    assert_eq!(view.address_masked, "鹿城区五马街道****");
    assert_eq!(view.income_band.as_deref(), Some("below_edge_line"));
    assert_eq!(view.consent_by.as_deref(), Some(f.wuma.user_id.as_str()));
    assert_eq!(view.members[0].relation, "head");
    assert_eq!(view.members[2].category_name.as_deref(), Some("教育救助"));

    // Nothing personal in clear in the rows, the journal, or the JSON of the view.
    let households = raw_table_text(&f.url, "households").await;
    let members = raw_table_text(&f.url, "household_members").await;
    let journal = raw_table_text(&f.url, "journal").await;
    let json = serde_json::to_string(&view).unwrap();
    for secret in [
        HEAD_ID,
        SPOUSE_ID,
        CHILD_ID,
        HEAD_PHONE,
        ADDRESS,
        "王小测",
        "李测芳",
        "1200000",
        "解放街",
    ] {
        for (what, text) in [
            ("households", &households),
            ("household_members", &members),
            ("journal", &journal),
            ("view json", &json),
        ] {
            assert!(!text.contains(secret), "{secret} in clear in {what}");
        }
    }
    assert!(households.contains("王*测"), "the masked form is stored");
}

#[tokio::test]
async fn registration_refuses_bad_input_and_writes_nothing() {
    let f = fixture().await;
    let cases: Vec<(HouseholdInput, &str)> = vec![
        (
            HouseholdInput {
                category: "rich".into(),
                ..wuma_household()
            },
            "category",
        ),
        (
            HouseholdInput {
                community_code: BINJIANG_COMMUNITY.into(),
                ..wuma_household()
            },
            "community_code",
        ),
        (
            HouseholdInput {
                street_code: WUMA_COMMUNITY.into(),
                ..wuma_household()
            },
            "street_code",
        ),
        (
            HouseholdInput {
                head_id_number: "330302198001010018".into(),
                ..wuma_household()
            },
            "head_id_number",
        ),
        (
            HouseholdInput {
                per_capita_income_fen: -1,
                ..wuma_household()
            },
            "per_capita_income_fen",
        ),
        (
            HouseholdInput {
                consent: false,
                ..wuma_household()
            },
            "consent",
        ),
        (
            HouseholdInput {
                phone: Some("12".into()),
                ..wuma_household()
            },
            "phone",
        ),
    ];
    for (input, field) in cases {
        let e = f.app.register_household(&f.wuma, &input).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
        assert!(!e.message.is_empty());
    }
    let mut bad_member = wuma_household();
    bad_member.members[1].id_number = "33030220100303003".into();
    let e = f
        .app
        .register_household(&f.wuma, &bad_member)
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("members[1].id_number"));
    let consent = f
        .app
        .register_household(
            &f.wuma,
            &HouseholdInput {
                consent: false,
                ..wuma_household()
            },
        )
        .await
        .unwrap_err();
    assert!(consent.message.contains("同意"), "{}", consent.message);

    // A street's staff cannot register in another street; a member cannot at all.
    let e = f
        .app
        .register_household(&f.binjiang, &wuma_household())
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("street_code"));
    let member = Actor {
        role: Role::Member,
        ..f.district.clone()
    };
    let e = f
        .app
        .register_household(&member, &wuma_household())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);

    let page = f
        .app
        .households(&f.admin, &HouseholdFilter::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(page.total, 0, "nothing half-written");
    assert_eq!(raw_table_text(&f.url, "household_members").await, "");

    // One person, one household: the second registration of an ID number is refused.
    f.app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    let again = single(WUMA, SPOUSE_ID, "temporary", 100);
    let e = f.app.register_household(&f.wuma, &again).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(e.field.as_deref(), Some("head_id_number"));
}

#[tokio::test]
async fn exact_id_search_and_street_scoping() {
    let f = fixture().await;
    let home = f
        .app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    let other = f
        .app
        .register_household(
            &f.binjiang,
            &single(BINJIANG, OTHER_IDS[0], "subsistence", 500_000),
        )
        .await
        .unwrap();

    // Search by any member's exact ID number.
    let by_child = f
        .app
        .households(
            &f.district,
            &HouseholdFilter {
                id_number: Some(format!(" {CHILD_ID} ")),
                ..HouseholdFilter::default()
            },
            0,
            20,
        )
        .await
        .unwrap();
    assert_eq!(by_child.total, 1);
    assert_eq!(by_child.items[0].id, home.id);
    let unknown = f
        .app
        .households(
            &f.district,
            &HouseholdFilter {
                id_number: Some(OTHER_IDS[5].into()),
                ..HouseholdFilter::default()
            },
            0,
            20,
        )
        .await
        .unwrap();
    assert_eq!(unknown.total, 0);
    let e = f
        .app
        .households(
            &f.district,
            &HouseholdFilter {
                id_number: Some("1234".into()),
                ..HouseholdFilter::default()
            },
            0,
            20,
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("id_number"));

    // District staff see both; each street's staff only their own.
    let all = f
        .app
        .households(&f.district, &HouseholdFilter::default(), 0, 20)
        .await
        .unwrap();
    assert_eq!(all.total, 2);
    let wuma_list = f
        .app
        .households(&f.wuma, &HouseholdFilter::default(), 0, 20)
        .await
        .unwrap();
    assert_eq!(wuma_list.total, 1);
    assert_eq!(wuma_list.items[0].id, home.id);
    let asked_other = f
        .app
        .households(
            &f.wuma,
            &HouseholdFilter {
                street_code: Some(BINJIANG.into()),
                ..HouseholdFilter::default()
            },
            0,
            20,
        )
        .await
        .unwrap();
    assert_eq!(asked_other.total, 0);
    let searched_other = f
        .app
        .households(
            &f.wuma,
            &HouseholdFilter {
                id_number: Some(OTHER_IDS[0].into()),
                ..HouseholdFilter::default()
            },
            0,
            20,
        )
        .await
        .unwrap();
    assert_eq!(searched_other.total, 0, "search does not cross streets");
    let by_category = f
        .app
        .households(
            &f.district,
            &HouseholdFilter {
                category: Some("subsistence".into()),
                ..HouseholdFilter::default()
            },
            0,
            20,
        )
        .await
        .unwrap();
    assert_eq!(by_category.total, 1);
    assert_eq!(by_category.items[0].id, other.id);

    // Another street's household is not found, for reading, unmasking and needs alike.
    let e = f.app.household(&f.wuma, &other.id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = f
        .app
        .unmask_household(
            &f.wuma,
            &other.id,
            &UnmaskInput {
                reason: "核对".into(),
                fields: Vec::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = f
        .app
        .register_need(
            &f.wuma,
            &other.id,
            &NeedInput {
                category: "daily_care".into(),
                description: "助餐".into(),
                member_id: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        f.app.household(&f.binjiang, &other.id).await.unwrap().id,
        other.id
    );
}

#[tokio::test]
async fn unmasking_needs_the_role_and_a_reason_and_is_journaled_without_plaintext() {
    let f = fixture().await;
    let home = f
        .app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    let reason = |r: &str| UnmaskInput {
        reason: r.into(),
        fields: Vec::new(),
    };
    // District staff without the permission: refused.
    let e = f
        .app
        .unmask_household(&f.district, &home.id, &reason("入户核查"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    // With the permission but no reason: refused with a Chinese message naming the field.
    let e = f
        .app
        .unmask_household(&f.wuma, &home.id, &reason("   "))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert_eq!(e.field.as_deref(), Some("reason"));
    assert!(e.message.contains("事由"), "{}", e.message);
    let before = f.app.store().journal_for_subject(&home.id).await.unwrap();
    assert!(before.iter().all(|e| e.kind != "registry.unmasked"));

    let clear = f
        .app
        .unmask_household(&f.wuma, &home.id, &reason("核对救助资格"))
        .await
        .unwrap();
    assert_eq!(clear.head_name.as_deref(), Some("王小测"));
    assert_eq!(clear.head_id_number.as_deref(), Some(HEAD_ID));
    assert_eq!(clear.phone.as_deref(), Some(HEAD_PHONE));
    assert_eq!(clear.address.as_deref(), Some(ADDRESS));
    assert_eq!(clear.per_capita_income_fen, Some(1_200_000));
    assert_eq!(clear.members[1].id_number.as_deref(), Some(SPOUSE_ID));

    // Only the fields asked for.
    let phone_only = f
        .app
        .unmask_household(
            &f.admin,
            &home.id,
            &UnmaskInput {
                reason: "电话回访".into(),
                fields: vec!["phone".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(phone_only.phone.as_deref(), Some(HEAD_PHONE));
    assert_eq!(phone_only.head_id_number, None);
    assert_eq!(phone_only.address, None);

    let entries: Vec<_> = f
        .app
        .store()
        .journal_for_subject(&home.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "registry.unmasked")
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].actor, f.wuma.user_id);
    assert_eq!(entries[0].seq, clear.journal_seq);
    let payload: serde_json::Value = serde_json::from_str(&entries[0].payload).unwrap();
    assert_eq!(payload["reason"], "核对救助资格");
    assert_eq!(payload["fields"].as_array().unwrap().len(), 5);
    let second: serde_json::Value = serde_json::from_str(&entries[1].payload).unwrap();
    assert_eq!(second["fields"], serde_json::json!(["phone"]));
    for e in &entries {
        for secret in [HEAD_ID, SPOUSE_ID, HEAD_PHONE, ADDRESS, "王小测", "1200000"] {
            assert!(!e.payload.contains(secret), "{secret} in the journal");
        }
    }
    // The plain view stays masked after unmasking.
    let json = serde_json::to_string(&f.app.household(&f.wuma, &home.id).await.unwrap()).unwrap();
    assert!(!json.contains(HEAD_ID));
}

#[tokio::test]
async fn the_edge_list_is_strict_at_the_line_and_leaves_out_subsistence() {
    let f = fixture().await;
    let at_line = f
        .app
        .register_household(
            &f.wuma,
            &single(WUMA, OTHER_IDS[0], "near_subsistence", EDGE_LINE_FEN),
        )
        .await
        .unwrap();
    let just_under = f
        .app
        .register_household(
            &f.wuma,
            &single(WUMA, OTHER_IDS[1], "medical", EDGE_LINE_FEN - 1),
        )
        .await
        .unwrap();
    let far_under = f
        .app
        .register_household(
            &f.binjiang,
            &single(BINJIANG, OTHER_IDS[2], "temporary", 1_000_000),
        )
        .await
        .unwrap();
    // Subsistence-level households are left out however low the income.
    for (i, category) in [(3, "subsistence"), (4, "extreme_poverty")] {
        f.app
            .register_household(&f.wuma, &single(WUMA, OTHER_IDS[i], category, 100_000))
            .await
            .unwrap();
    }
    let report = f
        .app
        .edge_households(&f.district, &EdgeQuery::default())
        .await
        .unwrap();
    assert_eq!(report.year, 2023);
    assert_eq!(report.standard_year, Some(2023));
    assert_eq!(report.edge_line_fen, Some(EDGE_LINE_FEN));
    assert_eq!(report.subsistence_standard_fen, Some(1_150_000));
    assert_eq!(report.under_line_total, 2);
    let ids: Vec<&str> = report
        .under_line
        .iter()
        .map(|h| h.household_id.as_str())
        .collect();
    assert_eq!(ids, [far_under.id.as_str(), just_under.id.as_str()]);
    // Only a band of tenths of the line, never the exact gap: ¥10,000 under a ¥17,250 line is
    // 42% under it (band 5), one fen under is band 1.
    assert_eq!(report.under_line[0].gap_band, 5);
    assert_eq!(report.under_line[0].gap_band_name, "低于边缘线 40%–50%");
    assert_eq!(report.under_line[1].gap_band, 1);
    assert!(!ids.contains(&at_line.id.as_str()));
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("1724999"), "incomes are not returned");
    assert!(!json.contains("gap_fen"), "nor exact gaps");
    assert!(
        !json.contains(&format!(":{}", EDGE_LINE_FEN - 1_000_000)),
        "the exact gap is not returned"
    );

    // Street-scoped.
    let wuma = f
        .app
        .edge_households(&f.wuma, &EdgeQuery::default())
        .await
        .unwrap();
    assert_eq!(wuma.under_line_total, 1);
    assert_eq!(wuma.under_line[0].household_id, just_under.id);

    // A year without its own standard uses the latest earlier one.
    f.clock.set(at("2026-03-01T00:00:00Z"));
    let later = f
        .app
        .edge_households(&f.district, &EdgeQuery::default())
        .await
        .unwrap();
    assert_eq!(later.year, 2026);
    assert_eq!(later.standard_year, Some(2023));
    assert_eq!(later.under_line_total, 2);
}

#[tokio::test]
async fn needs_unreached_after_n_days_and_closing() {
    let f = fixture().await;
    let home = f
        .app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    let other = f
        .app
        .register_household(
            &f.binjiang,
            &single(BINJIANG, OTHER_IDS[0], "temporary", 100),
        )
        .await
        .unwrap();
    let need = |category: &str| NeedInput {
        category: category.into(),
        description: "每周两次助餐".into(),
        member_id: None,
    };
    let e = f
        .app
        .register_need(&f.wuma, &home.id, &need("dancing"))
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("category"));
    let e = f
        .app
        .register_need(
            &f.wuma,
            &home.id,
            &NeedInput {
                member_id: Some("hm_nobody".into()),
                ..need("daily_care")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("member_id"));

    let old = f
        .app
        .register_need(
            &f.wuma,
            &home.id,
            &NeedInput {
                member_id: Some(home.members[1].id.clone()),
                ..need("daily_care")
            },
        )
        .await
        .unwrap();
    assert_eq!(old.state, "open");
    assert_eq!(old.category_name, "生活照料");
    f.clock.set(at("2023-06-01T02:01:00Z"));
    let other_need = f
        .app
        .register_need(&f.binjiang, &other.id, &need("health"))
        .await
        .unwrap();
    // Ten days later one more need; at 30 days (default) nothing is unreached yet.
    f.clock.set(at("2023-06-11T02:00:00Z"));
    let recent = f
        .app
        .register_need(&f.wuma, &home.id, &need("emotional_support"))
        .await
        .unwrap();
    f.clock.set(at("2023-07-01T02:00:00Z"));
    let report = f
        .app
        .edge_households(&f.district, &EdgeQuery::default())
        .await
        .unwrap();
    assert_eq!(report.unreached_days, 30);
    // Registered exactly 30 days ago: not yet *more* than 30 days.
    assert_eq!(report.unreached_total, 0);

    f.clock.set(at("2023-07-01T03:00:00Z"));
    let report = f
        .app
        .edge_households(&f.district, &EdgeQuery::default())
        .await
        .unwrap();
    let ids: Vec<&str> = report
        .unreached
        .iter()
        .map(|n| n.need_id.as_str())
        .collect();
    assert_eq!(ids, [old.id.as_str(), other_need.id.as_str()]);
    assert_eq!(report.unreached[0].days_waiting, 30);
    // A shorter N takes the recent one in too; street staff see their street only.
    let short = f
        .app
        .edge_households(
            &f.wuma,
            &EdgeQuery {
                unreached_days: Some(7),
                street_code: None,
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = short.unreached.iter().map(|n| n.need_id.as_str()).collect();
    assert_eq!(ids, [old.id.as_str(), recent.id.as_str()]);
    let e = f
        .app
        .edge_households(
            &f.wuma,
            &EdgeQuery {
                unreached_days: Some(-1),
                street_code: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("unreached_days"));

    // A served need counts from its last service.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&f.url).await.unwrap();
    sqlx::query("UPDATE needs SET last_served_at = $1 WHERE id = $2")
        .bind(format_instant(at("2023-06-25T00:00:00Z")))
        .bind(&old.id)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let report = f
        .app
        .edge_households(&f.wuma, &EdgeQuery::default())
        .await
        .unwrap();
    assert_eq!(report.unreached_total, 0);

    // Closing: with a reason, once; lists follow.
    let e = f
        .app
        .close_need(&f.wuma, &recent.id, &CloseNeedInput { reason: " ".into() })
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("reason"));
    let e = f
        .app
        .close_need(
            &f.binjiang,
            &recent.id,
            &CloseNeedInput {
                reason: "已解决".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let closed = f
        .app
        .close_need(
            &f.wuma,
            &recent.id,
            &CloseNeedInput {
                reason: "家属已安排".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(closed.state, "closed");
    let e = f
        .app
        .close_need(
            &f.wuma,
            &recent.id,
            &CloseNeedInput {
                reason: "再关一次".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    let open = f
        .app
        .needs(
            &f.wuma,
            &NeedFilter {
                household_id: Some(home.id.clone()),
                ..NeedFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, old.id);
    let district_open = f
        .app
        .needs(&f.district, &NeedFilter::default())
        .await
        .unwrap();
    assert_eq!(district_open.len(), 2);
    let wuma_open = f.app.needs(&f.wuma, &NeedFilter::default()).await.unwrap();
    assert_eq!(wuma_open.len(), 1);
}

fn job(positions: i64) -> JobInput {
    JobInput {
        title: "社区保洁".into(),
        org_id: ORG.into(),
        street_code: WUMA.into(),
        kind: "welfare".into(),
        positions,
        wage_fen_per_month: 220_000,
        description: None,
    }
}

#[tokio::test]
async fn ten_simultaneous_placements_into_three_positions_place_exactly_three() {
    let f = fixture().await;
    let mut members = Vec::new();
    for id in OTHER_IDS {
        let h = f
            .app
            .register_household(&f.wuma, &single(WUMA, id, "temporary", 500_000))
            .await
            .unwrap();
        members.push(h.members[0].id.clone());
    }
    let posted = f.app.create_job(&f.wuma, &job(3)).await.unwrap();
    assert_eq!(posted.remaining, 3);
    assert_eq!(posted.street_name, "五马街道");
    let tasks: Vec<_> = members
        .iter()
        .map(|m| {
            let app = f.app.clone();
            let actor = f.wuma.clone();
            let job_id = posted.id.clone();
            let member_id = m.clone();
            tokio::spawn(async move {
                app.place_member(&actor, &job_id, &PlacementInput { member_id })
                    .await
            })
        })
        .collect();
    let mut placed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => placed += 1,
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
                assert_eq!(e.code, "job.full");
            }
        }
    }
    assert_eq!(placed, 3);
    let detail = f.app.job(&f.wuma, &posted.id).await.unwrap();
    assert_eq!(detail.job.filled, 3);
    assert_eq!(detail.job.remaining, 0);
    assert_eq!(
        detail
            .placements
            .iter()
            .filter(|p| p.state == "active")
            .count(),
        3
    );
}

#[tokio::test]
async fn one_active_placement_per_member_and_the_employment_rate() {
    let f = fixture().await;
    let home = f
        .app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    let head = home.members[0].id.clone();
    let spouse = home.members[1].id.clone();
    let first = f.app.create_job(&f.wuma, &job(5)).await.unwrap();
    let second = f
        .app
        .create_job(
            &f.district,
            &JobInput {
                kind: "caring".into(),
                ..job(5)
            },
        )
        .await
        .unwrap();
    // Validation names the field.
    for (input, field) in [
        (
            JobInput {
                positions: 0,
                ..job(1)
            },
            "positions",
        ),
        (
            JobInput {
                kind: "volunteer".into(),
                ..job(1)
            },
            "kind",
        ),
        (
            JobInput {
                org_id: "org_nobody".into(),
                ..job(1)
            },
            "org_id",
        ),
        (
            JobInput {
                street_code: BINJIANG.into(),
                ..job(1)
            },
            "street_code",
        ),
    ] {
        let e = f.app.create_job(&f.wuma, &input).await.unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    }
    // Another street's staff do not see the job.
    let e = f.app.job(&f.binjiang, &first.id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(f.app.jobs(&f.binjiang, 0, 20).await.unwrap().is_empty());

    let placement = f
        .app
        .place_member(
            &f.wuma,
            &first.id,
            &PlacementInput {
                member_id: head.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(placement.member_name_masked, "王*测");
    let e = f
        .app
        .place_member(
            &f.wuma,
            &second.id,
            &PlacementInput {
                member_id: head.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "placement.member_already_placed");
    f.app
        .place_member(
            &f.wuma,
            &second.id,
            &PlacementInput {
                member_id: spouse.clone(),
            },
        )
        .await
        .unwrap();

    // Both placed and employed: 100%.
    let report = f.app.employment_report(&f.district).await.unwrap();
    assert_eq!(report.overall.placed, 2);
    assert_eq!(report.overall.employed, 2);
    assert_eq!(report.overall.employment_rate_permille, Some(1_000));
    // Working age in 2023: head (1980) and spouse (1982), not the child (2010).
    assert_eq!(report.overall.working_age_members, 2);
    assert_eq!(report.overall.working_age_placed, 2);

    // The head leaves: ended with a reason, position freed, rate 50%.
    let e = f
        .app
        .end_placement(
            &f.wuma,
            &placement.id,
            &EndPlacementInput { reason: "".into() },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("reason"));
    let ended = f
        .app
        .end_placement(
            &f.wuma,
            &placement.id,
            &EndPlacementInput {
                reason: "本人辞职".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(ended.state, "ended");
    assert_eq!(ended.end_reason.as_deref(), Some("本人辞职"));
    let e = f
        .app
        .end_placement(
            &f.wuma,
            &placement.id,
            &EndPlacementInput {
                reason: "again".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(f.app.job(&f.wuma, &first.id).await.unwrap().job.filled, 0);
    let report = f.app.employment_report(&f.wuma).await.unwrap();
    assert_eq!(report.streets.len(), 1);
    assert_eq!(report.streets[0].street_name, "五马街道");
    assert_eq!(report.overall.placed, 2);
    assert_eq!(report.overall.employed, 1);
    assert_eq!(report.overall.employment_rate_permille, Some(500));
    assert_eq!(report.overall.employment_rate_text, "50.0%");
    // Another street's staff see no rows of this street.
    let theirs = f.app.employment_report(&f.binjiang).await.unwrap();
    assert!(theirs.streets.is_empty());
    assert_eq!(theirs.overall.employment_rate_permille, None);

    // The head may be placed again now; closing a job stops new placements.
    f.app
        .place_member(&f.wuma, &first.id, &PlacementInput { member_id: head })
        .await
        .unwrap();
    f.app.close_job(&f.wuma, &first.id).await.unwrap();
    let child = home.members[2].id.clone();
    let e = f
        .app
        .place_member(&f.wuma, &first.id, &PlacementInput { member_id: child })
        .await
        .unwrap_err();
    assert_eq!(e.code, "job.closed");
}

#[tokio::test]
async fn only_admins_set_scopes_and_only_for_staff() {
    let f = fixture().await;
    let e = f
        .app
        .set_staff_scope(&f.wuma, &f.district.user_id, &StaffScopeInput::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let e = f
        .app
        .set_staff_scope(
            &f.admin,
            &f.district.user_id,
            &StaffScopeInput {
                division_code: Some(WUMA_COMMUNITY.into()),
                ..StaffScopeInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("division_code"));
    let e = f
        .app
        .set_staff_scope(&f.admin, &f.admin.user_id, &StaffScopeInput::default())
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("user_id"));
    let accounts = f.app.staff_accounts(&f.admin).await.unwrap();
    let wuma = accounts.iter().find(|a| a.username == "wuma").unwrap();
    assert_eq!(wuma.division_name.as_deref(), Some("五马街道"));
    assert!(wuma.can_unmask);
    let scope = f.app.staff_scope(&f.wuma).await.unwrap();
    assert_eq!(scope.street_code.as_deref(), Some(WUMA));
    let entries = f
        .app
        .store()
        .journal_for_subject(&f.wuma.user_id)
        .await
        .unwrap();
    assert!(entries.iter().any(|e| e.kind == "user.scope_set"));
}

#[tokio::test]
async fn the_demo_registry_is_encrypted_and_feeds_the_edge_list_and_jobs() {
    use cishan_app::demo::{DemoOptions, Scale};
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: db_support::database_url(dir.path(), "registry_demo").await,
        data_dir: dir.path().to_owned(),
    };
    let clock = Arc::new(FixedClock::new(at("2026-03-01T00:00:00Z")));
    let app = App::open(&config, lucheng(), clock).await.unwrap();
    app.generate_demo(
        &DemoOptions {
            scale: Scale::Small,
            seed: 7,
        },
        &|_| {},
    )
    .await
    .unwrap();
    let admin = app
        .create_user(
            None,
            "registry-admin",
            "管理员",
            "correct horse battery",
            Role::Admin,
        )
        .await
        .unwrap();
    let page = app
        .households(&admin, &HouseholdFilter::default(), 0, 100)
        .await
        .unwrap();
    let members: i64 = page.items.iter().map(|h| h.member_count).sum();
    assert_eq!(
        members,
        i64::try_from(Scale::Small.plan().household_members).unwrap()
    );
    let first = app.household(&admin, &page.items[0].id).await.unwrap();
    assert_eq!(
        i64::try_from(first.members.len()).unwrap(),
        first.member_count
    );
    assert!(first.head_id_masked.contains("********"));
    assert!(first.income_band.is_some());
    let clear = app
        .unmask_household(
            &admin,
            &first.id,
            &UnmaskInput {
                reason: "演示核对".into(),
                fields: vec!["id_number".into()],
            },
        )
        .await
        .unwrap();
    let id = clear.head_id_number.unwrap();
    let found = app
        .households(
            &admin,
            &HouseholdFilter {
                id_number: Some(id),
                ..HouseholdFilter::default()
            },
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.items[0].id, first.id);
    let edge = app
        .edge_households(&admin, &EdgeQuery::default())
        .await
        .unwrap();
    assert!(
        edge.under_line_total > 0,
        "near-subsistence households are under the line"
    );
    assert!(edge.unreached_total >= 3, "old open needs");
    let jobs = app.jobs(&admin, 0, 20).await.unwrap();
    assert!(!jobs.is_empty());
    assert!(jobs.iter().all(|j| j.filled <= j.positions));
    let report = app.employment_report(&admin).await.unwrap();
    assert!(report.overall.placed > 0);
    assert!(app.store().verify_journal().await.unwrap().is_intact());
}

#[tokio::test]
async fn an_updated_income_moves_a_household_onto_the_edge_list() {
    use cishan_app::registry::HouseholdUpdate;
    let f = fixture().await;
    let h = f
        .app
        .register_household(&f.wuma, &single(WUMA, OTHER_IDS[0], "medical", 2_000_000))
        .await
        .unwrap();
    let edge = |actor: Actor| {
        let app = f.app.clone();
        async move {
            app.edge_households(&actor, &EdgeQuery::default())
                .await
                .unwrap()
                .under_line_total
        }
    };
    assert_eq!(edge(f.wuma.clone()).await, 0);
    let update = HouseholdUpdate {
        per_capita_income_fen: Some(1_700_000),
        phone: Some(HEAD_PHONE.into()),
        ..HouseholdUpdate::default()
    };
    let e = f
        .app
        .update_household(&f.binjiang, &h.id, &update)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = f
        .app
        .update_household(
            &f.wuma,
            &h.id,
            &HouseholdUpdate {
                per_capita_income_fen: Some(-5),
                ..HouseholdUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("per_capita_income_fen"));
    let e = f
        .app
        .update_household(&f.wuma, &h.id, &HouseholdUpdate::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    let view = f
        .app
        .update_household(&f.wuma, &h.id, &update)
        .await
        .unwrap();
    assert_eq!(view.phone_masked.as_deref(), Some("138****5678"));
    assert_eq!(view.income_band.as_deref(), Some("below_edge_line"));
    assert_eq!(edge(f.wuma.clone()).await, 1);
    let entries = f.app.store().journal_for_subject(&h.id).await.unwrap();
    let updated = entries
        .iter()
        .find(|e| e.kind == "registry.household_updated")
        .unwrap();
    assert!(updated.payload.contains("income") && updated.payload.contains("phone"));
    assert!(!updated.payload.contains("1700000") && !updated.payload.contains(HEAD_PHONE));
    let households = raw_table_text(&f.url, "households").await;
    assert!(!households.contains(HEAD_PHONE));
}

#[tokio::test]
async fn an_organizations_staff_see_nothing_of_the_registry() {
    let f = fixture().await;
    let h = f
        .app
        .register_household(&f.wuma, &wuma_household())
        .await
        .unwrap();
    f.app
        .register_household(
            &f.wuma,
            &single(WUMA, OTHER_IDS[0], "medical", EDGE_LINE_FEN - 1),
        )
        .await
        .unwrap();
    f.app
        .register_need(
            &f.wuma,
            &h.id,
            &NeedInput {
                category: "daily_care".into(),
                description: "助餐".into(),
                member_id: None,
            },
        )
        .await
        .unwrap();
    // One organization account without a street (it used to count as district-wide), one with
    // the household's street; both may unmask, which must not matter.
    let mut org_staff = Vec::new();
    for (name, street) in [("org_any", None), ("org_wuma", Some(WUMA))] {
        let a = f
            .app
            .create_user(
                Some(&f.admin),
                name,
                name,
                "correct horse battery",
                Role::Staff,
            )
            .await
            .unwrap();
        f.app
            .set_staff_scope(
                &f.admin,
                &a.user_id,
                &StaffScopeInput {
                    division_code: street.map(str::to_owned),
                    org_id: Some(ORG.into()),
                    can_unmask: true,
                },
            )
            .await
            .unwrap();
        org_staff.push(a);
    }
    for a in &org_staff {
        let refused = |r: ErrorKind| assert_eq!(r, ErrorKind::Forbidden, "{}", a.user_id);
        let e = f
            .app
            .households(a, &HouseholdFilter::default(), 0, 100)
            .await
            .unwrap_err();
        refused(e.kind);
        refused(f.app.household(a, &h.id).await.unwrap_err().kind);
        let unmask = UnmaskInput {
            reason: "核对".into(),
            fields: Vec::new(),
        };
        refused(
            f.app
                .unmask_household(a, &h.id, &unmask)
                .await
                .unwrap_err()
                .kind,
        );
        refused(
            f.app
                .needs(a, &NeedFilter::default())
                .await
                .unwrap_err()
                .kind,
        );
        refused(
            f.app
                .edge_households(a, &EdgeQuery::default())
                .await
                .unwrap_err()
                .kind,
        );
        refused(
            f.app
                .register_household(a, &single(WUMA, OTHER_IDS[1], "medical", 1))
                .await
                .unwrap_err()
                .kind,
        );
    }
    // Nothing was unmasked for them.
    let entries = f.app.store().journal_for_subject(&h.id).await.unwrap();
    assert!(!entries.iter().any(|e| e.kind == "registry.unmasked"));

    // District staff (no street, no organization) and a street's staff keep theirs.
    let all = f
        .app
        .households(&f.district, &HouseholdFilter::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(all.total, 2);
    assert_eq!(f.app.household(&f.wuma, &h.id).await.unwrap().id, h.id);
    assert_eq!(
        f.app
            .needs(&f.wuma, &NeedFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let edge = f
        .app
        .edge_households(&f.district, &EdgeQuery::default())
        .await
        .unwrap();
    assert_eq!(edge.under_line_total, 2);
}
