//! Charity points over real HTTP: publishing rules, the explained balance
//! (`GET /api/v1/participants/{id}/points`), offers, idempotent redemptions
//! (`POST /api/v1/redemptions`), cancellation, and the public rules page.

use cishan_store::{format_instant, NewEntry, ParticipantRow};
use serde_json::{json, Value};

use crate::common::{input_value, TestApp, ADMIN_PASSWORD};

const RULES: &str = include_str!("../../../../rules/points-lucheng-v1.toml");

async fn post(
    t: &TestApp,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value, bool) {
    let mut req = t.client().post(t.url(path)).bearer_auth(token).json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (status, res.json().await.unwrap(), replayed)
}

async fn get_auth(t: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let res = t
        .client()
        .get(t.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn add_participant(t: &TestApp, id: &str) {
    let mut tx = t.app.store().begin().await.unwrap();
    tx.insert(&ParticipantRow {
        id: id.into(),
        kind: "person".into(),
        display_name: "王小测".into(),
        id_number_digest: None,
        id_number_masked: None,
        id_number_cipher: None,
        division_code: None,
        created_at: format_instant("2023-01-01T00:00:00Z".parse().unwrap()),
        synthetic: false,
    })
    .await
    .unwrap();
    tx.journal(
        "2023-01-01T00:00:00Z".parse().unwrap(),
        NewEntry {
            actor: "test".into(),
            kind: "test.seeded".into(),
            subject: id.into(),
            payload: json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Rules published, one participant with a ¥250 donation (20 points), one offer of 15 points.
async fn setup(t: &TestApp) -> (String, String) {
    t.seed().await;
    add_participant(t, "ptc_wang").await;
    let token = t.admin_token().await;
    let (status, report, _) = post(
        t,
        &token,
        "/api/v1/points/recompute",
        None,
        &json!({ "rules": RULES, "dry_run": false }),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["version"], "lucheng-v1");
    let (status, body, _) = post(
        t,
        &token,
        "/api/v1/donations",
        Some("don-1"),
        &json!({ "amount_fen": 25_000, "fund_id": "fund_1", "channel": "cash",
                 "donor_participant_id": "ptc_wang", "received_at": "2024-02-01T02:00:00Z" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, offer, _) = post(
        t,
        &token,
        "/api/v1/points/offers",
        Some("offer-1"),
        &json!({ "org_id": "org_1", "channel": "medical", "title": "免费体检",
                 "cost_points": 15, "stock": 1,
                 "valid_from": "2024-01-01", "valid_to": "2024-12-31" }),
    )
    .await;
    assert_eq!(status, 201, "{offer}");
    (token, offer["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_balance_is_explained_and_private() {
    let t = TestApp::start().await;
    let (token, _) = setup(&t).await;
    let (status, body) = get_auth(&t, &token, "/api/v1/participants/ptc_wang/points").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["honour"], 20);
    assert_eq!(body["spendable"], 20);
    assert_eq!(body["tier"]["code"], "member");
    assert_eq!(body["next_tier"]["code"], "bronze");
    assert_eq!(body["to_next_tier"], 80);
    let act = &body["acts"][0];
    assert_eq!(act["kind"], "money");
    assert_eq!(act["rule_version"], "lucheng-v1");
    assert_eq!(act["honour"], 20);
    assert!(
        act["explanation"].as_str().unwrap().contains("→ 20 分"),
        "{act}"
    );
    // Nobody signed in: 401 with the envelope.
    let (status, body) = t.get_json("/api/v1/participants/ptc_wang/points").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.required");
}

#[tokio::test]
async fn a_redemption_is_idempotent_and_the_last_item_goes_once() {
    let t = TestApp::start().await;
    let (token, offer) = setup(&t).await;
    let body = json!({ "offer_id": offer, "participant_id": "ptc_wang" });
    let (status, first, replayed) =
        post(&t, &token, "/api/v1/redemptions", Some("r-1"), &body).await;
    assert_eq!(status, 201, "{first}");
    assert!(!replayed);
    assert_eq!(first["spendable_after"], 5);
    let (status, again, replayed) =
        post(&t, &token, "/api/v1/redemptions", Some("r-1"), &body).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first);
    // No key: refused, naming the header.
    let (status, err, _) = post(&t, &token, "/api/v1/redemptions", None, &body).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["field"], "Idempotency-Key");
    // The only item is gone (and 5 points would not be enough anyway).
    let (status, err, _) = post(&t, &token, "/api/v1/redemptions", Some("r-2"), &body).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "redeem.not_enough_points");
    // Cancel: points and the item come back, once.
    let id = first["id"].as_str().unwrap();
    let path = format!("/api/v1/redemptions/{id}/cancel");
    let (status, cancelled, _) = post(
        &t,
        &token,
        &path,
        Some("c-1"),
        &json!({ "reason": "参与者放弃" }),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["spendable_after"], 20);
    let (status, err, _) = post(
        &t,
        &token,
        &path,
        Some("c-2"),
        &json!({ "reason": "再取消" }),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(err["error"]["code"], "redeem.already_cancelled");
    let (_, points) = get_auth(&t, &token, "/api/v1/participants/ptc_wang/points").await;
    assert_eq!(
        (points["honour"].as_i64(), points["spendable"].as_i64()),
        (Some(20), Some(20))
    );
    let (_, offers) = t.get_json("/api/v1/points/offers").await;
    assert_eq!(offers[0]["stock"], 1);
}

#[tokio::test]
async fn a_redemption_by_code_uses_the_code_only_when_it_succeeds() {
    let t = TestApp::start().await;
    let (token, offer) = setup(&t).await; // 20 points; the offer costs 15
    let (status, dear, _) = post(
        &t,
        &token,
        "/api/v1/points/offers",
        Some("offer-2"),
        &json!({ "org_id": "org_1", "channel": "schooling", "title": "助学礼包",
                 "cost_points": 50, "stock": 3,
                 "valid_from": "2024-01-01", "valid_to": "2024-12-31" }),
    )
    .await;
    assert_eq!(status, 201, "{dear}");
    let (status, code) = get_auth(&t, &token, "/api/v1/participants/ptc_wang/code").await;
    assert_eq!(status, 200, "{code}");
    let code = code["payload"].as_str().unwrap();
    // Not enough points: refused, and the code is not used up.
    let body = json!({ "offer_id": dear["id"], "code": code });
    let (status, err, _) = post(&t, &token, "/api/v1/redemptions", Some("r-1"), &body).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "redeem.not_enough_points");
    // The same code redeems what the points allow; a retry is answered from the first time.
    let body = json!({ "offer_id": offer, "code": code });
    let (status, first, replayed) =
        post(&t, &token, "/api/v1/redemptions", Some("r-2"), &body).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    assert_eq!(first["participant_id"], "ptc_wang");
    assert_eq!(first["spendable_after"], 5);
    let (status, again, replayed) =
        post(&t, &token, "/api/v1/redemptions", Some("r-2"), &body).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first);
    // Another redemption with the used code is a replay of the code.
    let (status, err, _) = post(&t, &token, "/api/v1/redemptions", Some("r-3"), &body).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "code.replayed");
    assert_eq!(err["error"]["field"], "code");
}

#[tokio::test]
async fn rules_are_public_and_recompute_is_for_administrators() {
    let t = TestApp::start().await;
    let (token, _) = setup(&t).await;
    let (status, rules) = t.get_json("/api/v1/points/rules").await;
    assert_eq!(status, 200);
    assert_eq!(rules[0]["version"], "lucheng-v1");
    let page = t.get("/rules").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("lucheng-v1") && html.contains("每满 ¥100 计 10 分"),
        "{html}"
    );
    // A dry run of a new version reports and writes nothing.
    let v2 = RULES
        .replace("version = \"lucheng-v1\"", "version = \"lucheng-v2\"")
        .replace(
            "step = 10000\npoints_per_step = 10",
            "step = 5000\npoints_per_step = 10",
        );
    let (status, report, _) = post(
        &t,
        &token,
        "/api/v1/points/recompute",
        None,
        &json!({ "rules": v2, "dry_run": true }),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["participants_affected"], 1);
    assert_eq!(report["changes"][0]["honour_after"], 50);
    assert_eq!(report["entries_written"], 0);
    let (_, rules) = t.get_json("/api/v1/points/rules").await;
    assert_eq!(rules.as_array().unwrap().len(), 1);
    // A bad rule file names the field.
    let (status, err, _) = post(
        &t,
        &token,
        "/api/v1/points/recompute",
        None,
        &json!({ "rules": RULES.replace("spendable_expiry_months = 24", "spendable_expiry_months = 0") }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["field"], "rules.spendable_expiry_months");
    // The admin page needs a signed-in administrator.
    let res = t.get("/admin/points/rules").await;
    assert!(res.status().is_redirection(), "{}", res.status());
}

#[tokio::test]
async fn a_refund_is_explained_in_yuan_with_thousands_separators() {
    let t = TestApp::start().await;
    let (token, _) = setup(&t).await;
    let (status, donation, _) = post(
        &t,
        &token,
        "/api/v1/donations",
        Some("don-2"),
        &json!({ "amount_fen": 150_000, "fund_id": "fund_1", "channel": "cash",
                 "donor_participant_id": "ptc_wang", "received_at": "2024-02-02T02:00:00Z" }),
    )
    .await;
    assert_eq!(status, 201, "{donation}");
    let id = donation["donation_id"].as_str().unwrap();
    let (status, body, _) = post(
        &t,
        &token,
        &format!("/api/v1/donations/{id}/refunds"),
        Some("refund-1"),
        &json!({ "amount_fen": 30_000, "reason": "捐赠人要求" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, points) = get_auth(&t, &token, "/api/v1/participants/ptc_wang/points").await;
    assert_eq!(status, 200, "{points}");
    let explanations: Vec<&str> = points["acts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["explanation"].as_str().unwrap())
        .collect();
    let refunded = explanations
        .iter()
        .find(|e| e.contains("已撤销/退款"))
        .unwrap_or_else(|| panic!("{explanations:?}"));
    assert!(
        refunded.starts_with("已撤销/退款 ¥300.00；¥1,200.00 按每满 ¥100.00 计"),
        "{refunded}"
    );
}

#[tokio::test]
async fn the_partner_page_shows_redemption_times_in_local_time() {
    let t = TestApp::start().await;
    let (token, offer) = setup(&t).await;
    let body = json!({ "offer_id": offer, "participant_id": "ptc_wang" });
    let (status, first, _) = post(&t, &token, "/api/v1/redemptions", Some("r-1"), &body).await;
    assert_eq!(status, 201, "{first}");
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
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
            ("next", "/partner/redeem"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = browser.get(t.url("/partner/redeem")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    // The test clock stands at 2024-03-01T02:00:00Z: 10:00 in Shanghai.
    assert!(html.contains("2024-03-01 10:00"), "{html}");
    assert!(!html.contains("2024-03-01T02:00"), "{html}");
}
