//! A fresh app with an organization, three volunteers, one person who is not a volunteer, a
//! staff account and member actors, on a real SQLite file (or PostgreSQL when
//! `CISHAN_TEST_POSTGRES_URL` is set). Shared by `tests/codes.rs` and `tests/volunteering.rs`.

#![allow(dead_code, reason = "each test file uses part of the fixture")]

use std::sync::Arc;

use cishan_app::volunteering::ActivityInput;
use cishan_app::{Actor, App, Config, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_store::{format_instant, NewEntry, OrganizationRow, ParticipantRow, VolunteerRow};
use jiff::Timestamp;

pub const ORG: &str = "org_1";
/// Volunteers: 王小明, 李四, 张三丰; not a volunteer: 赵六.
pub const WANG: &str = "ptc_00000000000000000001";
pub const LI: &str = "ptc_00000000000000000002";
pub const ZHANG: &str = "ptc_00000000000000000003";
pub const ZHAO: &str = "ptc_00000000000000000004";
/// A street of Lucheng (五马街道).
pub const STREET: &str = "330302006";

pub struct Fixture {
    pub app: App,
    pub staff: Actor,
    pub clock: Arc<FixedClock>,
    pub dir: tempfile::TempDir,
    pub url: String,
}

pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A member (a participant signed in on the personal side).
pub fn member(pid: &str) -> Actor {
    Actor {
        user_id: format!("usr_{pid}"),
        username: pid.to_owned(),
        display_name: String::new(),
        role: Role::Member,
        participant_id: Some(pid.to_owned()),
    }
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(at("2024-03-01T01:00:00Z")));
    let url = crate::db_support::database_url(dir.path(), "volunteer").await;
    let config = Config {
        database_url: url.clone(),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock.clone()).await.unwrap();
    let staff = app
        .create_user(
            None,
            "organizer",
            "组织者",
            "correct horse battery",
            Role::Staff,
        )
        .await
        .unwrap();
    let created = format_instant(at("2023-01-01T00:00:00Z"));
    let mut tx = app.store().begin().await.unwrap();
    let person = |id: &str, name: &str| ParticipantRow {
        id: id.into(),
        kind: "person".into(),
        display_name: name.into(),
        id_number_digest: None,
        id_number_masked: Some("330302********123X".into()),
        id_number_cipher: None,
        division_code: None,
        created_at: created.clone(),
        synthetic: false,
    };
    tx.insert_all(&[
        person(WANG, "王小明"),
        person(LI, "李四"),
        person(ZHANG, "张三丰"),
        person(ZHAO, "赵六"),
    ])
    .await
    .unwrap();
    let volunteers: Vec<VolunteerRow> = [WANG, LI, ZHANG]
        .iter()
        .enumerate()
        .map(|(i, pid)| VolunteerRow {
            participant_id: (*pid).into(),
            volunteer_number: format!("ZJ330302{i:06}"),
            registered_at: created.clone(),
        })
        .collect();
    tx.insert_all(&volunteers).await.unwrap();
    tx.insert(&OrganizationRow {
        id: ORG.into(),
        participant_id: None,
        name: "鹿城区志愿者协会".into(),
        credit_code: "51330302MJ8998765X".into(),
        kind: "social_group".into(),
        division_code: None,
        registered_on: "2010-01-01".into(),
        created_at: created.clone(),
        is_charity: true,
        public_fundraising: false,
        synthetic: false,
    })
    .await
    .unwrap();
    tx.journal(
        at("2023-01-01T00:00:00Z"),
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
        staff,
        clock,
        dir,
        url,
    }
}

/// An activity input: 09:00–12:00 Shanghai on 2024-03-01 (01:00–04:00 UTC), capacity 10.
pub fn activity_input() -> ActivityInput {
    ActivityInput {
        title: "五马街道敬老院探访".into(),
        category: "daily_care".into(),
        content: Some("陪伴老人聊天、打扫卫生".into()),
        recipients: Some("敬老院老人".into()),
        organizer_org_id: ORG.into(),
        team_id: None,
        division_code: STREET.into(),
        address: "解放街 1 号".into(),
        starts_at: "2024-03-01T09:00:00+08:00".into(),
        ends_at: "2024-03-01T12:00:00+08:00".into(),
        capacity: 10,
    }
}
