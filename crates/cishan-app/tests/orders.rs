//! Orders through the app layer on a real database (SQLite, or PostgreSQL with
//! `CISHAN_TEST_POSTGRES_URL`): the catalogue, every legal and illegal move of the state
//! machine, concurrent moves, dispatch ranking and its explanations, staff override, the accept
//! deadline passed over by moving the clock, batch dispatch within capacity, reviews once and
//! their effect on scores, volunteer minutes pending until the review or staff verify them and
//! then credited once, early warnings and scoping.

mod db_support;

use std::sync::Arc;

use cishan_app::alerts::AlertQuery;
use cishan_app::dispatch::{BatchInput, DispatchInput};
use cishan_app::donations::IdempotencyKey;
use cishan_app::orders::{
    OrderInput, OrderListQuery, ReasonInput, ReviewInput, ServiceInput, VerifyMinutesInput,
    VolunteerCategoriesInput,
};
use cishan_app::{Actor, App, AppError, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_store::{
    format_instant, HouseholdRow, NewEntry, OrganizationRow, ParticipantRow, VolunteerRow,
};
use jiff::{SignedDuration, Timestamp};

/// 五马街道 and two of its communities; 七都街道 and one of its communities.
const STREET_A: &str = "330302006";
const C1: &str = "330302006044";
const C2: &str = "330302006045";
const STREET_B: &str = "330302023";
const C3: &str = "330302023001";
const ORG_A: &str = "org_a";
const ORG_B: &str = "org_b";
/// Volunteers: V1 and V2 live in C1 (V2's main category is health), V3 in C2, V4 in C3.
const V1: &str = "ptc_v1";
const V2: &str = "ptc_v2";
const V3: &str = "ptc_v3";
const V4: &str = "ptc_v4";
/// The person served: a member of household H1 (in C1).
const SERVED: &str = "ptc_served";
const H1: &str = "hh_1";
const H2: &str = "hh_2";

struct Fixture {
    app: App,
    clock: Arc<FixedClock>,
    url: String,
    /// District staff.
    staff: Actor,
    /// Staff of street B only.
    staff_b: Actor,
    /// Staff of organization A.
    org_a: Actor,
    /// The service organization A publishes in C2, serving street A, capacity 2 a week.
    service: String,
    _dir: tempfile::TempDir,
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn member(pid: &str) -> Actor {
    Actor {
        user_id: format!("usr_{pid}"),
        username: pid.to_owned(),
        display_name: String::new(),
        role: Role::Member,
        participant_id: Some(pid.to_owned()),
    }
}

async fn exec(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // A Monday, 09:00 in Shanghai.
    let clock = Arc::new(FixedClock::new(at("2024-03-04T01:00:00Z")));
    let url = db_support::database_url(dir.path(), "orders").await;
    let config = Config {
        database_url: url.clone(),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    let staff = app
        .create_user(
            None,
            "district",
            "区工作人员",
            "correct horse battery",
            Role::Staff,
        )
        .await
        .unwrap();
    let staff_b = app
        .create_user(
            None,
            "street-b",
            "七都街道工作人员",
            "correct horse battery",
            Role::Staff,
        )
        .await
        .unwrap();
    let org_a = app
        .create_user(
            None,
            "org-a",
            "组织A工作人员",
            "correct horse battery",
            Role::Staff,
        )
        .await
        .unwrap();
    let created = format_instant(at("2023-01-01T00:00:00Z"));
    let mut tx = app.store().begin().await.unwrap();
    let person = |id: &str, name: &str, home: &str| ParticipantRow {
        id: id.into(),
        kind: "person".into(),
        display_name: name.into(),
        id_number_digest: None,
        id_number_masked: None,
        id_number_cipher: None,
        division_code: Some(home.into()),
        created_at: created.clone(),
        synthetic: false,
    };
    tx.insert_all(&[
        person(V1, "王小明", C1),
        person(V2, "李四", C1),
        person(V3, "张三丰", C2),
        person(V4, "赵六", C3),
        person(SERVED, "陈阿婆", C1),
    ])
    .await
    .unwrap();
    let volunteers: Vec<VolunteerRow> = [V1, V2, V3, V4]
        .iter()
        .enumerate()
        .map(|(i, pid)| VolunteerRow {
            participant_id: (*pid).into(),
            volunteer_number: format!("ZJ330302{i:06}"),
            registered_at: created.clone(),
        })
        .collect();
    tx.insert_all(&volunteers).await.unwrap();
    for (id, name, code) in [
        (ORG_A, "鹿城区助老服务中心", "52330302MJ8998765X"),
        (ORG_B, "鹿城区青年志愿者协会", "51330302MJ8998766X"),
    ] {
        tx.insert(&OrganizationRow {
            id: id.into(),
            participant_id: None,
            name: name.into(),
            credit_code: code.into(),
            kind: "social_service".into(),
            division_code: None,
            registered_on: "2010-01-01".into(),
            created_at: created.clone(),
            is_charity: true,
            public_fundraising: false,
            synthetic: false,
        })
        .await
        .unwrap();
    }
    tx.insert_all(&[
        HouseholdRow {
            id: H1.into(),
            community_code: C1.into(),
            category: "subsistence".into(),
            member_count: 2,
            created_at: created.clone(),
            synthetic: false,
        },
        HouseholdRow {
            id: H2.into(),
            community_code: C3.into(),
            category: "near_subsistence".into(),
            member_count: 1,
            created_at: created.clone(),
            synthetic: false,
        },
    ])
    .await
    .unwrap();
    tx.journal(
        at("2023-01-01T00:00:00Z"),
        NewEntry {
            actor: "test".into(),
            kind: "test.seeded".into(),
            subject: "orders".into(),
            payload: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    exec(
        &url,
        &format!(
            "UPDATE users SET division_code = '{STREET_B}' WHERE id = '{}'",
            staff_b.user_id
        ),
    )
    .await;
    exec(
        &url,
        &format!(
            "UPDATE users SET org_id = '{ORG_A}' WHERE id = '{}'",
            org_a.user_id
        ),
    )
    .await;
    exec(
        &url,
        &format!(
            "INSERT INTO household_members (id, household_id, participant_id, relation, name_cipher, name_masked, \
             id_digest, id_cipher, id_masked, birth_year, created_at) VALUES \
             ('hm_1', '{H1}', '{SERVED}', 'head', 'x', '陈*婆', 'digest-1', 'x', '330302********0021', 1950, '{created}')"
        ),
    )
    .await;
    for (v, cats) in [
        (V1, vec!["daily_care"]),
        (V2, vec!["health", "daily_care"]),
        (V3, vec!["daily_care"]),
        (V4, vec!["daily_care"]),
    ] {
        app.set_volunteer_categories(
            &staff,
            v,
            &VolunteerCategoriesInput {
                categories: cats.into_iter().map(str::to_owned).collect(),
            },
        )
        .await
        .unwrap();
    }
    let service = app
        .create_service(&org_a, &service_input())
        .await
        .unwrap()
        .id;
    Fixture {
        app,
        clock,
        url,
        staff,
        staff_b,
        org_a,
        service,
        _dir: dir,
    }
}

fn service_input() -> ServiceInput {
    ServiceInput {
        org_id: ORG_A.into(),
        team_id: None,
        category: "daily_care".into(),
        name: "墨池社区助浴".into(),
        description: "上门助浴、理发".into(),
        scope: "street".into(),
        division_code: Some(C2.into()),
        capacity_per_week: 2,
        time_windows: "weekdays 09:00-17:00".into(),
        eligibility: Vec::new(),
        state: None,
    }
}

fn care_for(household: &str) -> OrderInput {
    OrderInput {
        household_id: Some(household.into()),
        category: Some("daily_care".into()),
        description: Some("打扫卫生".into()),
        ..OrderInput::default()
    }
}

async fn new_order(f: &Fixture, household: &str) -> String {
    f.app
        .create_order(&f.staff, None, &care_for(household))
        .await
        .unwrap()
        .value
        .id
}

async fn state(f: &Fixture, id: &str) -> String {
    f.app.order_detail(&f.staff, id).await.unwrap().order.state
}

fn conflict(e: &AppError) {
    assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
}

fn advance(f: &Fixture, minutes: i64) {
    let now = f.app.clock().now();
    f.clock
        .set(now.checked_add(SignedDuration::from_mins(minutes)).unwrap());
}

#[tokio::test]
async fn the_catalogue_validates_and_scopes_services() {
    let f = fixture().await;
    let view = f.app.service(&f.service).await.unwrap();
    assert_eq!(view.time_windows, "工作日 09:00-17:00");
    assert_eq!(view.scope_name, "本街道");
    assert_eq!(view.org_name, "鹿城区助老服务中心");
    for (input, field) in [
        (
            ServiceInput {
                category: "dancing".into(),
                ..service_input()
            },
            "category",
        ),
        (
            ServiceInput {
                scope: "city".into(),
                ..service_input()
            },
            "scope",
        ),
        (
            ServiceInput {
                scope: "community".into(),
                division_code: Some(STREET_A.into()),
                ..service_input()
            },
            "division_code",
        ),
        (
            ServiceInput {
                capacity_per_week: 0,
                ..service_input()
            },
            "capacity_per_week",
        ),
        (
            ServiceInput {
                time_windows: "weekdays 17:00-09:00".into(),
                ..service_input()
            },
            "time_windows",
        ),
        (
            ServiceInput {
                eligibility: vec!["低保".into()],
                ..service_input()
            },
            "eligibility",
        ),
        // Well-formed but no assistance category: a service nobody could order.
        (
            ServiceInput {
                eligibility: vec!["subsistence".into(), "bogus".into()],
                ..service_input()
            },
            "eligibility",
        ),
    ] {
        let e = f.app.create_service(&f.staff, &input).await.unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    }
    // Known categories are kept as codes and shown by their Chinese names.
    let limited = f
        .app
        .create_service(
            &f.staff,
            &ServiceInput {
                eligibility: vec!["extreme_poverty".into(), "subsistence".into()],
                ..service_input()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited.eligibility, ["extreme_poverty", "subsistence"]);
    assert_eq!(limited.eligibility_names, ["特困人员供养", "最低生活保障"]);
    // An organization's staff publish only for their organization.
    let e = f
        .app
        .create_service(
            &f.org_a,
            &ServiceInput {
                org_id: ORG_B.into(),
                ..service_input()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let e = f
        .app
        .create_service(&member(V1), &service_input())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    assert_eq!(
        f.app
            .services(None, Some("daily_care"), None, 0, 50)
            .await
            .unwrap()
            .len(),
        2,
        "the first service and the limited one; nothing refused was written"
    );
}

#[tokio::test]
async fn an_order_goes_through_every_state_with_its_history() {
    let f = fixture().await;
    // The person served orders for their own household.
    let made = f
        .app
        .create_order(
            &member(SERVED),
            None,
            &OrderInput {
                category: Some("daily_care".into()),
                ..OrderInput::default()
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(made.state, "created");
    assert_eq!(made.household_id, H1);
    assert!(!made.on_behalf);
    let id = made.id;
    let d = f
        .app
        .dispatch_order(&f.staff, None, &id, &DispatchInput::default())
        .await
        .unwrap()
        .value;
    assert_eq!(d.chosen.provider_id, V1);
    assert_eq!(d.order.state, "dispatched");
    let v1 = member(V1);
    assert_eq!(
        f.app
            .accept_order(&v1, None, &id)
            .await
            .unwrap()
            .value
            .state,
        "accepted"
    );
    assert_eq!(
        f.app.start_order(&v1, None, &id).await.unwrap().value.state,
        "in_service"
    );
    advance(&f, 90);
    let done = f.app.complete_order(&v1, None, &id).await.unwrap().value;
    assert_eq!(done.state, "completed");
    assert_eq!(done.service_minutes, Some(90));
    // The volunteer's minutes wait for the review (or staff) to verify them.
    assert!(!done.credited);
    assert!(done.minutes_pending);
    assert_eq!(done.verified_minutes, None);
    let reviewed = f
        .app
        .review_order(
            &member(SERVED),
            None,
            &id,
            &ReviewInput {
                rating: 5,
                comment: Some("很周到".into()),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(reviewed.state, "reviewed");
    // The review confirms the service: all 90 minutes count.
    assert!(reviewed.credited);
    assert!(!reviewed.minutes_pending);
    assert_eq!(reviewed.verified_minutes, Some(90));
    let detail = f.app.order_detail(&member(SERVED), &id).await.unwrap();
    let actions: Vec<&str> = detail.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["create", "dispatch", "accept", "start", "complete", "review"]
    );
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].outcome, "accepted");
    let review = detail.review.unwrap();
    assert_eq!((review.rating, review.on_behalf), (5, false));
    // Each move is in the journal.
    let entries = f.app.store().journal_for_subject(&id).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "order.created",
            "order.dispatched",
            "order.accepted",
            "order.started",
            "order.completed",
            "order.reviewed"
        ]
    );
}

/// Brings a fresh order to `target` by the legal path.
async fn order_in(f: &Fixture, target: &str) -> String {
    let id = new_order(f, H1).await;
    let v1 = member(V1);
    let steps = [
        "created",
        "dispatched",
        "accepted",
        "in_service",
        "completed",
        "reviewed",
    ];
    if target == "cancelled" {
        f.app
            .cancel_order(&f.staff, None, &id, &ReasonInput::default())
            .await
            .unwrap();
        return id;
    }
    for step in steps
        .iter()
        .skip(1)
        .take(steps.iter().position(|s| *s == target).unwrap())
    {
        match *step {
            "dispatched" => {
                f.app
                    .dispatch_order(
                        &f.staff,
                        None,
                        &id,
                        &DispatchInput {
                            provider_id: Some(V1.into()),
                        },
                    )
                    .await
                    .unwrap();
            }
            "accepted" => {
                f.app.accept_order(&v1, None, &id).await.unwrap();
            }
            "in_service" => {
                f.app.start_order(&v1, None, &id).await.unwrap();
            }
            "completed" => {
                f.app.complete_order(&v1, None, &id).await.unwrap();
            }
            _ => {
                f.app
                    .review_order(
                        &f.staff,
                        None,
                        &id,
                        &ReviewInput {
                            rating: 4,
                            comment: None,
                        },
                    )
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(state(f, &id).await, target);
    id
}

#[tokio::test]
async fn every_illegal_move_is_refused_with_409_and_changes_nothing() {
    let f = fixture().await;
    let legal: &[(&str, &[&str])] = &[
        ("created", &["dispatch", "cancel"]),
        ("dispatched", &["accept", "reject", "cancel"]),
        ("accepted", &["start", "reject", "cancel"]),
        ("in_service", &["complete", "cancel"]),
        ("completed", &["review"]),
        ("reviewed", &[]),
        ("cancelled", &[]),
    ];
    for (from, allowed) in legal {
        // A new week each time, so V1's weekly capacity never runs out.
        advance(&f, 7 * 24 * 60);
        let id = order_in(&f, from).await;
        for action in [
            "dispatch", "accept", "reject", "start", "complete", "review", "cancel",
        ] {
            if allowed.contains(&action) {
                continue;
            }
            let before = f.app.order_detail(&f.staff, &id).await.unwrap();
            let e = match action {
                "dispatch" => f
                    .app
                    .dispatch_order(&f.staff, None, &id, &DispatchInput::default())
                    .await
                    .map(|_| ()),
                "accept" => f.app.accept_order(&f.staff, None, &id).await.map(|_| ()),
                "reject" => f
                    .app
                    .reject_order(&f.staff, None, &id, &ReasonInput::default())
                    .await
                    .map(|_| ()),
                "start" => f.app.start_order(&f.staff, None, &id).await.map(|_| ()),
                "complete" => f.app.complete_order(&f.staff, None, &id).await.map(|_| ()),
                "review" => f
                    .app
                    .review_order(
                        &f.staff,
                        None,
                        &id,
                        &ReviewInput {
                            rating: 3,
                            comment: None,
                        },
                    )
                    .await
                    .map(|_| ()),
                _ => f
                    .app
                    .cancel_order(&f.staff, None, &id, &ReasonInput::default())
                    .await
                    .map(|_| ()),
            }
            .unwrap_err();
            conflict(&e);
            assert_eq!(e.code, "order.illegal_transition", "{from} {action}");
            assert!(e.message.contains("订单当前状态为"), "{}", e.message);
            let after = f.app.order_detail(&f.staff, &id).await.unwrap();
            assert_eq!(before, after, "{from} {action} changed the order");
        }
    }
}

#[tokio::test]
async fn of_two_concurrent_moves_only_one_wins() {
    let f = fixture().await;
    let id = order_in(&f, "dispatched").await;
    let v1 = member(V1);
    let (a, b) = tokio::join!(
        f.app.accept_order(&v1, None, &id),
        f.app.accept_order(&f.staff, None, &id)
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    for r in [a.map(|_| ()), b.map(|_| ())] {
        if let Err(e) = r {
            conflict(&e);
        }
    }
    let id = order_in(&f, "in_service").await;
    let reason = ReasonInput::default();
    let (a, b) = tokio::join!(
        f.app.complete_order(&v1, None, &id),
        f.app.cancel_order(&f.staff, None, &id, &reason)
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1);
}

#[tokio::test]
async fn dispatch_ranks_by_distance_fit_capacity_rating_and_load_and_explains_each() {
    let f = fixture().await;
    let id = new_order(&f, H1).await;
    let d = f
        .app
        .dispatch_order(&f.staff, None, &id, &DispatchInput::default())
        .await
        .unwrap()
        .value;
    let ranked: Vec<(&str, i64)> = d
        .candidates
        .iter()
        .map(|c| (c.provider_id.as_str(), c.score))
        .collect();
    // Same community, main category: 40 + 30 + capacity 3 left (6) + unrated 4.0 stars (15) + no load (10).
    assert_eq!(
        ranked,
        [
            (V1, 101),
            (V2, 91),
            (V3, 81),
            (f.service.as_str(), 79),
            (V4, 61)
        ]
    );
    for c in &d.candidates {
        assert_eq!(c.components.iter().map(|x| x.points).sum::<i64>(), c.score);
        let names: Vec<&str> = c.components.iter().map(|x| x.component.as_str()).collect();
        assert_eq!(
            names,
            ["category", "distance", "capacity", "rating", "load"]
        );
    }
    assert_eq!(d.candidates[3].distance, "same_street");
    assert_eq!(d.candidates[3].provider_name, "墨池社区助浴");
    assert_eq!(d.candidates[0].provider_name, "王*明");
    assert_eq!(d.chosen_by, "auto");
    // The next order sees V1's load and used capacity.
    let next = new_order(&f, H1).await;
    let c = f.app.order_candidates(&f.staff, &next).await.unwrap();
    assert_eq!(c[0].provider_id, V1);
    assert_eq!(c[0].score, 101 - 2 - 2);
    // An order in street B: the street-A service does not serve it.
    let far = new_order(&f, H2).await;
    let c = f.app.order_candidates(&f.staff, &far).await.unwrap();
    assert_eq!(c[0].provider_id, V4);
    assert!(c.iter().all(|x| x.provider_id != f.service));
}

#[tokio::test]
async fn staff_may_override_with_a_suitable_provider() {
    let f = fixture().await;
    let id = new_order(&f, H1).await;
    let d = f
        .app
        .dispatch_order(
            &f.staff,
            None,
            &id,
            &DispatchInput {
                provider_id: Some(f.service.clone()),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(d.chosen.provider_id, f.service);
    assert_eq!(d.chosen_by, "override");
    assert_eq!(d.order.provider_org_id.as_deref(), Some(ORG_A));
    // A provider that does not serve the place is refused, and the order stays as it was.
    let far = new_order(&f, H2).await;
    let e = f
        .app
        .dispatch_order(
            &f.staff,
            None,
            &far,
            &DispatchInput {
                provider_id: Some(f.service.clone()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("provider_id"));
    assert_eq!(state(&f, &far).await, "created");
    // Street-B staff may not dispatch street-A orders, and org staff dispatch nothing: an
    // order they may not see does not exist for them (404, as for its candidates).
    let e = f
        .app
        .dispatch_order(
            &f.staff_b,
            None,
            &new_order(&f, H1).await,
            &DispatchInput::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = f
        .app
        .dispatch_order(&f.org_a, None, &far, &DispatchInput::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(f
        .app
        .dispatch_order(&f.staff_b, None, &far, &DispatchInput::default())
        .await
        .is_ok());
}

#[tokio::test]
async fn a_provider_who_does_not_accept_in_time_is_passed_over() {
    let f = fixture().await;
    let id = new_order(&f, H1).await;
    let d = f
        .app
        .dispatch_order(&f.staff, None, &id, &DispatchInput::default())
        .await
        .unwrap()
        .value;
    assert_eq!(d.chosen.provider_id, V1);
    // Before the deadline nothing happens.
    advance(&f, 29);
    assert_eq!(f.app.sweep_orders().await.unwrap().expired, 0);
    advance(&f, 2);
    let swept = f.app.sweep_orders().await.unwrap();
    assert_eq!((swept.expired, swept.redispatched), (1, 1));
    let detail = f.app.order_detail(&f.staff, &id).await.unwrap();
    assert_eq!(detail.order.state, "dispatched");
    assert_eq!(detail.order.provider_id.as_deref(), Some(V2));
    assert_eq!(detail.order.passes, 1);
    let outcomes: Vec<&str> = detail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["expired", "pending"]);
    // V1 may no longer accept it.
    assert_eq!(
        f.app
            .accept_order(&member(V1), None, &id)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    // A rejection sends it on at once to the next (V3), never back to V1 or V2.
    let r = f
        .app
        .reject_order(
            &member(V2),
            None,
            &id,
            &ReasonInput {
                reason: Some("这周不在温州".into()),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(r.provider_id.as_deref(), Some(V3));
    assert_eq!(r.passes, 2);
    // V1's slot came back: their capacity is whole again.
    let c = f
        .app
        .order_candidates(&f.staff, &new_order(&f, H1).await)
        .await
        .unwrap();
    assert_eq!((c[0].provider_id.as_str(), c[0].score), (V1, 101));
}

#[tokio::test]
async fn batch_dispatch_never_passes_anyone_s_capacity() {
    let f = fixture().await;
    // Capacity for daily care in reach of C1: V1, V2, V3, V4 three each, the service two = 14.
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(new_order(&f, H1).await);
        advance(&f, 1);
    }
    let report = f
        .app
        .batch_dispatch(&f.staff, &BatchInput::default())
        .await
        .unwrap();
    assert_eq!(report.considered, 20);
    assert_eq!(report.dispatched, 14);
    assert_eq!(report.without_candidate, 6);
    let mut per: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (_, p, _) in &report.assignments {
        *per.entry(p.clone()).or_default() += 1;
    }
    for (p, n) in &per {
        let cap = if *p == f.service { 2 } else { 3 };
        assert!(*n <= cap, "{p} got {n}");
        let stats = f.app.store().provider_stats(p).await.unwrap().unwrap();
        assert_eq!(stats.week_used, *n);
    }
    // The oldest orders went first.
    assert!(report
        .assignments
        .iter()
        .all(|(o, _, _)| ids[..14].contains(o)));
    let detail = f.app.order_detail(&f.staff, &ids[0]).await.unwrap();
    assert_eq!(detail.attempts[0].chosen_by, "batch");
    assert_eq!(detail.events.len(), 2);
    // A single dispatch now finds nobody free, and a new week frees everyone.
    let e = f
        .app
        .dispatch_order(&f.staff, None, &ids[19], &DispatchInput::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, "dispatch.no_candidate");
    advance(&f, 7 * 24 * 60);
    assert!(f
        .app
        .dispatch_order(&f.staff, None, &ids[19], &DispatchInput::default())
        .await
        .is_ok());
}

#[tokio::test]
async fn a_review_is_once_and_feeds_the_score_and_the_organization() {
    let f = fixture().await;
    let id = new_order(&f, H1).await;
    f.app
        .dispatch_order(
            &f.staff,
            None,
            &id,
            &DispatchInput {
                provider_id: Some(f.service.clone()),
            },
        )
        .await
        .unwrap();
    let org = &f.org_a;
    f.app.accept_order(org, None, &id).await.unwrap();
    f.app.start_order(org, None, &id).await.unwrap();
    let done = f.app.complete_order(org, None, &id).await.unwrap().value;
    assert!(!done.credited, "a service's order credits no volunteer");
    let e = f
        .app
        .review_order(
            &member(SERVED),
            None,
            &id,
            &ReviewInput {
                rating: 6,
                comment: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("rating"));
    // Staff record the rating from a follow-up call: marked as such.
    f.app
        .review_order(
            &f.staff,
            None,
            &id,
            &ReviewInput {
                rating: 1,
                comment: Some("迟到一小时".into()),
            },
        )
        .await
        .unwrap();
    let e = f
        .app
        .review_order(
            &member(SERVED),
            None,
            &id,
            &ReviewInput {
                rating: 5,
                comment: None,
            },
        )
        .await
        .unwrap_err();
    conflict(&e);
    let review = f
        .app
        .order_detail(&f.staff, &id)
        .await
        .unwrap()
        .review
        .unwrap();
    assert_eq!((review.rating, review.on_behalf), (1, true));
    let rating = f.app.org_rating(ORG_A).await.unwrap();
    assert_eq!(
        (
            rating.rating_count,
            rating.average_milli,
            rating.bayesian_milli
        ),
        (1, 1_000, 3_500)
    );
    // (4000×5 + 1000) / 6 = 3500 milli-stars: 12 rating points instead of 15.
    let c = f
        .app
        .order_candidates(&f.staff, &new_order(&f, H1).await)
        .await
        .unwrap();
    let s = c.iter().find(|x| x.provider_id == f.service).unwrap();
    let rating_points = s
        .components
        .iter()
        .find(|x| x.component == "rating")
        .unwrap();
    assert_eq!((rating_points.raw, rating_points.points), (3_500, 12));
    // The low rating raises a warning for organization A.
    let alerts = f
        .app
        .alerts(&f.org_a, &AlertQuery::default())
        .await
        .unwrap();
    assert!(alerts
        .items
        .iter()
        .any(|a| a.kind == "low_rating" && a.subject_id == id));
}

/// V1's verified minutes, service records of orders, and points acts of orders (quantities).
async fn credited(f: &Fixture) -> (i64, usize, Vec<i64>) {
    let hours = f.app.volunteer_hours(&f.staff, V1).await.unwrap();
    let records = hours
        .records
        .iter()
        .filter(|r| r.content.contains("服务订单"))
        .count();
    let statement = f.app.points_statement(&f.staff, V1).await.unwrap();
    let acts = statement
        .acts
        .iter()
        .filter(|a| a.source_kind == "service_order")
        .map(|a| a.quantity)
        .collect();
    (hours.verified_minutes, records, acts)
}

fn review(rating: i64) -> ReviewInput {
    ReviewInput {
        rating,
        comment: None,
    }
}

#[tokio::test]
async fn a_volunteer_s_minutes_are_credited_once() {
    let f = fixture().await;
    let id = order_in(&f, "in_service").await;
    advance(&f, 75);
    let key = IdempotencyKey::parse("complete-1").unwrap();
    let first = f
        .app
        .complete_order(&member(V1), Some(&key), &id)
        .await
        .unwrap();
    assert!(!first.replayed);
    let again = f
        .app
        .complete_order(&member(V1), Some(&key), &id)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    // Without the key a second completion is an illegal move.
    conflict(
        &f.app
            .complete_order(&member(V1), None, &id)
            .await
            .unwrap_err(),
    );
    // Completed, the minutes are pending: no hours, no record, no points.
    assert!(first.value.minutes_pending);
    assert_eq!(credited(&f).await, (0, 0, vec![]));
    // The person served reviews: the service took place, the 75 minutes count.
    let reviewed = f
        .app
        .review_order(&member(SERVED), None, &id, &review(5))
        .await
        .unwrap()
        .value;
    assert_eq!(reviewed.verified_minutes, Some(75));
    assert_eq!(credited(&f).await, (75, 1, vec![75]));
    // Staff verifying afterwards is refused and changes nothing, even asking for fewer minutes.
    let e = f
        .app
        .verify_order_minutes(
            &f.staff,
            None,
            &id,
            &VerifyMinutesInput {
                minutes: Some(10),
                note: None,
            },
        )
        .await
        .unwrap_err();
    conflict(&e);
    assert_eq!(e.code, "order.minutes_already_verified");
    assert!(e.message.contains("计入 75 分钟"), "{}", e.message);
    assert_eq!(
        f.app
            .order_detail(&f.staff, &id)
            .await
            .unwrap()
            .order
            .verified_minutes,
        Some(75)
    );
    assert_eq!(credited(&f).await, (75, 1, vec![75]));
    let statement = f.app.points_statement(&member(V1), V1).await.unwrap();
    let acts: Vec<_> = statement
        .acts
        .iter()
        .filter(|a| a.source_kind == "service_order")
        .collect();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].source_id, id);
}

#[tokio::test]
async fn minutes_of_an_unreviewed_order_count_only_once_staff_verify_them() {
    let f = fixture().await;
    let id = order_in(&f, "in_service").await;
    advance(&f, 75);
    let done = f
        .app
        .complete_order(&member(V1), None, &id)
        .await
        .unwrap()
        .value;
    assert_eq!(done.service_minutes, Some(75));
    assert!(done.minutes_pending);
    // Days go by without a review: still nothing counts.
    advance(&f, 3 * 24 * 60);
    assert_eq!(credited(&f).await, (0, 0, vec![]));
    let hours = f.app.volunteer_hours(&member(V1), V1).await.unwrap();
    assert_eq!((hours.stars, hours.verified_minutes), (0, 0));
    let all = VerifyMinutesInput::default();
    // The volunteer may not verify their own minutes, nor the person served (they review);
    // staff of another street do not see the order.
    for who in [member(V1), member(SERVED)] {
        let e = f
            .app
            .verify_order_minutes(&who, None, &id, &all)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "{e:?}");
    }
    let e = f
        .app
        .verify_order_minutes(&f.staff_b, None, &id, &all)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e:?}");
    // Never above what the completion recorded, never negative.
    for minutes in [76, -1] {
        let e = f
            .app
            .verify_order_minutes(
                &f.staff,
                None,
                &id,
                &VerifyMinutesInput {
                    minutes: Some(minutes),
                    note: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str(), e.field.as_deref()),
            (ErrorKind::Invalid, "order.minutes_invalid", Some("minutes")),
            "{minutes}"
        );
    }
    assert_eq!(credited(&f).await, (0, 0, vec![]));
    // Staff verify, correcting 75 minutes down to 50 (a follow-up call), with a key.
    let key = IdempotencyKey::parse("verify-1").unwrap();
    let fifty = VerifyMinutesInput {
        minutes: Some(50),
        note: Some("回访核实".into()),
    };
    let first = f
        .app
        .verify_order_minutes(&f.staff, Some(&key), &id, &fifty)
        .await
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.value.state, "completed");
    assert_eq!(first.value.service_minutes, Some(75));
    assert_eq!(first.value.verified_minutes, Some(50));
    assert!(first.value.credited && !first.value.minutes_pending);
    assert_eq!(credited(&f).await, (50, 1, vec![50]));
    let replayed = f
        .app
        .verify_order_minutes(&f.staff, Some(&key), &id, &fifty)
        .await
        .unwrap();
    assert!(replayed.replayed);
    // Verifying twice is refused, saying when and how much; then reviewing credits nothing more.
    let e = f
        .app
        .verify_order_minutes(&f.staff, None, &id, &all)
        .await
        .unwrap_err();
    conflict(&e);
    assert_eq!(e.code, "order.minutes_already_verified");
    // When (local time on the test clock) and how much.
    assert!(
        e.message.contains("已于 2024-03-07 10:15 核验") && e.message.contains("计入 50 分钟"),
        "{}",
        e.message
    );
    assert_eq!(credited(&f).await, (50, 1, vec![50]));
    let reviewed = f
        .app
        .review_order(&member(SERVED), None, &id, &review(4))
        .await
        .unwrap()
        .value;
    assert_eq!(reviewed.state, "reviewed");
    assert_eq!(reviewed.verified_minutes, Some(50));
    assert_eq!(credited(&f).await, (50, 1, vec![50]));
    // The history and the journal record the correction once.
    let detail = f.app.order_detail(&f.staff, &id).await.unwrap();
    let verifications: Vec<_> = detail
        .events
        .iter()
        .filter(|e| e.action == "verify_minutes")
        .collect();
    assert_eq!(verifications.len(), 1);
    assert_eq!(verifications[0].action_name, "核验服务时长");
    assert!(verifications[0]
        .note
        .contains("核验 50 分钟（原记录 75 分钟）"));
    let entries = f.app.store().journal_for_subject(&id).await.unwrap();
    let verified: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "order.minutes_verified")
        .collect();
    assert_eq!(verified.len(), 1);
    let payload: serde_json::Value = serde_json::from_str(&verified[0].payload).unwrap();
    assert_eq!(payload["service_minutes"], 75);
    assert_eq!(payload["verified_minutes"], 50);
    assert_eq!(payload["corrected"], true);
    assert_eq!(payload["credited_minutes"], 50);
}

#[tokio::test]
async fn only_a_volunteer_s_completed_orders_have_minutes_to_verify() {
    let f = fixture().await;
    let all = VerifyMinutesInput::default();
    // Not completed yet, and cancelled in service: nothing to verify, nothing ever counts.
    let serving = order_in(&f, "in_service").await;
    advance(&f, 40);
    let e = f
        .app
        .verify_order_minutes(&f.staff, None, &serving, &all)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Conflict, "order.not_completed")
    );
    f.app
        .cancel_order(&f.staff, None, &serving, &ReasonInput::default())
        .await
        .unwrap();
    let e = f
        .app
        .verify_order_minutes(&f.staff, None, &serving, &all)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Conflict, "order.not_completed")
    );
    assert_eq!(credited(&f).await, (0, 0, vec![]));
    // A service's order has no volunteer minutes.
    let id = new_order(&f, H1).await;
    f.app
        .dispatch_order(
            &f.staff,
            None,
            &id,
            &DispatchInput {
                provider_id: Some(f.service.clone()),
            },
        )
        .await
        .unwrap();
    for step in ["accept", "start", "complete"] {
        let r = match step {
            "accept" => f.app.accept_order(&f.org_a, None, &id).await,
            "start" => f.app.start_order(&f.org_a, None, &id).await,
            _ => f.app.complete_order(&f.org_a, None, &id).await,
        };
        assert!(!r.unwrap().value.minutes_pending, "{step}");
    }
    let e = f
        .app
        .verify_order_minutes(&f.staff, None, &id, &all)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Conflict, "order.no_volunteer_minutes")
    );
}

#[tokio::test]
async fn orders_from_needs_move_the_need() {
    let f = fixture().await;
    let registered = format_instant(at("2024-01-01T00:00:00Z"));
    exec(&f.url, &format!("INSERT INTO needs (id, household_id, category, description, state, registered_by, registered_at) VALUES ('need_1', '{H1}', 'daily_care', '独居老人需要助浴', 'open', 'test', '{registered}')")).await;
    // Waiting since January: a warning for street A.
    let alerts = f
        .app
        .alerts(
            &f.staff,
            &AlertQuery {
                street: Some(STREET_A.into()),
                org_id: None,
            },
        )
        .await
        .unwrap();
    assert!(alerts
        .items
        .iter()
        .any(|a| a.kind == "need_waiting" && a.subject_id == "need_1"));
    let id = f
        .app
        .create_order(
            &f.staff,
            None,
            &OrderInput {
                need_id: Some("need_1".into()),
                ..OrderInput::default()
            },
        )
        .await
        .unwrap()
        .value
        .id;
    let need = f.app.store().need_brief("need_1").await.unwrap().unwrap();
    assert_eq!(need.state, "ordered");
    let alerts = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert!(!alerts.items.iter().any(|a| a.kind == "need_waiting"));
    // A second order from the same need is refused.
    conflict(
        &f.app
            .create_order(
                &f.staff,
                None,
                &OrderInput {
                    need_id: Some("need_1".into()),
                    ..OrderInput::default()
                },
            )
            .await
            .unwrap_err(),
    );
    f.app
        .cancel_order(&member(SERVED), None, &id, &ReasonInput::default())
        .await
        .unwrap();
    assert_eq!(
        f.app
            .store()
            .need_brief("need_1")
            .await
            .unwrap()
            .unwrap()
            .state,
        "open"
    );
    let id = f
        .app
        .create_order(
            &f.staff,
            None,
            &OrderInput {
                need_id: Some("need_1".into()),
                ..OrderInput::default()
            },
        )
        .await
        .unwrap()
        .value
        .id;
    f.app
        .dispatch_order(&f.staff, None, &id, &DispatchInput::default())
        .await
        .unwrap();
    f.app.accept_order(&member(V1), None, &id).await.unwrap();
    f.app.start_order(&member(V1), None, &id).await.unwrap();
    f.app.complete_order(&member(V1), None, &id).await.unwrap();
    let need = f.app.store().need_brief("need_1").await.unwrap().unwrap();
    assert_eq!(need.state, "met");
}

#[tokio::test]
async fn overdue_orders_raise_warnings_that_go_away_when_dealt_with() {
    let f = fixture().await;
    let a = new_order(&f, H1).await;
    let b = new_order(&f, H2).await;
    advance(&f, 61);
    let alerts = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    let late: Vec<&str> = alerts
        .items
        .iter()
        .filter(|x| x.kind == "not_dispatched")
        .map(|x| x.subject_id.as_str())
        .collect();
    assert_eq!(late.len(), 2);
    // Street-B staff see only street B's; a filter by street does the same for district staff.
    let only_b = f
        .app
        .alerts(
            &f.staff_b,
            &AlertQuery {
                street: Some(STREET_A.into()),
                org_id: None,
            },
        )
        .await
        .unwrap();
    assert!(only_b
        .items
        .iter()
        .all(|x| x.street_code.as_deref() == Some(STREET_B)));
    assert_eq!(
        only_b
            .items
            .iter()
            .filter(|x| x.kind == "not_dispatched")
            .count(),
        1
    );
    assert_eq!(
        f.app
            .alerts(&member(SERVED), &AlertQuery::default())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
    // Dispatched: the warning goes; not accepted for two hours (passed over in between): a new one.
    f.app
        .dispatch_order(&f.staff, None, &a, &DispatchInput::default())
        .await
        .unwrap();
    let alerts = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert!(!alerts.items.iter().any(|x| x.subject_id == a));
    advance(&f, 121);
    f.app.sweep_orders().await.unwrap();
    let alerts = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert!(alerts
        .items
        .iter()
        .any(|x| x.subject_id == a && x.kind == "not_accepted"));
    let holder = f
        .app
        .order_detail(&f.staff, &a)
        .await
        .unwrap()
        .order
        .provider_id
        .unwrap();
    f.app
        .accept_order(&member(&holder), None, &a)
        .await
        .unwrap();
    let alerts = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert!(!alerts.items.iter().any(|x| x.subject_id == a));
    assert!(alerts.items.iter().any(|x| x.subject_id == b));
    // Accepted but not completed in 72 hours.
    advance(&f, 72 * 60 + 1);
    let alerts = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert!(alerts
        .items
        .iter()
        .any(|x| x.subject_id == a && x.kind == "not_completed"));
}

#[tokio::test]
async fn orders_are_seen_only_by_their_parties() {
    let f = fixture().await;
    let a = new_order(&f, H1).await;
    let b = new_order(&f, H2).await;
    // The person served sees their household's order, not another's (which does not exist for them).
    assert!(f.app.order_detail(&member(SERVED), &a).await.is_ok());
    assert_eq!(
        f.app
            .order_detail(&member(SERVED), &b)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        f.app.order_detail(&f.staff_b, &a).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert!(f.app.order_detail(&f.staff_b, &b).await.is_ok());
    let listed = f
        .app
        .orders(&f.staff_b, &OrderListQuery::default(), 0, 50)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [b.as_str()]
    );
    // A member who is not in the registry cannot order for a household.
    let e = f
        .app
        .create_order(&member(V4), None, &care_for(H1))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    // Street-B staff cannot order for a street-A household: to them it does not exist.
    assert_eq!(
        f.app
            .create_order(&f.staff_b, None, &care_for(H1))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    // Organization A's staff see the orders of their service only.
    f.app
        .dispatch_order(
            &f.staff,
            None,
            &a,
            &DispatchInput {
                provider_id: Some(f.service.clone()),
            },
        )
        .await
        .unwrap();
    let listed = f
        .app
        .orders(&f.org_a, &OrderListQuery::default(), 0, 50)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [a.as_str()]
    );
    assert_eq!(
        f.app.order_detail(&f.org_a, &b).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    // A volunteer cannot accept an order held by someone else.
    assert_eq!(
        f.app
            .accept_order(&member(V1), None, &a)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    let (held, served) = f.app.my_orders(&member(SERVED)).await.unwrap();
    assert!(held.is_empty());
    assert_eq!(served.len(), 1);
}

#[tokio::test]
async fn moves_with_an_idempotency_key_replay_the_first_result() {
    let f = fixture().await;
    let key = IdempotencyKey::parse("order-1").unwrap();
    let first = f
        .app
        .create_order(&f.staff, Some(&key), &care_for(H1))
        .await
        .unwrap();
    let again = f
        .app
        .create_order(&f.staff, Some(&key), &care_for(H1))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value.id, first.value.id);
    assert_eq!(
        f.app
            .orders(&f.staff, &OrderListQuery::default(), 0, 50)
            .await
            .unwrap()
            .len(),
        1
    );
    let e = f
        .app
        .create_order(&f.staff, Some(&key), &care_for(H2))
        .await
        .unwrap_err();
    assert_eq!(e.code, "idempotency.key_reused");
    let dkey = IdempotencyKey::parse("dispatch-1").unwrap();
    let d1 = f
        .app
        .dispatch_order(
            &f.staff,
            Some(&dkey),
            &first.value.id,
            &DispatchInput::default(),
        )
        .await
        .unwrap();
    let d2 = f
        .app
        .dispatch_order(
            &f.staff,
            Some(&dkey),
            &first.value.id,
            &DispatchInput::default(),
        )
        .await
        .unwrap();
    assert!(d2.replayed);
    assert_eq!(d1.value, d2.value);
    assert_eq!(
        f.app
            .order_detail(&f.staff, &first.value.id)
            .await
            .unwrap()
            .attempts
            .len(),
        1
    );
}

#[tokio::test]
async fn a_csv_import_goes_through_the_same_use_case_once() {
    let f = fixture().await;
    let csv = format!(
        "household_id,category,description\n{H1},daily_care,打扫卫生\n{H2},dancing,跳舞\n{H2},health,陪诊\n"
    );
    let report = f.app.import_orders(&f.staff_b, &csv).await.unwrap();
    // Street-B staff: the street-A household is refused like any other path would refuse it.
    assert_eq!((report.created, report.refused), (1, 2));
    let outcomes: Vec<(&str, Option<&str>)> = report
        .rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.error_code.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("refused", Some("household.not_found")),
            ("refused", Some("service.category_unknown")),
            ("created", None)
        ]
    );
    assert_eq!(report.rows[2].line, 4);
    // District staff import the same file: their own orders (idempotency keys are per account).
    let report = f.app.import_orders(&f.staff, &csv).await.unwrap();
    assert_eq!((report.created, report.refused), (2, 1));
    let again = f.app.import_orders(&f.staff, &csv).await.unwrap();
    assert_eq!((again.created, again.replayed), (0, 2));
    assert_eq!(
        f.app
            .orders(&f.staff, &OrderListQuery::default(), 0, 50)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        f.app
            .import_orders(&member(SERVED), &csv)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
}

#[tokio::test]
async fn roster_skills_become_service_categories() {
    let f = fixture().await;
    exec(&f.url, &format!("INSERT INTO participants (id, kind, display_name, division_code, created_at, synthetic) VALUES ('ptc_v5', 'person', '周五', '{C1}', '2023-01-01T00:00:00.000000Z', 0)")).await;
    exec(&f.url, "INSERT INTO volunteers (participant_id, volunteer_number, registered_at, skills) VALUES ('ptc_v5', 'ZJ330302000005', '2023-01-01T00:00:00.000000Z', '心理疏导、助老陪护')").await;
    assert_eq!(f.app.categories_from_skills(&f.staff).await.unwrap(), 1);
    assert_eq!(
        f.app.store().volunteer_categories("ptc_v5").await.unwrap(),
        ["emotional_support", "daily_care"]
    );
    // Nothing left to do the second time; members may not run it.
    assert_eq!(f.app.categories_from_skills(&f.staff).await.unwrap(), 0);
    assert_eq!(
        f.app
            .categories_from_skills(&member(V1))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
    // The new volunteer is a candidate at once, as a secondary daily-care fit in C1: 40 + 20 + 6 + 15 + 10.
    let c = f
        .app
        .order_candidates(&f.staff, &new_order(&f, H1).await)
        .await
        .unwrap();
    assert!(
        c.iter().any(|x| x.provider_id == "ptc_v5" && x.score == 91),
        "{c:?}"
    );
}

/// Inserts `n` orders of `street` in one statement, as the bulk of a busy district would be.
async fn bulk_orders(
    f: &Fixture,
    prefix: &str,
    n: i64,
    household: &str,
    community: &str,
    street: &str,
    created: &str,
) {
    exec(
        &f.url,
        &format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) \
             INSERT INTO orders (id, household_id, category, community_code, street_code, state, \
             requested_by, created_at) \
             SELECT '{prefix}' || CAST(n AS TEXT), '{household}', 'daily_care', '{community}', \
             '{street}', 'created', 'test', '{created}' FROM s"
        ),
    )
    .await;
}

#[tokio::test]
async fn warnings_are_filtered_and_counted_in_the_database_past_the_listed_cap() {
    let f = fixture().await;
    // 600 overdue orders in street A, older than street B's three: a district-wide list cut at
    // 500 and filtered afterwards would hold none of street B's.
    let old = format_instant(at("2024-03-03T00:00:00Z"));
    let newer = format_instant(at("2024-03-03T12:00:00Z"));
    bulk_orders(&f, "ord_a", 600, H1, C1, STREET_A, &old).await;
    bulk_orders(&f, "ord_b", 3, H2, C3, STREET_B, &newer).await;
    // Rejected back into `created`, first dispatched three hours ago: counted once, as needing
    // re-dispatch (not_accepted), not also as not_dispatched.
    bulk_orders(&f, "ord_r", 1, H2, C3, STREET_B, &newer).await;
    exec(
        &f.url,
        &format!(
            "UPDATE orders SET first_dispatched_at = '{}', passes = 1 WHERE id = 'ord_r1'",
            format_instant(at("2024-03-03T22:00:00Z"))
        ),
    )
    .await;

    let count = |list: &cishan_app::alerts::AlertList, kind: &str| {
        list.counts.iter().find(|c| c.kind == kind).unwrap().count
    };
    let all = f
        .app
        .alerts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert_eq!(count(&all, "not_dispatched"), 603);
    assert_eq!(count(&all, "not_accepted"), 1);
    assert_eq!(all.total, 604);
    let listed = all
        .items
        .iter()
        .filter(|a| a.kind == "not_dispatched")
        .count();
    assert_eq!(listed, 500, "the list is capped, the count is not");
    let by_street: Vec<(&str, i64)> = all
        .by_street
        .iter()
        .map(|s| (s.street_code.as_str(), s.count))
        .collect();
    assert_eq!(by_street, [(STREET_A, 600), (STREET_B, 4)]);
    assert_eq!(all.by_street[0].street_name, "五马街道");
    let summary = f
        .app
        .alert_counts(&f.staff, &AlertQuery::default())
        .await
        .unwrap();
    assert_eq!(
        (summary.total, summary.counts),
        (all.total, all.counts.clone())
    );

    // Street B's staff, and district staff filtering by street B, get street B's in full.
    let asked_b = AlertQuery {
        street: Some(STREET_B.into()),
        org_id: None,
    };
    for (who, q) in [
        (&f.staff_b, AlertQuery::default()),
        (&f.staff, asked_b.clone()),
    ] {
        let b = f.app.alerts(who, &q).await.unwrap();
        assert_eq!(count(&b, "not_dispatched"), 3);
        assert_eq!(count(&b, "not_accepted"), 1);
        assert_eq!(b.total, 4);
        let mut ids: Vec<(&str, &str)> = b
            .items
            .iter()
            .map(|a| (a.subject_id.as_str(), a.kind.as_str()))
            .collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [
                ("ord_b1", "not_dispatched"),
                ("ord_b2", "not_dispatched"),
                ("ord_b3", "not_dispatched"),
                ("ord_r1", "not_accepted"),
            ]
        );
        assert!(b
            .items
            .iter()
            .any(|a| a.subject_id == "ord_r1" && a.detail.contains("待重新派单")));
    }
    // An organization's staff: none of these orders is theirs.
    let org = f
        .app
        .alert_counts(&f.org_a, &AlertQuery::default())
        .await
        .unwrap();
    assert_eq!(org.total, 0);
}

/// What an error tells its caller: kind, code, message and field.
fn answer(e: AppError) -> (ErrorKind, String, String, Option<String>) {
    (e.kind, e.code, e.message, e.field)
}

#[tokio::test]
async fn out_of_scope_households_needs_members_and_orders_answer_like_unknown_ones() {
    let f = fixture().await;
    let registered = format_instant(at("2024-03-01T00:00:00Z"));
    exec(&f.url, &format!("INSERT INTO needs (id, household_id, category, description, state, registered_by, registered_at) VALUES ('need_a', '{H1}', 'daily_care', '助浴', 'open', 'test', '{registered}')")).await;
    let order = |household: Option<&str>, need: Option<&str>, member: Option<&str>| OrderInput {
        household_id: household.map(str::to_owned),
        need_id: need.map(str::to_owned),
        member_id: member.map(str::to_owned),
        category: Some("daily_care".into()),
        ..OrderInput::default()
    };
    // Street-B staff: street A's household, need and member are answered exactly like ones
    // that do not exist, even with a service of another category that would be refused first.
    for (theirs, unknown, field) in [
        (
            order(Some(H1), None, None),
            order(Some("hh_nope"), None, None),
            "household_id",
        ),
        (
            order(None, Some("need_a"), None),
            order(None, Some("need_nope"), None),
            "need_id",
        ),
        (
            order(None, None, Some("hm_1")),
            order(None, None, Some("hm_nope")),
            "member_id",
        ),
        (
            OrderInput {
                service_id: Some(f.service.clone()),
                category: None,
                ..order(None, Some("need_a"), None)
            },
            order(None, Some("need_nope"), None),
            "need_id",
        ),
    ] {
        let seen = answer(
            f.app
                .create_order(&f.staff_b, None, &theirs)
                .await
                .unwrap_err(),
        );
        let none = answer(
            f.app
                .create_order(&f.staff_b, None, &unknown)
                .await
                .unwrap_err(),
        );
        assert_eq!(seen, none);
        assert_eq!(seen.0, ErrorKind::NotFound);
        assert_eq!(seen.3.as_deref(), Some(field));
    }
    assert_eq!(
        f.app
            .store()
            .need_brief("need_a")
            .await
            .unwrap()
            .unwrap()
            .state,
        "open"
    );
    // Street A's order: dispatch and candidates both 404 for street B, like an unknown order.
    let id = new_order(&f, H1).await;
    let dispatch = |id: String| {
        let app = &f.app;
        let staff_b = &f.staff_b;
        async move {
            answer(
                app.dispatch_order(staff_b, None, &id, &DispatchInput::default())
                    .await
                    .unwrap_err(),
            )
        }
    };
    let seen = dispatch(id.clone()).await;
    assert_eq!(seen, dispatch("ord_nope".into()).await);
    assert_eq!(seen.0, ErrorKind::NotFound);
    let candidates = answer(f.app.order_candidates(&f.staff_b, &id).await.unwrap_err());
    assert_eq!(
        candidates,
        answer(
            f.app
                .order_candidates(&f.staff_b, "ord_nope")
                .await
                .unwrap_err()
        )
    );
    assert_eq!(candidates.0, ErrorKind::NotFound);
    // The district's staff still order from the need and dispatch.
    let made = f
        .app
        .create_order(&f.staff, None, &order(None, Some("need_a"), None))
        .await
        .unwrap();
    assert_eq!(made.value.household_id, H1);
    assert!(f
        .app
        .dispatch_order(&f.staff, None, &id, &DispatchInput::default())
        .await
        .is_ok());
}

#[tokio::test]
async fn one_failing_order_does_not_stop_the_sweep() {
    let f = fixture().await;
    let broken = new_order(&f, H1).await;
    let fine = new_order(&f, H1).await;
    for id in [&broken, &fine] {
        f.app
            .dispatch_order(&f.staff, None, id, &DispatchInput::default())
            .await
            .unwrap();
    }
    // The first order the sweep meets cannot be dispatched again: its category is no longer
    // one of the pack's (an error that used to end the whole sweep).
    exec(
        &f.url,
        &format!(
            "UPDATE orders SET category = 'retired_category', accept_deadline = '{}' WHERE id = '{broken}'",
            format_instant(at("2024-03-04T01:10:00Z"))
        ),
    )
    .await;
    advance(&f, 31);
    let report = f.app.sweep_orders().await.unwrap();
    assert_eq!(report.expired, 2);
    assert_eq!(report.failed, 1);
    assert_eq!(report.redispatched, 1, "the next order was still sent on");
    assert_eq!(state(&f, &fine).await, "dispatched");
    assert_eq!(state(&f, &broken).await, "created");
}

#[tokio::test]
async fn batch_dispatch_honours_the_picked_service_and_a_street_s_own_oldest_orders() {
    let f = fixture().await;
    // Without a pick, V1 (same community) ranks first; the household picked the service.
    let plain = new_order(&f, H1).await;
    advance(&f, 1);
    let picked = f
        .app
        .create_order(
            &f.staff,
            None,
            &OrderInput {
                service_id: Some(f.service.clone()),
                ..care_for(H1)
            },
        )
        .await
        .unwrap()
        .value
        .id;
    let ranked = f.app.order_candidates(&f.staff, &picked).await.unwrap();
    assert_ne!(
        ranked[0].provider_id, f.service,
        "the pick is not simply the best"
    );
    let report = f
        .app
        .batch_dispatch(&f.staff, &BatchInput::default())
        .await
        .unwrap();
    assert_eq!(report.dispatched, 2);
    let to = |id: &str| {
        report
            .assignments
            .iter()
            .find(|a| a.0 == id)
            .map(|a| a.1.clone())
    };
    assert_eq!(to(&picked), Some(f.service.clone()));
    assert_eq!(to(&plain), Some(ranked[0].provider_id.clone()));

    // Street B's staff with a batch of one: their street's oldest order, although street A
    // has an older one still open.
    advance(&f, 1);
    let older_a = new_order(&f, H1).await;
    advance(&f, 1);
    let newer_b = new_order(&f, H2).await;
    let report = f
        .app
        .batch_dispatch(&f.staff_b, &BatchInput { limit: Some(1) })
        .await
        .unwrap();
    assert_eq!(report.considered, 1);
    assert_eq!(report.dispatched, 1);
    assert_eq!(report.assignments[0].0, newer_b);
    assert_eq!(state(&f, &older_a).await, "created");
}

#[tokio::test]
async fn a_need_of_another_household_is_refused() {
    let f = fixture().await;
    let registered = format_instant(at("2024-03-01T00:00:00Z"));
    exec(&f.url, &format!("INSERT INTO needs (id, household_id, category, description, state, registered_by, registered_at) VALUES ('need_h2', '{H2}', 'daily_care', '助浴', 'open', 'test', '{registered}')")).await;
    let e = f
        .app
        .create_order(
            &f.staff,
            None,
            &OrderInput {
                household_id: Some(H1.into()),
                need_id: Some("need_h2".into()),
                ..OrderInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(e.field.as_deref(), Some("need_id"));
    assert!(e.message.contains("需求不属于该家庭"), "{}", e.message);
    // Nothing was made and the need is still open.
    let need = f.app.store().need_brief("need_h2").await.unwrap().unwrap();
    assert_eq!(need.state, "open");
    // The need's own household, or no household at all, is fine.
    f.app
        .create_order(
            &f.staff,
            None,
            &OrderInput {
                household_id: Some(H2.into()),
                need_id: Some("need_h2".into()),
                ..OrderInput::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_category_other_than_the_service_s_and_a_past_wanted_time_are_refused() {
    let f = fixture().await;
    // The service is daily care; asking it for health is refused, naming its category.
    let e = f
        .app
        .create_order(
            &f.staff,
            None,
            &OrderInput {
                service_id: Some(f.service.clone()),
                category: Some("health".into()),
                ..care_for(H1)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(e.field.as_deref(), Some("category"));
    assert!(e.message.contains("生活照料"), "{}", e.message);
    // The same category, or none, is fine.
    for category in [Some("daily_care"), None] {
        let o = f
            .app
            .create_order(
                &f.staff,
                None,
                &OrderInput {
                    service_id: Some(f.service.clone()),
                    category: category.map(str::to_owned),
                    ..care_for(H1)
                },
            )
            .await
            .unwrap();
        assert_eq!(o.value.category, "daily_care");
    }
    // Wanted two days ago: refused; an hour ago (within the day's slack) or tomorrow: fine.
    let wanted = |t: &str| OrderInput {
        wanted_at: Some(t.into()),
        ..care_for(H1)
    };
    let e = f
        .app
        .create_order(&f.staff, None, &wanted("2024-03-02T01:00:00Z"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    assert_eq!(e.field.as_deref(), Some("wanted_at"));
    assert_eq!(e.code, "wanted_at.past");
    for ok in ["2024-03-04T00:00:00Z", "2024-03-05T09:00:00+08:00"] {
        f.app
            .create_order(&f.staff, None, &wanted(ok))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_member_lists_their_own_orders_as_on_their_page() {
    let f = fixture().await;
    let mine = new_order(&f, H1).await;
    let held = new_order(&f, H2).await;
    let other = new_order(&f, H2).await;
    f.app
        .dispatch_order(
            &f.staff,
            None,
            &held,
            &DispatchInput {
                provider_id: Some(V4.into()),
            },
        )
        .await
        .unwrap();
    let ids = |orders: &[cishan_app::orders::OrderView]| {
        let mut v: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
        v.sort();
        v
    };
    for (who, expected) in [
        (SERVED, vec![mine.clone()]),
        (V4, vec![held.clone()]),
        (V1, vec![]),
    ] {
        let listed = f
            .app
            .orders(&member(who), &OrderListQuery::default(), 0, 50)
            .await
            .unwrap();
        assert_eq!(ids(&listed), expected, "{who}");
        assert!(!ids(&listed).contains(&other));
        // The same set as /me/orders.
        let (h, s) = f.app.my_orders(&member(who)).await.unwrap();
        assert_eq!(ids(&[h, s].concat()), expected, "{who}");
    }
    // Filters narrow it, never widen it.
    let listed = f
        .app
        .orders(
            &member(V4),
            &OrderListQuery {
                state: Some("created".into()),
                street: Some(STREET_B.into()),
                ..OrderListQuery::default()
            },
            0,
            50,
        )
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}
