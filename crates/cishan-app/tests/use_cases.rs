//! Use cases through the app layer, on a real SQLite file.

use std::sync::Arc;

use cishan_app::{App, Clock, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_core::Status;
use cishan_store::{format_instant, OrganizationRow, TrustRow, VolunteerRow};
use jiff::Timestamp;

struct Fixture {
    app: App,
    clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2023-06-01T08:00:00Z".parse().unwrap()));
    let config = Config {
        database_url: format!("sqlite://{}/app.db", dir.path().display()),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    Fixture {
        app,
        clock,
        _dir: dir,
    }
}

async fn admin(app: &App) -> cishan_app::Actor {
    app.create_user(
        None,
        "admin",
        "管理员",
        "correct horse battery",
        Role::Admin,
    )
    .await
    .unwrap()
}

fn status_of(views: &[cishan_app::indicators::IndicatorView], code: &str) -> Status {
    views.iter().find(|v| v.code == code).unwrap().status
}

#[tokio::test]
async fn the_pack_is_loaded_into_the_database_once() {
    let f = fixture().await;
    assert_eq!(f.app.store().divisions().await.unwrap().len(), 186);
    let journal = f.app.store().recent_journal(10).await.unwrap();
    let kinds: Vec<&str> = journal.iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "vault.bound",
            "translog.key_bound",
            "codes.key_bound",
            "region.divisions_loaded"
        ]
    );
    let region = f.app.region();
    assert_eq!(region.code, "330302");
    assert_eq!(
        region
            .divisions
            .iter()
            .filter(|d| d.level == "street")
            .count(),
        12
    );
    assert_eq!(
        region
            .divisions
            .iter()
            .filter(|d| d.level == "town")
            .count(),
        2
    );
}

#[tokio::test]
async fn an_entered_actual_sets_the_status_and_is_journaled() {
    let f = fixture().await;
    let admin = admin(&f.app).await;
    let before = f.app.indicators(2023).await.unwrap();
    assert_eq!(before.len(), 28);
    assert_eq!(status_of(&before, "1"), Status::NoData);

    let view = f
        .app
        .set_indicator_actual(&admin, "1", 2023, "12")
        .await
        .unwrap();
    assert_eq!(view.status, Status::Met, "11.7 is the target, 12 beats it");
    let view = f
        .app
        .set_indicator_actual(&admin, "1", 2023, " 11.0 ")
        .await
        .unwrap();
    assert_eq!(view.status, Status::NotMet);
    assert_eq!(view.actual_text.as_deref(), Some("11"));
    assert_eq!(view.entered_by.as_deref(), Some("admin"));

    let entries = f
        .app
        .store()
        .journal_for_subject("indicator_1_2023")
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].actor, admin.user_id);
    assert!(
        entries[1].payload.contains("\"11.0\""),
        "{}",
        entries[1].payload
    );
    assert!(f.app.store().verify_journal().await.unwrap().is_intact());
}

#[tokio::test]
async fn lower_is_better_and_about_targets_are_judged_in_their_direction() {
    let f = fixture().await;
    let admin = admin(&f.app).await;
    // 25: accident death rate, 2022 target 0.0072, lower is better.
    let v = f
        .app
        .set_indicator_actual(&admin, "25", 2022, "0.0070")
        .await
        .unwrap();
    assert_eq!(v.status, Status::Met);
    let v = f
        .app
        .set_indicator_actual(&admin, "25", 2022, "0.0080")
        .await
        .unwrap();
    assert_eq!(v.status, Status::NotMet);
    // 6: R&D share, 2022 target "1.7左右" (Lucheng pack: ±2%).
    let v = f
        .app
        .set_indicator_actual(&admin, "6", 2022, "1.68")
        .await
        .unwrap();
    assert_eq!(v.status, Status::Met);
    let v = f
        .app
        .set_indicator_actual(&admin, "6", 2022, "1.60")
        .await
        .unwrap();
    assert_eq!(v.status, Status::NotMet);
}

#[tokio::test]
async fn an_increase_target_compares_with_the_previous_year() {
    let f = fixture().await;
    let admin = admin(&f.app).await;
    // 2: labour productivity, 2021 target "有所提高".
    let v = f
        .app
        .set_indicator_actual(&admin, "2", 2021, "17.5")
        .await
        .unwrap();
    assert_eq!(v.status, Status::NoData, "no 2020 baseline yet");
    f.app
        .set_indicator_actual(&admin, "2", 2020, "17")
        .await
        .unwrap();
    assert_eq!(
        status_of(&f.app.indicators(2021).await.unwrap(), "2"),
        Status::Met
    );
    f.app
        .set_indicator_actual(&admin, "2", 2021, "16.9")
        .await
        .unwrap();
    assert_eq!(
        status_of(&f.app.indicators(2021).await.unwrap(), "2"),
        Status::NotMet
    );
}

#[tokio::test]
async fn bad_entries_are_refused_with_the_field_and_change_nothing() {
    let f = fixture().await;
    let admin = admin(&f.app).await;
    for bad in ["abc", "1.2.3", "", "-5", "1e3"] {
        let err = f
            .app
            .set_indicator_actual(&admin, "1", 2023, bad)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{bad}");
        assert_eq!(err.field.as_deref(), Some("value"), "{bad}");
        assert!(err.message.contains("实际值"), "{}", err.message);
    }
    let err = f
        .app
        .set_indicator_actual(&admin, "1", 2030, "1")
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("year"));
    let err = f
        .app
        .set_indicator_actual(&admin, "99", 2023, "1")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = f
        .app
        .set_indicator_actual(&admin, "T3", 2023, "47")
        .await
        .unwrap_err();
    assert_eq!(err.code, "indicator.computed");
    assert!(f.app.store().indicator_actuals().await.unwrap().is_empty());
    assert_eq!(
        f.app
            .store()
            .journal_for_subject("indicator_1_2023")
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn only_administrators_enter_actuals() {
    let f = fixture().await;
    let admin = admin(&f.app).await;
    let staff = f
        .app
        .create_user(
            Some(&admin),
            "clerk",
            "办事员",
            "another long password",
            Role::Staff,
        )
        .await
        .unwrap();
    let err = f
        .app
        .set_indicator_actual(&staff, "1", 2023, "12")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    let err = f
        .app
        .create_user(Some(&staff), "x", "x", "long enough password", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
}

#[tokio::test]
async fn computed_indicators_count_the_platform_records_by_year_end_in_shanghai() {
    let f = fixture().await;
    let now = format_instant(f.clock.now());
    let mut tx = f.app.store().begin().await.unwrap();
    for i in 0..8 {
        tx.insert(&OrganizationRow {
            id: format!("org_{i}"),
            participant_id: None,
            name: format!("慈善组织{i}"),
            credit_code: cishan_core::CreditCode::from_parts(
                '5',
                '3',
                "330302",
                &format!("MA00000{i}X"),
            )
            .unwrap()
            .as_str()
            .to_owned(),
            kind: "foundation".into(),
            division_code: Some("330302".into()),
            registered_on: if i < 7 {
                "2021-03-01".into()
            } else {
                "2022-02-01".into()
            },
            created_at: now.clone(),
            is_charity: true,
            public_fundraising: false,
            synthetic: true,
        })
        .await
        .unwrap();
    }
    tx.insert(&TrustRow {
        id: "trs_1".into(),
        name: "共富慈善信托".into(),
        trustee_org_id: Some("org_0".into()),
        filed_on: "2021-12-31".into(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let y2021 = f.app.indicators(2021).await.unwrap();
    assert_eq!(
        status_of(&y2021, "T2"),
        Status::NotMet,
        "7 of 8 by the end of 2021"
    );
    assert_eq!(status_of(&y2021, "T1"), Status::Met);
    let y2022 = f.app.indicators(2022).await.unwrap();
    let t2 = y2022.iter().find(|v| v.code == "T2").unwrap();
    assert_eq!(t2.actual_text.as_deref(), Some("8"));
    assert_eq!(t2.status, Status::NotMet, "2022 target is 12");

    // A volunteer registered at 2021-12-31T17:00Z is 2022-01-01 01:00 in Shanghai: a 2022 volunteer.
    let mut tx = f.app.store().begin().await.unwrap();
    let person = cishan_store::ParticipantRow {
        id: "ptc_1".into(),
        kind: "person".into(),
        display_name: "测试".into(),
        id_number_digest: None,
        id_number_masked: None,
        id_number_cipher: None,
        division_code: None,
        created_at: now.clone(),
        synthetic: true,
    };
    tx.insert(&person).await.unwrap();
    tx.insert(&VolunteerRow {
        participant_id: "ptc_1".into(),
        volunteer_number: "V1".into(),
        registered_at: "2021-12-31T17:00:00.000000Z".into(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let count_2021 = f
        .app
        .metric_at_year_end(cishan_core::Metric::RegisteredVolunteers, 2021)
        .await
        .unwrap();
    let count_2022 = f
        .app
        .metric_at_year_end(cishan_core::Metric::RegisteredVolunteers, 2022)
        .await
        .unwrap();
    assert_eq!((count_2021, count_2022), (0, 1));
}

#[tokio::test]
async fn sessions_open_with_the_right_password_and_expire() {
    let f = fixture().await;
    admin(&f.app).await;
    let err = f.app.login("admin", "wrong password!").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthenticated);
    let err = f
        .app
        .login("nobody", "correct horse battery")
        .await
        .unwrap_err();
    assert_eq!(err.code, "auth.bad_credentials");

    let session = f.app.login("admin", "correct horse battery").await.unwrap();
    let info = f.app.session(&session.token).await.unwrap().unwrap();
    assert_eq!(info.actor.role, Role::Admin);
    assert_eq!(info.csrf_token, session.info.csrf_token);
    assert!(f.app.session("not-a-token").await.unwrap().is_none());

    f.clock
        .set("2023-06-01T20:00:01Z".parse::<Timestamp>().unwrap());
    assert!(
        f.app.session(&session.token).await.unwrap().is_none(),
        "expired after 12 hours"
    );

    let again = f.app.login("admin", "correct horse battery").await.unwrap();
    f.app.logout(&again.token).await.unwrap();
    assert!(f.app.session(&again.token).await.unwrap().is_none());
}

#[tokio::test]
async fn weak_or_odd_accounts_are_refused() {
    let f = fixture().await;
    let err = f
        .app
        .create_user(None, "admin", "A", "short", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("password"));
    let err = f
        .app
        .create_user(None, "王 五", "A", "long enough password", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("username"));
    admin(&f.app).await;
    let err = f
        .app
        .create_user(None, "admin", "again", "long enough password", Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.code, "user.username_taken");
}

#[tokio::test]
async fn the_database_refuses_a_missing_or_different_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = |data: &str| Config {
        database_url: format!("sqlite://{}/app.db", dir.path().display()),
        data_dir: dir.path().join(data),
    };
    let clock = Arc::new(FixedClock::new("2023-06-01T08:00:00Z".parse().unwrap()));
    let app = App::open(&config("right"), lucheng(), clock.clone())
        .await
        .unwrap();
    app.close().await;

    let err = App::open(&config("missing"), lucheng(), clock.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code, "vault.key_missing");
    assert!(
        !dir.path().join("missing/keys").exists(),
        "no new key is made"
    );

    std::fs::create_dir_all(dir.path().join("other/keys")).unwrap();
    cishan_app::Vault::open_or_create(&dir.path().join("other/keys")).unwrap();
    let err = App::open(&config("other"), lucheng(), clock.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code, "vault.key_mismatch");

    let again = App::open(&config("right"), lucheng(), clock).await.unwrap();
    again.close().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_username_for_a_while() {
    let f = fixture().await;
    admin(&f.app).await;
    for _ in 0..cishan_app::auth::MAX_FAILED_LOGINS {
        let err = f.app.login("admin", "wrong password!").await.unwrap_err();
        assert_eq!(err.code, "auth.bad_credentials");
    }
    let err = f
        .app
        .login("admin", "correct horse battery")
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::TooManyAttempts,
        "locked even with the right password"
    );
    assert!(err.message.contains("分钟"));
    let failures = f
        .app
        .store()
        .journal_for_subject("login_admin")
        .await
        .unwrap();
    assert_eq!(failures.len(), 5, "each failure is on record");

    f.clock
        .set("2023-06-01T08:16:00Z".parse::<Timestamp>().unwrap());
    f.app.login("admin", "correct horse battery").await.unwrap();
}

#[tokio::test]
async fn a_session_ended_behind_the_platforms_back_is_refused_within_a_second() {
    let f = fixture().await;
    admin(&f.app).await;
    let session = f.app.login("admin", "correct horse battery").await.unwrap();
    assert!(f.app.session(&session.token).await.unwrap().is_some());

    // Another process deletes every session (an operator's script, a second server).
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}/app.db", f._dir.path().display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM sessions")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let read_at = f.clock.now();
    assert!(
        f.app.session(&session.token).await.unwrap().is_some(),
        "remembered for up to a second"
    );
    f.clock
        .set(read_at + jiff::SignedDuration::from_secs(cishan_app::auth::SESSION_CACHE_SECONDS));
    assert!(
        f.app.session(&session.token).await.unwrap().is_none(),
        "read again after a second, and gone"
    );
}
