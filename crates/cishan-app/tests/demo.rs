//! What a newcomer sees of participants, codes, volunteering, points and rewards after
//! `cishan demo` (small scale, into a temporary directory, on a fixed clock): the demo member
//! signs in with the printed phone and password and has points with a breakdown, a tier,
//! verified hours, a star and a certificate; offers exist in all five channels; the partner
//! signs in and may redeem; an activity is open for check-in right now.

use std::collections::BTreeSet;
use std::sync::Arc;

use cishan_app::demo::{
    DemoOptions, Scale, DEMO_MEMBER_PASSWORD, DEMO_MEMBER_PHONE, DEMO_PARTNER_PASSWORD,
    DEMO_PARTNER_PHONE,
};
use cishan_app::rewards::{partner_orgs, CHANNELS};
use cishan_app::volunteering::ScanCodeInput;
use cishan_app::{App, Config, FixedClock, Role};
use cishan_core::region::embedded::lucheng;

/// A Friday morning in Lucheng (09:25 local).
const NOW: &str = "2026-12-04T01:25:00Z";

async fn small_demo(dir: &std::path::Path) -> App {
    let config = Config {
        database_url: format!("sqlite://{}/demo.db", dir.display()),
        data_dir: dir.join("data"),
    };
    let clock = Arc::new(FixedClock::new(NOW.parse().unwrap()));
    let app = App::open(&config, lucheng(), clock).await.unwrap();
    let report = app
        .generate_demo(
            &DemoOptions {
                scale: Scale::Small,
                seed: 2021,
            },
            &|_| {},
        )
        .await
        .unwrap();
    assert!(!report.reused);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_member_has_points_hours_and_rewards_to_redeem() {
    let dir = tempfile::tempdir().unwrap();
    let app = small_demo(dir.path()).await;

    // The member signs in with the phone and password `cishan demo` prints.
    let session = app
        .login(DEMO_MEMBER_PHONE, DEMO_MEMBER_PASSWORD)
        .await
        .unwrap();
    let member = session.info.actor;
    assert_eq!(member.role, Role::Member);
    let member_id = member
        .participant_id
        .clone()
        .expect("a member has a record");
    let record = app
        .store()
        .participant_record(&member_id)
        .await
        .unwrap()
        .unwrap();
    assert!(record.synthetic, "the member is a demo resident");
    let me = app.my_participant(&member).await.unwrap();
    let roles: BTreeSet<&str> = me.roles.iter().map(|r| r.role.as_str()).collect();
    assert!(
        roles.contains("volunteer") && roles.contains("donor"),
        "{roles:?}"
    );
    assert!(me.volunteer_number.is_some());

    // Points: a balance, a tier and a breakdown naming the rule applied to every act.
    let points = app.points_statement(&member, &member_id).await.unwrap();
    assert!(points.honour >= 500, "{points:?}");
    assert!(points.spendable > 0, "{points:?}");
    assert_eq!(
        points.tier.as_ref().map(|t| t.code.as_str()),
        Some("silver"),
        "{points:?}"
    );
    let kinds: BTreeSet<&str> = points.acts.iter().map(|a| a.kind.as_str()).collect();
    for kind in ["money", "volunteer_minutes", "skill"] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    let recent: Vec<_> = points
        .acts
        .iter()
        .filter(|a| a.local_date.as_str() >= "2026-11-01")
        .collect();
    assert!(recent.len() >= 6, "{recent:?}");
    for act in &recent {
        assert_eq!(act.rule_version.as_deref(), Some("lucheng-v1"));
        assert!(act.honour > 0 && !act.explanation.is_empty(), "{act:?}");
    }
    assert!(
        recent.iter().any(|a| a.explanation.contains("上限")),
        "a week of service is cut to the daily cap: {recent:?}"
    );

    // Hours: over a hundred verified, the first star, a certificate that verifies.
    let hours = app.volunteer_hours(&member, &member_id).await.unwrap();
    assert!(hours.verified_minutes >= 100 * 60, "{}", hours.hours_text);
    assert!(hours.stars >= 1);
    assert!(hours.pending.is_empty(), "every past session is verified");
    assert!(hours
        .records
        .iter()
        .any(|r| r.activity_title.as_deref() == Some("健康义诊进社区（演示）")));
    let certificate = hours.certificates.first().expect("a certificate");
    let checked = app
        .verify_certificate_code(&certificate.number, &certificate.code)
        .await
        .unwrap();
    assert_eq!(checked.number, certificate.number);

    // Offers in all five channels, and the redemption the partner already made.
    let channels: BTreeSet<String> = app
        .current_offers()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.channel)
        .collect();
    let wanted: BTreeSet<String> = CHANNELS.iter().map(|(c, _)| (*c).to_owned()).collect();
    assert_eq!(channels, wanted);
    let mine = app.redemptions_for(&member).await.unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");

    // The partner signs in and redeems for one organization.
    let partner = app
        .login(DEMO_PARTNER_PHONE, DEMO_PARTNER_PASSWORD)
        .await
        .unwrap()
        .info
        .actor;
    let orgs = partner_orgs(&app, &partner).await.unwrap();
    assert_eq!(orgs.map(|o| o.len()), Some(1));
    assert_eq!(app.redemptions_for(&partner).await.unwrap().len(), 1);

    // An activity is open for check-in now: the member scans its code and is in.
    let open = app
        .activities(0, 20)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.ends_at.as_str() > NOW)
        .expect("an upcoming activity");
    let session = app
        .check_in(
            &member,
            &open.id,
            &ScanCodeInput {
                code: open.code.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(session.state, "checked_in");

    let journal = app.store().verify_journal().await.unwrap();
    assert!(journal.is_intact(), "{:?}", journal.problems);
    assert_eq!(app.verify_ledger().await.unwrap(), Vec::<String>::new());
    app.close().await;
}
