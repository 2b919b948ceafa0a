//! The ledger pages (一扫清) through real HTTP: recording a donation through the staff form (once,
//! however often it is submitted), refusing a bad amount next to its field, the public trace and
//! receipt, the receipt lookup, refunds, disbursements with evidence and their reversal.

use cishan_store::{format_instant, FundRow, OrganizationRow, ProjectRow};
use sha2::{Digest, Sha256};

use crate::common::{at, input_value, TestApp, ADMIN_PASSWORD, STAFF_PASSWORD};

const PROJECT: &str = "project:prj_l";
const FUND: &str = "fund:fund_l";

/// One organization with a fund and a project to give to.
async fn seed(t: &TestApp) {
    let created = format_instant(at("2023-01-01T00:00:00Z"));
    let mut tx = t.app.store().begin().await.unwrap();
    tx.insert(&OrganizationRow {
        id: "org_l".into(),
        participant_id: None,
        name: "鹿城区慈善总会".into(),
        credit_code: "91330302MA00000011".into(),
        kind: "foundation".into(),
        division_code: None,
        registered_on: "2021-05-01".into(),
        created_at: created.clone(),
        is_charity: true,
        public_fundraising: true,
        synthetic: true,
    })
    .await
    .unwrap();
    tx.insert(&FundRow {
        id: "fund_l".into(),
        org_id: "org_l".into(),
        name: "助学基金".into(),
        created_at: created.clone(),
    })
    .await
    .unwrap();
    tx.insert(&ProjectRow {
        id: "prj_l".into(),
        org_id: "org_l".into(),
        fund_id: Some("fund_l".into()),
        name: "爱心助学".into(),
        summary: "资助困难家庭学生".into(),
        goal_fen: 1_000_000,
        state: "fundraising".into(),
        division_code: None,
        created_at: created,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn assert_page(html: &str) {
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese page");
    assert!(html.contains("width=device-width, initial-scale=1"));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("style=\""), "no inline styles");
}

/// Signs in through the login form; returns the client holding the session cookie.
async fn sign_in(t: &TestApp, username: &str, password: &str) -> reqwest::Client {
    let browser = t.browser();
    let form = browser
        .get(t.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = browser
        .post(t.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &input_value(&form, "csrf")),
            ("next", "/admin/donations/new"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    browser
}

async fn staff(t: &TestApp) -> reqwest::Client {
    t.create_staff().await;
    sign_in(t, "staff", STAFF_PASSWORD).await
}

async fn page(browser: &reqwest::Client, t: &TestApp, path: &str) -> (u16, String) {
    let res = browser.get(t.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The donation form's fields for a walk-in cash donation, with the page's CSRF token and key.
fn donation_fields(form_html: &str, amount: &str, target: &str) -> Vec<(String, String)> {
    [
        ("csrf", input_value(form_html, "csrf")),
        ("idem", input_value(form_html, "idem")),
        ("kind", "money".into()),
        ("amount", amount.into()),
        ("target", target.into()),
        ("donor_participant_id", String::new()),
        ("donor_name", "李四".into()),
        ("channel", "cash".into()),
        ("payment_ref", String::new()),
        ("goods_item", String::new()),
        ("goods_quantity", String::new()),
        ("goods_unit", String::new()),
        ("valued_by", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn donations(t: &TestApp) -> i64 {
    t.app.store().table_counts().await.unwrap().donations
}

/// Records a donation through the form; returns its id.
async fn record(
    t: &TestApp,
    browser: &reqwest::Client,
    amount: &str,
    target: &str,
    extra: &[(&str, &str)],
) -> String {
    let (_, form) = page(browser, t, "/admin/donations/new").await;
    let mut fields = donation_fields(&form, amount, target);
    for (k, v) in extra {
        fields.retain(|(name, _)| name != k);
        fields.push(((*k).to_owned(), (*v).to_owned()));
    }
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let to = location(&res);
    let id = to
        .strip_prefix("/admin/donations/")
        .and_then(|rest| rest.strip_suffix("?recorded=1"))
        .unwrap_or_else(|| panic!("to the donation's page, got {to}"));
    id.to_owned()
}

#[tokio::test]
async fn a_donation_recorded_through_the_form_is_recorded_once() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let (status, form) = page(&browser, &t, "/admin/donations/new").await;
    assert_eq!(status, 200);
    assert_page(&form);
    assert!(form.contains(&format!("value=\"{FUND}\"")), "funds offered");
    assert!(
        form.contains(&format!("value=\"{PROJECT}\"")),
        "projects offered"
    );

    // The same form sent twice (a double click, a resubmission): one donation.
    let fields = donation_fields(&form, "￥1,234.56", PROJECT);
    let mut locations = Vec::new();
    for _ in 0..2 {
        let res = browser
            .post(t.url("/admin/donations/new"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        locations.push(location(&res));
    }
    assert_eq!(
        locations[0], locations[1],
        "the retry lands on the same donation"
    );
    assert_eq!(donations(&t).await, 1, "recorded once");

    // The confirmation: the receipt number, links to the receipt and the trace.
    let (status, confirmation) = page(&browser, &t, &locations[0]).await;
    assert_eq!(status, 200);
    assert_page(&confirmation);
    let id = locations[0]
        .trim_start_matches("/admin/donations/")
        .trim_end_matches("?recorded=1");
    let trace = t.app.trace(id).await.unwrap();
    assert_eq!(trace.donation.amount_fen, 123_456);
    let number = &trace.receipts[0].number;
    assert!(confirmation.contains("捐赠已登记"));
    assert!(confirmation.contains(&format!("id=\"receipt-number\">{number}<")));
    assert!(confirmation.contains(&format!("href=\"/receipts/{number}\"")));
    assert!(confirmation.contains(&format!("href=\"/trace/{id}\"")));

    // A second, new form gets a new key and records a second donation.
    record(&t, &browser, "10", FUND, &[]).await;
    assert_eq!(donations(&t).await, 2);
}

#[tokio::test]
async fn a_bad_amount_is_refused_next_to_its_field_and_records_nothing() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let (_, form) = page(&browser, &t, "/admin/donations/new").await;
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&donation_fields(&form, "1.005", PROJECT))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert_page(&html);
    let field = html.find("id=\"amount\"").expect("the amount field");
    let error = html
        .find("id=\"amount-error\"")
        .expect("an error for the amount field");
    assert!(error > field, "the message follows its field");
    assert!(
        html[error..].starts_with("id=\"amount-error\" role=\"alert\">金额最多保留两位小数"),
        "Chinese message next to the amount: {}",
        &html[error..error + 200]
    );
    assert!(
        html.contains("name=\"amount\" value=\"1.005\""),
        "the value is kept"
    );
    assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"amount-error\""));
    assert!(
        html.contains("value=\"project:prj_l\" selected"),
        "the chosen project is kept"
    );
    assert_eq!(donations(&t).await, 0, "nothing recorded");

    // Unknown donor: the app's refusal lands next to its field too.
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&{
            let mut f = donation_fields(&form, "100", PROJECT);
            f.retain(|(k, _)| k != "donor_name" && k != "donor_participant_id");
            f.push(("donor_participant_id".into(), "ptc_nobody".into()));
            f
        })
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"donor_participant_id-error\""), "{html}");
    assert_eq!(donations(&t).await, 0);
}

#[tokio::test]
async fn an_amount_over_the_limit_is_refused_in_yuan_on_the_donation_and_refund_forms() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let (_, form) = page(&browser, &t, "/admin/donations/new").await;
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&donation_fields(&form, "1,000,000,001", PROJECT))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    let error = html
        .find("id=\"amount-error\"")
        .expect("next to the amount");
    let message = html[error..].split("</").next().unwrap();
    assert!(message.contains("¥1,000,000,000.00"), "{message}");
    assert!(
        !html.contains("以分为单位"),
        "no API advice on a form in yuan"
    );
    assert_eq!(donations(&t).await, 0);

    let id = record(&t, &browser, "1,000", PROJECT, &[]).await;
    let (_, html) = page(&browser, &t, &format!("/admin/donations/{id}")).await;
    let res = browser
        .post(t.url(&format!("/admin/donations/{id}")))
        .form(&[
            ("csrf", input_value(&html, "csrf")),
            ("idem", input_value(&html, "idem")),
            ("amount", "2,000,000,000".to_owned()),
            ("reason", "捐赠人要求退回".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    let refused = res.text().await.unwrap();
    let error = refused
        .find("id=\"amount-error\"")
        .expect("next to the amount");
    let message = refused[error..].split("</").next().unwrap();
    assert!(message.contains("¥1,000,000,000.00"), "{message}");
    assert!(
        !refused.contains("以分为单位"),
        "no API advice on a form in yuan"
    );
}

#[tokio::test]
async fn a_payment_reference_already_recorded_is_refused_on_the_form() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let transfer = [("channel", "bank_transfer"), ("payment_ref", "BT-001")];
    let first = record(&t, &browser, "100", PROJECT, &transfer).await;
    // The form reloaded: a fresh key, the same transfer.
    let (_, form) = page(&browser, &t, "/admin/donations/new").await;
    let mut fields = donation_fields(&form, "100", PROJECT);
    fields.retain(|(k, _)| k != "channel" && k != "payment_ref");
    for (k, v) in transfer {
        fields.push((k.to_owned(), v.to_owned()));
    }
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let html = res.text().await.unwrap();
    let error = html
        .find("id=\"payment_ref-error\"")
        .expect("next to the payment reference");
    assert!(html[error..].contains(&first), "names {first}");
    assert_eq!(donations(&t).await, 1);
}

#[tokio::test]
async fn recording_needs_a_session_and_the_csrf_token() {
    let t = TestApp::start().await;
    seed(&t).await;
    let res = t.get("/admin/donations/new").await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        "/login?next=%2Fadmin%2Fdonations%2Fnew",
        "to the login form and back"
    );
    let browser = staff(&t).await;
    let (_, form) = page(&browser, &t, "/admin/donations/new").await;
    let mut fields = donation_fields(&form, "100", PROJECT);
    fields.retain(|(k, _)| k != "csrf");
    let res = browser
        .post(t.url("/admin/donations/new"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(donations(&t).await, 0);
    // Staff may record but not create matching pools.
    let (status, _) = page(&browser, &t, "/admin/pools/new").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_trace_of_an_anonymous_donation_never_names_the_donor() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let id = record(
        &t,
        &browser,
        "500",
        PROJECT,
        &[("donor_name", "张三丰"), ("anonymous", "1")],
    )
    .await;
    let trace = t.app.trace(&id).await.unwrap();
    let number = trace.receipts[0].number.clone();
    for path in [format!("/trace/{id}"), format!("/receipts/{number}")] {
        // Read as the public reads it: no session.
        let res = t.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
        let html = res.text().await.unwrap();
        assert_page(&html);
        assert!(html.contains("匿名"), "{path} says 匿名");
        for leak in ["张三丰", "张*丰", "三丰", "张"] {
            assert!(!html.contains(leak), "{path} must not contain {leak}");
        }
    }
    let html = t.get(&format!("/trace/{id}")).await.text().await.unwrap();
    assert!(html.contains("¥500.00"), "the amount");
    assert!(html.contains("爱心助学"), "the project by name");
    assert!(html.contains(&format!("href=\"/receipts/{number}\"")));
}

#[tokio::test]
async fn the_receipt_shows_the_amount_in_capitals_and_a_qr_code() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let id = record(&t, &browser, "1,234.56", PROJECT, &[]).await;
    let trace = t.app.trace(&id).await.unwrap();
    let receipt = &trace.receipts[0];
    let res = t.get(&format!("/receipts/{}", receipt.number)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert_page(&html);
    assert!(html.contains("公益事业捐赠票据"));
    assert!(html.contains("壹仟贰佰叁拾肆元伍角陆分"), "大写 amount");
    assert!(html.contains("¥1,234.56"));
    assert!(html.contains("<svg"), "a QR code");
    assert!(!html.contains("<?xml"), "inline SVG without a prolog");
    assert!(
        html.contains(&format!("/trace/{id}")),
        "linking to the trace"
    );
    assert!(html.contains(&receipt.check_code));
    assert!(
        html.contains("91330302MA00000011"),
        "the issuer's credit code"
    );
    assert!(html.contains("鹿城区慈善总会"));
    assert!(!html.contains("李四"), "the payer is masked");
    assert!(html.contains("有效"));
    assert_eq!(t.get("/receipts/2024-NOPE-0000001").await.status(), 404);
}

#[tokio::test]
async fn the_receipt_lookup_refuses_a_wrong_check_code_like_an_unknown_number() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let id = record(&t, &browser, "88", PROJECT, &[]).await;
    let receipt = t.app.trace(&id).await.unwrap().receipts[0].clone();

    let res = t.get("/receipts/lookup").await;
    assert_eq!(res.status(), 200);
    assert_page(&res.text().await.unwrap());

    let lookup = |number: &str, code: &str| format!("/receipts/lookup?number={number}&code={code}");
    let res = t
        .get(&lookup(&receipt.number, &receipt.check_code.to_uppercase()))
        .await;
    assert_eq!(res.status(), 303, "the right code opens the receipt");
    assert_eq!(location(&res), format!("/receipts/{}", receipt.number));

    // A wrong code and an unknown number get the same answer.
    let wrong: String = receipt
        .check_code
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let mut answers = Vec::new();
    for (number, code) in [
        (receipt.number.as_str(), wrong.as_str()),
        ("2024-MA0000001-9999999", receipt.check_code.as_str()),
    ] {
        let res = t.get(&lookup(number, code)).await;
        let status = res.status().as_u16();
        let html = res.text().await.unwrap();
        let start = html.find("id=\"form-error\"").expect("refused");
        let end = start + html[start..].find("</p>").unwrap();
        answers.push((status, html[start..end].to_owned()));
        assert!(
            html.contains(&format!("value=\"{number}\"")),
            "the number is kept"
        );
    }
    assert_eq!(answers[0], answers[1], "no oracle");
    assert_eq!(answers[0].0, 404);
    assert!(answers[0].1.contains("不匹配"));

    // A malformed code is refused next to its field.
    let res = t.get(&lookup(&receipt.number, "xyz")).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("id=\"code-error\""));
}

#[tokio::test]
async fn a_refund_voids_the_receipt_and_the_trace_shows_the_replacement() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let id = record(&t, &browser, "1,000", PROJECT, &[]).await;
    let (status, html) = page(&browser, &t, &format!("/admin/donations/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"refund-form\""));

    // Too much: refused next to the amount, nothing changes.
    let refund = |amount: &str, html: &str| -> Vec<(String, String)> {
        vec![
            ("csrf".into(), input_value(html, "csrf")),
            ("idem".into(), input_value(html, "idem")),
            ("amount".into(), amount.into()),
            ("reason".into(), "捐赠人要求退回".into()),
        ]
    };
    let res = browser
        .post(t.url(&format!("/admin/donations/{id}")))
        .form(&refund("2,000", &html))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let refused = res.text().await.unwrap();
    assert!(refused.contains("id=\"amount-error\""), "{refused}");
    assert!(refused.contains("name=\"amount\" value=\"2,000\""));

    let res = browser
        .post(t.url(&format!("/admin/donations/{id}")))
        .form(&refund("300.00", &refused))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("/admin/donations/{id}?refunded=1"));

    let trace = t.app.trace(&id).await.unwrap();
    assert_eq!(trace.refunded_fen, 30_000);
    let (old, new) = (&trace.receipts[0].number, &trace.receipts[1].number);
    let html = t.get(&format!("/trace/{id}")).await.text().await.unwrap();
    assert!(html.contains("已作废"));
    assert!(html.contains(&format!("由 <a href=\"/receipts/{new}\">{new}</a> 替代")));
    assert!(html.contains("¥300.00"), "the refunded amount");
    let voided = t
        .get(&format!("/receipts/{old}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(voided.contains("id=\"receipt-voided\""));
    let current = t
        .get(&format!("/receipts/{new}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(current.contains("柒佰元整"));
}

/// A multipart body with text fields and files, as a browser sends the disbursement form.
fn multipart(fields: &[(&str, String)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cishan-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"evidence\"; \
                 filename=\"{file_name}\"\r\nContent-Type: text/plain\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn allocations_and_disbursements_with_evidence_appear_on_the_trace() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = staff(&t).await;
    let id = record(&t, &browser, "1,000", FUND, &[]).await;

    // Fund → project.
    let (_, form) = page(&browser, &t, "/admin/allocations/new").await;
    let res = browser
        .post(t.url("/admin/allocations/new"))
        .form(&[
            ("csrf", input_value(&form, "csrf")),
            ("idem", input_value(&form, "idem")),
            ("fund", "fund_l".into()),
            ("amount", "600".into()),
            ("project", "prj_l".into()),
            ("weight", "1".into()),
            ("project", String::new()),
            ("weight", String::new()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let done = res.text().await.unwrap();
    assert!(done.contains("id=\"allocation-result\""), "{done}");
    assert!(done.contains("爱心助学：<strong>¥600.00</strong>"));

    // Project → supplier, with an invoice.
    let invoice = "发票：文具 200 元".as_bytes();
    let (_, form) = page(&browser, &t, "/admin/disbursements/new").await;
    let fields = [
        ("csrf", input_value(&form, "csrf")),
        ("idem", input_value(&form, "idem")),
        ("project", "prj_l".into()),
        ("recipient_kind", "supplier".into()),
        ("household_id", String::new()),
        ("recipient_participant_id", String::new()),
        ("supplier_name", "鹿城文具店".into()),
        ("people_count", "12".into()),
        ("form", "goods".into()),
        ("purpose", "charitable".into()),
        ("amount", "200".into()),
        ("description", "为受助学生购买文具".into()),
    ];
    let (content_type, body) = multipart(&fields, &[("invoice.txt", invoice)]);
    let res = browser
        .post(t.url("/admin/disbursements/new"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let to = location(&res);
    assert!(
        to.starts_with("/admin/disbursements/") && to.ends_with("?saved=1"),
        "{to}"
    );
    let sha = hex::encode(Sha256::digest(invoice));
    let (status, detail) = page(&browser, &t, &to).await;
    assert_eq!(status, 200);
    assert!(detail.contains(&sha), "the evidence hash");
    assert!(detail.contains("invoice.txt"));

    let html = t.get(&format!("/trace/{id}")).await.text().await.unwrap();
    assert!(html.contains("助学基金 → 爱心助学"), "the allocation");
    assert!(html.contains("鹿城文具店"), "the supplier");
    assert!(html.contains(&sha), "the evidence hash is public");
    assert!(html.contains("id=\"trace-disbursed\">¥200.00<"));
    assert!(html.contains("id=\"trace-remaining\">¥800.00<"));

    // A bad amount on the upload form is refused next to its field, and the file must be chosen
    // again.
    let (_, form) = page(&browser, &t, "/admin/disbursements/new").await;
    let mut bad = fields.clone();
    bad[0].1 = input_value(&form, "csrf");
    bad[1].1 = input_value(&form, "idem");
    bad[10].1 = "2OO".into();
    let (content_type, body) = multipart(&bad, &[("invoice.txt", invoice)]);
    let res = browser
        .post(t.url("/admin/disbursements/new"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"amount-error\""));
    assert!(html.contains("id=\"evidence-error\""));
    assert!(html.contains("name=\"supplier_name\" value=\"鹿城文具店\""));

    // Reversal: the money goes back to the project.
    let res = browser
        .post(t.url(to.trim_end_matches("?saved=1")))
        .form(&[
            ("csrf", input_value(&detail, "csrf")),
            ("idem", input_value(&detail, "idem")),
            ("reason", "供应商退货".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("?reversed=1"));
    let html = t.get(&format!("/trace/{id}")).await.text().await.unwrap();
    assert!(html.contains("已冲正"));
    assert!(html.contains("id=\"trace-remaining\">¥1,000.00<"));
}

#[tokio::test]
async fn an_administrator_sees_the_pool_form_and_its_errors() {
    let t = TestApp::start().await;
    seed(&t).await;
    let browser = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let (status, form) = page(&browser, &t, "/admin/pools/new").await;
    assert_eq!(status, 200);
    assert_page(&form);
    let res = browser
        .post(t.url("/admin/pools/new"))
        .form(&[
            ("csrf", input_value(&form, "csrf")),
            ("name", "九九公益日配捐".into()),
            ("sponsor_participant_id", "ptc_bank".into()),
            ("ratio_den", "1".into()),
            ("ratio_num", "1".into()),
            ("cap_per_donation", "100".into()),
            ("cap_per_donor", "200".into()),
            ("cap_total", "1,000.001".into()),
            ("project", "prj_l".into()),
            ("starts_on", "2024-09-07".into()),
            ("ends_on", "九月九日".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"cap_total-error\""));
    assert!(html.contains("id=\"ends_on-error\""));
    assert!(
        html.contains("value=\"prj_l\" selected"),
        "the chosen project is kept"
    );
    assert!(html.contains("name=\"name\" value=\"九九公益日配捐\""));
}
