//! The binary as an operator uses it: real processes, real SQLite files in temporary directories.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sqlx::Connection;

/// How long a server may take to print its address (a debug build on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// `cishan` with a clean environment: no `CISHAN_*` settings leak in from the caller.
fn cishan(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cishan"));
    command.current_dir(dir).env("RUST_LOG", "warn");
    for var in [
        "CISHAN_DB",
        "CISHAN_BIND",
        "CISHAN_DATA_DIR",
        "CISHAN_PACK",
        "CISHAN_PASSWORD",
    ] {
        command.env_remove(var);
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run cishan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}/cishan.db", dir.display())
}

fn fill_demo(dir: &Path) -> Output {
    let out = run(cishan(dir).args([
        "demo",
        "--no-serve",
        "--scale",
        "small",
        "--db",
        &db_url(dir),
        "--data-dir",
        &dir.join("data").display().to_string(),
    ]));
    assert!(
        out.status.success(),
        "demo failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// A running server and the base URL it printed.
struct Server {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(command: &mut Command) -> Server {
        let (sender, lines) = mpsc::channel();
        // Owned by `Server` at once, so every path (including a failed assertion) kills and
        // reaps the process in `Drop`.
        let mut server = Server {
            child: command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start cishan"),
            url: String::new(),
            lines,
        };
        let stdout = server.child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = server.lines.recv_timeout(left) else {
                panic!("the server printed no address; output so far: {seen:?}");
            };
            if let Some(url) = line.strip_prefix("cishan is running at ") {
                server.url = url.trim().to_owned();
                return server;
            }
            seen.push(line);
        }
    }

    /// Lines printed after the address, waiting briefly for them.
    fn more_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            out.push(line);
        }
        out
    }

    /// Asks for a graceful shutdown (SIGTERM) and waits for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("send SIGTERM");
        assert!(status.success());
        let exit = self.child.wait().expect("wait for cishan");
        assert!(exit.success(), "graceful shutdown exits with 0, got {exit}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only matters when a test fails before `stop`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("HTTP GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[test]
fn migrate_applies_once_then_reports_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/fresh/cishan.db", dir.path().display());
    let first = run(cishan(dir.path()).args(["migrate", "--db", &url]));
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("applied "), "{stdout}");
    assert!(stdout.contains("0001 foundation"), "{stdout}");
    let second = run(cishan(dir.path()).args(["migrate", "--db", &url]));
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("up to date"));
    assert!(
        !dir.path().join("cishan-data").exists(),
        "migrate needs no keys"
    );
}

#[tokio::test]
async fn demo_verifies_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = fill_demo(dir.path());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("admin / cishan-demo-2021"), "{stdout}");
    assert!(
        stdout.contains("13900002021 / cishan-member-2021"),
        "{stdout}"
    );
    assert!(
        stdout.contains("13900002022 / cishan-partner-2021"),
        "{stdout}"
    );
    assert!(stdout.contains("demo data generated"), "{stdout}");

    // Again with the same seed: reused, nothing written.
    let again = fill_demo(dir.path());
    assert!(text(&again.stdout).contains("nothing written"));

    // Another seed on the same database: refused, with what to do.
    let other = run(cishan(dir.path()).args([
        "demo",
        "--no-serve",
        "--scale",
        "small",
        "--seed",
        "7",
        "--db",
        &db_url(dir.path()),
        "--data-dir",
        &dir.path().join("data").display().to_string(),
    ]));
    assert!(!other.status.success());
    assert!(
        text(&other.stderr).contains("--db"),
        "{}",
        text(&other.stderr)
    );

    // Verify runs from anywhere, given the data directory (the log's public key is there).
    let elsewhere = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data").display().to_string();
    let verify_args = [
        "verify",
        "--db",
        &db_url(dir.path()),
        "--data-dir",
        &data_dir,
    ];
    let verify = run(cishan(elsewhere.path()).args(verify_args));
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stderr));
    let report = text(&verify.stdout);
    assert!(report.contains("journal"), "{report}");
    assert!(report.contains("transparency log: 完好 intact"), "{report}");
    assert!(report.contains("ledger: 完好 intact"), "{report}");
    assert!(!elsewhere.path().join("cishan-data").exists());

    let mut conn = sqlx::SqliteConnection::connect(&db_url(dir.path()))
        .await
        .unwrap();
    sqlx::query("UPDATE journal SET payload = '{\"tampered\":true}' WHERE seq = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let verify = run(cishan(elsewhere.path()).args(verify_args));
    assert_eq!(verify.status.code(), Some(1));
    let report = text(&verify.stdout);
    assert!(report.contains("BROKEN"), "{report}");
    assert!(report.contains("entry 2:"), "{report}");
}

#[tokio::test]
async fn demo_serves_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(cishan(dir.path()).args([
        "demo",
        "--scale",
        "small",
        "--bind",
        "127.0.0.1:0",
        "--db",
        &db_url(dir.path()),
        "--data-dir",
        &dir.path().join("data").display().to_string(),
    ]));
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(!server.url.ends_with(":0/"), "the real port is printed");
    let after = server.more_lines().join("\n");
    assert!(after.contains("dashboard"), "{after}");
    assert!(after.contains("password: cishan-demo-2021"), "{after}");
    assert!(after.contains("phone: 13900002021"), "{after}");
    assert!(after.contains("partner/redeem"), "{after}");
    let (status, _) = get(&format!("{}healthz", server.url)).await;
    assert_eq!(status, 200);
    let (status, home) = get(&server.url).await;
    assert_eq!(status, 200);
    assert!(
        home.contains("href=\"/rules\""),
        "the points rules are public: {home}"
    );

    // The demo member signs in with the printed phone and password and sees points and hours.
    let client = reqwest::Client::new();
    let session: serde_json::Value = client
        .post(format!("{}api/v1/sessions", server.url))
        .json(&serde_json::json!({ "username": "13900002021", "password": "cishan-member-2021" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().expect("the member signs in");
    let me: serde_json::Value = client
        .get(format!("{}api/v1/me", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = me["participant"]["id"].as_str().unwrap();
    for (path, field) in [
        (format!("api/v1/participants/{id}/points"), "honour"),
        (format!("api/v1/volunteers/{id}/hours"), "verified_minutes"),
    ] {
        let body: serde_json::Value = client
            .get(format!("{}{path}", server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body[field].as_i64().unwrap() > 0, "{path}: {body}");
    }
    server.stop();

    // `serve` on the filled database: accounts exist, so no set-up hint.
    let server = Server::start(cishan(dir.path()).args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--db",
        &db_url(dir.path()),
        "--data-dir",
        &dir.path().join("data").display().to_string(),
    ]));
    let (status, _) = get(&format!("{}healthz", server.url)).await;
    assert_eq!(status, 200);
    server.stop();
}

#[tokio::test]
async fn serve_on_an_empty_database_says_how_to_create_an_administrator() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = cishan(dir.path());
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("CISHAN_DB", db_url(dir.path()))
        .env("CISHAN_DATA_DIR", dir.path().join("data"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut hint = String::new();
    reader.read_line(&mut hint).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(hint.contains("No accounts yet"), "{hint}");
    assert!(dir.path().join("data/keys").exists(), "keys in --data-dir");
}

#[test]
fn user_add_takes_the_password_from_env_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let common = |command: &mut Command| {
        command.args([
            "user",
            "add",
            "--db",
            &db_url(dir.path()),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
        ]);
    };
    // A mistyped --db must not create a new, unused database.
    let mut typo = cishan(dir.path());
    common(&mut typo);
    typo.args(["--username", "wang", "--role", "admin"])
        .env("CISHAN_PASSWORD", "a long enough password");
    let out = run(&mut typo);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cishan migrate"),
        "{}",
        text(&out.stderr)
    );
    let migrated = run(cishan(dir.path()).args(["migrate", "--db", &db_url(dir.path())]));
    assert!(migrated.status.success());

    let mut from_env = cishan(dir.path());
    common(&mut from_env);
    from_env
        .args(["--username", "wang", "--role", "admin"])
        .env("CISHAN_PASSWORD", "a long enough password");
    let out = run(&mut from_env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created account wang"));

    let mut from_stdin = cishan(dir.path());
    common(&mut from_stdin);
    from_stdin.args([
        "--username",
        "li",
        "--role",
        "staff",
        "--display-name",
        "李四",
    ]);
    let mut child = from_stdin
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"another long password\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("role staff"));

    // Taken names and short passwords are refused with the reason.
    let mut again = cishan(dir.path());
    common(&mut again);
    again
        .args(["--username", "wang", "--role", "admin"])
        .env("CISHAN_PASSWORD", "short");
    let out = run(&mut again);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("密码至少需要"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mistakes_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();

    let unknown = run(cishan(dir.path()).arg("frobnicate"));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("unrecognized subcommand"));

    let bad_url = run(cishan(dir.path()).args(["migrate", "--db", "mysql://localhost/x"]));
    assert!(!bad_url.status.success());
    let stderr = text(&bad_url.stderr);
    assert!(stderr.contains("sqlite://"), "{stderr}");

    let missing = run(cishan(dir.path()).args([
        "verify",
        "--db",
        &format!("sqlite://{}/nope.db", dir.path().display()),
    ]));
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("does not exist"));
    assert!(
        !dir.path().join("nope.db").exists(),
        "verify creates nothing"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let in_use = run(cishan(dir.path()).args([
        "serve",
        "--bind",
        &addr,
        "--db",
        &db_url(dir.path()),
        "--data-dir",
        &dir.path().join("data").display().to_string(),
    ]));
    assert!(!in_use.status.success());
    let stderr = text(&in_use.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--bind"), "{stderr}");
}

#[tokio::test]
async fn a_downloaded_receipt_verifies_offline_and_an_edited_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(cishan(dir.path()).args([
        "demo",
        "--scale",
        "small",
        "--bind",
        "127.0.0.1:0",
        "--db",
        &db_url(dir.path()),
        "--data-dir",
        &dir.path().join("data").display().to_string(),
    ]));
    let client = reqwest::Client::new();
    let session: serde_json::Value = client
        .post(format!("{}api/v1/sessions", server.url))
        .json(&serde_json::json!({ "username": "admin", "password": "cishan-demo-2021" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap();
    let recorded = client
        .post(format!("{}api/v1/donations", server.url))
        .bearer_auth(token)
        .header("Idempotency-Key", "cli-receipt-1")
        .json(&serde_json::json!({
            "amount_fen": 88_800, "fund_id": "fnd_0001", "channel": "cash",
            "donor_name": "王小测"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status().as_u16(), 201);
    let recorded: serde_json::Value = recorded.json().await.unwrap();
    let number = recorded["receipt_number"].as_str().unwrap();
    let document = client
        .get(format!("{}api/v1/receipts/{number}", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = client
        .get(format!("{}api/v1/log/key", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Refund it: the same receipt, downloaded again, is now voided.
    let donation = recorded["donation_id"].as_str().unwrap();
    let refunded = client
        .post(format!("{}api/v1/donations/{donation}/refunds", server.url))
        .bearer_auth(token)
        .header("Idempotency-Key", "cli-refund-1")
        .json(&serde_json::json!({ "amount_fen": 88_800, "reason": "捐赠人撤回" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refunded.status().as_u16(), 201);
    let voided_document = client
        .get(format!("{}api/v1/receipts/{number}", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.stop();

    let receipt_file = dir.path().join("receipt.json");
    let key_file = dir.path().join("key.json");
    std::fs::write(&receipt_file, &document).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let args = |receipt: &Path| {
        vec![
            "verify".to_owned(),
            "--receipt".to_owned(),
            receipt.display().to_string(),
            "--key".to_owned(),
            key_file.display().to_string(),
        ]
    };
    // Offline: no database, no data directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let ok = run(cishan(elsewhere.path()).args(args(&receipt_file)));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );

    // The same document claiming a larger amount fails.
    let mut edited: serde_json::Value = serde_json::from_str(&document).unwrap();
    edited["receipt"]["amount_fen"] = serde_json::json!(888_000);
    let edited_file = dir.path().join("edited.json");
    std::fs::write(&edited_file, edited.to_string()).unwrap();
    let bad = run(cishan(elsewhere.path()).args(args(&edited_file)));
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stdout));

    let voided_file = dir.path().join("voided.json");
    std::fs::write(&voided_file, &voided_document).unwrap();
    let voided = run(cishan(elsewhere.path()).args(args(&voided_file)));
    assert_eq!(voided.status.code(), Some(1));
    assert!(
        text(&voided.stdout).contains("VOIDED"),
        "{}",
        text(&voided.stdout)
    );

    // The status is not signed; a document without a known one is not vouched for.
    for status in [serde_json::Value::Null, serde_json::json!("bogus")] {
        let mut unknown: serde_json::Value = serde_json::from_str(&document).unwrap();
        unknown["status"] = status;
        let unknown_file = dir.path().join("unknown-status.json");
        std::fs::write(&unknown_file, unknown.to_string()).unwrap();
        let refused = run(cishan(elsewhere.path()).args(args(&unknown_file)));
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
        assert!(
            text(&refused.stdout).contains("INVALID"),
            "{}",
            text(&refused.stdout)
        );
    }
}

/// Reads a report the CLI wrote: a BOM for Excel, then CSV records.
fn report_records(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap();
    let text = std::str::from_utf8(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap()).unwrap();
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn an_import_report_lists_every_row_with_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.csv");
    let sample = run(cishan(dir.path())
        .args(["import", "sample", "--rows", "3"])
        .arg(&roster));
    assert!(sample.status.success(), "{}", text(&sample.stderr));
    let report = dir.path().join("r.csv");
    let data_dir = dir.path().join("data").display().to_string();
    let import = |report: &Path| {
        let out = run(cishan(dir.path())
            .args(["import", "volunteers", "--db", &db_url(dir.path())])
            .args(["--data-dir", &data_dir, "--report"])
            .arg(report)
            .arg(&roster));
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    };
    let out = import(&report);
    let rows = report_records(&report);
    assert_eq!(rows.len(), 3, "every new row is reported: {rows:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (i + 2).to_string(), "{row:?}");
        assert_eq!(row[1], "已导入", "{row:?}");
        assert!(!row[3].is_empty(), "a participant id: {row:?}");
        assert_eq!(row[4], format!("LC{:08}", i + 1), "{row:?}");
    }
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&rows[0][3]), "{stdout}");

    let again = dir.path().join("again.csv");
    import(&again);
    let rows_again = report_records(&again);
    assert_eq!(rows_again.len(), 3, "{rows_again:?}");
    for (row, first) in rows_again.iter().zip(&rows) {
        assert_eq!(row[1], "已存在", "{row:?}");
        assert_eq!((&row[3], &row[4]), (&first[3], &first[4]), "{row:?}");
    }
}
