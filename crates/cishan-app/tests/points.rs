//! Charity points through the app layer, on a real SQLite file (and PostgreSQL when
//! `CISHAN_TEST_POSTGRES_URL` is set): step rules, caps, FEFO with expiry, tiers under spending,
//! redemptions under concurrency, idempotency, cancellation, refunds, negative balances, and
//! recompute (dry run, apply, apply again).

mod db_support;

use std::sync::Arc;

use cishan_app::donations::{DonationInput, IdempotencyKey, RefundInput};
use cishan_app::points::{record_act, reverse_act, NewAct, SkillActInput};
use cishan_app::rewards::{CancelInput, OfferInput, RedeemInput, LUCHENG_RULES};
use cishan_app::{Actor, App, Clock, Config, FixedClock, Role};
use cishan_core::points::ActKind;
use cishan_core::region::embedded::lucheng;
use cishan_store::{format_instant, FundRow, NewEntry, OrganizationRow, ParticipantRow};

struct Fixture {
    app: App,
    admin: Actor,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

const ORG: &str = "org_1";
const FUND: &str = "fnd_1";
const WANG: &str = "ptc_wang";
const LI: &str = "ptc_li";

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2023-06-01T08:00:00Z".parse().unwrap()));
    let config = Config {
        database_url: db_support::database_url(dir.path(), "points").await,
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
        person(WANG, "王小测", "person"),
        person(LI, "李四", "person"),
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
    app.recompute_points(&admin, LUCHENG_RULES, false)
        .await
        .unwrap();
    Fixture {
        app,
        admin,
        clock,
        _dir: dir,
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

fn member(pid: &str) -> Actor {
    Actor {
        user_id: format!("usr_{pid}"),
        username: pid.into(),
        display_name: pid.into(),
        role: Role::Member,
        participant_id: Some(pid.into()),
    }
}

async fn donate(f: &Fixture, k: &str, donor: &str, fen: i64, at: &str) -> String {
    let input = DonationInput {
        amount_fen: fen,
        fund_id: Some(FUND.into()),
        donor_participant_id: Some(donor.into()),
        channel: "cash".into(),
        received_at: Some(at.into()),
        ..DonationInput::default()
    };
    f.app
        .record_donation(&f.admin, &key(k), &input)
        .await
        .unwrap()
        .value
        .donation_id
}

async fn honour_spendable(f: &Fixture, pid: &str) -> (i64, i64) {
    let s = f.app.points_statement(&f.admin, pid).await.unwrap();
    (s.honour, s.spendable)
}

async fn offer(f: &Fixture, k: &str, cost: i64, stock: i64, min_tier: Option<&str>) -> String {
    let input = OfferInput {
        org_id: ORG.into(),
        channel: "medical".into(),
        title: format!("体检 {k}"),
        description: String::new(),
        cost_points: cost,
        min_tier: min_tier.map(Into::into),
        stock,
        valid_from: "2023-01-01".into(),
        valid_to: "2030-12-31".into(),
    };
    f.app
        .create_offer(&f.admin, &key(k), &input)
        .await
        .unwrap()
        .value
        .id
}

fn redeem_input(offer_id: &str, pid: &str) -> RedeemInput {
    RedeemInput {
        offer_id: offer_id.into(),
        code: None,
        participant_id: Some(pid.into()),
    }
}

async fn entries(f: &Fixture) -> i64 {
    f.app.store().points_entry_count().await.unwrap()
}

/// Records a volunteer act the way helper B's verification does, in its own transaction.
async fn volunteer(f: &Fixture, source: &str, pid: &str, minutes: i64, at: &str) {
    let mut tx = f.app.store().begin().await.unwrap();
    tx.lock_writes().await.unwrap();
    record_act(
        &mut tx,
        NewAct {
            participant_id: pid.into(),
            kind: ActKind::VolunteerMinutes,
            category: None,
            quantity: minutes,
            source_kind: "volunteer_session".into(),
            source_id: source.into(),
            occurred_at: at.parse().unwrap(),
            recorded_by: "test".into(),
            recorded_at: f.clock.now(),
            note: "志愿服务".into(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn money_counts_by_whole_steps_and_the_breakdown_names_the_rule() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 9_900, "2023-05-01T02:00:00Z").await;
    assert_eq!(
        honour_spendable(&f, WANG).await,
        (0, 0),
        "¥99 at ¥100 steps earns nothing"
    );
    donate(&f, "d2", WANG, 25_000, "2023-05-02T02:00:00Z").await;
    let s = f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!(
        (s.honour, s.spendable),
        (20, 20),
        "¥250 is two full steps of 10 points"
    );
    assert_eq!(s.acts.len(), 2);
    assert_eq!(s.acts[1].rule_version.as_deref(), Some("lucheng-v1"));
    assert_eq!(s.acts[1].honour, 20);
    assert!(
        s.acts[1].explanation.contains("每满 ¥100.00"),
        "{}",
        s.acts[1].explanation
    );
    assert_eq!(s.tier.as_ref().map(|t| t.code.as_str()), Some("member"));
    assert_eq!(s.to_next_tier, Some(80));
    // Reading again syncs nothing new and writes nothing.
    let before = entries(&f).await;
    f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!(entries(&f).await, before);
}

#[tokio::test]
async fn daily_cap_limits_volunteer_points_and_withdrawal_frees_it() {
    let f = fixture().await;
    // 8 h = 80 points each; the daily cap on volunteer minutes is 120.
    volunteer(&f, "s1", WANG, 480, "2023-05-10T01:00:00Z").await;
    volunteer(&f, "s2", WANG, 480, "2023-05-10T03:00:00Z").await;
    volunteer(&f, "s3", WANG, 480, "2023-05-10T05:00:00Z").await;
    let s = f.app.points_statement(&f.admin, WANG).await.unwrap();
    let got: Vec<i64> = s.acts.iter().map(|a| a.honour).collect();
    assert_eq!(got, vec![80, 40, 0]);
    assert_eq!(s.honour, 120);
    // Recording the same source again changes nothing.
    let before = entries(&f).await;
    volunteer(&f, "s1", WANG, 480, "2023-05-10T01:00:00Z").await;
    assert_eq!(entries(&f).await, before);
    // Withdrawing the first session reverses it and lets the later ones use the freed room.
    let mut tx = f.app.store().begin().await.unwrap();
    tx.lock_writes().await.unwrap();
    reverse_act(
        &mut tx,
        "volunteer_session",
        "s1",
        "核实有误",
        "test",
        f.clock.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let s = f.app.points_statement(&f.admin, WANG).await.unwrap();
    let got: Vec<i64> = s.acts.iter().map(|a| a.honour).collect();
    assert_eq!(got, vec![0, 80, 40]);
    assert_eq!(s.honour, 120);
    let kinds: Vec<String> = f
        .app
        .store()
        .points_entries_of(WANG, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"reverse".to_owned()) && kinds.contains(&"adjust".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn redemption_uses_first_expiring_points_and_never_expired_ones() {
    let f = fixture().await;
    // Lots expire 24 months after the act's day.
    donate(&f, "old", WANG, 50_000, "2021-06-10T02:00:00Z").await; // 50, expires 2023-06-10
    donate(&f, "new", WANG, 30_000, "2023-05-01T02:00:00Z").await; // 30, expires 2025-05-01
    assert_eq!(honour_spendable(&f, WANG).await, (80, 80));
    let o = offer(&f, "o1", 60, 10, None).await;
    // On 2023-06-20 the old lot has expired: only 30 usable.
    f.clock.set("2023-06-20T02:00:00Z".parse().unwrap());
    let err = f
        .app
        .redeem(&f.admin, &key("r1"), &redeem_input(&o, WANG))
        .await
        .unwrap_err();
    assert_eq!(err.code, "redeem.not_enough_points");
    let s = f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!(
        (s.honour, s.spendable),
        (80, 30),
        "expired points leave spendable, not honour"
    );
    // Back before expiry: the old lot is used first.
    let f2 = fixture().await;
    donate(&f2, "old", WANG, 50_000, "2021-06-10T02:00:00Z").await;
    donate(&f2, "new", WANG, 30_000, "2023-05-01T02:00:00Z").await;
    let o2 = offer(&f2, "o1", 60, 10, None).await;
    let r = f2
        .app
        .redeem(&f2.admin, &key("r1"), &redeem_input(&o2, WANG))
        .await
        .unwrap();
    assert_eq!(r.value.spendable_after, 20);
    // After the old lot's day only what came from the new lot (20) remains usable.
    f2.clock.set("2023-06-20T02:00:00Z".parse().unwrap());
    assert_eq!(honour_spendable(&f2, WANG).await, (80, 20));
}

#[tokio::test]
async fn spending_never_lowers_honour_or_tier() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 150_000, "2023-05-01T02:00:00Z").await; // 150 → bronze
    let o = offer(&f, "o1", 120, 5, Some("bronze")).await;
    let before = f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!(before.tier.as_ref().unwrap().code, "bronze");
    f.app
        .redeem(&f.admin, &key("r1"), &redeem_input(&o, WANG))
        .await
        .unwrap();
    let after = f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!((after.honour, after.spendable), (150, 30));
    assert_eq!(after.tier, before.tier);
    // A tier-gated offer refuses a participant below the tier.
    donate(&f, "d2", LI, 50_000, "2023-05-01T02:00:00Z").await;
    let err = f
        .app
        .redeem(&f.admin, &key("r2"), &redeem_input(&o, LI))
        .await
        .unwrap_err();
    assert_eq!(err.code, "redeem.tier_too_low");
}

#[tokio::test]
async fn concurrent_redemptions_of_the_last_item_let_exactly_one_win() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await;
    donate(&f, "d2", LI, 100_000, "2023-05-01T02:00:00Z").await;
    f.app.sync_points(None).await.unwrap();
    let o = offer(&f, "o1", 50, 1, None).await;
    let tasks: Vec<_> = [(WANG, "a"), (LI, "b"), (WANG, "c"), (LI, "d")]
        .into_iter()
        .map(|(pid, k)| {
            let app = f.app.clone();
            let admin = f.admin.clone();
            let input = redeem_input(&o, pid);
            tokio::spawn(async move { app.redeem(&admin, &key(k), &input).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code, "redeem.out_of_stock"),
        }
    }
    assert_eq!(wins, 1);
    let stock = f.app.store().points_offer(&o).await.unwrap().unwrap().stock;
    assert_eq!(stock, 0);
}

#[tokio::test]
async fn the_same_points_cannot_be_spent_twice_at_once() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await; // 100
    f.app.sync_points(None).await.unwrap();
    let o = offer(&f, "o1", 80, 10, None).await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let app = f.app.clone();
            let admin = f.admin.clone();
            let input = redeem_input(&o, WANG);
            tokio::spawn(async move { app.redeem(&admin, &key(&format!("k{i}")), &input).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code, "redeem.not_enough_points"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(honour_spendable(&f, WANG).await, (100, 20));
}

#[tokio::test]
async fn a_replayed_redemption_spends_once_and_cancel_gives_back_once() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await;
    let o = offer(&f, "o1", 70, 3, None).await;
    let first = f
        .app
        .redeem(&f.admin, &key("r1"), &redeem_input(&o, WANG))
        .await
        .unwrap();
    let again = f
        .app
        .redeem(&f.admin, &key("r1"), &redeem_input(&o, WANG))
        .await
        .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.value, again.value);
    assert_eq!(honour_spendable(&f, WANG).await, (100, 30));
    assert_eq!(
        f.app.store().points_offer(&o).await.unwrap().unwrap().stock,
        2
    );

    let reason = CancelInput {
        reason: "参与者放弃".into(),
    };
    let c1 = f
        .app
        .cancel_redemption(&f.admin, &key("c1"), &first.value.id, &reason)
        .await
        .unwrap();
    assert_eq!(c1.value.state, "cancelled");
    assert_eq!(honour_spendable(&f, WANG).await, (100, 100));
    assert_eq!(
        f.app.store().points_offer(&o).await.unwrap().unwrap().stock,
        3
    );
    let replay = f
        .app
        .cancel_redemption(&f.admin, &key("c1"), &first.value.id, &reason)
        .await
        .unwrap();
    assert!(replay.replayed);
    let twice = f
        .app
        .cancel_redemption(&f.admin, &key("c2"), &first.value.id, &reason)
        .await
        .unwrap_err();
    assert_eq!(twice.code, "redeem.already_cancelled");
    assert_eq!(honour_spendable(&f, WANG).await, (100, 100));
    assert_eq!(
        f.app.store().points_offer(&o).await.unwrap().unwrap().stock,
        3
    );
}

#[tokio::test]
async fn a_refund_reverses_points_by_the_steps_of_the_net_amount() {
    let f = fixture().await;
    let d = donate(&f, "d1", WANG, 25_000, "2023-05-01T02:00:00Z").await;
    assert_eq!(honour_spendable(&f, WANG).await, (20, 20));
    f.app
        .refund_donation(
            &f.admin,
            &key("rf1"),
            &d,
            &RefundInput {
                amount_fen: 6_000,
                reason: "捐赠人申请".into(),
            },
        )
        .await
        .unwrap();
    // Net ¥190 is one full step: 10 points; the other 10 are reversed by a new entry.
    let s = f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!((s.honour, s.spendable), (10, 10));
    assert_eq!(s.acts[0].reversed_quantity, 6_000);
    let history = f.app.store().points_entries_of(WANG, 10).await.unwrap();
    assert_eq!(history[0].kind, "reverse");
    assert_eq!(history[0].honour_delta, -10);
    assert_eq!(history.len(), 2, "the accrual stays in the history");
}

#[tokio::test]
async fn a_negative_balance_blocks_redemption_until_it_recovers() {
    let f = fixture().await;
    let d = donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await; // 100
    let o = offer(&f, "o1", 100, 5, None).await;
    let cheap = offer(&f, "o2", 10, 5, None).await;
    f.app
        .redeem(&f.admin, &key("r1"), &redeem_input(&o, WANG))
        .await
        .unwrap();
    f.app
        .refund_donation(
            &f.admin,
            &key("rf1"),
            &d,
            &RefundInput {
                amount_fen: 100_000,
                reason: "全额退款".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(honour_spendable(&f, WANG).await, (0, -100));
    donate(&f, "d2", WANG, 50_000, "2023-05-20T02:00:00Z").await; // +50, still −50
    let err = f
        .app
        .redeem(&f.admin, &key("r2"), &redeem_input(&cheap, WANG))
        .await
        .unwrap_err();
    assert_eq!(err.code, "redeem.balance_negative");
    donate(&f, "d3", WANG, 100_000, "2023-05-21T02:00:00Z").await; // +100 → 50
    assert_eq!(honour_spendable(&f, WANG).await, (150, 50));
    f.app
        .redeem(&f.admin, &key("r3"), &redeem_input(&cheap, WANG))
        .await
        .unwrap();
    assert_eq!(honour_spendable(&f, WANG).await, (150, 40));
}

#[tokio::test]
async fn recompute_dry_run_changes_nothing_apply_adjusts_and_again_adjusts_nothing() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 25_000, "2023-05-01T02:00:00Z").await;
    donate(&f, "d2", LI, 25_000, "2022-05-01T02:00:00Z").await;
    f.app.sync_points(None).await.unwrap();
    let v2 = LUCHENG_RULES
        .replace("version = \"lucheng-v1\"", "version = \"lucheng-v2\"")
        .replace(
            "effective_from = \"2020-01-01\"",
            "effective_from = \"2023-01-01\"",
        )
        .replace(
            "step = 10000\npoints_per_step = 10",
            "step = 5000\npoints_per_step = 10",
        );
    let before = entries(&f).await;
    let dry = f.app.recompute_points(&f.admin, &v2, true).await.unwrap();
    assert!(dry.dry_run && !dry.already_published);
    assert_eq!(
        dry.participants_affected, 1,
        "only the act from 2023 falls under v2"
    );
    assert_eq!(dry.changes[0].participant_id, WANG);
    assert_eq!(
        (dry.changes[0].honour_before, dry.changes[0].honour_after),
        (20, 50)
    );
    assert_eq!(entries(&f).await, before);
    assert_eq!(f.app.published_rules().await.unwrap().len(), 1);
    assert_eq!(honour_spendable(&f, WANG).await, (20, 20));

    let applied = f.app.recompute_points(&f.admin, &v2, false).await.unwrap();
    assert_eq!(applied.entries_written, 1);
    assert_eq!(entries(&f).await, before + 1);
    assert_eq!(honour_spendable(&f, WANG).await, (50, 50));
    assert_eq!(honour_spendable(&f, LI).await, (20, 20));
    let s = f.app.points_statement(&f.admin, WANG).await.unwrap();
    assert_eq!(s.acts[0].rule_version.as_deref(), Some("lucheng-v2"));
    let history = f.app.store().points_entries_of(WANG, 10).await.unwrap();
    assert_eq!(history[0].kind, "adjust");
    assert_eq!(history[0].rule_version.as_deref(), Some("lucheng-v2"));

    let again = f.app.recompute_points(&f.admin, &v2, false).await.unwrap();
    assert!(again.already_published);
    assert_eq!((again.participants_affected, again.entries_written), (0, 0));
    assert_eq!(entries(&f).await, before + 1);
    // A different text under a published version is refused.
    let err = f
        .app
        .recompute_points(
            &f.admin,
            &v2.replace("points_per_step = 8", "points_per_step = 9"),
            true,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "points.version_taken");
}

#[tokio::test]
async fn only_the_participant_or_staff_see_points_and_only_staff_record_skills() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 25_000, "2023-05-01T02:00:00Z").await;
    assert!(f.app.points_statement(&member(WANG), WANG).await.is_ok());
    let err = f.app.points_statement(&member(LI), WANG).await.unwrap_err();
    assert_eq!(err.code, "auth.forbidden");
    let input = SkillActInput {
        participant_id: LI.into(),
        category: "legal".into(),
        assessed_minutes: 150,
        occurred_at: "2023-05-20T09:00:00+08:00".into(),
        description: "社区法律咨询".into(),
    };
    assert!(f
        .app
        .record_skill_act(&member(LI), &key("s1"), &input)
        .await
        .is_err());
    let done = f
        .app
        .record_skill_act(&f.admin, &key("s1"), &input)
        .await
        .unwrap();
    // 2 full assessed hours × 15 × 150% = 45.
    assert_eq!(done.value.honour_delta, 45);
    assert_eq!(honour_spendable(&f, LI).await, (45, 45));
    let again = f
        .app
        .record_skill_act(&f.admin, &key("s1"), &input)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(honour_spendable(&f, LI).await, (45, 45));
    // A partner redeeming by participant id (not by code) is refused.
    let o = offer(&f, "o1", 10, 5, None).await;
    let err = f
        .app
        .redeem(&member(LI), &key("r1"), &redeem_input(&o, LI))
        .await
        .unwrap_err();
    assert_eq!(err.code, "auth.forbidden");
}

/// The participant's current 一码通 payload, as their phone shows it.
async fn code_of(f: &Fixture, pid: &str) -> String {
    f.app
        .participant_code(&member(pid), pid)
        .await
        .unwrap()
        .payload
}

fn redeem_by_code(offer_id: &str, code: &str) -> RedeemInput {
    RedeemInput {
        offer_id: offer_id.into(),
        code: Some(code.into()),
        participant_id: None,
    }
}

/// LI holds the partner role for ORG, so `member(LI)` redeems as the partner's desk would.
async fn partner(f: &Fixture) -> Actor {
    f.app
        .attach_role(&f.admin, LI, "partner", Some(ORG))
        .await
        .unwrap();
    member(LI)
}

#[tokio::test]
async fn a_partner_redeems_by_scanning_the_participants_code() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await; // 100
    let desk = partner(&f).await;
    let o = offer(&f, "o1", 60, 5, None).await;
    let code = code_of(&f, WANG).await;
    let done = f
        .app
        .redeem(&desk, &key("r1"), &redeem_by_code(&o, &code))
        .await
        .unwrap();
    assert!(!done.replayed);
    assert_eq!(
        done.value.participant_id, WANG,
        "the code names who redeems"
    );
    assert_eq!(done.value.cost_points, 60);
    assert_eq!(done.value.spendable_after, 40);
    assert_eq!(honour_spendable(&f, WANG).await, (100, 40));
    assert_eq!(
        f.app.store().points_offer(&o).await.unwrap().unwrap().stock,
        4
    );
    // A forged code redeems nothing.
    let mut chars: Vec<char> = code_of(&f, WANG).await.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    let err = f
        .app
        .redeem(&desk, &key("r2"), &redeem_by_code(&o, &forged))
        .await
        .unwrap_err();
    assert_eq!(err.code, "code.forged");
    assert_eq!(err.field.as_deref(), Some("code"));
    assert_eq!(honour_spendable(&f, WANG).await, (100, 40));
}

#[tokio::test]
async fn a_refused_redemption_by_code_leaves_the_code_usable() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await; // 100 → bronze
    let desk = partner(&f).await;
    let too_dear = offer(&f, "o-dear", 500, 5, None).await;
    let sold_out = offer(&f, "o-sold", 10, 0, None).await;
    let silver_only = offer(&f, "o-silver", 10, 5, Some("silver")).await;
    let expired = f
        .app
        .create_offer(
            &f.admin,
            &key("o-expired"),
            &OfferInput {
                org_id: ORG.into(),
                channel: "medical".into(),
                title: "去年的体检".into(),
                description: String::new(),
                cost_points: 10,
                min_tier: None,
                stock: 5,
                valid_from: "2022-01-01".into(),
                valid_to: "2022-12-31".into(),
            },
        )
        .await
        .unwrap()
        .value
        .id;
    let affordable = offer(&f, "o-ok", 30, 5, None).await;
    let code = code_of(&f, WANG).await;
    assert_eq!(honour_spendable(&f, WANG).await, (100, 100));
    let before = entries(&f).await;
    for (i, (o, reason)) in [
        (&too_dear, "redeem.not_enough_points"),
        (&sold_out, "redeem.out_of_stock"),
        (&silver_only, "redeem.tier_too_low"),
        (&expired, "offer.not_valid_today"),
    ]
    .into_iter()
    .enumerate()
    {
        let err = f
            .app
            .redeem(
                &desk,
                &key(&format!("refused-{i}")),
                &redeem_by_code(o, &code),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, reason);
    }
    assert_eq!(entries(&f).await, before, "refusals write no points entry");
    assert_eq!(
        f.app.store().count_code_nonces().await.unwrap(),
        0,
        "and use up no code"
    );
    // The same code, still within its 90 seconds, then redeems what the participant can afford.
    let done = f
        .app
        .redeem(&desk, &key("ok"), &redeem_by_code(&affordable, &code))
        .await
        .unwrap();
    assert_eq!(done.value.participant_id, WANG);
    assert_eq!(honour_spendable(&f, WANG).await, (100, 70));
    assert_eq!(f.app.store().count_code_nonces().await.unwrap(), 1);
}

#[tokio::test]
async fn a_used_code_is_refused_for_another_redemption_but_a_retry_gets_the_first_answer() {
    let f = fixture().await;
    donate(&f, "d1", WANG, 100_000, "2023-05-01T02:00:00Z").await; // 100
    let desk = partner(&f).await;
    let o = offer(&f, "o1", 30, 5, None).await;
    let other = offer(&f, "o2", 20, 5, None).await;
    let code = code_of(&f, WANG).await;
    let first = f
        .app
        .redeem(&desk, &key("r1"), &redeem_by_code(&o, &code))
        .await
        .unwrap();
    // A retry with the same key and body answers the first result (no fresh code needed),
    // even after the code has expired.
    f.clock.set("2023-06-01T08:05:00Z".parse().unwrap());
    let retry = f
        .app
        .redeem(&desk, &key("r1"), &redeem_by_code(&o, &code))
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value, first.value);
    f.clock.set("2023-06-01T08:00:30Z".parse().unwrap());
    // Another redemption with the same code is a replay of the code: refused, nothing spent.
    for (k, offer_id) in [("r2", &other), ("r3", &o)] {
        let err = f
            .app
            .redeem(&desk, &key(k), &redeem_by_code(offer_id, &code))
            .await
            .unwrap_err();
        assert_eq!(err.code, "code.replayed");
        assert_eq!(err.field.as_deref(), Some("code"));
    }
    assert_eq!(honour_spendable(&f, WANG).await, (100, 70));
    assert_eq!(
        f.app
            .store()
            .points_offer(&other)
            .await
            .unwrap()
            .unwrap()
            .stock,
        5
    );
    // A fresh code redeems again.
    f.app
        .redeem(
            &desk,
            &key("r4"),
            &redeem_by_code(&other, &code_of(&f, WANG).await),
        )
        .await
        .unwrap();
    assert_eq!(honour_spendable(&f, WANG).await, (100, 50));
}
