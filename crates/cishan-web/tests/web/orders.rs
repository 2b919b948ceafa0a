//! Orders through real HTTP: making an order, an illegal move refused with 409 naming the
//! current state, dispatch with explained candidates and a replayed `Idempotency-Key`, the
//! provider's moves, the review once, alerts behind sign-in, and the pages (catalogue,
//! dispatch board, order page with candidates, a move posted from a form, warnings, the
//! dashboard's warning box); a volunteer's pending minutes verified from the order page and
//! over `POST /api/v1/orders/{id}/verify-minutes`.

use cishan_app::orders::{ServiceInput, VolunteerCategoriesInput};
use cishan_app::registry::HouseholdInput;
use cishan_store::{format_instant, OrganizationRow, ParticipantRow, VolunteerRow};
use serde_json::{json, Value};

use crate::common::{at, input_value, TestApp};

const STREET: &str = "330302006";
const COMMUNITY: &str = "330302006044";

/// A household in 鼓楼社区 and a service of 鹿城区助老服务中心 serving 五马街道.
async fn seed(t: &TestApp) -> (String, String) {
    let created = format_instant(at("2023-01-01T00:00:00Z"));
    let mut tx = t.app.store().begin().await.unwrap();
    tx.insert(&OrganizationRow {
        id: "org_care".into(),
        participant_id: None,
        name: "鹿城区助老服务中心".into(),
        credit_code: "52330302MJ8998765X".into(),
        kind: "social_service".into(),
        division_code: None,
        registered_on: "2010-01-01".into(),
        created_at: created,
        is_charity: true,
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
            subject: "org_care".into(),
            payload: json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let id_number =
        cishan_core::IdNumber::from_parts("330302", jiff::civil::date(1950, 5, 1), 21).unwrap();
    let household = t
        .app
        .register_household(
            &t.admin,
            &HouseholdInput {
                category: "subsistence".into(),
                street_code: STREET.into(),
                community_code: COMMUNITY.into(),
                head_name: "陈阿婆".into(),
                head_id_number: id_number.expose().to_owned(),
                phone: None,
                address: "解放街 1 号".into(),
                per_capita_income_fen: 500_000,
                members: Vec::new(),
                consent: true,
            },
        )
        .await
        .unwrap();
    let service = t
        .app
        .create_service(
            &t.admin,
            &ServiceInput {
                org_id: "org_care".into(),
                team_id: None,
                category: "daily_care".into(),
                name: "鼓楼社区助浴".into(),
                description: "上门助浴".into(),
                scope: "street".into(),
                division_code: Some(COMMUNITY.into()),
                capacity_per_week: 5,
                time_windows: "weekdays 09:00-17:00".into(),
                eligibility: Vec::new(),
                state: None,
            },
        )
        .await
        .unwrap();
    (household.id, service.id)
}

async fn post(
    t: &TestApp,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = t.client().post(t.url(path)).bearer_auth(token).json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn orders_over_http_follow_the_state_machine() {
    let t = TestApp::start().await;
    let (household, service) = seed(&t).await;
    let token = t.admin_token().await;

    let res = post(
        &t,
        &token,
        "/api/v1/orders",
        None,
        json!({ "household_id": household, "category": "daily_care", "description": "打扫卫生" }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order["state"], "created");
    assert_eq!(order["state_name"], "待派单");

    // Accepting an order nobody holds: 409 naming the current state, nothing changed.
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{id}/accept"),
        None,
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "order.illegal_transition");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("待派单"),
        "{body}"
    );

    // Dispatch: the candidates with explained scores; the same key replays the first answer.
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{id}/dispatch"),
        Some("d-1"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("idempotent-replayed").is_none());
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["chosen"]["provider_id"], service);
    let components = first["candidates"][0]["components"].as_array().unwrap();
    assert_eq!(components.len(), 5);
    let sum: i64 = components
        .iter()
        .map(|c| c["points"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, first["candidates"][0]["score"].as_i64().unwrap());
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{id}/dispatch"),
        Some("d-1"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: Value = res.json().await.unwrap();
    assert_eq!(again, first);

    for action in ["accept", "start", "complete"] {
        let res = post(
            &t,
            &token,
            &format!("/api/v1/orders/{id}/{action}"),
            None,
            json!({}),
        )
        .await;
        assert_eq!(res.status(), 200, "{action}");
    }
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{id}/review"),
        None,
        json!({ "rating": 2, "comment": "迟到" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{id}/review"),
        None,
        json!({ "rating": 5 }),
    )
    .await;
    assert_eq!(res.status(), 409);

    let res = t
        .client()
        .get(t.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["order"]["state"], "reviewed");
    assert_eq!(detail["events"].as_array().unwrap().len(), 6);
    assert_eq!(detail["review"]["on_behalf"], true);

    // The organization's evaluation, and the low rating among the warnings.
    let (status, rating) = t.get_json("/api/v1/organizations/org_care/rating").await;
    assert_eq!(status, 200);
    assert_eq!(rating["rating_count"], 1);
    assert_eq!(t.get("/api/v1/alerts").await.status(), 401);
    let res = t
        .client()
        .get(t.url(&format!("/api/v1/alerts?street={STREET}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let alerts: Value = res.json().await.unwrap();
    assert!(alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "low_rating"));
    let (status, services) = t.get_json("/api/v1/services?category=daily_care").await;
    assert_eq!(status, 200);
    assert_eq!(services["items"][0]["time_windows"], "工作日 09:00-17:00");
}

#[tokio::test]
async fn the_order_pages_dispatch_and_warn() {
    let t = TestApp::start().await;
    let (household, service) = seed(&t).await;
    let token = t.admin_token().await;
    let res = post(
        &t,
        &token,
        "/api/v1/orders",
        None,
        json!({ "household_id": household, "category": "daily_care" }),
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = |path: String| {
        t.client()
            .get(t.url(&path))
            .header("cookie", format!("cishan_session={token}"))
            .send()
    };

    let html = page("/services".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("鼓楼社区助浴"));
    assert!(
        html.contains("id=\"service-form\""),
        "staff see the publish form"
    );
    let html = page("/admin/orders".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("id=\"order-{id}\"")));
    let res = page(format!("/admin/orders/{id}")).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("id=\"candidate-{service}\"")));
    assert!(html.contains("同社区"), "the score is explained");
    let csrf = input_value(&html, "csrf");

    // Dispatch from the order page's form: back to the page with the outcome.
    let res = t
        .client()
        .post(t.url(&format!("/orders/{id}/move")))
        .header("cookie", format!("cishan_session={token}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "dispatch"),
            ("provider_id", service.as_str()),
            ("back", &format!("/admin/orders/{id}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, format!("/admin/orders/{id}?done=dispatch"));
    let html = page(to).await.unwrap().text().await.unwrap();
    assert!(html.contains("data-state=\"dispatched\""));
    // An illegal move from a form comes back with the refusal, not an error page.
    let res = t
        .client()
        .post(t.url(&format!("/orders/{id}/move")))
        .header("cookie", format!("cishan_session={token}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "complete"),
            ("back", "/admin/orders"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/admin/orders?error="));
    // Without the CSRF token nothing moves.
    let res = t
        .client()
        .post(t.url(&format!("/orders/{id}/move")))
        .header("cookie", format!("cishan_session={token}"))
        .form(&[("action", "accept"), ("back", "/admin/orders")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());

    let res = page("/admin/alerts".into()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"alert-counts\""));
    let html = page("/dashboard".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"alerts-box\""),
        "staff see the warning count on the dashboard"
    );
    let html = t.get("/dashboard").await.text().await.unwrap();
    assert!(!html.contains("id=\"alerts-box\""), "the public does not");
    let html = page("/org/orders".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("本机构收到的订单"));
}

/// A staff page's GET and a form POST with the session cookie; no redirect followed.
async fn form_post(
    t: &TestApp,
    token: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    t.client()
        .post(t.url(path))
        .header("cookie", format!("cishan_session={token}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn staff_page(t: &TestApp, token: &str, path: &str) -> (u16, String) {
    let res = t
        .client()
        .get(t.url(path))
        .header("cookie", format!("cishan_session={token}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// An order as the API shows it.
async fn get_order(t: &TestApp, token: &str, id: &str) -> (u16, Value) {
    let res = t
        .client()
        .get(t.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["order"].clone())
}

/// The order id in a redirect to its page (`/admin/orders/{id}?done=order`).
fn ordered(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap();
    let id = to
        .strip_prefix("/admin/orders/")
        .and_then(|r| r.strip_suffix("?done=order"))
        .unwrap_or_else(|| panic!("{to}"));
    id.to_owned()
}

#[tokio::test]
async fn staff_order_from_the_household_page_and_the_catalogue() {
    let t = TestApp::start().await;
    let (household, service) = seed(&t).await;
    let token = t.admin_token().await;
    let need = t
        .app
        .register_need(
            &t.admin,
            &household,
            &cishan_app::registry::NeedInput {
                category: "daily_care".into(),
                description: "每周助浴一次".into(),
                member_id: None,
            },
        )
        .await
        .unwrap();

    // The household page: an order by category, through the form and its CSRF token.
    let path = format!("/admin/registry/{household}");
    let (status, html) = staff_page(&t, &token, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"order-form\""));
    assert!(html.contains(&format!("id=\"need-order-{}\"", need.id)));
    let csrf = input_value(&html, "csrf");
    let action = format!("{path}/order");
    let res = form_post(
        &t,
        &token,
        &action,
        &[
            ("csrf", csrf.as_str()),
            ("category", "daily_care"),
            ("description", "打扫卫生"),
        ],
    )
    .await;
    let by_category = ordered(&res);
    let (status, html) = staff_page(
        &t,
        &token,
        &format!("/admin/orders/{by_category}?done=order"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("已为该户下单"));
    let (_, order) = get_order(&t, &token, &by_category).await;
    assert_eq!(order["household_id"], household.as_str());
    assert_eq!(order["category"], "daily_care");
    assert_eq!(order["on_behalf"], true);

    // A refused form comes back in Chinese, naming the field; nothing is written.
    let res = form_post(
        &t,
        &token,
        &action,
        &[("csrf", csrf.as_str()), ("category", "dancing")],
    )
    .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"household-error\""), "{html}");
    assert!(html.contains("（服务类别）"), "{html}");
    // Without the CSRF token, refused.
    let res = form_post(&t, &token, &action, &[("category", "daily_care")]).await;
    assert!(res.status().is_client_error());

    // An open need becomes an order (and the need `ordered`); the button is gone.
    let res = form_post(
        &t,
        &token,
        &action,
        &[("csrf", csrf.as_str()), ("need_id", need.id.as_str())],
    )
    .await;
    let from_need = ordered(&res);
    let (_, order) = get_order(&t, &token, &from_need).await;
    assert_eq!(order["need_id"], need.id.as_str());
    assert_eq!(order["description"], "每周助浴一次");
    let brief = t.app.store().need_brief(&need.id).await.unwrap().unwrap();
    assert_eq!(brief.state, "ordered");
    let (_, html) = staff_page(&t, &token, &path).await;
    assert!(!html.contains(&format!("id=\"need-order-{}\"", need.id)));

    // The catalogue, reached from the household page: the picked service is the order's.
    assert!(html.contains(&format!("/services?household_id={household}")));
    let (status, html) =
        staff_page(&t, &token, &format!("/services?household_id={household}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"service-order-form\""));
    assert_eq!(input_value(&html, "household_id"), household);
    let csrf = input_value(&html, "csrf");
    let res = form_post(
        &t,
        &token,
        "/admin/services/order",
        &[
            ("csrf", csrf.as_str()),
            ("household_id", household.as_str()),
            ("service_id", service.as_str()),
        ],
    )
    .await;
    let picked = ordered(&res);
    let (_, order) = get_order(&t, &token, &picked).await;
    assert_eq!(order["service_id"], service.as_str());
    assert_eq!(order["household_id"], household.as_str());

    // An unknown service: back to the catalogue with the refusal naming the field in Chinese.
    let res = form_post(
        &t,
        &token,
        "/admin/services/order",
        &[
            ("csrf", csrf.as_str()),
            ("household_id", household.as_str()),
            ("service_id", "svc_nope"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("/services?household_id={household}&error=")),
        "{to}"
    );
    let (_, html) = staff_page(&t, &token, &to).await;
    assert!(
        html.contains("找不到该服务") && html.contains("（服务）"),
        "{html}"
    );
    // Nothing was written by the refused forms: three orders, all in `created`.
    for id in [&by_category, &from_need, &picked] {
        let (_, order) = get_order(&t, &token, id).await;
        assert_eq!(order["state"], "created");
    }
    let counts = t.app.order_counts(&t.admin).await.unwrap();
    let created = counts.iter().find(|c| c.0 == "created").map_or(0, |c| c.2);
    assert_eq!(created, 3, "{counts:?}");
}

/// A volunteer of 鼓楼社区 serving daily care.
const VOLUNTEER: &str = "ptc_0000000000000000000a";

async fn seed_volunteer(t: &TestApp) {
    let created = format_instant(at("2023-01-01T00:00:00Z"));
    let mut tx = t.app.store().begin().await.unwrap();
    tx.insert(&ParticipantRow {
        id: VOLUNTEER.into(),
        kind: "person".into(),
        display_name: "王小明".into(),
        id_number_digest: None,
        id_number_masked: None,
        id_number_cipher: None,
        division_code: Some(COMMUNITY.into()),
        created_at: created.clone(),
        synthetic: false,
    })
    .await
    .unwrap();
    tx.insert(&VolunteerRow {
        participant_id: VOLUNTEER.into(),
        volunteer_number: "ZJ330302000001".into(),
        registered_at: created,
    })
    .await
    .unwrap();
    tx.journal(
        at("2023-01-01T00:00:00Z"),
        cishan_store::NewEntry {
            actor: "test".into(),
            kind: "test.seeded".into(),
            subject: VOLUNTEER.into(),
            payload: json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    t.app
        .set_volunteer_categories(
            &t.admin,
            VOLUNTEER,
            &VolunteerCategoriesInput {
                categories: vec!["daily_care".into()],
            },
        )
        .await
        .unwrap();
}

/// An order a volunteer served for `minutes` and completed (staff moving it on their behalf).
async fn volunteer_order_completed(
    t: &TestApp,
    token: &str,
    household: &str,
    minutes: i64,
) -> String {
    let res = post(
        t,
        token,
        "/api/v1/orders",
        None,
        json!({ "household_id": household, "category": "daily_care" }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = post(
        t,
        token,
        &format!("/api/v1/orders/{id}/dispatch"),
        None,
        json!({ "provider_id": VOLUNTEER }),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    for step in ["accept", "start", "complete"] {
        if step == "complete" {
            let now = t.app.clock().now();
            t.clock.set(
                now.checked_add(jiff::SignedDuration::from_mins(minutes))
                    .unwrap(),
            );
            // The minutes are the server's to measure: a body with fields is refused, as by
            // every other endpoint, and the order stays in service.
            let res = post(
                t,
                token,
                &format!("/api/v1/orders/{id}/complete"),
                None,
                json!({ "minutes": 600 }),
            )
            .await;
            assert_eq!(res.status(), 400);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "request.body_invalid");
            assert_eq!(get_order(t, token, &id).await.1["state"], "in_service");
        }
        let res = post(
            t,
            token,
            &format!("/api/v1/orders/{id}/{step}"),
            None,
            json!({}),
        )
        .await;
        assert_eq!(res.status(), 200, "{step}: {}", res.text().await.unwrap());
    }
    id
}

#[tokio::test]
async fn staff_verify_a_volunteer_s_pending_minutes_from_the_order_page_and_the_api() {
    let t = TestApp::start().await;
    let (household, _) = seed(&t).await;
    seed_volunteer(&t).await;
    let token = t.admin_token().await;
    let id = volunteer_order_completed(&t, &token, &household, 80).await;
    let (_, order) = get_order(&t, &token, &id).await;
    assert_eq!(order["service_minutes"], 80);
    assert_eq!(order["minutes_pending"], true);
    assert_eq!(order["credited"], false);

    // The order page says the minutes wait, and offers staff the verification.
    let (status, html) = staff_page(&t, &token, &format!("/admin/orders/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-pending=\"true\""));
    assert!(html.contains("待核验"));
    assert!(html.contains("id=\"verify-minutes-form\""));
    let csrf = input_value(&html, "csrf");
    let back = format!("/admin/orders/{id}");
    // Without the CSRF token nothing is verified; above the recorded minutes is refused.
    let res = form_post(
        &t,
        &token,
        &format!("/orders/{id}/move"),
        &[
            ("action", "verify_minutes"),
            ("minutes", "60"),
            ("back", &back),
        ],
    )
    .await;
    assert!(res.status().is_client_error());
    let res = form_post(
        &t,
        &token,
        &format!("/orders/{id}/move"),
        &[
            ("csrf", &csrf),
            ("action", "verify_minutes"),
            ("minutes", "81"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("/admin/orders/{id}?error=")));
    assert_eq!(get_order(&t, &token, &id).await.1["credited"], false);
    // Corrected down to 60 minutes, with a note.
    let res = form_post(
        &t,
        &token,
        &format!("/orders/{id}/move"),
        &[
            ("csrf", &csrf),
            ("action", "verify_minutes"),
            ("minutes", "60"),
            ("reason", "回访核实"),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("/admin/orders/{id}?done=verify_minutes")
    );
    let (_, order) = get_order(&t, &token, &id).await;
    assert_eq!(order["verified_minutes"], 60);
    assert_eq!(order["credited"], true);
    assert_eq!(order["minutes_pending"], false);
    let (_, html) = staff_page(&t, &token, &format!("/admin/orders/{id}")).await;
    assert!(html.contains("已核验 60 分钟"));
    assert!(!html.contains("id=\"verify-minutes-form\""));
    assert!(
        html.contains("核验服务时长 · "),
        "the history shows the verification"
    );
    assert_eq!(
        t.app
            .volunteer_hours(&t.admin, VOLUNTEER)
            .await
            .unwrap()
            .verified_minutes,
        60
    );
    // Verifying again (a stale page in another tab) is refused, and the page says so as an
    // error, with when and how many minutes were verified.
    let res = form_post(
        &t,
        &token,
        &format!("/orders/{id}/move"),
        &[
            ("csrf", &csrf),
            ("action", "verify_minutes"),
            ("minutes", ""),
            ("back", &back),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("/admin/orders/{id}?error=")),
        "{to}"
    );
    let (_, html) = staff_page(&t, &token, &to).await;
    assert!(html.contains("id=\"flash-error\""));
    assert!(html.contains("计入 60 分钟，不能重复核验"));
    assert!(!html.contains("已计入志愿服务时长和积分"));
    // Over the API too: 409, still 60 minutes.
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{id}/verify-minutes"),
        None,
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "order.minutes_already_verified");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("计入 60 分钟"));
    assert_eq!(get_order(&t, &token, &id).await.1["verified_minutes"], 60);

    // A second order verified over the API, all its minutes.
    let second = volunteer_order_completed(&t, &token, &household, 30).await;
    let res = post(
        &t,
        &token,
        &format!("/api/v1/orders/{second}/verify-minutes"),
        Some("verify-2"),
        json!({ "minutes": 31 }),
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "order.minutes_invalid"
    );
    // An empty body verifies all the minutes.
    let res = t
        .client()
        .post(t.url(&format!("/api/v1/orders/{second}/verify-minutes")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["verified_minutes"], 30);
    assert_eq!(
        t.app
            .volunteer_hours(&t.admin, VOLUNTEER)
            .await
            .unwrap()
            .verified_minutes,
        90
    );
}

#[tokio::test]
async fn batch_success_is_a_notice_and_the_address_cannot_plant_an_alert() {
    let t = TestApp::start().await;
    let (household, _service) = seed(&t).await;
    let token = t.admin_token().await;
    let res = post(
        &t,
        &token,
        "/api/v1/orders",
        None,
        json!({ "household_id": household, "category": "daily_care" }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let (_, html) = staff_page(&t, &token, "/admin/orders").await;
    let csrf = input_value(&html, "csrf");
    let res = form_post(&t, &token, "/admin/orders/batch", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/admin/orders?done=batch"), "{to}");
    let (_, html) = staff_page(&t, &token, &to).await;
    assert!(html.contains("id=\"flash-done\""), "{html}");
    assert!(
        html.contains("批量派单完成：1 张待派订单中派出 1 张"),
        "{html}"
    );
    assert!(!html.contains("id=\"flash-error\""));

    // A link carrying its own text shows nothing, signed or not by someone else.
    let planted = encode("账号异常，请致电400-000-0000");
    for page in ["/admin/orders", "/services", "/me/orders"] {
        for query in [
            format!("?error={planted}"),
            format!("?error={planted}&sig=00ff"),
            format!("?done={planted}"),
        ] {
            let (status, html) = staff_page(&t, &token, &format!("{page}{query}")).await;
            assert_eq!(status, 200, "{page}{query}");
            assert!(!html.contains("账号异常"), "{page}{query}");
            assert!(!html.contains("id=\"flash-error\""), "{page}{query}");
        }
    }
    // The server's own refusal, signed for this session, is shown; for another session, not.
    let res = form_post(
        &t,
        &token,
        "/orders/ord_nope/move",
        &[
            ("csrf", &csrf),
            ("action", "accept"),
            ("back", "/me/orders"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("/me/orders?error=") && to.contains("&sig="),
        "{to}"
    );
    let (_, html) = staff_page(&t, &token, &to).await;
    assert!(html.contains("id=\"flash-error\""), "{html}");
    let other = t.admin_token().await;
    let (_, html) = staff_page(&t, &other, &to).await;
    assert!(!html.contains("id=\"flash-error\""));
}

fn encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}
