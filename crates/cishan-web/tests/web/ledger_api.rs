//! The donation ledger's JSON contract over real HTTP: idempotent donations and refunds,
//! the trace, the receipt document with its proof, and the error envelope.

use serde_json::{json, Value};

use crate::common::TestApp;

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

fn donation(amount_fen: i64) -> Value {
    json!({ "amount_fen": amount_fen, "fund_id": "fund_1", "channel": "online",
            "payment_ref": "WX20231201000001", "donor_name": "王小测" })
}

#[tokio::test]
async fn a_donation_is_recorded_once_however_often_it_is_sent() {
    let t = TestApp::start().await;
    t.seed().await;
    let token = t.admin_token().await;
    let (status, first, replayed) = post(
        &t,
        &token,
        "/api/v1/donations",
        Some("key-1"),
        &donation(50_000),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert!(!replayed);
    let (status, again, replayed) = post(
        &t,
        &token,
        "/api/v1/donations",
        Some("key-1"),
        &donation(50_000),
    )
    .await;
    assert_eq!(status, 201);
    assert!(replayed);
    assert_eq!(again, first);
    let (status, body, _) = post(
        &t,
        &token,
        "/api/v1/donations",
        Some("key-1"),
        &donation(60_000),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "idempotency.key_reused");
    let (status, body, _) = post(&t, &token, "/api/v1/donations", None, &donation(1)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "Idempotency-Key");
    assert_eq!(
        t.app.store().count_rows("donations").await.unwrap(),
        3,
        "2 seeded + 1"
    );

    // Without a session nothing is recorded.
    let res = t
        .client()
        .post(t.url("/api/v1/donations"))
        .header("Idempotency-Key", "anon")
        .json(&donation(1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);

    // The trace is public and masks the donor.
    let id = first["donation_id"].as_str().unwrap();
    let (status, trace) = t.get_json(&format!("/api/v1/donations/{id}/trace")).await;
    assert_eq!(status, 200);
    assert_eq!(trace["donation"]["donor"], "王*测");
    assert_eq!(trace["remaining_fen"], 50_000);
    assert!(!trace.to_string().contains("王小测"));

    // The receipt document carries the leaf, a signed head and the inclusion proof.
    let number = first["receipt_number"].as_str().unwrap();
    let (status, doc) = t.get_json(&format!("/api/v1/receipts/{number}")).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["receipt"]["amount_fen"], 50_000);
    assert_eq!(doc["receipt"]["payer"], "王*测");
    assert!(doc["leaf"].as_str().unwrap().contains(number));
    assert!(doc["tree_head"]["signature"].as_str().is_some());
    let (status, key) = t.get_json("/api/v1/log/key").await;
    assert_eq!(status, 200);
    assert_eq!(key["algorithm"], "ed25519");

    // A refund of more than the donation is refused; a partial one reissues the receipt.
    let (status, body, _) = post(
        &t,
        &token,
        &format!("/api/v1/donations/{id}/refunds"),
        Some("r-1"),
        &json!({ "amount_fen": 50_001, "reason": "捐赠人要求" }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body, _) = post(
        &t,
        &token,
        &format!("/api/v1/donations/{id}/refunds"),
        Some("r-2"),
        &json!({ "amount_fen": 10_000, "reason": "捐赠人要求" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["net_fen"], 40_000);
    let (_, doc) = t.get_json(&format!("/api/v1/receipts/{number}")).await;
    assert_eq!(doc["status"], "voided");
}

#[tokio::test]
async fn bad_donations_get_a_chinese_message_naming_the_field() {
    let t = TestApp::start().await;
    t.seed().await;
    let token = t.admin_token().await;
    let cases = [
        (
            json!({ "amount_fen": -5, "fund_id": "fund_1", "channel": "cash" }),
            "amount_fen",
        ),
        (json!({ "amount_fen": 100, "channel": "cash" }), "fund_id"),
        (
            json!({ "amount_fen": 100, "fund_id": "fund_1", "channel": "wire" }),
            "channel",
        ),
        (
            json!({ "amount_fen": 100, "fund_id": "nope", "channel": "cash" }),
            "fund_id",
        ),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let (status, res, _) = post(
            &t,
            &token,
            "/api/v1/donations",
            Some(&format!("bad-{i}")),
            body,
        )
        .await;
        assert_eq!(status, 400, "{res}");
        assert_eq!(res["error"]["field"], *field, "{res}");
        let message = res["error"]["message"].as_str().unwrap();
        assert!(message
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
    }
    // A float amount is refused by the JSON reader, not rounded.
    let (status, body, _) = post(
        &t,
        &token,
        "/api/v1/donations",
        Some("float"),
        &json!({ "amount_fen": 100.5, "fund_id": "fund_1", "channel": "cash" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "amount_fen", "{body}");
    // A missing field, an unknown one and a wrong type each name the field and say what to do.
    for (i, (body, code, field, words)) in [
        (json!({ "fund_id": "fund_1", "channel": "cash" }), "request.field_missing", "amount_fen", "缺少必填字段"),
        (json!({ "amount_fen": 100, "fund_id": "fund_1", "channel": "cash", "foo": 1 }), "request.field_unknown", "foo", "不认识的字段"),
        (json!({ "amount_fen": 100, "fund_id": "fund_1", "channel": "cash", "anonymous": "yes" }), "request.json_invalid", "anonymous", "true 或 false"),
    ]
    .iter()
    .enumerate()
    {
        let (status, res, _) =
            post(&t, &token, "/api/v1/donations", Some(&format!("shape-{i}")), body).await;
        assert_eq!(status, 400, "{res}");
        assert_eq!(res["error"]["code"], *code, "{res}");
        assert_eq!(res["error"]["field"], *field, "{res}");
        assert!(res["error"]["message"].as_str().unwrap().contains(words), "{res}");
    }
    assert_eq!(t.app.store().count_rows("donations").await.unwrap(), 2);
}

#[tokio::test]
async fn a_receipt_carries_a_signed_code_that_a_scan_answers() {
    let t = TestApp::start().await;
    t.seed().await;
    let token = t.admin_token().await;
    let (status, first, _) = post(
        &t,
        &token,
        "/api/v1/donations",
        Some("key-1"),
        &donation(50_000),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let number = first["receipt_number"].as_str().unwrap();
    let donation_id = first["donation_id"].as_str().unwrap();

    // The document carries the receipt's long-lived code: the same every time it is fetched.
    let (status, doc) = t.get_json(&format!("/api/v1/receipts/{number}")).await;
    assert_eq!(status, 200, "{doc}");
    let code = doc["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("CS1."), "{code}");
    let (_, again) = t.get_json(&format!("/api/v1/receipts/{number}")).await;
    assert_eq!(again["code"], doc["code"]);
    // It verifies offline with the code key, as a receipt code for this number.
    let (_, key) = t.get_json("/api/v1/codes/key").await;
    let key = cishan_core::code::parse_verifying_key(key["public_key"].as_str().unwrap()).unwrap();
    let now = "2024-03-01T02:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let claim =
        cishan_core::code::verify(&code, &key, now, cishan_core::code::CodeKind::Receipt).unwrap();
    assert_eq!(claim.subject, number);
    assert_eq!(claim.valid_seconds, 0, "a receipt code does not expire");

    // The printable page shows the same code, and its QR's link to the trace contains it.
    let html = t
        .get(&format!("/receipts/{number}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("id=\"receipt-code\">{code}<")),
        "{html}"
    );

    // Scanning the code, or the QR's text (the trace link with the code in it), answers the
    // receipt number, its status, and where to see it.
    let scan = |payload: String| {
        let req = t
            .client()
            .post(t.url("/api/v1/scan"))
            .bearer_auth(&token)
            .json(&json!({ "payload": payload }));
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let qr_text = format!("{}/trace/{donation_id}?code={code}", t.base);
    for payload in [code.clone(), qr_text] {
        let (status, body) = scan(payload).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["kind"], "receipt");
        assert_eq!(body["subject"], number);
        assert_eq!(body["link"], format!("/receipts/{number}"));
        assert_eq!(body["trace_link"], format!("/trace/{donation_id}"));
        assert_eq!(body["status"], "issued");
        assert!(body["participant"].is_null());
    }
    // The links lead to the receipt and the trace.
    assert_eq!(t.get(&format!("/receipts/{number}")).await.status(), 200);
    assert_eq!(t.get(&format!("/trace/{donation_id}")).await.status(), 200);

    // A tampered code is refused as forged.
    let mut chars: Vec<char> = code.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let (status, body) = scan(chars.into_iter().collect()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "code.forged");

    // A refund voids the receipt: its code still verifies, and the scan says it is voided.
    let (status, body, _) = post(
        &t,
        &token,
        &format!("/api/v1/donations/{donation_id}/refunds"),
        Some("r-1"),
        &json!({ "amount_fen": 10_000, "reason": "捐赠人要求" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = scan(code).await;
    assert_eq!(body["status"], "voided");
}

/// Two accounts that happen to send the same key (offices numbering their requests 1, 2, 3…)
/// each record their own donation; neither sees the other's result.
#[tokio::test]
async fn an_idempotency_key_belongs_to_the_account_that_sent_it() {
    let t = TestApp::start().await;
    t.seed().await;
    t.create_staff().await;
    let admin = t.admin_token().await;
    let staff = t.token("staff", crate::common::STAFF_PASSWORD).await;
    let body = json!({ "amount_fen": 10_000, "fund_id": "fund_1", "channel": "cash" });
    let (status, first, replayed) = post(&t, &admin, "/api/v1/donations", Some("1"), &body).await;
    assert_eq!(status, 201, "{first}");
    assert!(!replayed);
    let (status, second, replayed) = post(&t, &staff, "/api/v1/donations", Some("1"), &body).await;
    assert_eq!(status, 201, "{second}");
    assert!(!replayed, "another account's key must not replay: {second}");
    assert_ne!(first["donation_id"], second["donation_id"]);
    // The same account retrying still gets its own first result.
    let (status, again, replayed) = post(&t, &staff, "/api/v1/donations", Some("1"), &body).await;
    assert_eq!(status, 201);
    assert!(replayed);
    assert_eq!(again, second);
    assert_eq!(t.app.store().count_rows("donations").await.unwrap(), 2 + 2);

    // Two keys on one request: refused, nothing recorded.
    let res = t
        .client()
        .post(t.url("/api/v1/donations"))
        .bearer_auth(&admin)
        .header("Idempotency-Key", "2")
        .header("Idempotency-Key", "3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let error: Value = res.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency.key_repeated");
    assert_eq!(t.app.store().count_rows("donations").await.unwrap(), 2 + 2);
}
