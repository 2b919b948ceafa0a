//! The registry over HTTP: masked JSON and pages, 404 for another street's staff, unmasking by
//! role and reason (400 with the field, 403 without the permission), the edge list, jobs, and
//! a registration form that is refused whole.

use cishan_app::registry::StaffScopeInput;
use cishan_app::Role;
use serde_json::{json, Value};

use crate::common::{input_value, TestApp, ADMIN_PASSWORD};

const PASSWORD: &str = "staff-password-1";
const HEAD_ID: &str = "330302198001010019";
const PHONE: &str = "13812345678";

fn household() -> Value {
    json!({
        "category": "near_subsistence",
        "street_code": "330302006",
        "community_code": "330302006044",
        "head_name": "王小测",
        "head_id_number": HEAD_ID,
        "phone": PHONE,
        "address": "鹿城区五马街道解放街12号301室",
        "per_capita_income_fen": 1_200_000,
        "members": [{"name": "李测芳", "id_number": "330302198202020029", "relation": "spouse"}],
        "consent": true
    })
}

/// Staff `name` scoped to `street` (None: district-wide), and their bearer token.
async fn staff(t: &TestApp, name: &str, street: Option<&str>, can_unmask: bool) -> String {
    let actor = t
        .app
        .create_user(Some(&t.admin), name, name, PASSWORD, Role::Staff)
        .await
        .unwrap();
    t.app
        .set_staff_scope(
            &t.admin,
            &actor.user_id,
            &StaffScopeInput {
                division_code: street.map(str::to_owned),
                org_id: None,
                can_unmask,
            },
        )
        .await
        .unwrap();
    t.token(name, PASSWORD).await
}

async fn call(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = t.client().request(method, t.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn page(t: &TestApp, token: &str, path: &str) -> (u16, String) {
    let res = t
        .client()
        .get(t.url(path))
        .header("cookie", format!("cishan_session={token}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post_form(t: &TestApp, token: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = t
        .client()
        .post(t.url(path))
        .header("cookie", format!("cishan_session={token}"))
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_api_masks_scopes_and_unmasks_only_with_role_and_reason() {
    let t = TestApp::start().await;
    let wuma = staff(&t, "wuma", Some("330302006"), true).await;
    let binjiang = staff(&t, "binjiang", Some("330302024"), true).await;
    let district = staff(&t, "district", None, false).await;
    use reqwest::Method as M;

    let (status, created, _) =
        call(&t, M::POST, "/api/v1/households", &wuma, Some(household())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let text = created.to_string();
    assert!(!text.contains(HEAD_ID) && !text.contains(PHONE) && !text.contains("解放街"));
    assert_eq!(created["head_id_masked"], "330302********0019");

    // A registration without consent: 400 naming the field, nothing written.
    let mut no_consent = household();
    no_consent["consent"] = json!(false);
    no_consent["head_id_number"] = json!("330302195004040041");
    let (status, body, _) = call(&t, M::POST, "/api/v1/households", &wuma, Some(no_consent)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "consent");

    let (status, list, _) = call(&t, M::GET, "/api/v1/households", &district, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    let (_, found, _) = call(
        &t,
        M::GET,
        &format!("/api/v1/households?id_number={HEAD_ID}"),
        &wuma,
        None,
    )
    .await;
    assert_eq!(found["items"][0]["id"], id.as_str());

    // Another street: 404 for the household and its unmasking; an empty list.
    let path = format!("/api/v1/households/{id}");
    let (status, body, _) = call(&t, M::GET, &path, &binjiang, None).await;
    assert_eq!(status, 404, "{body}");
    let (_, theirs, _) = call(&t, M::GET, "/api/v1/households", &binjiang, None).await;
    assert_eq!(theirs["total"], 0);
    let unmask = format!("/api/v1/households/{id}/unmask");
    let (status, _, _) = call(
        &t,
        M::POST,
        &unmask,
        &binjiang,
        Some(json!({"reason": "核对"})),
    )
    .await;
    assert_eq!(status, 404);

    // No permission: 403. No reason: 400 naming `reason`. Both: clear text, not cached.
    let (status, _, _) = call(
        &t,
        M::POST,
        &unmask,
        &district,
        Some(json!({"reason": "核对"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body, _) = call(&t, M::POST, &unmask, &wuma, Some(json!({"reason": ""}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "reason");
    assert!(body["error"]["message"].as_str().unwrap().contains("事由"));
    let (status, clear, headers) = call(
        &t,
        M::POST,
        &unmask,
        &wuma,
        Some(json!({"reason": "核对救助资格"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(clear["head_id_number"], HEAD_ID);
    assert_eq!(headers["cache-control"], "no-store");
    let entries = t.app.store().journal_for_subject(&id).await.unwrap();
    let read = entries
        .iter()
        .find(|e| e.kind == "registry.unmasked")
        .unwrap();
    assert!(read.payload.contains("核对救助资格"));
    assert!(!read.payload.contains(HEAD_ID) && !read.payload.contains(PHONE));

    // The edge list: the household (not subsistence, ¥12,000 < ¥17,250) is on it.
    let (status, edge, _) = call(
        &t,
        M::GET,
        "/api/v1/edge-households?unreached_days=10",
        &wuma,
        None,
    )
    .await;
    assert_eq!(status, 200, "{edge}");
    assert_eq!(edge["edge_line_fen"], 1_725_000);
    // ¥5,250 under the line is 30.4% of it: the band, never the exact gap (line − gap = income).
    assert_eq!(edge["under_line"][0]["gap_band"], 4);
    assert!(edge["under_line"][0].get("gap_fen").is_none());
    assert!(!edge.to_string().contains("525000"));
    let (status, body, _) = call(
        &t,
        M::GET,
        "/api/v1/edge-households?unreached_days=ten",
        &wuma,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "unreached_days");

    // Members and anonymous callers never see the registry.
    let res = t
        .client()
        .get(t.url("/api/v1/households"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let admin = t.token("admin", ADMIN_PASSWORD).await;
    let (status, accounts, _) = call(&t, M::GET, "/api/v1/staff", &admin, None).await;
    assert_eq!(status, 200);
    assert!(accounts["items"].as_array().unwrap().len() >= 3);
    let (status, _, _) = call(&t, M::GET, "/api/v1/staff", &wuma, None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn jobs_over_the_api() {
    let t = TestApp::start().await;
    t.seed().await;
    let wuma = staff(&t, "wuma", Some("330302006"), false).await;
    use reqwest::Method as M;
    let (_, created, _) = call(&t, M::POST, "/api/v1/households", &wuma, Some(household())).await;
    let member = created["members"][0]["id"].as_str().unwrap().to_owned();
    let org = "org_1";
    let (status, job, _) = call(
        &t,
        M::POST,
        "/api/v1/jobs",
        &wuma,
        Some(
            json!({"title": "社区保洁", "org_id": org, "street_code": "330302006",
                    "kind": "welfare", "positions": 1, "wage_fen_per_month": 220000}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let place = format!("/api/v1/jobs/{job_id}/placements");
    let (status, placed, _) = call(
        &t,
        M::POST,
        &place,
        &wuma,
        Some(json!({"member_id": member})),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    let spouse = created["members"][1]["id"].as_str().unwrap().to_owned();
    let (status, body, _) = call(
        &t,
        M::POST,
        &place,
        &wuma,
        Some(json!({"member_id": spouse})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "job.full");
    let (status, report, _) = call(&t, M::GET, "/api/v1/jobs/employment", &wuma, None).await;
    assert_eq!(status, 200);
    assert_eq!(report["overall"]["employment_rate_text"], "100.0%");
    let end = format!(
        "/api/v1/jobs/placements/{}/end",
        placed["id"].as_str().unwrap()
    );
    let (status, ended, _) = call(
        &t,
        M::POST,
        &end,
        &wuma,
        Some(json!({"reason": "合同期满"})),
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["state"], "ended");
}

#[tokio::test]
async fn the_pages_mask_refuse_and_unmask_with_a_reason() {
    let t = TestApp::start().await;
    let wuma = staff(&t, "wuma", Some("330302006"), true).await;
    let binjiang = staff(&t, "binjiang", Some("330302024"), true).await;
    use reqwest::Method as M;
    let (_, created, _) = call(&t, M::POST, "/api/v1/households", &wuma, Some(household())).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, html) = page(&t, &wuma, "/admin/registry").await;
    assert_eq!(status, 200);
    assert!(html.contains("王*测") && html.contains("330302********0019"));
    assert!(!html.contains(HEAD_ID));
    let list_csrf = input_value(&html, "csrf");
    let (status, html) = page(&t, &binjiang, "/admin/registry").await;
    assert_eq!(status, 200);
    assert!(!html.contains("王*测"));
    // The exact-ID search is a POST (the number stays out of URLs), scoped like the list.
    let search = [("csrf", list_csrf.as_str()), ("id_number", HEAD_ID)];
    let (status, html) = post_form(&t, &wuma, "/admin/registry", &search).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("共 1 户") && !html.contains(HEAD_ID),
        "{html}"
    );
    let bad = [
        ("csrf", list_csrf.as_str()),
        ("id_number", "33030219800101001"),
    ];
    let (status, html) = post_form(&t, &wuma, "/admin/registry", &bad).await;
    assert_eq!(status, 400);
    assert!(html.contains("身份证"));

    let detail = format!("/admin/registry/{id}");
    let (status, html) = page(&t, &wuma, &detail).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"unmask-form\""));
    assert!(!html.contains(HEAD_ID) && !html.contains(PHONE));
    let csrf = input_value(&html, "csrf");
    let (status, _) = page(&t, &binjiang, &detail).await;
    assert_eq!(status, 404);

    let unmask = format!("/admin/registry/{id}/unmask");
    let (status, html) = post_form(&t, &wuma, &unmask, &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("查询事由") && !html.contains(HEAD_ID));
    let (status, html) = post_form(
        &t,
        &wuma,
        &unmask,
        &[("csrf", &csrf), ("reason", "入户走访联系")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains(HEAD_ID) && html.contains(PHONE));
    let (status, _) = post_form(&t, &wuma, &unmask, &[("csrf", "wrong"), ("reason", "x")]).await;
    assert_eq!(status, 403);

    // The registration form: without consent, refused whole, the field named.
    let (status, html) = page(&t, &wuma, "/admin/registry/new").await;
    assert_eq!(status, 200);
    let csrf = input_value(&html, "csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("category", "medical"),
        ("street_code", "330302006"),
        ("community_code", "330302006045"),
        ("head_name", "赵测"),
        ("head_id_number", "330302195004040041"),
        ("address", "鹿城区五马街道墨池路1号"),
        ("income_yuan", "15000"),
    ];
    let (status, html) = post_form(&t, &wuma, "/admin/registry/new", &form).await;
    assert_eq!(status, 400);
    assert!(
        html.contains("同意") && html.contains("（consent）"),
        "{html}"
    );
    let (_, list, _) = call(&t, M::GET, "/api/v1/households", &wuma, None).await;
    assert_eq!(list["total"], 1, "nothing written");
    let mut with_consent = form.to_vec();
    with_consent.push(("consent", "yes"));
    let res = t
        .client()
        .post(t.url("/admin/registry/new"))
        .header("cookie", format!("cishan_session={wuma}"))
        .form(&with_consent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    for path in ["/admin/edge", "/admin/needs", "/admin/jobs"] {
        let (status, html) = page(&t, &wuma, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains("低收入人口库"), "{path}");
    }
    let (status, html) = page(&t, &wuma, "/admin/edge").await;
    assert_eq!(status, 200);
    assert!(html.contains("¥17,250.00"), "the line is shown");
    // ¥15,000 is ¥2,250 (13%) under the line: the band is shown, never the gap.
    assert!(html.contains("低于边缘线 10%–20%"), "{html}");
    assert!(!html.contains("¥2,250.00") && !html.contains("¥5,250.00"));
    let (status, _) = page(&t, &wuma, "/admin/staff").await;
    assert_eq!(status, 403);
    let admin = t.token("admin", ADMIN_PASSWORD).await;
    let (status, html) = page(&t, &admin, "/admin/staff").await;
    assert_eq!(status, 200);
    assert!(html.contains("wuma"));
}

#[tokio::test]
async fn the_household_page_saves_a_review() {
    let t = TestApp::start().await;
    let wuma = staff(&t, "wuma", Some("330302006"), true).await;
    let (_, created, _) = call(
        &t,
        reqwest::Method::POST,
        "/api/v1/households",
        &wuma,
        Some(household()),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, html) = page(&t, &wuma, &format!("/admin/registry/{id}")).await;
    assert!(html.contains("id=\"update-form\""));
    let csrf = input_value(&html, "csrf");
    let update = format!("/admin/registry/{id}/update");
    let (status, html) = post_form(
        &t,
        &wuma,
        &update,
        &[
            ("csrf", &csrf),
            ("category", "near_subsistence"),
            ("income_yuan", "一万"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("per_capita_income_fen"), "the field is named");
    let (status, html) = post_form(
        &t,
        &wuma,
        &update,
        &[
            ("csrf", &csrf),
            ("category", "subsistence"),
            ("income_yuan", "9000"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("已保存修改") && html.contains("低于低保标准"));
    let entries = t.app.store().journal_for_subject(&id).await.unwrap();
    let e = entries
        .iter()
        .find(|e| e.kind == "registry.household_updated")
        .unwrap();
    assert!(e.payload.contains("category") && !e.payload.contains("900000"));
}
