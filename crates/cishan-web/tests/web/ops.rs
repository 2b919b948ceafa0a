//! Health, metrics, headers and limits.

use crate::common::TestApp;

#[tokio::test]
async fn healthz_reports_the_database() {
    let t = TestApp::start().await;
    let (status, body) = t.get_json("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"status": "ok", "database": "ok"}));
    t.app.close().await;
    let (status, body) = t.get_json("/healthz").await;
    assert_eq!(status, 503);
    assert_eq!(body["database"], "error");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let t = TestApp::start().await;
    // A second server in the same process has its own recorder.
    let other = TestApp::start().await;
    t.seed().await;
    assert_eq!(t.get("/api/v1/projects/prj_1").await.status(), 200);
    assert_eq!(t.get("/api/v1/region").await.status(), 200);
    assert_eq!(t.get("/api/v1/nothing").await.status(), 404);
    let res = t.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{") && l.contains("path=\"/api/v1/projects/{id}\"")
        })
        .unwrap_or_else(|| panic!("a counter for the project route:\n{text}"));
    assert!(
        line.contains("method=\"GET\"") && line.contains("status=\"200\""),
        "{line}"
    );
    assert!(line.ends_with(" 1"), "{line}");
    assert!(!text.contains("prj_1"), "raw paths never become labels");
    assert!(text.contains("path=\"unmatched\""));
    assert!(text.contains("http_request_duration_seconds_bucket{"));
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
    assert!(text.contains("cishan_journal_entries "));
    assert!(text.contains("cishan_donated_fen 223456"));
    assert!(text.contains("cishan_organizations 2"));

    let other_text = other.get("/metrics").await.text().await.unwrap();
    assert!(
        !other_text.contains("/api/v1/projects/{id}"),
        "recorders are per router"
    );
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let t = TestApp::start().await;
    for path in ["/", "/api/v1/region", "/nothing", "/login"] {
        let res = t.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
    }
}

#[tokio::test]
async fn the_stylesheet_is_served_from_the_binary() {
    let t = TestApp::start().await;
    let res = t.get("/static/app.css").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(res.text().await.unwrap().contains("@media"));
}
