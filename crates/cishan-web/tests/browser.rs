//! End to end in a real browser: headless Chromium (Debian's `chromium`) driven through
//! ChromeDriver (`chromium-driver`). Built only with `--features browser-test`, which `.ci/run`
//! enables after installing both packages; the default `cargo test` does not need a browser.
//!
//! The walks: open the home page, open the dashboard, log in as the administrator, enter an
//! indicator's actual value, and see its status change on the dashboard; and a staff member
//! records a donation through the form and opens its public trace (一扫清).
#![cfg(feature = "browser-test")]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cishan_app::{App, Config, Role, SystemClock};
use cishan_core::region::embedded::lucheng;
use cishan_store::{format_instant, FundRow, OrganizationRow, ProjectRow};
use fantoccini::{Client, ClientBuilder, Locator};
// ChromeDriver listens on plain HTTP on loopback: no TLS stack is needed to talk to it.
use hyper_util::client::legacy::connect::HttpConnector;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
const ADMIN_PASSWORD: &str = "browser-test-password";
const STAFF_PASSWORD: &str = "browser-staff-password";

/// Kills ChromeDriver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> (Driver, String) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver must be installed (Debian package chromium-driver)");
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start listening on {url}");
}

async fn start_browser(driver_url: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                // A phone-sized window: the pages are built phone first.
                "--window-size=390,844",
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(driver_url)
        .await
        .expect("connect to chromedriver")
}

async fn start_server() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: format!("sqlite://{}/browser.db", dir.path().display()),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), Arc::new(SystemClock))
        .await
        .unwrap();
    app.create_user(None, "admin", "管理员", ADMIN_PASSWORD, Role::Admin)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(cishan_web::serve(app, listener, std::future::pending()));
    (base, dir)
}

async fn status_of(browser: &Client, code: &str) -> String {
    browser
        .find(Locator::Css(&format!("#indicator-{code} .status")))
        .await
        .unwrap_or_else(|e| panic!("dashboard row for indicator {code}: {e}"))
        .attr("data-status")
        .await
        .unwrap()
        .expect("status cell has data-status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_enters_an_actual_and_sees_the_status_change() {
    let (base, _dir) = start_server().await;
    let (_driver, driver_url) = start_driver().await;
    let browser = start_browser(&driver_url).await;

    // Home: the public disclosure summary.
    browser.goto(&format!("{base}/")).await.unwrap();
    let home = browser.source().await.unwrap();
    assert!(home.contains("lang=\"zh-CN\""), "home page is Chinese");
    assert!(
        home.contains("捐赠"),
        "home page shows the donation summary"
    );

    // Dashboard for 2023: indicator 1 (人均生产总值, target 11.7) has no data yet.
    browser
        .goto(&format!("{base}/dashboard?year=2023"))
        .await
        .unwrap();
    let rows = browser
        .find_all(Locator::Css("[id^='indicator-']"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 28, "all 28 indicators are on the dashboard");
    assert_eq!(status_of(&browser, "1").await, "no_data");

    // Log in as the administrator.
    browser.goto(&format!("{base}/login")).await.unwrap();
    browser
        .find(Locator::Css("input[name='username']"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    browser
        .find(Locator::Css("input[name='password']"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Login leads to the donation form.
    wait_for_path(&browser, "/admin/donations/new").await;

    // Enter 12 (above the 11.7 target) for indicator 1 in 2023.
    browser
        .goto(&format!("{base}/admin/indicators?year=2023"))
        .await
        .unwrap();
    let form = browser.find(Locator::Id("form-1")).await.unwrap();
    form.find(Locator::Css("input[name='value']"))
        .await
        .unwrap()
        .send_keys("12")
        .await
        .unwrap();
    form.find(Locator::Css("button[type='submit'], input[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The dashboard now shows it met.
    browser
        .goto(&format!("{base}/dashboard?year=2023"))
        .await
        .unwrap();
    assert_eq!(status_of(&browser, "1").await, "met");
    let row = browser
        .find(Locator::Id("indicator-1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("12"), "the actual is shown: {row}");

    browser.close().await.unwrap();
}

/// A server with a staff account and one organization, fund and project to give to.
async fn start_ledger_server() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: format!("sqlite://{}/browser.db", dir.path().display()),
        data_dir: dir.path().to_owned(),
    };
    let app = App::open(&config, lucheng(), Arc::new(SystemClock))
        .await
        .unwrap();
    let admin = app
        .create_user(None, "admin", "管理员", ADMIN_PASSWORD, Role::Admin)
        .await
        .unwrap();
    app.create_user(
        Some(&admin),
        "staff",
        "工作人员",
        STAFF_PASSWORD,
        Role::Staff,
    )
    .await
    .unwrap();
    let created = format_instant("2023-01-01T00:00:00Z".parse().unwrap());
    let mut tx = app.store().begin().await.unwrap();
    tx.insert(&OrganizationRow {
        id: "org_b".into(),
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
        id: "fund_b".into(),
        org_id: "org_b".into(),
        name: "助学基金".into(),
        created_at: created.clone(),
    })
    .await
    .unwrap();
    tx.insert(&ProjectRow {
        id: "prj_b".into(),
        org_id: "org_b".into(),
        fund_id: Some("fund_b".into()),
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(cishan_web::serve(app, listener, std::future::pending()));
    (base, dir)
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("field {css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// Waits, up to 10 s, until the page's path starts with `prefix`: a click that submits a form
/// returns before the browser has loaded the answer, so reading the URL at once races the
/// navigation. Panics with the URL and page it stayed on.
async fn wait_for_path(browser: &Client, prefix: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = browser.current_url().await.unwrap();
        if url.path().starts_with(prefix) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("still at {url}, expected {prefix}…; the page says: {page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("element {css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_member_records_a_donation_and_opens_its_trace() {
    let (base, _dir) = start_ledger_server().await;
    let (_driver, driver_url) = start_driver().await;
    let browser = start_browser(&driver_url).await;

    // Not signed in: the donation form sends us to the login form, which brings us back.
    browser
        .goto(&format!("{base}/admin/donations/new"))
        .await
        .unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), "/login");
    type_into(&browser, "input[name='username']", "staff").await;
    type_into(&browser, "input[name='password']", STAFF_PASSWORD).await;
    click(&browser, "#login-submit").await;
    // Back on the donation form.
    wait_for_path(&browser, "/admin/donations/new").await;

    // A walk-in cash donation of ¥1,234.56 to the project, typed the way people type it.
    type_into(&browser, "#amount", "1,234.56").await;
    click(&browser, "#target option[value='project:prj_b']").await;
    type_into(&browser, "#donor_name", "王小明").await;
    click(&browser, "#channel option[value='cash']").await;
    click(&browser, "#donation-submit").await;

    // To the donation's page.
    wait_for_path(&browser, "/admin/donations/don_").await;
    let flash = browser
        .wait()
        .for_element(Locator::Id("flash"))
        .await
        .expect("a confirmation")
        .text()
        .await
        .unwrap();
    assert!(
        flash.contains("票据号码"),
        "the receipt number is shown: {flash}"
    );

    // Its public trace shows the amount, and the donor only masked.
    click(&browser, "#trace-link").await;
    wait_for_path(&browser, "/trace/don_").await;
    let amount = browser
        .wait()
        .for_element(Locator::Id("trace-amount"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(amount, "¥1,234.56");
    let page = browser.source().await.unwrap();
    assert!(page.contains("爱心助学"), "the project is named");
    assert!(!page.contains("王小明"), "the donor's name is masked");

    browser.close().await.unwrap();
}
