//! Participants through the app layer, on a real SQLite file (and PostgreSQL when
//! `CISHAN_TEST_POSTGRES_URL` is set): registration and its validation errors, roles, masked
//! reads, self-registration, sign-in by phone and by ID number with the shared lockout, and a
//! member refused every staff use case.

mod db_support;

use std::sync::Arc;

use cishan_app::campaigns::CampaignInput;
use cishan_app::donations::{DonationInput, IdempotencyKey};
use cishan_app::import::ImportKind;
use cishan_app::participants::{OrganizationInput, PersonInput, SelfRegistration};
use cishan_app::{Actor, App, Config, ErrorKind, FixedClock, Role};
use cishan_core::region::embedded::lucheng;
use cishan_core::{CreditCode, IdNumber};

struct Fixture {
    app: App,
    staff: Actor,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new("2026-06-01T08:00:00Z".parse().unwrap()));
    let config = Config {
        database_url: db_support::database_url(dir.path(), "participants").await,
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), clock).await.unwrap();
    let staff = app
        .create_user(
            None,
            "staff",
            "工作人员",
            "long enough password",
            Role::Staff,
        )
        .await
        .unwrap();
    Fixture {
        app,
        staff,
        _dir: dir,
    }
}

fn id_number(seq: u16) -> String {
    IdNumber::from_parts("330302", jiff::civil::date(1990, 3, 14), seq)
        .unwrap()
        .expose()
        .to_owned()
}

/// The same number with its check character changed.
fn bad_checksum(id: &str) -> String {
    let last = id.chars().last().unwrap();
    let other = if last == '1' { '2' } else { '1' };
    format!("{}{other}", &id[..17])
}

fn person(name: &str, id: &str, phone: Option<&str>) -> PersonInput {
    PersonInput {
        name: name.into(),
        id_number: id.into(),
        phone: phone.map(str::to_owned),
        division_code: Some("330302006044".into()),
        roles: vec!["donor".into()],
    }
}

const PASSWORD: &str = "a long member password";

#[tokio::test]
async fn registration_validates_each_field_and_refuses_duplicates() {
    let f = fixture().await;
    let cases = [
        (
            PersonInput {
                name: " ".into(),
                ..person("", &id_number(1), None)
            },
            "name",
        ),
        (
            person("王测试", &bad_checksum(&id_number(1)), None),
            "id_number",
        ),
        (person("王测试", "33030219900314", None), "id_number"),
        (person("王测试", &id_number(1), Some("1380013800")), "phone"),
        (
            PersonInput {
                division_code: Some("110105".into()),
                ..person("王测试", &id_number(1), None)
            },
            "division_code",
        ),
        (
            PersonInput {
                roles: vec!["admin".into()],
                ..person("王测试", &id_number(1), None)
            },
            "roles",
        ),
    ];
    for (input, field) in cases {
        let e = f.app.register_person(&f.staff, &input).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{field}: {e}");
        assert_eq!(e.field.as_deref(), Some(field), "{e}");
        assert!(
            !e.message.is_empty() && !e.message.is_ascii(),
            "Chinese message: {e}"
        );
    }
    let e = f
        .app
        .register_person(
            &f.staff,
            &person("王测试", &bad_checksum(&id_number(1)), None),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "id_number.checksum_mismatch");

    let view = f
        .app
        .register_person(
            &f.staff,
            &person("王测试", &id_number(1), Some("138 0013 8000")),
        )
        .await
        .unwrap();
    assert_eq!(view.display_name, "王测试");
    assert_eq!(view.phone_masked.as_deref(), Some("138****8000"));
    let masked = view.id_number_masked.clone().unwrap();
    assert!(
        masked.contains('*') && !masked.contains(&id_number(1)[6..14]),
        "{masked}"
    );
    assert_eq!(
        view.sex.as_deref(),
        Some(if IdNumber::parse(&id_number(1)).unwrap().is_male() {
            "male"
        } else {
            "female"
        })
    );
    assert_eq!(view.birth_month.as_deref(), Some("1990-03"));
    assert_eq!(view.division_name.as_deref(), Some("鼓楼社区"));
    assert_eq!(
        view.roles
            .iter()
            .map(|r| r.role.as_str())
            .collect::<Vec<_>>(),
        ["donor"]
    );
    // The stored row holds neither the ID number nor the phone in clear.
    let stored = f
        .app
        .store()
        .participant_record(&view.id)
        .await
        .unwrap()
        .unwrap();
    for value in [
        stored.id_number_cipher.clone().unwrap(),
        stored.id_number_digest.clone().unwrap(),
        stored.phone_cipher.clone().unwrap(),
        stored.phone_digest.clone().unwrap(),
    ] {
        assert!(!value.contains(&id_number(1)) && !value.contains("13800138000"));
    }
    // The same person again (an old 15-digit form of a different number is a different
    // person; the same number with a lowercase x or spaces is the same).
    let e = f
        .app
        .register_person(
            &f.staff,
            &person("王测试", &format!(" {} ", id_number(1)), None),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(e.field.as_deref(), Some("id_number"));
    assert!(e.message.contains(&view.id), "{}", e.message);

    // Exact search by ID and by phone, never by fragment.
    let found = f
        .app
        .find_participants(&f.staff, &id_number(1))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, view.id);
    let found = f
        .app
        .find_participants(&f.staff, "13800138000")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(f.app.find_participants(&f.staff, "1380013").await.is_err());
    assert!(f
        .app
        .find_participants(&f.staff, &id_number(2))
        .await
        .unwrap()
        .is_empty());

    // The journal has the registration without any personal identifier.
    let entries = f.app.store().journal_for_subject(&view.id).await.unwrap();
    assert_eq!(entries[0].kind, "participant.registered");
    let payload = entries[0].payload.to_string();
    assert!(!payload.contains(&id_number(1)) && !payload.contains("13800138000"));
}

#[tokio::test]
async fn organizations_need_a_valid_credit_code() {
    let f = fixture().await;
    let code = CreditCode::from_parts('5', '3', "330302", "MJ1234567").unwrap();
    let mut bad = code.as_str().to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let e = f
        .app
        .register_organization(
            &f.staff,
            &OrganizationInput {
                name: "鹿城测试基金会".into(),
                credit_code: bad,
                ..OrganizationInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("credit_code"), "{e}");
    let org = f
        .app
        .register_organization(
            &f.staff,
            &OrganizationInput {
                name: "鹿城测试基金会".into(),
                credit_code: code.as_str().to_lowercase(),
                roles: vec!["partner".into()],
                ..OrganizationInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(org.kind, "organization");
    assert_eq!(org.credit_code.as_deref(), Some(code.as_str()));
    let e = f
        .app
        .register_organization(
            &f.staff,
            &OrganizationInput {
                name: "另一个名字".into(),
                credit_code: code.as_str().into(),
                ..OrganizationInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
}

#[tokio::test]
async fn roles_attach_and_detach_once() {
    let f = fixture().await;
    let p = f
        .app
        .register_person(&f.staff, &person("李志愿", &id_number(3), None))
        .await
        .unwrap();
    f.app
        .attach_role(&f.staff, &p.id, "volunteer", None)
        .await
        .unwrap();
    // Attaching again changes nothing.
    let v = f
        .app
        .attach_role(&f.staff, &p.id, "volunteer", None)
        .await
        .unwrap();
    assert_eq!(v.roles.len(), 2);
    let roles = f.app.store().participant_roles(&p.id).await.unwrap();
    assert_eq!(
        roles.iter().map(|r| r.role.as_str()).collect::<Vec<_>>(),
        ["donor", "volunteer"]
    );
    // The volunteer role came with one volunteer registration, kept when attached again.
    let number = v.volunteer_number.clone().expect("a volunteer number");
    assert!(number.starts_with("ZY") && number.len() == 14, "{number}");
    assert_eq!(
        f.app.store().volunteer_number(&p.id).await.unwrap(),
        Some(number)
    );
    assert_eq!(volunteer_count(&f).await, 1);
    // Registering with the volunteer role registers the volunteer too.
    let q = f
        .app
        .register_person(
            &f.staff,
            &PersonInput {
                roles: vec!["volunteer".into()],
                ..person("王志愿", &id_number(4), None)
            },
        )
        .await
        .unwrap();
    assert!(q.volunteer_number.is_some());
    assert_ne!(q.volunteer_number, v.volunteer_number);
    assert_eq!(volunteer_count(&f).await, 2);
    let e = f
        .app
        .attach_role(&f.staff, &p.id, "boss", None)
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("role"));
    let e = f
        .app
        .attach_role(&f.staff, &p.id, "partner", Some("org_missing"))
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("org_id"));
    let e = f
        .app
        .attach_role(&f.staff, "ptc_nobody", "donor", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let v = f
        .app
        .detach_role(&f.staff, &p.id, "donor", None)
        .await
        .unwrap();
    assert_eq!(
        v.roles.iter().map(|r| r.role.as_str()).collect::<Vec<_>>(),
        ["volunteer"]
    );
    assert!(f
        .app
        .detach_role(&f.staff, &p.id, "donor", None)
        .await
        .is_err());
    let kinds: Vec<String> = f
        .app
        .store()
        .journal_for_subject(&p.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "participant.registered",
            "participant.role_attached",
            "participant.role_detached"
        ]
    );
}

async fn member(f: &Fixture, seq: u16, phone: &str) -> Actor {
    f.app
        .register_self(&SelfRegistration {
            name: "赵会员".into(),
            id_number: id_number(seq),
            phone: phone.into(),
            division_code: None,
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn people_sign_in_by_phone_or_id_and_share_one_lockout() {
    let f = fixture().await;
    let m = member(&f, 5, "13900139000").await;
    assert_eq!(m.role, Role::Member);
    let pid = m.participant_id.clone().unwrap();

    let by_phone = f.app.login("139 0013 9000", PASSWORD).await.unwrap();
    assert_eq!(
        by_phone.info.actor.participant_id.as_deref(),
        Some(pid.as_str())
    );
    assert_eq!(by_phone.info.actor.role, Role::Member);
    let by_id = f
        .app
        .login(&id_number(5).to_lowercase(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(by_id.info.actor.user_id, m.user_id);
    let session = f.app.session(&by_id.token).await.unwrap().unwrap();
    assert_eq!(session.actor.participant_id.as_deref(), Some(pid.as_str()));
    // Staff still sign in by username.
    assert_eq!(
        f.app
            .login("staff", "long enough password")
            .await
            .unwrap()
            .info
            .actor
            .role,
        Role::Staff
    );

    // A second account on the same phone is refused at registration.
    let e = f
        .app
        .register_self(&SelfRegistration {
            name: "钱会员".into(),
            id_number: id_number(6),
            phone: "13900139000".into(),
            division_code: None,
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("phone"));
    // The same ID again is refused: sign in instead.
    let e = f
        .app
        .register_self(&SelfRegistration {
            name: "赵会员".into(),
            id_number: id_number(5),
            phone: "13900139001".into(),
            division_code: None,
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("id_number"));

    // Failures by phone and by ID count against the same account.
    for i in 0..5 {
        let who = if i % 2 == 0 {
            "13900139000".to_owned()
        } else {
            id_number(5)
        };
        let e = f.app.login(&who, "wrong password!!").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
    }
    let e = f.app.login(&id_number(5), PASSWORD).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooManyAttempts);
    let e = f.app.login("13900139000", PASSWORD).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooManyAttempts);
    // The failures are journaled without the phone or ID number.
    let failures = f
        .app
        .store()
        .count_journal_since(
            &format!("login_{}", pid),
            "user.login_failed",
            "2026-06-01T00:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(failures, 5);
}

#[tokio::test]
async fn self_registration_claims_an_office_record_only_when_name_and_phone_match() {
    let f = fixture().await;
    let office = f
        .app
        .register_person(
            &f.staff,
            &person("孙登记", &id_number(7), Some("13700137000")),
        )
        .await
        .unwrap();
    let claim = |name: &str, phone: &str| SelfRegistration {
        name: name.into(),
        id_number: id_number(7),
        phone: phone.into(),
        division_code: None,
        password: PASSWORD.into(),
    };
    let e = f
        .app
        .register_self(&claim("孙登记", "13700137001"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "participant.claim_mismatch");
    let e = f
        .app
        .register_self(&claim("孙冒名", "13700137000"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "participant.claim_mismatch");
    let m = f
        .app
        .register_self(&claim("孙登记", "13700137000"))
        .await
        .unwrap();
    assert_eq!(m.participant_id.as_deref(), Some(office.id.as_str()));
    let me = f.app.my_participant(&m).await.unwrap();
    assert!(me.has_account);
    assert_eq!(me.roles.len(), 1, "the office's roles stay");
    let e = f
        .app
        .register_self(&claim("孙登记", "13700137000"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "participant.account_exists");
    let e = f
        .app
        .register_self(&SelfRegistration {
            password: "short".into(),
            ..claim("周新人", "13600136000")
        })
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("password"));
}

#[tokio::test]
async fn a_member_is_refused_every_staff_use_case() {
    let f = fixture().await;
    let m = member(&f, 8, "13500135000").await;
    let other = f
        .app
        .register_person(&f.staff, &person("吴他人", &id_number(9), None))
        .await
        .unwrap();
    let key = IdempotencyKey::parse("member-try-1").unwrap();
    let forbidden = |e: cishan_app::AppError| {
        assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    };
    forbidden(
        f.app
            .record_donation(&m, &key, &DonationInput::default())
            .await
            .unwrap_err(),
    );
    forbidden(
        f.app
            .create_campaign(&m, &CampaignInput::default())
            .await
            .unwrap_err(),
    );
    forbidden(
        f.app
            .register_person(&m, &person("冒充", &id_number(10), None))
            .await
            .unwrap_err(),
    );
    forbidden(
        f.app
            .attach_role(&m, &other.id, "staff", None)
            .await
            .unwrap_err(),
    );
    forbidden(
        f.app
            .find_participants(&m, &id_number(9))
            .await
            .unwrap_err(),
    );
    forbidden(f.app.participant_view(&m, &other.id).await.unwrap_err());
    forbidden(
        f.app
            .create_import_job(&m, ImportKind::People, "x.csv")
            .await
            .unwrap_err(),
    );
    forbidden(
        f.app
            .create_user(Some(&m), "x", "x", "long enough password", Role::Staff)
            .await
            .unwrap_err(),
    );
    // Their own record is theirs to read.
    let me = f
        .app
        .participant_view(&m, m.participant_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(me.display_name, "赵会员");
    assert!(me.roles.is_empty());
}

/// Every volunteer registration.
async fn volunteer_count(f: &Fixture) -> i64 {
    f.app
        .store()
        .count_volunteers_before("9999-12-31T00:00:00.000000Z")
        .await
        .unwrap()
}
