//! The JSON API under /api/v1.

use serde_json::{json, Value};

use crate::common::{TestApp, ADMIN_PASSWORD, STAFF_PASSWORD};

fn assert_envelope(body: &Value, code: &str, field: Option<&str>) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["field"].as_str(), field, "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "message is Chinese: {message}"
    );
}

#[tokio::test]
async fn region_lists_every_division() {
    let t = TestApp::start().await;
    let (status, body) = t.get_json("/api/v1/region").await;
    assert_eq!(status, 200);
    assert_eq!(body["code"], "330302");
    assert_eq!(body["name"], "鹿城区");
    assert_eq!(body["timezone"], "Asia/Shanghai");
    assert!(body["name_en"].as_str().unwrap().contains("Lucheng"));
    let divisions = body["divisions"].as_array().unwrap();
    let count = |levels: &[&str]| {
        divisions
            .iter()
            .filter(|d| levels.contains(&d["level"].as_str().unwrap()))
            .count()
    };
    assert_eq!(count(&["district"]), 1);
    assert_eq!(count(&["street"]), 12);
    assert_eq!(count(&["town"]), 2);
    assert_eq!(count(&["community", "village"]), 171);
    let district = divisions.iter().find(|d| d["level"] == "district").unwrap();
    assert_eq!(district["code"], "330302");
    let street = divisions.iter().find(|d| d["level"] == "street").unwrap();
    assert_eq!(street["parent"], "330302");
    for key in ["code", "name", "level", "parent"] {
        assert!(street.get(key).is_some(), "division has {key}");
    }
}

#[tokio::test]
async fn indicators_carry_the_plan_targets() {
    let t = TestApp::start().await;
    let (status, body) = t.get_json("/api/v1/indicators?year=2021").await;
    assert_eq!(status, 200);
    assert_eq!(body["year"], 2021);
    let list = body["indicators"].as_array().unwrap();
    assert_eq!(list.len(), 28);
    let codes: Vec<&str> = list.iter().map(|i| i["code"].as_str().unwrap()).collect();
    for code in ["1", "25", "T1", "T2", "T3"] {
        assert!(codes.contains(&code), "{code} listed");
    }
    let by = |code: &str| list.iter().find(|i| i["code"] == code).unwrap();
    let eight = by("8");
    assert_eq!(eight["target"]["comparator"], "ge");
    assert_eq!(eight["target"]["value"], 90.6);
    assert_eq!(eight["target"]["raw"], "≥90.6");
    let two = by("2");
    assert_eq!(two["target"]["comparator"], "increase");
    assert_eq!(two["target"]["value"], Value::Null);
    for i in list {
        for key in [
            "code",
            "name",
            "unit",
            "category",
            "owner",
            "better",
            "target",
            "actual",
            "actual_source",
            "status",
        ] {
            assert!(i.get(key).is_some(), "{key} in {i}");
        }
        assert!(["higher", "lower"].contains(&i["better"].as_str().unwrap()));
        assert!(["met", "not_met", "no_data"].contains(&i["status"].as_str().unwrap()));
        let comparator = &i["target"]["comparator"];
        assert!(
            comparator.is_null()
                || ["eq", "ge", "le", "about", "increase", "actual"]
                    .contains(&comparator.as_str().unwrap()),
            "{comparator}"
        );
    }
    // No year: the pack's last year.
    let (_, latest) = t.get_json("/api/v1/indicators").await;
    let last = t.app.pack().years.last().copied().unwrap();
    assert_eq!(latest["year"], last);
}

#[tokio::test]
async fn an_unknown_or_malformed_year_is_a_field_error() {
    let t = TestApp::start().await;
    let (status, body) = t.get_json("/api/v1/indicators?year=1999").await;
    assert_eq!(status, 400);
    assert_envelope(&body, "indicator.year_unknown", Some("year"));
    let (status, body) = t.get_json("/api/v1/indicators?year=abc").await;
    assert_eq!(status, 400);
    assert_envelope(&body, "request.year_invalid", Some("year"));
}

#[tokio::test]
async fn an_admin_sets_an_actual_and_the_status_follows() {
    let t = TestApp::start().await;
    let token = t.admin_token().await;
    assert_eq!(t.indicator("1", 2023).await["status"], "no_data");
    assert_eq!(t.indicator("1", 2023).await["target"]["value"], 11.7);

    let (status, body) = t
        .put_actual(Some(&token), "1", "2023", json!({"value": "12"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], "1");
    assert_eq!(body["status"], "met");
    assert_eq!(body["actual"], 12.0);
    assert_eq!(body["actual_source"], "entered");
    assert_eq!(t.indicator("1", 2023).await["status"], "met");

    // A JSON number is accepted too.
    let (status, body) = t
        .put_actual(Some(&token), "1", "2023", json!({"value": 11}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "not_met");
    assert_eq!(t.indicator("1", 2023).await["status"], "not_met");

    let journal = t.app.store().recent_journal(10).await.unwrap();
    let set: Vec<_> = journal
        .iter()
        .filter(|e| e.kind == "indicator.actual_set")
        .collect();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|e| e.actor == t.admin.user_id));
    assert_eq!(set[0].subject, "indicator_1_2023");
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_header() {
    let t = TestApp::start().await;
    let session: Value = t
        .client()
        .post(t.url("/api/v1/sessions"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cookie = format!("cishan_session={}", session["token"].as_str().unwrap());
    let csrf = session["csrf_token"].as_str().unwrap();
    assert!(session["expires_at"]
        .as_str()
        .unwrap()
        .starts_with("2024-03-01T14:00:00"));
    let put = |header: Option<&str>| {
        let mut req = t
            .client()
            .put(t.url("/api/v1/indicators/1/actuals/2023"))
            .header("cookie", &cookie)
            .json(&json!({"value": "12"}));
        if let Some(h) = header {
            req = req.header("x-csrf-token", h);
        }
        req.send()
    };
    let res = put(None).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_envelope(&res.json().await.unwrap(), "csrf.invalid", None);
    let res = put(Some("wrong-token")).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        t.indicator("1", 2023).await["status"],
        "no_data",
        "nothing changed"
    );
    let res = put(Some(csrf)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(t.indicator("1", 2023).await["status"], "met");
}

#[tokio::test]
async fn only_signed_in_admins_may_set_actuals() {
    let t = TestApp::start().await;
    // Anonymous.
    let (status, body) = t
        .put_actual(None, "1", "2023", json!({"value": "12"}))
        .await;
    assert_eq!(status, 401);
    assert_envelope(&body, "auth.required", None);
    // A token that is not a session.
    let (status, body) = t
        .put_actual(Some("not-a-token"), "1", "2023", json!({"value": "12"}))
        .await;
    assert_eq!(status, 401);
    assert_envelope(&body, "auth.token_invalid", None);
    // Staff.
    t.create_staff().await;
    let staff = t.token("staff", STAFF_PASSWORD).await;
    let (status, body) = t
        .put_actual(Some(&staff), "1", "2023", json!({"value": "12"}))
        .await;
    assert_eq!(status, 403);
    assert_envelope(&body, "auth.forbidden", None);
    assert_eq!(t.indicator("1", 2023).await["status"], "no_data");
}

#[tokio::test]
async fn bad_values_are_refused_with_the_field() {
    let t = TestApp::start().await;
    let token = t.admin_token().await;
    for (value, code) in [
        ("abc", "indicator.value_invalid"),
        ("1.2.3", "indicator.value_invalid"),
        ("", "indicator.value_missing"),
        ("-5", "indicator.value_negative"),
        ("92,50", "indicator.value_comma"),
    ] {
        let (status, body) = t
            .put_actual(Some(&token), "1", "2023", json!({ "value": value }))
            .await;
        assert_eq!(status, 400, "{value}: {body}");
        assert_envelope(&body, code, Some("value"));
    }
    let (status, body) = t.put_actual(Some(&token), "1", "2023", json!({})).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "request.field_missing", Some("value"));
    let (status, body) = t
        .put_actual(Some(&token), "1", "2023", json!({"value": [1]}))
        .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "indicator.value_invalid", Some("value"));
    // Wrong year, unknown indicator, computed indicator.
    let (status, body) = t
        .put_actual(Some(&token), "1", "20x3", json!({"value": "1"}))
        .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "request.year_invalid", Some("year"));
    let (status, body) = t
        .put_actual(Some(&token), "1", "1990", json!({"value": "1"}))
        .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "indicator.year_out_of_range", Some("year"));
    let (status, body) = t
        .put_actual(Some(&token), "99", "2023", json!({"value": "1"}))
        .await;
    assert_eq!(status, 404);
    assert_envelope(&body, "indicator.not_found", None);
    let (status, body) = t
        .put_actual(Some(&token), "T3", "2023", json!({"value": "1"}))
        .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "indicator.computed", Some("value"));
    let journal = t.app.store().recent_journal(50).await.unwrap();
    assert!(journal.iter().all(|e| e.kind != "indicator.actual_set"));
}

#[tokio::test]
async fn malformed_bodies_get_the_envelope() {
    let t = TestApp::start().await;
    let token = t.admin_token().await;
    let res = t
        .client()
        .put(t.url("/api/v1/indicators/1/actuals/2023"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_envelope(&res.json().await.unwrap(), "request.json_invalid", None);
    let res = t
        .client()
        .put(t.url("/api/v1/indicators/1/actuals/2023"))
        .bearer_auth(&token)
        .body("value=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_envelope(&res.json().await.unwrap(), "request.content_type", None);
    let huge = format!("{{\"username\": \"{}\"}}", "a".repeat(100 * 1024));
    let res = t
        .client()
        .post(t.url("/api/v1/sessions"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_envelope(&res.json().await.unwrap(), "request.too_large", None);
}

#[tokio::test]
async fn sessions_open_and_close() {
    let t = TestApp::start().await;
    let res = t
        .client()
        .post(t.url("/api/v1/sessions"))
        .json(&json!({"username": "admin", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_envelope(
        &res.json().await.unwrap(),
        "auth.bad_credentials",
        Some("password"),
    );
    let res = t
        .client()
        .post(t.url("/api/v1/sessions"))
        .json(&json!({"username": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_envelope(
        &res.json().await.unwrap(),
        "request.field_missing",
        Some("password"),
    );

    let token = t.admin_token().await;
    let res = t
        .client()
        .delete(t.url("/api/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = t
        .put_actual(Some(&token), "1", "2023", json!({"value": "1"}))
        .await;
    assert_eq!(status, 401, "the token no longer works");
}

#[tokio::test]
async fn disclosure_summary_and_lists() {
    let t = TestApp::start().await;
    t.seed().await;
    let (status, summary) = t.get_json("/api/v1/disclosure/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        summary,
        json!({"donors": 2, "donated_fen": 223_456, "people_helped": 3, "projects": 1, "organizations": 2})
    );

    let (status, page) = t.get_json("/api/v1/organizations?per_page=1").await;
    assert_eq!(status, 200);
    assert_eq!(page["page"], 1);
    assert_eq!(page["per_page"], 1);
    assert_eq!(page["next_page"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page2) = t.get_json("/api/v1/organizations?page=2&per_page=1").await;
    assert_eq!(page2["next_page"], Value::Null);
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_ne!(page["items"][0]["id"], page2["items"][0]["id"]);

    let (status, org) = t.get_json("/api/v1/organizations/org_1").await;
    assert_eq!(status, 200);
    assert_eq!(org["organization"]["donated_fen"], 223_456);
    assert_eq!(org["funds"][0]["name"], "助学基金");
    assert_eq!(org["projects"][0]["id"], "prj_1");

    let (status, projects) = t.get_json("/api/v1/projects").await;
    assert_eq!(status, 200);
    assert_eq!(projects["items"][0]["raised_fen"], 223_456);
    let (status, project) = t.get_json("/api/v1/projects/prj_1").await;
    assert_eq!(status, 200);
    assert_eq!(project["goal_fen"], 1_000_000);
    assert_eq!(project["disbursed_fen"], 50_000);
    assert_eq!(project["people_helped"], 3);

    let (status, body) = t.get_json("/api/v1/projects/prj_missing").await;
    assert_eq!(status, 404);
    assert_envelope(&body, "project.not_found", None);
    let (status, body) = t.get_json("/api/v1/organizations/org_missing").await;
    assert_eq!(status, 404);
    assert_envelope(&body, "organization.not_found", None);
}

#[tokio::test]
async fn bad_paging_names_the_field() {
    let t = TestApp::start().await;
    for (query, field) in [
        ("page=x", "page"),
        ("page=0", "page"),
        ("per_page=1000", "per_page"),
        ("per_page=abc", "per_page"),
    ] {
        let (status, body) = t.get_json(&format!("/api/v1/projects?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let t = TestApp::start().await;
    let (status, body) = t.get_json("/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_envelope(&body, "route.not_found", None);
    let res = t
        .client()
        .delete(t.url("/api/v1/region"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_envelope(
        &res.json().await.unwrap(),
        "request.method_not_allowed",
        None,
    );
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let t = TestApp::start().await;
    let res = t.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let routes = cishan_web::route_list();
    assert!(routes.len() >= 20);
    for (method, path) in routes {
        let op = &doc["paths"][path][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(op["responses"].is_object(), "{method} {path} has responses");
    }
    // Response schemas are generated from the DTOs.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "IndicatorDto",
        "RegionDto",
        "SummaryDto",
        "ErrorBody",
        "ProjectDto",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
