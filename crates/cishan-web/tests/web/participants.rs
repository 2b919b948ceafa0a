//! Participants over HTTP: self-registration lands on /me, people sign in by phone or ID number
//! and land on /me, members get 403 from every staff page and staff API, the participants API
//! names the field of an error in Chinese, and a roster import runs in the background with a
//! progress resource and page.

use cishan_app::participants::SelfRegistration;
use cishan_core::IdNumber;
use serde_json::Value;

use crate::common::{input_value, TestApp, STAFF_PASSWORD};

const MEMBER_PASSWORD: &str = "member-password-1";

fn id_number(seq: u16) -> String {
    IdNumber::from_parts("330302", jiff::civil::date(1992, 11, 5), seq)
        .unwrap()
        .expose()
        .to_owned()
}

async fn member(t: &TestApp, seq: u16, phone: &str) {
    t.app
        .register_self(&SelfRegistration {
            name: "赵会员".into(),
            id_number: id_number(seq),
            phone: phone.into(),
            division_code: None,
            password: MEMBER_PASSWORD.into(),
        })
        .await
        .unwrap();
}

/// Signs in through the login form; returns the browser and where the server sent it.
async fn sign_in(
    t: &TestApp,
    username: &str,
    password: &str,
    next: &str,
) -> (reqwest::Client, String) {
    let browser = t.browser();
    let form = browser
        .get(t.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&form, "csrf");
    let res = browser
        .post(t.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &csrf),
            ("next", next),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    (browser, location)
}

#[tokio::test]
async fn self_registration_signs_in_and_shows_the_personal_page_masked() {
    let t = TestApp::start().await;
    let browser = t.browser();
    let form = browser
        .get(t.url("/register"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&form, "csrf");
    // A wrong check character: the form again, 400, the message in Chinese, nothing echoed.
    let bad = format!(
        "{}{}",
        &id_number(1)[..17],
        if id_number(1).ends_with('1') {
            '2'
        } else {
            '1'
        }
    );
    let res = browser
        .post(t.url("/register"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "钱注册"),
            ("id_number", &bad),
            ("phone", "13700137000"),
            ("division_code", "330302006044"),
            ("password", MEMBER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("校验位"), "{html}");
    assert!(!html.contains(&bad), "the ID number is not echoed");
    let res = browser
        .post(t.url("/register"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "钱注册"),
            ("id_number", &id_number(1)),
            ("phone", "137 0013 7000"),
            ("division_code", "330302006044"),
            ("password", MEMBER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/me");
    let res = browser.get(t.url("/me")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("钱注册"));
    assert!(html.contains("137****7000"), "{html}");
    assert!(!html.contains("13700137000") && !html.contains(&id_number(1)));
    assert!(html.contains("鼓楼社区"));
    for link in ["/me/code", "/me/hours", "/me/points"] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
    }
    // Without the double-submit cookie the form is refused.
    let res = t
        .client()
        .post(t.url("/register"))
        .form(&[("csrf", csrf.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_member_registers_as_a_volunteer_from_the_personal_page() {
    let t = TestApp::start().await;
    member(&t, 7, "13600136007").await;
    let (browser, _) = sign_in(&t, "13600136007", MEMBER_PASSWORD, "/me").await;
    let html = browser
        .get(t.url("/me"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"me-volunteer-form\""), "{html}");
    let csrf = input_value(&html, "csrf");
    // Without the session's token nothing happens.
    let res = browser
        .post(t.url("/me/volunteer"))
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    for _ in 0..2 {
        let res = browser
            .post(t.url("/me/volunteer"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/me");
    }
    let html = browser
        .get(t.url("/me"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("志愿者编号"), "{html}");
    assert!(html.contains("志愿者"), "the role is listed");
    assert!(
        !html.contains("id=\"me-volunteer-form\""),
        "registered once"
    );
    assert_eq!(
        t.app
            .store()
            .count_volunteers_before("9999-12-31T00:00:00.000000Z")
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn people_sign_in_by_phone_or_id_and_land_on_me_and_staff_pages_refuse_them() {
    let t = TestApp::start().await;
    member(&t, 2, "13600136000").await;
    let (_, location) = sign_in(&t, "13600136000", MEMBER_PASSWORD, "/admin/indicators").await;
    assert_eq!(location, "/me", "a member never lands on a staff page");
    let (browser, location) = sign_in(&t, &id_number(2), MEMBER_PASSWORD, "/").await;
    assert_eq!(location, "/me");
    let html = browser
        .get(t.url("/me"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("赵会员") && html.contains("href=\"/me\""));
    assert!(
        !html.contains("/admin/donations/new"),
        "no staff links for members"
    );
    for path in [
        "/admin/donations/new",
        "/admin/allocations/new",
        "/admin/disbursements/new",
        "/admin/pools/new",
        "/admin/indicators",
        "/admin/participants",
        "/admin/imports",
    ] {
        let res = browser.get(t.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
    // Posting a staff form is refused too, before anything is read.
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&[("csrf", "x"), ("amount", "100")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Staff still land where they did.
    t.create_staff().await;
    let (_, location) = sign_in(&t, "staff", STAFF_PASSWORD, "/admin/donations/new").await;
    assert_eq!(location, "/admin/donations/new");
}

async fn send(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = t
        .client()
        .request(method, t.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("k-{}", rand::random::<u64>()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_participants_api_for_staff_and_members() {
    let t = TestApp::start().await;
    t.create_staff().await;
    let staff = t.token("staff", STAFF_PASSWORD).await;
    use reqwest::Method as M;

    // A staff account has no personal record, and is told so (not "not found").
    let (status, err) = send(&t, M::GET, "/api/v1/me", &staff, None).await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["code"], "me.no_participant", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("工作人员账号"),
        "{err}"
    );

    // Errors name the field, in Chinese.
    for (body, field) in [
        (
            serde_json::json!({ "name": "", "id_number": id_number(3) }),
            "name",
        ),
        (
            serde_json::json!({ "name": "孙", "id_number": "123" }),
            "id_number",
        ),
        (
            serde_json::json!({ "name": "孙", "id_number": id_number(3), "phone": "99" }),
            "phone",
        ),
        (
            serde_json::json!({ "name": "孙", "id_number": id_number(3), "division_code": "1" }),
            "division_code",
        ),
        (
            serde_json::json!({ "kind": "organization", "name": "某机构", "credit_code": "123" }),
            "credit_code",
        ),
        (serde_json::json!({ "kind": "robot", "name": "x" }), "kind"),
    ] {
        let (status, err) = send(&t, M::POST, "/api/v1/participants", &staff, Some(body)).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
        assert!(!err["error"]["message"].as_str().unwrap().is_ascii());
    }
    let (status, p) = send(
        &t,
        M::POST,
        "/api/v1/participants",
        &staff,
        Some(serde_json::json!({ "name": "孙登记", "id_number": id_number(3), "phone": "13500135000", "roles": ["donor"] })),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_owned();
    assert_eq!(p["phone_masked"], "135****5000");
    assert!(!p.to_string().contains(&id_number(3)));
    let (status, again) = send(
        &t,
        M::POST,
        "/api/v1/participants",
        &staff,
        Some(serde_json::json!({ "name": "孙登记", "id_number": id_number(3) })),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["field"], "id_number");
    let (status, p) = send(
        &t,
        M::POST,
        &format!("/api/v1/participants/{pid}/roles"),
        &staff,
        Some(serde_json::json!({ "role": "volunteer" })),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["roles"].as_array().unwrap().len(), 2);
    let (status, found) = send(
        &t,
        M::GET,
        &format!("/api/v1/participants?q={}", id_number(3)),
        &staff,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found[0]["id"], pid.as_str());

    // A member: their own record, and 403 for everything staff do.
    member(&t, 4, "13400134000").await;
    let token = t.token("13400134000", MEMBER_PASSWORD).await;
    let (status, me) = send(&t, M::GET, "/api/v1/me", &token, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["participant"]["phone_masked"], "134****4000");
    let my_id = me["participant"]["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &t,
        M::GET,
        &format!("/api/v1/participants/{my_id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &t,
        M::GET,
        &format!("/api/v1/participants/{pid}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 403);
    for (method, path, body) in [
        (
            M::POST,
            "/api/v1/donations".to_owned(),
            serde_json::json!({ "amount_fen": 100, "fund_id": "fnd_1", "channel": "cash" }),
        ),
        (
            M::POST,
            "/api/v1/participants".to_owned(),
            serde_json::json!({ "name": "x", "id_number": id_number(5) }),
        ),
        (
            M::POST,
            format!("/api/v1/participants/{my_id}/roles"),
            serde_json::json!({ "role": "staff" }),
        ),
        (
            M::GET,
            format!("/api/v1/participants?q={}", id_number(3)),
            Value::Null,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (status, err) = send(&t, method, &path, &token, body).await;
        assert_eq!(status, 403, "{path}: {err}");
    }
    // The member's own roles did not change.
    let roles = t.app.store().participant_roles(&my_id).await.unwrap();
    assert!(roles.is_empty());
    // Staff have no personal record.
    let (status, _) = send(&t, M::GET, "/api/v1/me", &staff, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_roster_import_runs_in_the_background_with_progress_and_report() {
    let t = TestApp::start().await;
    t.create_staff().await;
    let staff = t.token("staff", STAFF_PASSWORD).await;
    let text = format!(
        "姓名,身份证号码,手机\r\n张三,{},13800138000\r\n李四,3.30302E+17,\r\n",
        id_number(6)
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let res = t
        .client()
        .post(t.url("/api/v1/imports?kind=people&file_name=roster.csv"))
        .bearer_auth(&staff)
        .body(gbk.into_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job = res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut view = Value::Null;
    for _ in 0..200 {
        let (status, v) = send(
            &t,
            reqwest::Method::GET,
            &format!("/api/v1/imports/{job}"),
            &staff,
            None,
        )
        .await;
        assert_eq!(status, 200);
        view = v;
        if view["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(view["state"], "done", "{view}");
    assert_eq!(view["total"], 2);
    assert_eq!(view["processed"], 2);
    assert_eq!(view["imported"], 1);
    assert_eq!(view["refused"], 1);
    assert!(view["encoding"].as_str().unwrap().starts_with("GB18030"));
    assert_eq!(view["rows"][0]["line"], 3);
    assert!(view["rows"][0]["reason"].as_str().unwrap().contains("文本"));

    // The progress page for staff; members are refused.
    let (browser, _) = sign_in(&t, "staff", STAFF_PASSWORD, "/").await;
    let res = browser
        .get(t.url(&format!("/admin/imports/{job}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("refresh").is_none(),
        "a finished job stops refreshing"
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("逐行报告") && html.contains("GB18030"),
        "{html}"
    );
    let form = browser.get(t.url("/admin/imports")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    member(&t, 7, "13300133000").await;
    let token = t.token(&id_number(7), MEMBER_PASSWORD).await;
    let (status, _) = send(
        &t,
        reqwest::Method::GET,
        &format!("/api/v1/imports/{job}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let res = t
        .client()
        .post(t.url("/api/v1/imports?kind=people"))
        .bearer_auth(&token)
        .body(text.into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}
