//! Codes (一码通) and volunteering through real HTTP: the public code key verifies a code
//! offline; scanning by text and by uploaded photo; check-in and check-out in both directions
//! (idempotent re-scan, 409 without check-in, replayed and expired codes refused, capacity under
//! concurrent requests); verification, hours and the certificate page; the personal pages.

use std::io::Cursor;
use std::sync::Arc;

use cishan_app::{App, Config, FixedClock, Role};
use cishan_core::code::{self, CodeKind};
use cishan_store::{format_instant, OrganizationRow, ParticipantRow, UserRow, VolunteerRow};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::common::{at, input_value};

const PASSWORD: &str = "volunteer-pass-1";
const WANG: &str = "ptc_00000000000000000001";
const LI: &str = "ptc_00000000000000000002";
const ZHANG: &str = "ptc_00000000000000000003";

/// A running server with its own clock, an organization, three registered volunteers with
/// member accounts (`wang`, `li`, `zhang`) and a staff account (`staff`).
struct Site {
    base: String,
    app: App,
    clock: Arc<FixedClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Site {
    async fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            data_dir: dir.path().into(),
        };
        // 10:00 in Shanghai.
        let clock = Arc::new(FixedClock::new(at("2024-03-01T02:00:00Z")));
        let app = App::open(
            &config,
            cishan_core::region::embedded::lucheng(),
            clock.clone(),
        )
        .await
        .unwrap();
        let staff = app
            .create_user(None, "staff", "组织者", PASSWORD, Role::Staff)
            .await
            .unwrap();
        let hash = app
            .store()
            .user_by_username(&staff.username)
            .await
            .unwrap()
            .unwrap()
            .password_hash;
        let created = format_instant(at("2023-01-01T00:00:00Z"));
        let mut tx = app.store().begin().await.unwrap();
        for (i, (pid, name, user)) in [
            (WANG, "王小明", "wang"),
            (LI, "李四", "li"),
            (ZHANG, "张三丰", "zhang"),
        ]
        .into_iter()
        .enumerate()
        {
            tx.insert(&ParticipantRow {
                id: pid.into(),
                kind: "person".into(),
                display_name: name.into(),
                id_number_digest: None,
                id_number_masked: Some("330302********123X".into()),
                id_number_cipher: None,
                division_code: None,
                created_at: created.clone(),
                synthetic: false,
            })
            .await
            .unwrap();
            tx.insert(&VolunteerRow {
                participant_id: pid.into(),
                volunteer_number: format!("ZJ330302{i:06}"),
                registered_at: created.clone(),
            })
            .await
            .unwrap();
            tx.insert(&UserRow {
                id: format!("usr_{user}"),
                username: user.into(),
                display_name: name.into(),
                password_hash: hash.clone(),
                role: "member".into(),
                created_at: created.clone(),
                participant_id: Some(pid.into()),
            })
            .await
            .unwrap();
        }
        tx.insert(&OrganizationRow {
            id: "org_1".into(),
            participant_id: None,
            name: "鹿城区志愿者协会".into(),
            credit_code: "51330302MJ8998765X".into(),
            kind: "social_group".into(),
            division_code: None,
            registered_on: "2010-01-01".into(),
            created_at: created.clone(),
            is_charity: true,
            public_fundraising: false,
            synthetic: false,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(cishan_web::serve(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        Site {
            base,
            app,
            clock,
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap()
    }

    async fn token(&self, username: &str) -> String {
        let res = Site::client()
            .post(self.url("/api/v1/sessions"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = Site::client().get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let res = Site::client()
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn code_of(&self, token: &str, pid: &str) -> String {
        let (status, body) = self
            .get(Some(token), &format!("/api/v1/participants/{pid}/code"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["payload"].as_str().unwrap().to_owned()
    }

    /// An activity 09:00–12:00 Shanghai on 2024-03-01; returns (id, code).
    async fn activity(&self, staff: &str, capacity: i64) -> (String, String) {
        let (status, body) = self
            .post(
                staff,
                "/api/v1/activities",
                json!({
                    "title": "五马街道敬老院探访",
                    "category": "daily_care",
                    "content": "陪伴老人聊天",
                    "recipients": "敬老院老人",
                    "organizer_org_id": "org_1",
                    "division_code": "330302006",
                    "address": "解放街 1 号",
                    "starts_at": "2024-03-01T09:00:00+08:00",
                    "ends_at": "2024-03-01T12:00:00+08:00",
                    "capacity": capacity,
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["code"].as_str().unwrap().to_owned(),
        )
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A QR code of `text` as a PNG (8 pixels per module, 4 modules of quiet zone).
fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let width = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (8, 4);
    let side = u32::try_from((width + 2 * quiet) * scale).unwrap();
    let picture = image::GrayImage::from_fn(side, side, |x, y| {
        let mx = usize::try_from(x).unwrap() / scale;
        let my = usize::try_from(y).unwrap() / scale;
        let dark = mx >= quiet
            && my >= quiet
            && mx < width + quiet
            && my < width + quiet
            && colors[(my - quiet) * width + (mx - quiet)] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

/// A multipart/form-data body of text fields and one file field `image`.
fn multipart(fields: &[(&str, &str)], image: &[u8]) -> (String, Vec<u8>) {
    let boundary = "cishan-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"code.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_code_from_the_api_verifies_offline_with_the_served_key() {
    let site = Site::start().await;
    let wang = site.token("wang").await;
    let (status, key) = site.get(None, "/api/v1/codes/key").await;
    assert_eq!(status, 200);
    assert_eq!(key["algorithm"], "ed25519");
    assert_eq!(key["format"], "CS1");
    let (status, body) = site
        .get(Some(&wang), &format!("/api/v1/participants/{WANG}/code"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert_eq!(body["valid_seconds"], 90);
    let payload = body["payload"].as_str().unwrap();
    // Offline: only the served key and the payload.
    let public = code::parse_verifying_key(key["public_key"].as_str().unwrap()).unwrap();
    let claim = code::verify(
        payload,
        &public,
        at("2024-03-01T02:00:10Z").as_second(),
        CodeKind::Participant,
    )
    .unwrap();
    assert_eq!(claim.subject, WANG);

    let (status, body) = site
        .get(Some(&wang), &format!("/api/v1/participants/{LI}/code"))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = site
        .get(None, &format!("/api/v1/participants/{WANG}/code"))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn scanning_by_text_and_by_photo_identifies_and_refuses_forgeries() {
    let site = Site::start().await;
    let staff = site.token("staff").await;
    let li = site.token("li").await;
    let payload = site.code_of(&site.token("wang").await, WANG).await;

    let (status, body) = site
        .post(&staff, "/api/v1/scan", json!({ "payload": payload }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "participant");
    assert_eq!(body["participant"]["display_name_masked"], "王*明");
    assert!(body["participant"]["roles"].is_array(), "staff see roles");
    let (status, body) = site
        .post(&li, "/api/v1/scan", json!({ "payload": payload }))
        .await;
    assert_eq!(status, 200);
    assert!(body["participant"]["roles"].is_null(), "members do not");

    // A photo of the code, decoded on the server.
    let (content_type, upload) = multipart(&[], &qr_png(&payload));
    let res = Site::client()
        .post(site.url("/api/v1/scan"))
        .bearer_auth(&staff)
        .header("content-type", content_type)
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["participant"]["participant_id"], WANG);

    // A forged code (one character changed) and a blank photo are refused with the reason.
    let mut chars: Vec<char> = payload.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    let (status, body) = site
        .post(&staff, "/api/v1/scan", json!({ "payload": forged }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "code.forged");
    assert_eq!(body["error"]["field"], "payload");
    let blank = {
        let mut png = Vec::new();
        image::GrayImage::from_pixel(80, 80, image::Luma([255]))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let (content_type, upload) = multipart(&[], &blank);
    let res = Site::client()
        .post(site.url("/api/v1/scan"))
        .bearer_auth(&staff)
        .header("content-type", content_type)
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "scan.image_unreadable");

    // Anonymous scanners are not told who someone is.
    let res = Site::client()
        .post(site.url("/api/v1/scan"))
        .json(&json!({ "payload": payload }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn check_in_and_out_over_http_in_both_directions() {
    let site = Site::start().await;
    let staff = site.token("staff").await;
    let wang = site.token("wang").await;
    let li = site.token("li").await;
    let (id, activity_code) = site.activity(&staff, 10).await;
    let check_in = format!("/api/v1/activities/{id}/check-in");
    let check_out = format!("/api/v1/activities/{id}/check-out");

    // Check-out without check-in: 409 with the reason.
    let (status, body) = site
        .post(&wang, &check_out, json!({ "code": activity_code }))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error_code(&body), "attendance.not_checked_in");

    // The volunteer scans the activity code: 201, then 200 unchanged.
    let (status, first) = site
        .post(&wang, &check_in, json!({ "code": activity_code }))
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = site
        .post(&wang, &check_in, json!({ "code": activity_code }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["unchanged"], true);
    assert_eq!(again["attendance_id"], first["attendance_id"]);

    // The organizer scans LI's code; a second activity cannot reuse it (replay).
    let li_code = site.code_of(&li, LI).await;
    let (status, body) = site
        .post(&staff, &check_in, json!({ "code": li_code }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["check_in_method"], "participant_code");
    let (other, _) = site.activity(&staff, 10).await;
    let (status, body) = site
        .post(
            &staff,
            &format!("/api/v1/activities/{other}/check-in"),
            json!({ "code": li_code }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error_code(&body), "code.replayed");

    // An expired participant code (shown 90 s later) is refused.
    let zhang_code = site.code_of(&site.token("zhang").await, ZHANG).await;
    site.clock.set(at("2024-03-01T02:01:30Z"));
    let (status, body) = site
        .post(&staff, &check_in, json!({ "code": zhang_code }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "code.expired");

    // Check out 95 minutes after check-in; the hours wait for verification.
    site.clock.set(at("2024-03-01T03:35:00Z"));
    let (status, out) = site
        .post(&wang, &check_out, json!({ "code": activity_code }))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["duration_minutes"], 95);
    let (status, hours) = site
        .get(Some(&wang), &format!("/api/v1/volunteers/{WANG}/hours"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(hours["verified_minutes"], 0);
    let attendance = out["attendance_id"].as_str().unwrap();
    let (status, body) = site
        .post(
            &wang,
            &format!("/api/v1/attendances/{attendance}/verification"),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = site
        .post(
            &staff,
            &format!("/api/v1/attendances/{attendance}/verification"),
            json!({ "evaluation": "优秀" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credited_minutes"], 95);
    let (_, hours) = site
        .get(Some(&wang), &format!("/api/v1/volunteers/{WANG}/hours"))
        .await;
    assert_eq!(hours["verified_minutes"], 95);
    let (status, list) = site
        .get(
            Some(&staff),
            &format!("/api/v1/activities/{id}/attendances"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // A certificate, checked by its code over the public API.
    let (status, cert) = site
        .post(
            &staff,
            &format!("/api/v1/volunteers/{WANG}/certificates"),
            json!({ "issuing_org_id": "org_1", "content": "敬老助老" }),
        )
        .await;
    assert_eq!(status, 201, "{cert}");
    let number = cert["number"].as_str().unwrap();
    let code = cert["code"].as_str().unwrap();
    let (status, checked) = site
        .get(None, &format!("/api/v1/certificates/{number}?code={code}"))
        .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["code_verified"], true);
    assert_eq!(checked["certificate"]["minutes"], 95);
    let (status, body) = site
        .get(
            None,
            &format!("/api/v1/certificates/{number}?code={activity_code}"),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "code.wrong_kind");
}

#[tokio::test]
async fn concurrent_http_check_ins_never_exceed_capacity() {
    let site = Site::start().await;
    let staff = site.token("staff").await;
    let (id, code) = site.activity(&staff, 2).await;
    let mut tokens = Vec::new();
    for user in ["wang", "li", "zhang"] {
        tokens.push(site.token(user).await);
    }
    let url = site.url(&format!("/api/v1/activities/{id}/check-in"));
    let mut tasks = Vec::new();
    for round in 0..4 {
        for token in &tokens {
            let (url, token, code) = (url.clone(), token.clone(), code.clone());
            tasks.push(tokio::spawn(async move {
                let _ = round;
                Site::client()
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            201 => created += 1,
            200 | 409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 2);
    let (_, activity) = site.get(None, &format!("/api/v1/activities/{id}")).await;
    assert_eq!(activity["checked_in"], 2);
    let (_, list) = site
        .get(
            Some(&staff),
            &format!("/api/v1/activities/{id}/attendances"),
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(site.app.store().count_attendances().await.unwrap(), 2);
}

#[tokio::test]
async fn personal_and_organizer_pages() {
    let site = Site::start().await;
    let staff = site.token("staff").await;
    let wang = site.token("wang").await;
    let page = |token: &str, path: &str| {
        Site::client()
            .get(site.url(path))
            .header("cookie", format!("cishan_session={token}"))
            .send()
    };

    // /me/code: the QR, and the page asks the browser to refresh before the code expires.
    let res = page(&wang, "/me/code").await.unwrap();
    assert_eq!(res.status(), 200);
    let refresh = res.headers()["refresh"].to_str().unwrap().to_owned();
    assert!(refresh.starts_with("75;"), "{refresh}");
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg"), "QR shown");
    assert!(html.contains("截图无效"));
    // Signed out: to the login form.
    let res = Site::client()
        .get(site.url("/me/code"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // The organizer's activity page: scanning field, activity QR, attendance list.
    let (id, _) = site.activity(&staff, 10).await;
    let res = page(&staff, &format!("/admin/activities/{id}"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"scan-form\""));
    assert!(html.contains("id=\"activity-qr\""));
    let csrf = input_value(&html, "csrf");
    // Members may not open it.
    let res = page(&wang, &format!("/admin/activities/{id}"))
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // A handheld scanner types WANG's code into the field and presses Enter.
    let wang_code = site.code_of(&wang, WANG).await;
    let res = Site::client()
        .post(site.url(&format!("/admin/activities/{id}/scan")))
        .header("cookie", format!("cishan_session={staff}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "check_in"),
            ("code", wang_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"scan-ok\""), "{html}");
    assert!(html.contains("王*明 签到成功"));
    // The same code again: a replay is not a second check-in, the page says it changed nothing.
    let res = Site::client()
        .post(site.url(&format!("/admin/activities/{id}/scan")))
        .header("cookie", format!("cishan_session={staff}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "check_in"),
            ("code", wang_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("未作改动"), "{html}");

    // A photo of LI's code, uploaded from the page.
    let li_code = site.code_of(&site.token("li").await, LI).await;
    let (content_type, upload) = multipart(
        &[("csrf", &csrf), ("action", "check_in")],
        &qr_png(&li_code),
    );
    let res = Site::client()
        .post(site.url(&format!("/admin/activities/{id}/scan-photo")))
        .header("cookie", format!("cishan_session={staff}"))
        .header("content-type", content_type)
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("李* 签到成功"), "{html}");
    // Without the CSRF token nothing happens.
    let res = Site::client()
        .post(site.url(&format!("/admin/activities/{id}/scan")))
        .header("cookie", format!("cishan_session={staff}"))
        .form(&[("csrf", "wrong"), ("code", wang_code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // /me/hours lists the session awaiting verification.
    let res = page(&wang, "/me/hours").await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("已核验服务时长"));
    assert!(html.contains("id=\"pending\""), "{html}");

    // The activity list and its creation form.
    let res = page(&staff, "/admin/activities").await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("五马街道敬老院探访"));
}

#[tokio::test]
async fn the_certificate_page_is_public_and_verifiable_by_its_code() {
    let site = Site::start().await;
    let staff = site.token("staff").await;
    let (status, cert) = site
        .post(
            &staff,
            &format!("/api/v1/volunteers/{WANG}/certificates"),
            json!({ "issuing_org_id": "org_1", "content": "敬老助老", "contact": "0577-88888888" }),
        )
        .await;
    assert_eq!(status, 201, "{cert}");
    let number = cert["number"].as_str().unwrap();
    let code = cert["code"].as_str().unwrap();
    let res = Site::client()
        .get(site.url(&format!("/certificates/{number}?code={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("核验通过"), "{html}");
    assert!(html.contains("王*明"));
    assert!(!html.contains("王小明"), "the name is masked");
    let mut forged: Vec<char> = code.chars().collect();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == 'x' { 'y' } else { 'x' };
    let forged: String = forged.into_iter().collect();
    let res = Site::client()
        .get(site.url(&format!("/certificates/{number}?code={forged}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("核验未通过"));
    let res = Site::client()
        .get(site.url("/certificates/ZYFW-2024-999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
