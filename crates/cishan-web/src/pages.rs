//! Server-rendered pages: Chinese, phone first, no JavaScript. Templates live in `templates/`
//! and are checked at compile time; handlers hand them ready-made strings, so the templates hold
//! no logic beyond loops and conditions.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::CookieJar;
use cishan_app::indicators::{ActualSource, IndicatorView};
use cishan_app::{AppError, ErrorKind};
use cishan_core::Status;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{form_rejection, parse_year, ErrorPage, PageError};
use crate::params::{default_year, PageParams, PageRequest, YearParams};
use crate::session::{
    csrf_refused, from_cookie, login_csrf_cookie, removal, same_secret, session_cookie, Session,
    LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::view::{
    group_digits, money, org_kind_label, progress_percent, project_state_label, status_key,
    status_label,
};
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// Where a signed-in account lands after logging in: recording a donation is what every role
/// may do (administrators reach the indicator form from the header).
const AFTER_LOGIN: &str = "/admin/donations/new";

// ---------------------------------------------------------------------------------------------
// The frame around every page.

/// Navigation entries: (key, link, label).
const NAV: &[(&str, &str, &str)] = &[
    ("home", "/", "首页"),
    ("organizations", "/organizations", "慈善组织"),
    ("projects", "/projects", "慈善项目"),
    ("dashboard", "/dashboard", "指标看板"),
    ("receipts", "/receipts/lookup", "票据查询"),
];

pub(crate) struct NavItem {
    pub(crate) href: &'static str,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

/// What the layout needs: the region, the navigation and who is signed in.
pub(crate) struct Chrome {
    pub(crate) region_name: String,
    pub(crate) brand: String,
    pub(crate) nav: Vec<NavItem>,
    pub(crate) user: Option<String>,
    pub(crate) is_admin: bool,
    /// Staff or administrator (members see their personal page link instead of staff links).
    pub(crate) is_staff: bool,
    /// The session's CSRF token for the logout button.
    pub(crate) logout_csrf: String,
    pub(crate) demo: bool,
}

impl Chrome {
    pub(crate) fn new(state: &AppState, session: Option<&Session>, current: &str) -> Chrome {
        let name = state.app.pack().name.clone();
        // "鹿城区" → "慈善鹿城": the platform's public name.
        let short = name
            .strip_suffix('区')
            .or_else(|| name.strip_suffix('县'))
            .or_else(|| name.strip_suffix('市'))
            .unwrap_or(&name);
        Chrome {
            brand: format!("慈善{short}"),
            region_name: name.clone(),
            nav: NAV
                .iter()
                .map(|(key, href, label)| NavItem {
                    href,
                    label,
                    current: *key == current,
                })
                .collect(),
            user: session.map(|s| s.info.actor.display_name.clone()),
            is_admin: session.is_some_and(|s| s.info.actor.role == cishan_app::Role::Admin),
            is_staff: session.is_some_and(|s| s.info.actor.is_staff()),
            logout_csrf: session
                .map(|s| s.info.csrf_token.clone())
                .unwrap_or_default(),
            demo: state.options.demo_banner,
        }
    }
}

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

fn html(status: StatusCode, template: &impl Template) -> PageResult {
    Ok((status, Html(render(template)?)).into_response())
}

/// Pages that show a session's data or its CSRF token must not be cached.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn optional_session(state: &AppState, jar: &CookieJar) -> Result<Option<Session>, PageError> {
    Ok(from_cookie(state, jar).await?)
}

// ---------------------------------------------------------------------------------------------
// Error pages.

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    chrome: Chrome,
    status: u16,
    title: &'static str,
    message: String,
    code: String,
    show_login: bool,
}

/// Renders [`ErrorPage`] markers left by [`PageError`] as a full Chinese page, keeping the
/// status.
pub(crate) async fn render_error_pages(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    let Some(page) = res.extensions().get::<ErrorPage>().cloned() else {
        return res;
    };
    let status = res.status();
    let title = match status {
        StatusCode::BAD_REQUEST => "请求有误",
        StatusCode::UNAUTHORIZED => "需要登录",
        StatusCode::FORBIDDEN => "没有权限",
        StatusCode::NOT_FOUND => "找不到页面",
        StatusCode::METHOD_NOT_ALLOWED => "不支持的操作",
        StatusCode::CONFLICT => "操作冲突",
        StatusCode::PAYLOAD_TOO_LARGE => "内容太大",
        _ => "系统错误",
    };
    let template = ErrorTemplate {
        chrome: Chrome::new(&state, None, ""),
        status: status.as_u16(),
        title,
        message: page.message,
        code: page.code,
        show_login: matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
    };
    match template.render() {
        Ok(body) => no_store((status, Html(body)).into_response()),
        Err(e) => {
            tracing::error!(error.cause = %e, "cannot render the error page");
            (status, "系统错误，请稍后重试。").into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Static files.

const STYLESHEET: &str = include_str!("../static/app.css");

/// The stylesheet
#[utoipa::path(
    get,
    path = "/static/app.css",
    tag = "operations",
    responses((status = 200, content_type = "text/css", body = String))
)]
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Public disclosure.

struct Figure {
    label: &'static str,
    value: String,
    unit: &'static str,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomeTemplate {
    chrome: Chrome,
    figures: Vec<Figure>,
    year: i16,
}

/// Home: the disclosure summary
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 200, content_type = "text/html", body = String)))]
pub(crate) async fn home(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = optional_session(&state, &jar).await?;
    let s = state.app.disclosure_summary().await?;
    let figures = vec![
        Figure {
            label: "捐赠人数",
            value: group_digits(s.donors),
            unit: "人",
        },
        // Net of refunds, as in the exports, where `捐赠总额（含已退款）` is the gross.
        Figure {
            label: cishan_app::exports::NET_ZH,
            value: money(s.donated_fen),
            unit: "",
        },
        Figure {
            label: "受益人次",
            value: group_digits(s.people_helped),
            unit: "人次",
        },
        Figure {
            label: "慈善项目数",
            value: group_digits(s.projects),
            unit: "个",
        },
        Figure {
            label: "参与组织数",
            value: group_digits(s.organizations),
            unit: "家",
        },
    ];
    html(
        StatusCode::OK,
        &HomeTemplate {
            chrome: Chrome::new(&state, session.as_ref(), "home"),
            figures,
            year: default_year(&state),
        },
    )
}

struct OrgRow {
    id: String,
    name: String,
    kind: String,
    credit_code: String,
    is_charity: bool,
    registered_on: String,
    funds: String,
    projects: String,
    donated: String,
}

impl From<cishan_store::OrganizationSummary> for OrgRow {
    fn from(o: cishan_store::OrganizationSummary) -> OrgRow {
        OrgRow {
            kind: org_kind_label(&o.kind),
            id: o.id,
            name: o.name,
            credit_code: o.credit_code,
            is_charity: o.is_charity,
            registered_on: o.registered_on,
            funds: group_digits(o.funds),
            projects: group_digits(o.projects),
            donated: money(o.donated_fen),
        }
    }
}

struct ProjectRow {
    id: String,
    name: String,
    org_id: String,
    org_name: String,
    summary: String,
    state: String,
    goal: String,
    raised: String,
    disbursed: String,
    people_helped: String,
    /// Whole percent of the goal raised; `None` without a goal.
    percent: Option<u8>,
}

impl From<cishan_store::ProjectSummary> for ProjectRow {
    fn from(p: cishan_store::ProjectSummary) -> ProjectRow {
        ProjectRow {
            state: project_state_label(&p.state),
            percent: progress_percent(p.raised_fen, p.goal_fen),
            goal: money(p.goal_fen),
            raised: money(p.raised_fen),
            disbursed: money(p.disbursed_fen),
            people_helped: group_digits(p.people_helped),
            id: p.id,
            name: p.name,
            org_id: p.org_id,
            org_name: p.org_name,
            summary: p.summary,
        }
    }
}

/// Links to the previous and next page of a list.
struct Pager {
    number: i64,
    prev: Option<String>,
    next: Option<String>,
}

impl Pager {
    fn new(base: &str, number: i64, size: i64, next: Option<i64>) -> Pager {
        let link = |n: i64| format!("{base}?page={n}&per_page={size}");
        Pager {
            number,
            prev: (number > 1).then(|| link(number - 1)),
            next: next.map(link),
        }
    }
}

fn page_params(query: Result<Query<PageParams>, QueryRejection>) -> Result<PageRequest, PageError> {
    let Query(params) = query.map_err(|_| {
        PageError::App(crate::error::bad_request(
            None,
            "request.query_invalid",
            "链接中的参数格式不正确，请从列表页重新进入。",
        ))
    })?;
    Ok(params.parse()?)
}

#[derive(Template)]
#[template(path = "organizations.html")]
struct OrganizationsTemplate {
    chrome: Chrome,
    rows: Vec<OrgRow>,
    pager: Pager,
}

/// Organizations with their totals
#[utoipa::path(get, path = "/organizations", tag = "pages", params(PageParams),
    responses((status = 200, content_type = "text/html", body = String)))]
pub(crate) async fn organizations(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<PageParams>, QueryRejection>,
) -> PageResult {
    let page = page_params(query)?;
    let session = optional_session(&state, &jar).await?;
    let rows = state.app.organizations(page.probe).await?;
    let (rows, next) = page.split(rows);
    html(
        StatusCode::OK,
        &OrganizationsTemplate {
            chrome: Chrome::new(&state, session.as_ref(), "organizations"),
            rows: rows.into_iter().map(Into::into).collect(),
            pager: Pager::new("/organizations", page.number, page.size, next),
        },
    )
}

struct FundItem {
    name: String,
    created_on: String,
}

#[derive(Template)]
#[template(path = "organization.html")]
struct OrganizationTemplate {
    chrome: Chrome,
    org: OrgRow,
    division: Option<String>,
    funds: Vec<FundItem>,
    projects: Vec<ProjectRow>,
}

/// One organization with its funds and projects
#[utoipa::path(get, path = "/organizations/{id}", tag = "pages",
    params(("id" = String, Path, description = "Organization id")),
    responses((status = 200, content_type = "text/html", body = String),
              (status = 404, content_type = "text/html", body = String)))]
pub(crate) async fn organization(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let session = optional_session(&state, &jar).await?;
    let detail = state.app.organization(&id).await?;
    let division = detail
        .organization
        .division_code
        .as_deref()
        .and_then(|code| state.app.pack().division(code))
        .map(|d| d.name.clone());
    html(
        StatusCode::OK,
        &OrganizationTemplate {
            chrome: Chrome::new(&state, session.as_ref(), "organizations"),
            org: detail.organization.into(),
            division,
            funds: detail
                .funds
                .into_iter()
                .map(|f| FundItem {
                    name: f.name,
                    created_on: state.app.local_date(&f.created_at),
                })
                .collect(),
            projects: detail.projects.into_iter().map(Into::into).collect(),
        },
    )
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsTemplate {
    chrome: Chrome,
    projects: Vec<ProjectRow>,
    pager: Pager,
}

/// Projects with their totals
#[utoipa::path(get, path = "/projects", tag = "pages", params(PageParams),
    responses((status = 200, content_type = "text/html", body = String)))]
pub(crate) async fn projects(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<PageParams>, QueryRejection>,
) -> PageResult {
    let page = page_params(query)?;
    let session = optional_session(&state, &jar).await?;
    let rows = state.app.projects(page.probe).await?;
    let (rows, next) = page.split(rows);
    html(
        StatusCode::OK,
        &ProjectsTemplate {
            chrome: Chrome::new(&state, session.as_ref(), "projects"),
            projects: rows.into_iter().map(Into::into).collect(),
            pager: Pager::new("/projects", page.number, page.size, next),
        },
    )
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectTemplate {
    chrome: Chrome,
    project: ProjectRow,
}

/// One project: goal, raised, disbursed and progress
#[utoipa::path(get, path = "/projects/{id}", tag = "pages",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, content_type = "text/html", body = String),
              (status = 404, content_type = "text/html", body = String)))]
pub(crate) async fn project(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let session = optional_session(&state, &jar).await?;
    let project = state.app.project(&id).await?;
    html(
        StatusCode::OK,
        &ProjectTemplate {
            chrome: Chrome::new(&state, session.as_ref(), "projects"),
            project: project.into(),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// The indicator dashboard (一屏掌控).

struct YearLink {
    year: i16,
    current: bool,
}

fn year_links(state: &AppState, current: i16) -> Vec<YearLink> {
    state
        .app
        .pack()
        .years
        .iter()
        .map(|&year| YearLink {
            year,
            current: year == current,
        })
        .collect()
}

/// One indicator as a table row.
struct IndicatorRow {
    code: String,
    name: String,
    unit: String,
    owner: String,
    target: String,
    actual: String,
    has_actual: bool,
    source: &'static str,
    status_key: &'static str,
    status_label: &'static str,
    manual: bool,
    /// For the admin form: what the input shows, and the error next to it.
    input: String,
    error: Option<String>,
}

impl From<&IndicatorView> for IndicatorRow {
    fn from(v: &IndicatorView) -> IndicatorRow {
        IndicatorRow {
            code: v.code.clone(),
            name: v.name.clone(),
            unit: v.unit.clone(),
            owner: v.owner.clone(),
            target: if v.target.raw.trim().is_empty() {
                "—".to_owned()
            } else {
                v.target.raw.clone()
            },
            actual: v.actual_text.clone().unwrap_or_else(|| "—".to_owned()),
            has_actual: v.actual_text.is_some(),
            source: match v.actual_source {
                Some(ActualSource::Computed) => "平台自动计算",
                Some(ActualSource::Entered) => "填报",
                None => "",
            },
            status_key: status_key(v.status),
            status_label: status_label(v.status),
            manual: v.manual,
            input: if v.manual {
                v.actual_text.clone().unwrap_or_default()
            } else {
                String::new()
            },
            error: None,
        }
    }
}

struct IndicatorGroup {
    category: String,
    rows: Vec<IndicatorRow>,
}

/// Groups rows by category, in the plan's order of first appearance.
fn group_rows(views: &[IndicatorView]) -> Vec<IndicatorGroup> {
    let mut groups: Vec<IndicatorGroup> = Vec::new();
    for v in views {
        match groups.iter_mut().find(|g| g.category == v.category) {
            Some(g) => g.rows.push(v.into()),
            None => groups.push(IndicatorGroup {
                category: v.category.clone(),
                rows: vec![v.into()],
            }),
        }
    }
    groups
}

struct Counts {
    total: usize,
    met: usize,
    not_met: usize,
    no_data: usize,
}

fn counts(views: &[IndicatorView]) -> Counts {
    let count = |s: Status| views.iter().filter(|v| v.status == s).count();
    Counts {
        total: views.len(),
        met: count(Status::Met),
        not_met: count(Status::NotMet),
        no_data: count(Status::NoData),
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardTemplate {
    chrome: Chrome,
    year: i16,
    years: Vec<YearLink>,
    counts: Counts,
    groups: Vec<IndicatorGroup>,
    /// Staff only: the early warnings they are responsible for (预警通报).
    alerts: Option<cishan_app::alerts::AlertSummary>,
}

fn year_of(
    state: &AppState,
    query: Result<Query<YearParams>, QueryRejection>,
) -> Result<i16, PageError> {
    let Query(params) = query.map_err(|_| {
        PageError::App(crate::error::bad_request(
            None,
            "request.query_invalid",
            "链接中的参数格式不正确，请从看板页重新选择年份。",
        ))
    })?;
    Ok(params.parse(state)?)
}

/// The indicator dashboard for one year
#[utoipa::path(get, path = "/dashboard", tag = "pages", params(YearParams),
    responses((status = 200, content_type = "text/html", body = String),
              (status = 400, description = "Unknown year", content_type = "text/html", body = String)))]
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<YearParams>, QueryRejection>,
) -> PageResult {
    let year = year_of(&state, query)?;
    let session = optional_session(&state, &jar).await?;
    let views = state.app.indicators(year).await?;
    let alerts = match session.as_ref().map(|s| &s.info.actor) {
        Some(actor) if actor.is_staff() => state
            .app
            .alert_counts(actor, &cishan_app::alerts::AlertQuery::default())
            .await
            .ok(),
        _ => None,
    };
    let staff_view = alerts.is_some();
    let res = html(
        StatusCode::OK,
        &DashboardTemplate {
            chrome: Chrome::new(&state, session.as_ref(), "dashboard"),
            year,
            years: year_links(&state, year),
            counts: counts(&views),
            groups: group_rows(&views),
            alerts,
        },
    )?;
    Ok(if staff_view { no_store(res) } else { res })
}

// ---------------------------------------------------------------------------------------------
// Signing in and out.

/// The login form's fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    /// The double-submit token from the form's cookie.
    csrf: String,
    /// Where to go after signing in (a path on this site).
    next: Option<String>,
}

/// A form that only proves it came from our page.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub(crate) struct CsrfForm {
    csrf: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate {
    chrome: Chrome,
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
}

/// Only paths on this site, so the login form cannot be used to send people elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => AFTER_LOGIN.to_owned(),
    }
}

fn login_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    csrf: Option<String>,
    next: String,
    username: String,
    error: Option<String>,
) -> PageResult {
    let csrf = csrf
        .filter(|t| t.len() >= 32)
        .unwrap_or_else(cishan_app::auth::random_token);
    let jar = jar.add(login_csrf_cookie(state, csrf.clone()));
    let body = render(&LoginTemplate {
        chrome: Chrome::new(state, None, "login"),
        csrf,
        next,
        username,
        error,
    })?;
    Ok(no_store((status, jar, Html(body)).into_response()))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

/// The login form
#[utoipa::path(get, path = "/login", tag = "pages",
    params(("next" = Option<String>, Query, description = "A path on this site to return to")),
    responses((status = 200, content_type = "text/html", body = String)))]
pub(crate) async fn login_form(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<NextParam>, QueryRejection>,
) -> PageResult {
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    let csrf = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    login_page(
        &state,
        jar,
        StatusCode::OK,
        csrf,
        safe_next(next.as_deref()),
        String::new(),
        None,
    )
}

/// Sign in
#[utoipa::path(post, path = "/login", tag = "pages",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: to `next` or the admin page; sets the session cookie"),
        (status = 401, description = "Wrong username or password: the form again", content_type = "text/html", body = String),
        (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html", body = String),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> PageResult {
    let Form(form) = form.map_err(form_rejection)?;
    let next = safe_next(form.next.as_deref());
    let cookie_token = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if cookie_token.is_empty() || form.csrf.is_empty() || !same_secret(&cookie_token, &form.csrf) {
        return login_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            None,
            next,
            form.username,
            Some("页面已过期或安全校验未通过，请重新输入用户名和密码后登录。".to_owned()),
        );
    }
    match state.app.login(&form.username, &form.password).await {
        Ok(session) => {
            // People land on their personal page; staff pages would only answer 403.
            let next = if session.info.actor.is_staff() || next.starts_with("/me") {
                next
            } else {
                "/me".to_owned()
            };
            let jar = jar
                .remove(removal(LOGIN_CSRF_COOKIE))
                .add(session_cookie(&state, session.token));
            Ok(no_store((jar, Redirect::to(&next)).into_response()))
        }
        Err(e) if e.kind == ErrorKind::Unauthenticated || e.kind == ErrorKind::Invalid => {
            login_page(
                &state,
                jar,
                crate::error::status_of(e.kind),
                Some(cookie_token),
                next,
                form.username,
                Some(e.message),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Sign out
#[utoipa::path(post, path = "/logout", tag = "pages",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out: to the home page"),
        (status = 403, description = "Missing or wrong CSRF token", content_type = "text/html", body = String),
    ))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    let Form(form) = form.map_err(form_rejection)?;
    let Some(session) = optional_session(&state, &jar).await? else {
        // Already signed out (or expired): nothing to end.
        return Ok((jar.remove(removal(SESSION_COOKIE)), Redirect::to("/")).into_response());
    };
    if !same_secret(&form.csrf, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    state.app.logout(&session.token).await?;
    Ok((jar.remove(removal(SESSION_COOKIE)), Redirect::to("/")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Administration: entering indicator actuals.

/// The fields of one indicator's entry form.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub(crate) struct ActualForm {
    /// Indicator code, e.g. `8`.
    code: String,
    year: String,
    /// A decimal in the indicator's printed unit, e.g. `92.5`.
    value: String,
    /// The session's CSRF token.
    csrf: String,
}

#[derive(Template)]
#[template(path = "admin_indicators.html")]
struct AdminTemplate {
    chrome: Chrome,
    year: i16,
    years: Vec<YearLink>,
    csrf: String,
    groups: Vec<IndicatorGroup>,
    saved: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AdminParams {
    year: Option<String>,
    saved: Option<String>,
}

/// The signed-in administrator, or the reason why not: the login form for nobody, 403 for
/// other roles.
async fn admin_session(
    state: &AppState,
    jar: &CookieJar,
    back: String,
) -> Result<Session, PageError> {
    let session = optional_session(state, jar)
        .await?
        .ok_or(PageError::Login { next: back })?;
    session.info.actor.require_admin()?;
    Ok(session)
}

async fn admin_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    year: i16,
    saved: Option<String>,
    error: Option<String>,
    failed: Option<(&str, String, String)>,
) -> PageResult {
    let views = state.app.indicators(year).await?;
    let mut groups = group_rows(&views);
    if let Some((code, value, message)) = failed {
        for row in groups.iter_mut().flat_map(|g| g.rows.iter_mut()) {
            if row.code == code {
                row.input = value.clone();
                row.error = Some(message.clone());
            }
        }
    }
    let template = AdminTemplate {
        chrome: Chrome::new(state, Some(session), "admin"),
        year,
        years: year_links(state, year),
        csrf: session.info.csrf_token.clone(),
        groups,
        saved,
        error,
    };
    Ok(no_store((status, Html(render(&template)?)).into_response()))
}

/// Enter indicator actuals (administrators)
#[utoipa::path(get, path = "/admin/indicators", tag = "pages",
    params(
        ("year" = Option<i16>, Query, description = "A year of the plan (default: its last year)"),
        ("saved" = Option<String>, Query, description = "The code just saved, to confirm it"),
    ),
    responses(
        (status = 200, content_type = "text/html", body = String),
        (status = 303, description = "Not signed in: to the login form"),
        (status = 403, description = "Not an administrator", content_type = "text/html", body = String),
    ))]
pub(crate) async fn admin_indicators(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<AdminParams>, QueryRejection>,
) -> PageResult {
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let back = match &params.year {
        Some(y) if y.bytes().all(|b| b.is_ascii_digit()) && !y.is_empty() => {
            format!("/admin/indicators?year={y}")
        }
        _ => "/admin/indicators".to_owned(),
    };
    let session = admin_session(&state, &jar, back).await?;
    let year = YearParams { year: params.year }.parse(&state)?;
    let saved = params.saved.as_deref().and_then(|code| {
        state.app.pack().indicator(code).map(|def| {
            format!(
                "已保存：指标 {} “{}” {year} 年的实际值。",
                def.code, def.name
            )
        })
    });
    admin_page(&state, &session, StatusCode::OK, year, saved, None, None).await
}

/// Save one indicator's actual value (administrators)
#[utoipa::path(post, path = "/admin/indicators", tag = "pages",
    request_body(content = ActualForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Saved: back to the admin page with a confirmation"),
        (status = 400, description = "Invalid value: the form again with the message next to the field", content_type = "text/html", body = String),
        (status = 403, description = "Not an administrator, or CSRF token missing", content_type = "text/html", body = String),
    ))]
pub(crate) async fn admin_set_actual(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ActualForm>, FormRejection>,
) -> PageResult {
    let session = optional_session(&state, &jar)
        .await?
        .ok_or_else(|| PageError::Login {
            next: "/admin/indicators".to_owned(),
        })?;
    let Form(form) = form.map_err(form_rejection)?;
    if form.csrf.is_empty() || !same_secret(&form.csrf, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    let year = parse_year("year", &form.year)?;
    match state
        .app
        .set_indicator_actual(&session.info.actor, &form.code, year, &form.value)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!(
            "/admin/indicators?year={}&saved={}#indicator-{}",
            // A baseline year (before the first target year) has no page of its own.
            if state.app.pack().years.contains(&year) {
                year
            } else {
                state.app.pack().years.first().copied().unwrap_or(year)
            },
            crate::error::encode_component(&form.code),
            crate::error::encode_component(&form.code),
        ))
        .into_response()),
        Err(e)
            if e.kind == ErrorKind::Invalid
                && e.field.as_deref() == Some("value")
                && state.app.pack().years.contains(&year) =>
        {
            let summary = format!("指标 {} 未保存：{}", form.code, e.message);
            admin_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                year,
                None,
                Some(summary),
                Some((&form.code, form.value.clone(), e.message)),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/dashboard?year=2023")),
            "/dashboard?year=2023"
        );
        assert_eq!(safe_next(Some("//evil.example")), AFTER_LOGIN);
        assert_eq!(safe_next(Some("https://evil.example")), AFTER_LOGIN);
        assert_eq!(safe_next(Some("/\\evil.example")), AFTER_LOGIN);
        assert_eq!(safe_next(None), AFTER_LOGIN);
    }

    #[test]
    fn pager_links() {
        let p = Pager::new("/projects", 1, 20, Some(2));
        assert_eq!(p.prev, None);
        assert_eq!(p.next.as_deref(), Some("/projects?page=2&per_page=20"));
        let p = Pager::new("/projects", 3, 10, None);
        assert_eq!(p.prev.as_deref(), Some("/projects?page=2&per_page=10"));
        assert_eq!(p.next, None);
    }
}
