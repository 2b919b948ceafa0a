//! Volunteering through the app layer on a real database: check-in and check-out by scan in
//! both directions, idempotent re-scans, capacity under concurrency, durations (across local
//! midnight, zero minutes), the daily maximum, verification before hours count, star levels
//! and certificates verifiable by their code.

mod db_support;
mod volunteering_support;

use cishan_app::participants::{PersonInput, SelfRegistration};
use cishan_app::volunteering::{
    ActivityInput, CertificateInput, ScanCodeInput, VerifyInput, VolunteerRulesInput, WithdrawInput,
};
use cishan_app::{Actor, ErrorKind, Role};
use volunteering_support::{
    activity_input, at, fixture, member, Fixture, LI, ORG, WANG, ZHANG, ZHAO,
};

fn scan(code: &str) -> ScanCodeInput {
    ScanCodeInput {
        code: code.to_owned(),
    }
}

async fn participant_code(f: &Fixture, pid: &str) -> String {
    f.app
        .participant_code(&member(pid), pid)
        .await
        .unwrap()
        .payload
}

/// An activity from `starts` to `ends` (RFC 3339) with `capacity`.
async fn activity(f: &Fixture, starts: &str, ends: &str, capacity: i64) -> (String, String) {
    let view = f
        .app
        .create_activity(
            &f.staff,
            &ActivityInput {
                starts_at: starts.into(),
                ends_at: ends.into(),
                capacity,
                ..activity_input()
            },
        )
        .await
        .unwrap();
    (view.id, view.code)
}

#[tokio::test]
async fn activities_are_validated_against_the_region_pack() {
    let f = fixture().await;
    let view = f
        .app
        .create_activity(&f.staff, &activity_input())
        .await
        .unwrap();
    assert_eq!(view.division_name, "五马街道");
    assert_eq!(view.category_name, "生活照料");
    assert_eq!(view.organizer_name, "鹿城区志愿者协会");
    assert_eq!(view.starts_at, "2024-03-01T01:00:00.000000Z");
    assert!(view.code.starts_with("CS1."));

    for (input, field) in [
        (
            ActivityInput {
                division_code: "110101".into(),
                ..activity_input()
            },
            "division_code",
        ),
        (
            ActivityInput {
                category: "dancing".into(),
                ..activity_input()
            },
            "category",
        ),
        (
            ActivityInput {
                ends_at: "2024-03-01T08:00:00+08:00".into(),
                ..activity_input()
            },
            "ends_at",
        ),
        (
            ActivityInput {
                capacity: 0,
                ..activity_input()
            },
            "capacity",
        ),
        (
            ActivityInput {
                starts_at: "明天上午".into(),
                ..activity_input()
            },
            "starts_at",
        ),
        (
            ActivityInput {
                organizer_org_id: "org_nobody".into(),
                ..activity_input()
            },
            "organizer_org_id",
        ),
    ] {
        let e = f.app.create_activity(&f.staff, &input).await.unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    }
    let e = f
        .app
        .create_activity(&member(WANG), &activity_input())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
}

#[tokio::test]
async fn check_in_by_scan_in_either_direction_and_again_changes_nothing() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;

    // The volunteer scans the activity's code.
    let first = f
        .app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    assert_eq!(first.state, "checked_in");
    assert_eq!(first.check_in_method, "activity_code");
    assert_eq!(first.display_name_masked, "王*明");
    assert!(!first.unchanged);
    let again = f
        .app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    assert!(again.unchanged);
    assert_eq!(again.attendance_id, first.attendance_id);
    assert_eq!(again.checked_in_at, first.checked_in_at);

    // The organizer scans a volunteer's participant code.
    let li_code = participant_code(&f, LI).await;
    let by_staff = f
        .app
        .check_in(&f.staff, &id, &scan(&li_code))
        .await
        .unwrap();
    assert_eq!(by_staff.participant_id, LI);
    assert_eq!(by_staff.check_in_method, "participant_code");
    // The same code scanned twice (a double beep) returns the session and changes nothing.
    let twice = f
        .app
        .check_in(&f.staff, &id, &scan(&li_code))
        .await
        .unwrap();
    assert!(twice.unchanged);
    assert_eq!(twice.attendance_id, by_staff.attendance_id);
    assert_eq!(f.app.activity(&id).await.unwrap().checked_in, 2);

    // That used-up code cannot check LI in elsewhere: a replay.
    let (other, _) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let replay = f
        .app
        .check_in(&f.staff, &other, &scan(&li_code))
        .await
        .unwrap_err();
    assert_eq!(replay.code, "code.replayed");
    assert_eq!(replay.kind, ErrorKind::Conflict);

    // Who may scan what.
    let wang_code = participant_code(&f, WANG).await;
    let e = f
        .app
        .check_in(&member(LI), &id, &scan(&wang_code))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let e = f
        .app
        .check_in(&f.staff, &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Forbidden,
        "staff without a participant scan the volunteer"
    );
    let e = f
        .app
        .check_in(&member(ZHANG), &other, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.code, "code.other_activity");
    let e = f
        .app
        .check_in(&member(ZHAO), &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.code, "volunteer.not_registered");
    let e = f
        .app
        .check_in(&member(WANG), &id, &scan("CS1.garbage"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "code.malformed");
    assert_eq!(e.field.as_deref(), Some("code"));

    let list = f.app.activity_attendances(&f.staff, &id).await.unwrap();
    assert_eq!(list.len(), 2);
    let e = f
        .app
        .activity_attendances(&member(WANG), &id)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
}

#[tokio::test]
async fn check_in_opens_an_hour_before_the_start_and_closes_at_the_end() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T14:00:00+08:00",
        "2024-03-01T16:00:00+08:00",
        10,
    )
    .await;
    f.clock.set(at("2024-03-01T04:59:59Z"));
    let e = f
        .app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.code, "activity.not_open");
    f.clock.set(at("2024-03-01T05:00:00Z"));
    f.app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    f.clock.set(at("2024-03-01T08:00:01Z"));
    let e = f
        .app
        .check_in(&member(LI), &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.code, "activity.ended");
}

#[tokio::test]
async fn check_out_without_check_in_is_refused_and_a_second_check_out_changes_nothing() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let e = f
        .app
        .check_out(&member(WANG), &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(e.code, "attendance.not_checked_in");
    assert!(e.message.contains("没有在本活动签到"), "{}", e.message);

    f.app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    f.clock.set(at("2024-03-01T02:30:59Z"));
    let out = f
        .app
        .check_out(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    assert_eq!(out.state, "checked_out");
    assert_eq!(out.duration_minutes, Some(90));
    f.clock.set(at("2024-03-01T03:00:00Z"));
    let again = f
        .app
        .check_out(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    assert!(again.unchanged);
    assert_eq!(again.duration_minutes, Some(90));
    // Checked out: checking in again is refused, not a second session.
    let e = f
        .app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.code, "attendance.already_checked_out");

    // Check-out by the organizer with a fresh participant code; the used code is a replay.
    f.clock.set(at("2024-03-01T01:10:00Z"));
    let li_in = participant_code(&f, LI).await;
    f.app.check_in(&f.staff, &id, &scan(&li_in)).await.unwrap();
    f.clock.set(at("2024-03-01T03:10:00Z"));
    let li_out = participant_code(&f, LI).await;
    let out = f
        .app
        .check_out(&f.staff, &id, &scan(&li_out))
        .await
        .unwrap();
    assert_eq!(out.duration_minutes, Some(120));
    // Checked out already: a fresh code changes nothing, a used one is a replay.
    let fresh = participant_code(&f, LI).await;
    let again = f.app.check_out(&f.staff, &id, &scan(&fresh)).await.unwrap();
    assert!(again.unchanged);
    assert_eq!(again.duration_minutes, Some(120));
    for used in [&li_out, &fresh] {
        let e = f
            .app
            .check_out(&f.staff, &id, &scan(used))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Conflict, "code.replayed")
        );
    }
}

#[tokio::test]
async fn a_code_used_for_a_redemption_cannot_check_out() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    f.app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    f.app
        .check_out(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    let used = participant_code(&f, WANG).await;
    f.app
        .resolve_participant_code(&used, "redeem")
        .await
        .unwrap();
    let e = f
        .app
        .check_out(&f.staff, &id, &scan(&used))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Conflict, "code.replayed")
    );
}

#[tokio::test]
async fn a_scan_at_an_unknown_activity_is_not_found() {
    let f = fixture().await;
    let (_, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let li_code = participant_code(&f, LI).await;
    for (who, payload) in [(member(WANG), &code), (f.staff.clone(), &li_code)] {
        let e = f
            .app
            .check_in(&who, "act_nope", &scan(payload))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::NotFound, "activity.not_found")
        );
        assert!(e.message.contains("活动不存在"), "{}", e.message);
        assert!(e.message.contains("act_nope"), "{}", e.message);
        let e = f
            .app
            .check_out(&who, "act_nope", &scan(payload))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::NotFound, "activity.not_found")
        );
    }
}

#[tokio::test]
async fn concurrent_check_ins_never_exceed_capacity() {
    let f = fixture().await;
    // 3 volunteers scan at once (each twice) into an activity with 2 places.
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        2,
    )
    .await;
    let mut tasks = Vec::new();
    for pid in [WANG, LI, ZHANG, WANG, LI, ZHANG] {
        let app = f.app.clone();
        let (id, code) = (id.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            app.check_in(&member(pid), &id, &scan(&code)).await
        }));
    }
    let mut admitted = std::collections::BTreeSet::new();
    let mut full = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(session) => {
                admitted.insert(session.participant_id);
            }
            Err(e) => {
                assert_eq!(e.code, "activity.full", "{e:?}");
                full += 1;
            }
        }
    }
    assert_eq!(admitted.len(), 2);
    assert!(full >= 1);
    let stored = f.app.activity(&id).await.unwrap();
    assert_eq!(stored.checked_in, 2);
    assert_eq!(
        f.app
            .activity_attendances(&f.staff, &id)
            .await
            .unwrap()
            .len(),
        2
    );

    // A bigger burst through the organizer's scanner: 40 scans of 3 people into 2 places of a
    // new activity never pass 2.
    let (id2, _) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        2,
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = f.app.clone();
        let pid = [WANG, LI, ZHANG][i % 3];
        let code = participant_code(&f, pid).await;
        let staff = f.staff.clone();
        let id2 = id2.clone();
        tasks.push(tokio::spawn(async move {
            app.check_in(&staff, &id2, &scan(&code)).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert!(ok >= 2);
    assert_eq!(f.app.activity(&id2).await.unwrap().checked_in, 2);
    assert_eq!(
        f.app
            .activity_attendances(&f.staff, &id2)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn session(f: &Fixture, who: &Actor, id: &str, code: &str, from: &str, to: &str) -> String {
    f.clock.set(at(from));
    let s = f.app.check_in(who, id, &scan(code)).await.unwrap();
    f.clock.set(at(to));
    f.app.check_out(who, id, &scan(code)).await.unwrap();
    s.attendance_id
}

#[tokio::test]
async fn a_session_across_local_midnight_counts_on_both_days() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T22:00:00+08:00",
        "2024-03-02T02:00:00+08:00",
        10,
    )
    .await;
    // 23:30 to 00:45 Shanghai time.
    let att = session(
        &f,
        &member(WANG),
        &id,
        &code,
        "2024-03-01T15:30:00Z",
        "2024-03-01T16:45:00Z",
    )
    .await;
    let verified = f
        .app
        .verify_attendance(
            &f.staff,
            &att,
            &VerifyInput {
                evaluation: Some("优秀".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(verified.duration_minutes, Some(75));
    assert_eq!(verified.credited_minutes, 75);
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 75);
    let mut days: Vec<(String, i64)> = hours
        .records
        .iter()
        .map(|r| (r.served_on.clone(), r.minutes))
        .collect();
    days.sort();
    assert_eq!(
        days,
        vec![("2024-03-01".into(), 30), ("2024-03-02".into(), 45)]
    );
    let record = &hours.records[0];
    assert_eq!(record.activity_title.as_deref(), Some("五马街道敬老院探访"));
    assert_eq!(record.place.as_deref(), Some("五马街道 解放街 1 号"));
    assert_eq!(record.recipients.as_deref(), Some("敬老院老人"));
    assert_eq!(record.evaluation.as_deref(), Some("优秀"));
    assert_eq!(record.organizer_name.as_deref(), Some("鹿城区志愿者协会"));
    assert_eq!(
        record.recorded_by.as_deref(),
        Some(f.staff.user_id.as_str())
    );
    assert_eq!(record.state, "valid");
}

#[tokio::test]
async fn a_zero_minute_session_gives_no_hours() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let att = session(
        &f,
        &member(WANG),
        &id,
        &code,
        "2024-03-01T01:00:00Z",
        "2024-03-01T01:00:59Z",
    )
    .await;
    let verified = f
        .app
        .verify_attendance(&f.staff, &att, &VerifyInput::default())
        .await
        .unwrap();
    assert_eq!(verified.duration_minutes, Some(0));
    assert_eq!(verified.credited_minutes, 0);
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 0);
    assert!(hours.records.is_empty());
}

#[tokio::test]
async fn the_daily_maximum_caps_a_local_day() {
    let f = fixture().await;
    // Activities are created (and their codes issued) the day before.
    f.clock.set(at("2024-02-29T00:00:00Z"));
    let (a, a_code) = activity(
        &f,
        "2024-03-01T06:00:00+08:00",
        "2024-03-01T13:00:00+08:00",
        10,
    )
    .await;
    let (b, b_code) = activity(
        &f,
        "2024-03-01T13:00:00+08:00",
        "2024-03-01T20:00:00+08:00",
        10,
    )
    .await;
    let (c, c_code) = activity(
        &f,
        "2024-03-02T08:00:00+08:00",
        "2024-03-02T10:00:00+08:00",
        10,
    )
    .await;
    // 6 h, then 6 h the same local day, then 1 h the next day.
    let s1 = session(
        &f,
        &member(WANG),
        &a,
        &a_code,
        "2024-02-29T22:00:00Z",
        "2024-03-01T04:00:00Z",
    )
    .await;
    let s2 = session(
        &f,
        &member(WANG),
        &b,
        &b_code,
        "2024-03-01T05:00:00Z",
        "2024-03-01T11:00:00Z",
    )
    .await;
    let s3 = session(
        &f,
        &member(WANG),
        &c,
        &c_code,
        "2024-03-02T00:00:00Z",
        "2024-03-02T01:00:00Z",
    )
    .await;
    let v1 = f
        .app
        .verify_attendance(&f.staff, &s1, &VerifyInput::default())
        .await
        .unwrap();
    let v2 = f
        .app
        .verify_attendance(&f.staff, &s2, &VerifyInput::default())
        .await
        .unwrap();
    let v3 = f
        .app
        .verify_attendance(&f.staff, &s3, &VerifyInput::default())
        .await
        .unwrap();
    assert_eq!(
        (
            v1.credited_minutes,
            v2.credited_minutes,
            v3.credited_minutes
        ),
        (360, 120, 60)
    );
    assert_eq!(v2.duration_minutes, Some(360));
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 540);

    // A configured maximum of 2 hours applies to later verifications.
    f.app
        .set_volunteer_rules(
            &f.staff,
            &VolunteerRulesInput {
                daily_max_minutes: 120,
                star_hours: vec![1, 2],
            },
        )
        .await
        .unwrap_err();
    let admin = Actor {
        role: Role::Admin,
        ..f.staff.clone()
    };
    f.app
        .set_volunteer_rules(
            &admin,
            &VolunteerRulesInput {
                daily_max_minutes: 120,
                star_hours: vec![100, 300],
            },
        )
        .await
        .unwrap();
    let (d, d_code) = activity(
        &f,
        "2024-03-03T08:00:00+08:00",
        "2024-03-03T12:00:00+08:00",
        10,
    )
    .await;
    let s4 = session(
        &f,
        &member(LI),
        &d,
        &d_code,
        "2024-03-03T00:00:00Z",
        "2024-03-03T04:00:00Z",
    )
    .await;
    let v4 = f
        .app
        .verify_attendance(&f.staff, &s4, &VerifyInput::default())
        .await
        .unwrap();
    assert_eq!(v4.duration_minutes, Some(240));
    assert_eq!(v4.credited_minutes, 120);
    let bad = f
        .app
        .set_volunteer_rules(
            &admin,
            &VolunteerRulesInput {
                daily_max_minutes: 0,
                star_hours: vec![1],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.field.as_deref(), Some("daily_max_minutes"));
}

/// The points act of a verified session, from the participant's explained statement.
async fn points_act(f: &Fixture, attendance_id: &str) -> cishan_app::points::ActView {
    f.app
        .points_statement(&f.staff, WANG)
        .await
        .unwrap()
        .acts
        .into_iter()
        .find(|a| a.source_id == attendance_id)
        .expect("a points act for the verified session")
}

#[tokio::test]
async fn unverified_hours_do_not_count_and_a_withdrawn_verification_stops_counting() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    f.clock.set(at("2024-03-01T01:00:00Z"));
    let s = f
        .app
        .check_in(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();
    // Checked in: cannot be verified yet.
    let e = f
        .app
        .verify_attendance(&f.staff, &s.attendance_id, &VerifyInput::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, "attendance.not_checked_out");
    f.clock.set(at("2024-03-01T03:00:00Z"));
    f.app
        .check_out(&member(WANG), &id, &scan(&code))
        .await
        .unwrap();

    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 0, "checked out but not verified");
    assert_eq!(hours.pending.len(), 1);
    assert_eq!(hours.pending[0].duration_minutes, Some(120));

    let e = f
        .app
        .verify_attendance(&member(WANG), &s.attendance_id, &VerifyInput::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Forbidden,
        "a volunteer cannot verify their own hours"
    );
    f.app
        .verify_attendance(&f.staff, &s.attendance_id, &VerifyInput::default())
        .await
        .unwrap();
    let again = f
        .app
        .verify_attendance(&f.staff, &s.attendance_id, &VerifyInput::default())
        .await
        .unwrap();
    assert!(again.unchanged);
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 120);
    assert!(hours.pending.is_empty());
    // The verified minutes became a points act (category = the activity's).
    let earned = points_act(&f, &s.attendance_id).await;
    assert_eq!(earned.kind, "volunteer_minutes");
    assert_eq!(earned.category.as_deref(), Some("daily_care"));
    assert_eq!((earned.quantity, earned.reversed_quantity), (120, 0));

    let withdrawn = f
        .app
        .withdraw_verification(
            &f.staff,
            &s.attendance_id,
            &WithdrawInput {
                reason: "签到有误".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(withdrawn.state, "checked_out");
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 0);
    assert_eq!(hours.records.len(), 1);
    assert_eq!(hours.records[0].state, "withdrawn");
    let reversed = points_act(&f, &s.attendance_id).await;
    assert_eq!(reversed.reversed_quantity, 120, "points reversed");
    // Verifying again counts again, once.
    f.app
        .verify_attendance(&f.staff, &s.attendance_id, &VerifyInput::default())
        .await
        .unwrap();
    assert_eq!(
        f.app
            .volunteer_hours(&f.staff, WANG)
            .await
            .unwrap()
            .verified_minutes,
        120
    );
    let restored = points_act(&f, &s.attendance_id).await;
    assert_eq!(restored.reversed_quantity, 0, "points restored");
    let e = f.app.volunteer_hours(&member(LI), WANG).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let journal = f
        .app
        .store()
        .journal_for_subject(&s.attendance_id)
        .await
        .unwrap();
    let kinds: Vec<&str> = journal.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "volunteer.checked_out",
            "volunteer.attendance_verified",
            "volunteer.verification_withdrawn",
            "volunteer.attendance_verified"
        ]
    );
}

#[tokio::test]
async fn stars_follow_the_configured_thresholds_of_verified_hours() {
    let f = fixture().await;
    let admin = Actor {
        role: Role::Admin,
        ..f.staff.clone()
    };
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.star_hours, vec![100, 300, 600, 1000, 1500]);
    assert_eq!(hours.stars, 0);
    assert_eq!(hours.hours_to_next_star, Some(100));
    f.app
        .set_volunteer_rules(
            &admin,
            &VolunteerRulesInput {
                daily_max_minutes: 480,
                star_hours: vec![1, 2, 3],
            },
        )
        .await
        .unwrap();
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let att = session(
        &f,
        &member(WANG),
        &id,
        &code,
        "2024-03-01T01:00:00Z",
        "2024-03-01T02:59:00Z",
    )
    .await;
    f.app
        .verify_attendance(&f.staff, &att, &VerifyInput::default())
        .await
        .unwrap();
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 119);
    assert_eq!(
        hours.stars, 1,
        "1 h 59 min is one whole hour past the first threshold, not two"
    );
    assert_eq!(hours.hours_to_next_star, Some(1));
}

#[tokio::test]
async fn a_certificate_is_verifiable_by_its_code() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let att = session(
        &f,
        &member(WANG),
        &id,
        &code,
        "2024-03-01T01:00:00Z",
        "2024-03-01T03:30:00Z",
    )
    .await;
    f.app
        .verify_attendance(&f.staff, &att, &VerifyInput::default())
        .await
        .unwrap();
    let input = CertificateInput {
        issuing_org_id: ORG.into(),
        content: "敬老助老志愿服务".into(),
        contact: Some("0577-88888888".into()),
    };
    let cert = f
        .app
        .issue_certificate(&f.staff, WANG, &input)
        .await
        .unwrap();
    assert_eq!(cert.number, "ZYFW-2024-000001");
    assert_eq!(cert.minutes, 150);
    assert_eq!(cert.hours_text, "2 小时 30 分钟");
    assert_eq!(cert.volunteer_name_masked, "王*明");
    assert_eq!(cert.volunteer_number.as_deref(), Some("ZJ330302000000"));
    assert_eq!(cert.issuing_org_name, "鹿城区志愿者协会");
    let second = f.app.issue_certificate(&f.staff, LI, &input).await.unwrap();
    assert_eq!(second.number, "ZYFW-2024-000002");

    // Anyone verifies it by its code.
    let checked = f
        .app
        .verify_certificate_code(&cert.number, &cert.code)
        .await
        .unwrap();
    assert_eq!(checked.minutes, 150);
    let e = f
        .app
        .verify_certificate_code(&cert.number, &second.code)
        .await
        .unwrap_err();
    assert_eq!(e.code, "certificate.code_mismatch");
    let mut forged: Vec<char> = cert.code.chars().collect();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == 'x' { 'y' } else { 'x' };
    let forged: String = forged.into_iter().collect();
    let e = f
        .app
        .verify_certificate_code(&cert.number, &forged)
        .await
        .unwrap_err();
    assert_eq!(e.code, "code.forged");
    let activity_code = f.app.activity(&id).await.unwrap().code;
    let e = f
        .app
        .verify_certificate_code(&cert.number, &activity_code)
        .await
        .unwrap_err();
    assert_eq!(e.code, "code.wrong_kind");
    let e = f.app.certificate("ZYFW-2024-999999").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    // Only volunteers get certificates; only staff issue them.
    let e = f
        .app
        .issue_certificate(&f.staff, ZHAO, &input)
        .await
        .unwrap_err();
    assert_eq!(e.code, "volunteer.not_registered");
    let e = f
        .app
        .issue_certificate(&member(WANG), WANG, &input)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.certificates.len(), 1);
}

#[tokio::test]
async fn teams_hold_registered_volunteers() {
    let f = fixture().await;
    let team = f
        .app
        .create_team(
            &f.staff,
            &cishan_app::volunteering::TeamInput {
                org_id: ORG.into(),
                name: "红马甲服务队".into(),
            },
        )
        .await
        .unwrap();
    f.app
        .add_team_member(&f.staff, &team.id, WANG)
        .await
        .unwrap();
    f.app
        .add_team_member(&f.staff, &team.id, WANG)
        .await
        .unwrap();
    let e = f
        .app
        .add_team_member(&f.staff, &team.id, ZHAO)
        .await
        .unwrap_err();
    assert_eq!(e.code, "volunteer.not_registered");
    let dup = f
        .app
        .create_team(
            &f.staff,
            &cishan_app::volunteering::TeamInput {
                org_id: ORG.into(),
                name: "红马甲服务队".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.field.as_deref(), Some("name"));
    let view = f
        .app
        .create_activity(
            &f.staff,
            &ActivityInput {
                team_id: Some(team.id.clone()),
                ..activity_input()
            },
        )
        .await
        .unwrap();
    assert_eq!(view.team_id, Some(team.id));
}

fn id_number(seq: u16) -> String {
    cishan_core::IdNumber::from_parts("330302", jiff::civil::date(1992, 5, 8), seq)
        .unwrap()
        .expose()
        .to_owned()
}

#[tokio::test]
async fn a_person_given_the_volunteer_role_is_registered_once_and_can_check_in() {
    let f = fixture().await;
    let p = f
        .app
        .register_person(
            &f.staff,
            &PersonInput {
                name: "钱志愿".into(),
                id_number: id_number(11),
                phone: None,
                division_code: None,
                roles: vec!["donor".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(p.volunteer_number, None);
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let e = f
        .app
        .check_in(&member(&p.id), &id, &scan(&code))
        .await
        .unwrap_err();
    assert_eq!(e.code, "volunteer.not_registered", "not a volunteer yet");

    let volunteers = volunteer_count(&f).await;
    let first = f
        .app
        .attach_role(&f.staff, &p.id, "volunteer", None)
        .await
        .unwrap();
    let number = first.volunteer_number.clone().expect("a volunteer number");
    let again = f
        .app
        .attach_role(&f.staff, &p.id, "volunteer", None)
        .await
        .unwrap();
    assert_eq!(again.volunteer_number, Some(number), "attaching twice: one");
    assert_eq!(volunteer_count(&f).await, volunteers + 1);

    // They check in by scanning the activity code, and out through the organizer.
    let session = f
        .app
        .check_in(&member(&p.id), &id, &scan(&code))
        .await
        .unwrap();
    assert_eq!(session.state, "checked_in");
    assert_eq!(session.display_name_masked, "钱*愿");
    assert!(!session.unchanged);
    f.clock.set(at("2024-03-01T03:00:00Z"));
    let out = f
        .app
        .check_out(&f.staff, &id, &scan(&participant_code(&f, &p.id).await))
        .await
        .unwrap();
    assert_eq!(out.duration_minutes, Some(120));
}

#[tokio::test]
async fn a_member_registers_themself_as_a_volunteer_and_is_checked_in_by_the_organizer() {
    let f = fixture().await;
    let me = f
        .app
        .register_self(&SelfRegistration {
            name: "孙自愿".into(),
            id_number: id_number(12),
            phone: "13800138012".into(),
            division_code: None,
            password: "a long member password".into(),
        })
        .await
        .unwrap();
    let pid = me.participant_id.clone().unwrap();
    let view = f.app.register_self_as_volunteer(&me).await.unwrap();
    let number = view.volunteer_number.clone().expect("a volunteer number");
    assert!(view.roles.iter().any(|r| r.role == "volunteer"));
    let again = f.app.register_self_as_volunteer(&me).await.unwrap();
    assert_eq!(again.volunteer_number, Some(number));
    assert_eq!(again.roles.len(), 1);

    let (id, _) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let session = f
        .app
        .check_in(&f.staff, &id, &scan(&participant_code(&f, &pid).await))
        .await
        .unwrap();
    assert_eq!(session.participant_id, pid);
    assert_eq!(session.check_in_method, "participant_code");

    // Without a real-name record (no ID number) self-registration is refused; staff may not
    // use it for someone else (it registers the signed-in person only).
    let e = f
        .app
        .register_self_as_volunteer(&member(ZHAO))
        .await
        .unwrap_err();
    assert_eq!(e.code, "volunteer.real_name_required");
    let e = f
        .app
        .register_self_as_volunteer(&f.staff)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden);
}

/// Every volunteer registration.
async fn volunteer_count(f: &Fixture) -> i64 {
    f.app
        .store()
        .count_volunteers_before("9999-12-31T00:00:00.000000Z")
        .await
        .unwrap()
}

#[tokio::test]
async fn staff_of_another_organization_cannot_verify_its_attendance() {
    let f = fixture().await;
    let (id, code) = activity(
        &f,
        "2024-03-01T09:00:00+08:00",
        "2024-03-01T12:00:00+08:00",
        10,
    )
    .await;
    let att = session(
        &f,
        &member(WANG),
        &id,
        &code,
        "2024-03-01T01:00:00Z",
        "2024-03-01T02:00:00Z",
    )
    .await;
    let mut tx = f.app.store().begin().await.unwrap();
    tx.insert(&cishan_store::OrganizationRow {
        id: "org_2".into(),
        participant_id: None,
        name: "另一家社会组织".into(),
        credit_code: "52330302MJ8998766X".into(),
        kind: "social_service".into(),
        division_code: None,
        registered_on: "2015-01-01".into(),
        created_at: cishan_store::format_instant(at("2023-01-01T00:00:00Z")),
        is_charity: false,
        public_fundraising: false,
        synthetic: false,
    })
    .await
    .unwrap();
    tx.journal(
        at("2023-01-01T00:00:00Z"),
        cishan_store::NewEntry {
            actor: "test".into(),
            kind: "test.seeded".into(),
            subject: "org_2".into(),
            payload: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let admin = f
        .app
        .create_user(
            None,
            "chief",
            "管理员",
            "correct horse battery",
            Role::Admin,
        )
        .await
        .unwrap();
    let scoped = |org: &str| cishan_app::registry::StaffScopeInput {
        org_id: Some(org.into()),
        ..Default::default()
    };
    let other = f
        .app
        .create_user(
            None,
            "other-org",
            "他人",
            "correct horse battery",
            Role::Staff,
        )
        .await
        .unwrap();
    f.app
        .set_staff_scope(&admin, &other.user_id, &scoped("org_2"))
        .await
        .unwrap();
    let err = f
        .app
        .verify_attendance(&other, &att, &VerifyInput::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
    let hours = f.app.volunteer_hours(&member(WANG), WANG).await.unwrap();
    assert_eq!(hours.verified_minutes, 0, "nothing was credited");

    // The organizer's own staff may; so may district staff (no organization), as before.
    let own = f
        .app
        .create_user(
            None,
            "own-org",
            "本组织",
            "correct horse battery",
            Role::Staff,
        )
        .await
        .unwrap();
    f.app
        .set_staff_scope(&admin, &own.user_id, &scoped(ORG))
        .await
        .unwrap();
    let verified = f
        .app
        .verify_attendance(&own, &att, &VerifyInput::default())
        .await
        .unwrap();
    assert_eq!(verified.duration_minutes, Some(60));
    let err = f
        .app
        .withdraw_verification(
            &other,
            &att,
            &WithdrawInput {
                reason: "误核".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
}
