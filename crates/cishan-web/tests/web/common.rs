//! `TestApp`: a running server, its `App` (to seed and inspect), and HTTP helpers.

use std::sync::Arc;

use cishan_app::{Actor, App, Config, FixedClock, Role};
use cishan_store::{
    format_instant, DisbursementRow, DonationRow, FundRow, OrganizationRow, ProjectRow,
};
use jiff::Timestamp;
use reqwest::redirect::Policy;
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "password-123456";
pub const STAFF_PASSWORD: &str = "staff-password-1";

pub struct TestApp {
    pub base: String,
    pub app: App,
    pub admin: Actor,
    /// The app's clock, for tests that let time pass.
    pub clock: Arc<FixedClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn start() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            data_dir: dir.path().into(),
        };
        let clock = Arc::new(FixedClock::new(at("2024-03-01T02:00:00Z")));
        let app = App::open(
            &config,
            cishan_core::region::embedded::lucheng(),
            clock.clone(),
        )
        .await
        .unwrap();
        let admin = app
            .create_user(None, "admin", "管理员", ADMIN_PASSWORD, Role::Admin)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(cishan_web::serve(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            app,
            admin,
            clock,
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client that keeps cookies and does not follow redirects, like a browser tab whose
    /// every step the test wants to see.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap()
    }

    /// A plain client: no cookies, no redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client().get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// A bearer token for `username` (POST /api/v1/sessions).
    pub async fn token(&self, username: &str, password: &str) -> String {
        let res = self
            .client()
            .post(self.url("/api/v1/sessions"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    pub async fn create_staff(&self) -> Actor {
        self.app
            .create_user(
                Some(&self.admin),
                "staff",
                "工作人员",
                STAFF_PASSWORD,
                Role::Staff,
            )
            .await
            .unwrap()
    }

    /// PUT an actual value with a bearer token; returns status and body.
    pub async fn put_actual(
        &self,
        token: Option<&str>,
        code: &str,
        year: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = self
            .client()
            .put(self.url(&format!("/api/v1/indicators/{code}/actuals/{year}")))
            .json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// The indicator `code` of `year` as the API reports it.
    pub async fn indicator(&self, code: &str, year: i16) -> Value {
        let (status, body) = self
            .get_json(&format!("/api/v1/indicators?year={year}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("indicator {code} is listed"))
    }

    /// Two organizations, one project with two walk-in donations (¥1,234.56 + ¥1,000.00) and
    /// one disbursement helping 3 people.
    pub async fn seed(&self) {
        let created = format_instant(at("2023-01-01T00:00:00Z"));
        let mut tx = self.app.store().begin().await.unwrap();
        for (id, name, code) in [
            ("org_1", "鹿城区慈善总会", "91330302MA00000011"),
            ("org_2", "五马街道慈善分会", "91330302MA00000022"),
        ] {
            tx.insert(&OrganizationRow {
                id: id.into(),
                participant_id: None,
                name: name.into(),
                credit_code: code.into(),
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
        }
        tx.insert(&FundRow {
            id: "fund_1".into(),
            org_id: "org_1".into(),
            name: "助学基金".into(),
            created_at: created.clone(),
        })
        .await
        .unwrap();
        tx.insert(&ProjectRow {
            id: "prj_1".into(),
            org_id: "org_1".into(),
            fund_id: Some("fund_1".into()),
            name: "爱心助学".into(),
            summary: "资助困难家庭学生".into(),
            goal_fen: 1_000_000,
            state: "fundraising".into(),
            division_code: None,
            created_at: created.clone(),
        })
        .await
        .unwrap();
        for (id, amount_fen) in [("don_1", 123_456), ("don_2", 100_000)] {
            tx.insert(&DonationRow {
                id: id.into(),
                donor_participant_id: None,
                amount_fen,
                currency: "CNY".into(),
                fund_id: None,
                project_id: Some("prj_1".into()),
                received_at: created.clone(),
                org_id: Some("org_1".into()),
                kind: "money".into(),
                channel: "cash".into(),
                ..DonationRow::default()
            })
            .await
            .unwrap();
        }
        tx.insert(&DisbursementRow {
            id: "dis_1".into(),
            project_id: "prj_1".into(),
            household_id: None,
            people_count: 3,
            amount_fen: 50_000,
            paid_at: created.clone(),
            recipient_kind: "household".into(),
            form: "cash".into(),
            purpose: "charitable".into(),
            state: "paid".into(),
            ..DisbursementRow::default()
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The value of the first `<input … name="NAME" value="…">` in a page.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input named {name} in the page"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// The `data-status` of indicator `code`'s row in a page.
pub fn row_status(html: &str, code: &str) -> String {
    let row_start = html
        .find(&format!("id=\"indicator-{code}\""))
        .unwrap_or_else(|| panic!("no row for indicator {code}"));
    let row = &html[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let marker = "data-status=\"";
    let start = row.find(marker).unwrap() + marker.len();
    row[start..start + row[start..].find('"').unwrap()].to_owned()
}
