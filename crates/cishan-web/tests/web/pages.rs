//! Server-rendered pages and their form flows, with cookies and CSRF as a browser sends them.

use crate::common::{input_value, row_status, TestApp, ADMIN_PASSWORD, STAFF_PASSWORD};

fn assert_page(html: &str) {
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese page");
    assert!(
        html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"),
        "phone viewport"
    );
    assert!(html.contains("/static/app.css"));
    assert!(
        html.contains("慈善鹿城") && html.contains("鹿城区"),
        "header names the region"
    );
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
    let csrf = input_value(&form, "csrf");
    let res = browser
        .post(t.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/admin/indicators"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed in");
    browser
}

#[tokio::test]
async fn public_pages_render() {
    let t = TestApp::start().await;
    t.seed().await;
    for path in [
        "/",
        "/organizations",
        "/organizations/org_1",
        "/projects",
        "/projects/prj_1",
        "/dashboard",
        "/dashboard?year=2021",
        "/login",
    ] {
        let res = t.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_page(&res.text().await.unwrap());
    }
}

#[tokio::test]
async fn home_shows_the_disclosure_summary() {
    let t = TestApp::start().await;
    t.seed().await;
    let html = t.get("/").await.text().await.unwrap();
    for label in ["捐赠人数", "净捐赠", "受益人次", "慈善项目数", "参与组织数"]
    {
        assert!(html.contains(label), "{label}");
    }
    assert!(html.contains("¥2,234.56"), "total donated, formatted");
    // Net of refunds: never labelled 捐赠总额, which in the exports is the gross.
    assert!(!html.contains("捐赠总额"));
    assert!(
        html.contains("<span class=\"figure-value\">3</span>"),
        "people helped"
    );
    assert!(html.contains("href=\"/dashboard?year="));
}

#[tokio::test]
async fn lists_and_details_show_totals() {
    let t = TestApp::start().await;
    t.seed().await;
    let orgs = t.get("/organizations").await.text().await.unwrap();
    assert!(orgs.contains("鹿城区慈善总会") && orgs.contains("五马街道慈善分会"));
    assert!(orgs.contains("¥2,234.56"));
    let paged = t
        .get("/organizations?per_page=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(paged.contains("id=\"page-next\""));
    assert_eq!(t.get("/organizations?page=x").await.status(), 400);

    let org = t.get("/organizations/org_1").await.text().await.unwrap();
    assert!(org.contains("助学基金") && org.contains("爱心助学"));

    let project = t.get("/projects/prj_1").await.text().await.unwrap();
    assert!(project.contains("¥10,000.00"), "goal");
    assert!(project.contains("¥2,234.56"), "raised");
    assert!(project.contains("¥500.00"), "disbursed");
    assert!(
        project.contains("<progress max=\"100\" value=\"22\""),
        "22% of the goal"
    );
    assert!(project.contains("募集中"));

    let missing = t.get("/projects/prj_nope").await;
    assert_eq!(missing.status(), 404);
    let html = missing.text().await.unwrap();
    assert_page(&html);
    assert!(html.contains("找不到") && html.contains("返回首页"));
}

#[tokio::test]
async fn unknown_pages_are_a_chinese_404() {
    let t = TestApp::start().await;
    let res = t.get("/no-such-page").await;
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_page(&res.text().await.unwrap());
}

#[tokio::test]
async fn the_dashboard_shows_every_indicator_with_its_status() {
    let t = TestApp::start().await;
    let html = t.get("/dashboard?year=2023").await.text().await.unwrap();
    assert_eq!(html.matches("id=\"indicator-").count(), 28);
    assert_eq!(html.matches("class=\"status ").count(), 28);
    assert_eq!(row_status(&html, "1"), "no_data");
    assert!(html.contains("暂无数据"));
    assert!(html.contains("11.7"), "target as printed");
    assert!(
        html.contains("href=\"/dashboard?year=2021\""),
        "year selector"
    );
    assert!(html.contains("<strong aria-current=\"page\" class=\"year current\">2023</strong>"));
    assert!(html.contains("id=\"count-no-data\">"));
    let eight = t.get("/dashboard?year=2021").await.text().await.unwrap();
    assert!(eight.contains("≥90.6"));

    let bad = t.get("/dashboard?year=1999").await;
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(html.contains("1999 年没有目标值"), "says which years exist");
}

#[tokio::test]
async fn an_admin_enters_an_actual_through_the_form() {
    let t = TestApp::start().await;
    let browser = sign_in(&t, "admin", ADMIN_PASSWORD).await;

    let res = browser
        .get(t.url("/admin/indicators?year=2023"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert_page(&page);
    assert!(page.contains("id=\"form-1\""));
    assert!(
        page.contains("id=\"computed-T3\""),
        "computed indicators are read only"
    );
    assert!(!page.contains("id=\"form-T3\""));
    assert!(page.contains("平台自动计算"));
    let csrf = input_value(&page, "csrf");

    let res = browser
        .post(t.url("/admin/indicators"))
        .form(&[
            ("code", "1"),
            ("year", "2023"),
            ("value", "12"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/admin/indicators?year=2023&saved=1"),
        "{location}"
    );
    let confirmed = browser
        .get(t.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirmed.contains("id=\"flash\""));
    assert!(confirmed.contains("已保存"));

    let dashboard = t.get("/dashboard?year=2023").await.text().await.unwrap();
    assert_eq!(row_status(&dashboard, "1"), "met");

    let res = browser
        .post(t.url("/admin/indicators"))
        .form(&[
            ("code", "1"),
            ("year", "2023"),
            ("value", "11"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let dashboard = t.get("/dashboard?year=2023").await.text().await.unwrap();
    assert_eq!(row_status(&dashboard, "1"), "not_met");

    let journal = t.app.store().recent_journal(10).await.unwrap();
    let entry = journal
        .iter()
        .find(|e| e.kind == "indicator.actual_set")
        .expect("journaled");
    assert_eq!(entry.actor, t.admin.user_id);
}

#[tokio::test]
async fn a_bad_value_is_shown_next_to_the_field() {
    let t = TestApp::start().await;
    let browser = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let page = browser
        .get(t.url("/admin/indicators?year=2023"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&page, "csrf");
    for value in ["abc", "1.2.3"] {
        let res = browser
            .post(t.url("/admin/indicators"))
            .form(&[
                ("code", "1"),
                ("year", "2023"),
                ("value", value),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let html = res.text().await.unwrap();
        assert_page(&html);
        assert!(html.contains("id=\"error-1\""), "message next to the field");
        assert!(html.contains("不是有效的数字"));
        assert!(
            html.contains(&format!("id=\"value-1\" value=\"{value}\"")),
            "what was typed is kept"
        );
    }
    // A computed indicator cannot be entered even by a hand-made form.
    let res = browser
        .post(t.url("/admin/indicators"))
        .form(&[
            ("code", "T3"),
            ("year", "2023"),
            ("value", "5"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("自动计算"));
    assert_eq!(t.indicator("1", 2023).await["status"], "no_data");
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_change_nothing() {
    let t = TestApp::start().await;
    let browser = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    for csrf in [None, Some(""), Some("forged")] {
        let mut fields = vec![("code", "1"), ("year", "2023"), ("value", "12")];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        let res = browser
            .post(t.url("/admin/indicators"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{csrf:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("安全校验未通过"));
    }
    assert_eq!(t.indicator("1", 2023).await["status"], "no_data");
    let journal = t.app.store().recent_journal(50).await.unwrap();
    assert!(journal.iter().all(|e| e.kind != "indicator.actual_set"));

    // Logout needs the token as well.
    let res = browser
        .post(t.url("/logout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let still_in = browser
        .get(t.url("/admin/indicators"))
        .send()
        .await
        .unwrap();
    assert_eq!(still_in.status(), 200);
}

#[tokio::test]
async fn the_login_form_is_csrf_protected_and_says_what_went_wrong() {
    let t = TestApp::start().await;
    // No token at all (a cross-site post).
    let res = t
        .client()
        .post(t.url("/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.headers().get("set-cookie").is_some(),
        "a fresh token for the retry"
    );
    let html = res.text().await.unwrap();
    assert!(!html.contains("cishan_session"));

    // Wrong password: the form again, 401, with a Chinese message and the username kept.
    let browser = t.browser();
    let res = browser.get(t.url("/login")).send().await.unwrap();
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let form = res.text().await.unwrap();
    assert!(form.contains("name=\"username\"") && form.contains("name=\"password\""));
    assert!(form.contains("id=\"login-submit\""));
    let csrf = input_value(&form, "csrf");
    let res = browser
        .post(t.url("/login"))
        .form(&[
            ("username", "admin"),
            ("password", "not-the-password"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let html = res.text().await.unwrap();
    assert!(html.contains("用户名或密码不正确"));
    assert!(html.contains("value=\"admin\""));

    // Right password: the session cookie, then the admin page.
    let res = browser
        .post(t.url("/login"))
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/donations/new");
    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("cishan_session="))
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "off by default for localhost");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let t = TestApp::start().await;
    let browser = sign_in(&t, "admin", ADMIN_PASSWORD).await;
    let page = browser
        .get(t.url("/admin/indicators"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"logout-submit\""));
    let csrf = input_value(&page, "csrf");
    let res = browser
        .post(t.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let res = browser
        .get(t.url("/admin/indicators"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "back to the login form");
}

#[tokio::test]
async fn the_admin_page_is_for_admins_only() {
    let t = TestApp::start().await;
    // Anonymous: to the login form, remembering where to return.
    let res = t.get("/admin/indicators?year=2022").await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/login?next=%2Fadmin%2Findicators%3Fyear%3D2022"
    );
    let res = t
        .client()
        .post(t.url("/admin/indicators"))
        .form(&[
            ("code", "1"),
            ("year", "2023"),
            ("value", "12"),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));

    // Staff: 403 for the page and for the form.
    t.create_staff().await;
    let staff = sign_in(&t, "staff", STAFF_PASSWORD).await;
    let res = staff.get(t.url("/admin/indicators")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert_page(&html);
    assert!(html.contains("没有权限"));
    let home = staff
        .get(t.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&home, "csrf");
    let res = staff
        .post(t.url("/admin/indicators"))
        .form(&[
            ("code", "1"),
            ("year", "2023"),
            ("value", "12"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(t.indicator("1", 2023).await["status"], "no_data");
}
