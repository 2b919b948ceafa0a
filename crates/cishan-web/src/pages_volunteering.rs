//! Pages of codes and volunteering: the personal code (`/me/code`, refreshing itself before it
//! expires), hours and certificates (`/me/hours`), the organizer's activity list and activity
//! page with scanning (a text field a handheld scanner types into, and a photo decoded on the
//! server), the volunteer's side of scanning an activity's code, and the public certificate
//! page verifiable by its code.
//!
//! Same rules as the other pages: Chinese, phone first, no JavaScript (the code page refreshes
//! with the `Refresh` header); every form that changes state echoes the session's CSRF token.

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use cishan_app::codes::{decode_qr_image, qr_svg};
use cishan_app::volunteering::{
    ActivityInput, ActivityView, CertificateView, HoursView, ScanCodeInput, SessionView,
    VerifyInput, WithdrawInput,
};
use cishan_app::{AppError, ErrorKind};
use serde::Deserialize;

use crate::api_codes::SCAN_BODY_BYTES;
use crate::error::{encode_component, PageError};
use crate::pages::Chrome;
use crate::session::{csrf_refused, from_cookie, same_secret, Session};
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// Activities the organizer's list shows.
const LISTED_ACTIVITIES: i64 = 50;

/// The routes of this module, merged into the platform router by `lib.rs`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/code", get(my_code))
        .route("/me/hours", get(my_hours))
        .route(
            "/admin/activities",
            get(activity_list).post(create_activity),
        )
        .route("/admin/activities/{id}", get(activity_page))
        .route("/admin/activities/{id}/scan", post(staff_scan))
        .route(
            "/admin/activities/{id}/scan-photo",
            post(staff_scan_photo).layer(DefaultBodyLimit::max(SCAN_BODY_BYTES)),
        )
        .route("/admin/attendances/{id}/verify", post(verify))
        .route("/admin/attendances/{id}/withdraw", post(withdraw))
        .route(
            "/activities/{id}/scan",
            get(volunteer_scan_page).post(volunteer_scan),
        )
        .route("/certificates/{number}", get(certificate))
}

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

/// Pages with a session's data or CSRF token are never cached.
fn private_page(status: StatusCode, template: &impl Template) -> PageResult {
    let mut res = (status, Html(render(template)?)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn signed_in(state: &AppState, jar: &CookieJar, back: &str) -> Result<Session, PageError> {
    from_cookie(state, jar)
        .await?
        .ok_or_else(|| PageError::Login {
            next: back.to_owned(),
        })
}

async fn staff(state: &AppState, jar: &CookieJar, back: &str) -> Result<Session, PageError> {
    let session = signed_in(state, jar, back).await?;
    session.info.actor.require_staff()?;
    Ok(session)
}

fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || !same_secret(sent, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    Ok(())
}

fn my_participant(session: &Session) -> Result<String, PageError> {
    session.info.actor.participant_id.clone().ok_or_else(|| {
        PageError::App(AppError {
            message:
                "这个账号没有关联到参与者（个人）记录，没有一码通和服务时长。请用个人账号登录。"
                    .into(),
            ..AppError::not_found("participant")
        })
    })
}

/// The address a printed QR code should open: absolute when the request named a plausible
/// host, so a phone camera opens it.
fn public_url(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let scheme = if state.options.secure_cookies {
        "https"
    } else {
        "http"
    };
    match host {
        Some(host) => format!("{scheme}://{host}{path}"),
        None => path.to_owned(),
    }
}

/// An instant as people read it in the region: `2024-03-01 09:00`.
pub(crate) fn local_time(state: &AppState, instant: &str) -> String {
    let local = cishan_store::parse_instant(instant).ok().and_then(|at| {
        let tz = jiff::tz::TimeZone::get(&state.app.pack().timezone).ok()?;
        Some(at.to_zoned(tz).strftime("%Y-%m-%d %H:%M:%S").to_string())
    });
    local.unwrap_or_else(|| instant.to_owned())
}

fn state_zh(state: &str) -> &'static str {
    match state {
        "checked_in" => "已签到",
        "checked_out" => "已签退，待核验",
        "verified" => "已核验",
        _ => "",
    }
}

/// One attendance as a page row.
struct SessionRow {
    attendance_id: String,
    name: String,
    state: String,
    state_zh: &'static str,
    checked_in_at: String,
    checked_out_at: String,
    minutes: String,
    credited_minutes: i64,
    method: &'static str,
}

fn session_row(state: &AppState, s: &SessionView) -> SessionRow {
    SessionRow {
        attendance_id: s.attendance_id.clone(),
        name: s.display_name_masked.clone(),
        state: s.state.clone(),
        state_zh: state_zh(&s.state),
        checked_in_at: local_time(state, &s.checked_in_at),
        checked_out_at: s
            .checked_out_at
            .as_deref()
            .map(|t| local_time(state, t))
            .unwrap_or_default(),
        minutes: s
            .duration_minutes
            .map(|m| m.to_string())
            .unwrap_or_default(),
        credited_minutes: s.credited_minutes,
        method: if s.check_in_method == "activity_code" {
            "志愿者扫活动码"
        } else {
            "组织者扫个人码"
        },
    }
}

/// What a scan did, in one line for the page.
fn scan_message(action: &str, s: &SessionView) -> String {
    let what = if action == "check_out" {
        "签退"
    } else {
        "签到"
    };
    if s.unchanged {
        format!(
            "{} 已经{}过，本次扫码未作改动（{}）。",
            s.display_name_masked,
            what,
            state_zh(&s.state)
        )
    } else if action == "check_out" {
        format!(
            "{} 签退成功：本次服务 {} 分钟，待组织者核验后计入时长。",
            s.display_name_masked,
            s.duration_minutes.unwrap_or(0)
        )
    } else {
        format!("{} 签到成功。", s.display_name_masked)
    }
}

/// A refusal the page shows as a message (invalid, forbidden, not found, conflict); anything
/// else is an error page.
fn shown(e: AppError) -> Result<String, PageError> {
    match e.kind {
        ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Forbidden | ErrorKind::NotFound => {
            Ok(e.message)
        }
        _ => Err(PageError::App(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// /me/code

#[derive(Template)]
#[template(path = "code_me.html")]
struct MyCodeTemplate {
    chrome: Chrome,
    qr_svg: String,
    payload: String,
    expires_at: String,
    refresh_after_seconds: u32,
}

/// My participant code (一码通)
pub(crate) async fn my_code(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = signed_in(&state, &jar, "/me/code").await?;
    let pid = my_participant(&session)?;
    let code = state
        .app
        .participant_code(&session.info.actor, &pid)
        .await?;
    let mut res = private_page(
        StatusCode::OK,
        &MyCodeTemplate {
            chrome: Chrome::new(&state, Some(&session), ""),
            qr_svg: code.qr_svg,
            payload: code.payload,
            expires_at: local_time(&state, &code.expires_at),
            refresh_after_seconds: code.refresh_after_seconds,
        },
    )?;
    // No script: the browser reloads the page (a fresh code) before this one expires.
    if let Ok(v) = HeaderValue::from_str(&format!("{}; url=/me/code", code.refresh_after_seconds)) {
        res.headers_mut().insert("refresh", v);
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------------
// /me/hours

#[derive(Template)]
#[template(path = "volunteer_hours.html")]
struct HoursTemplate {
    chrome: Chrome,
    hours: HoursView,
    stars: String,
    pending: Vec<SessionRow>,
}

/// My volunteer hours, stars, service records and certificates
pub(crate) async fn my_hours(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = signed_in(&state, &jar, "/me/hours").await?;
    let pid = my_participant(&session)?;
    let hours = state.app.volunteer_hours(&session.info.actor, &pid).await?;
    let pending = hours
        .pending
        .iter()
        .map(|s| session_row(&state, s))
        .collect();
    private_page(
        StatusCode::OK,
        &HoursTemplate {
            chrome: Chrome::new(&state, Some(&session), ""),
            stars: "★".repeat(usize::from(hours.stars)),
            pending,
            hours,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Organizer: activities

/// The activity form, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ActivityForm {
    csrf: String,
    title: String,
    category: String,
    content: String,
    recipients: String,
    organizer_org_id: String,
    division_code: String,
    address: String,
    /// `2024-03-01T09:00` from a datetime-local input: local time of the region.
    starts_at: String,
    ends_at: String,
    capacity: String,
}

struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "volunteer_activities.html")]
struct ActivitiesTemplate {
    chrome: Chrome,
    csrf: String,
    activities: Vec<ActivityRow>,
    form: ActivityForm,
    error: Option<String>,
    error_field: Option<String>,
    categories: Vec<Choice>,
    divisions: Vec<Choice>,
}

struct ActivityRow {
    id: String,
    title: String,
    starts_at: String,
    place: String,
    checked_in: i64,
    capacity: i64,
}

async fn activities_page(
    state: &AppState,
    session: &Session,
    form: ActivityForm,
    error: Option<AppError>,
) -> PageResult {
    let activities = state
        .app
        .activities(0, LISTED_ACTIVITIES)
        .await?
        .into_iter()
        .map(|a| ActivityRow {
            starts_at: local_time(state, &a.starts_at),
            place: format!("{} {}", a.division_name, a.address),
            id: a.id,
            title: a.title,
            checked_in: a.checked_in,
            capacity: a.capacity,
        })
        .collect();
    let pack = state.app.pack();
    let categories = pack
        .service_categories
        .iter()
        .map(|c| Choice {
            value: c.code.clone(),
            label: c.name.clone(),
        })
        .collect();
    let divisions = pack
        .divisions
        .iter()
        .filter(|d| d.parent.is_some() && d.code.as_str() != pack.code.as_str())
        .map(|d| Choice {
            value: d.code.as_str().to_owned(),
            label: d.name.clone(),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    private_page(
        status,
        &ActivitiesTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            activities,
            form,
            error_field: error.as_ref().and_then(|e| e.field.clone()),
            error: error.map(|e| e.message),
            categories,
            divisions,
        },
    )
}

/// Volunteer activities, and the form to create one (staff)
pub(crate) async fn activity_list(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff(&state, &jar, "/admin/activities").await?;
    let form = ActivityForm {
        capacity: "20".into(),
        ..ActivityForm::default()
    };
    activities_page(&state, &session, form, None).await
}

/// A `datetime-local` value (`2024-03-01T09:00`) in the region's time zone, as RFC 3339.
fn local_input(state: &AppState, text: &str) -> String {
    let text = text.trim();
    let parsed = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", text)
        .ok()
        .and_then(|dt| {
            let tz = jiff::tz::TimeZone::get(&state.app.pack().timezone).ok()?;
            dt.to_zoned(tz).ok()
        });
    match parsed {
        Some(z) => z.timestamp().to_string(),
        None => text.to_owned(),
    }
}

/// Create an activity (staff)
pub(crate) async fn create_activity(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ActivityForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/activities").await?;
    let Form(form) = form.map_err(|_| crate::pages_registry::form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let capacity = match form.capacity.trim().parse::<i64>() {
        Ok(c) => c,
        Err(_) => {
            let e = AppError::invalid("capacity", "capacity.invalid", "名额请填写整数，例如 20。");
            return activities_page(&state, &session, form, Some(e)).await;
        }
    };
    let input = ActivityInput {
        title: form.title.clone(),
        category: form.category.clone(),
        content: Some(form.content.clone()),
        recipients: Some(form.recipients.clone()),
        organizer_org_id: form.organizer_org_id.trim().to_owned(),
        team_id: None,
        division_code: form.division_code.clone(),
        address: form.address.clone(),
        starts_at: local_input(&state, &form.starts_at),
        ends_at: local_input(&state, &form.ends_at),
        capacity,
    };
    match state.app.create_activity(&session.info.actor, &input).await {
        Ok(view) => Ok(
            Redirect::to(&format!("/admin/activities/{}", encode_component(&view.id)))
                .into_response(),
        ),
        Err(e) if e.kind == ErrorKind::Invalid => {
            activities_page(&state, &session, form, Some(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "volunteer_activity.html")]
struct ActivityTemplate {
    chrome: Chrome,
    csrf: String,
    activity: ActivityView,
    starts_at: String,
    ends_at: String,
    qr_svg: String,
    scan_url: String,
    attendances: Vec<SessionRow>,
    message: Option<String>,
    refused: Option<String>,
}

/// An activity with its code, scanning and the attendance list (staff)
pub(crate) async fn activity_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let back = format!("/admin/activities/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    render_activity(&state, &session, &headers, &id, None).await
}

/// The activity page, with what the last scan or button did. Rendered directly as the answer
/// to the POST (not carried through a redirect), so no link can make the page say anything.
async fn render_activity(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    id: &str,
    outcome: Option<Result<String, String>>,
) -> PageResult {
    let state = state.clone();
    let activity = state.app.activity(id).await?;
    let attendances = state
        .app
        .activity_attendances(&session.info.actor, id)
        .await?
        .iter()
        .map(|s| session_row(&state, s))
        .collect();
    let scan_url = public_url(
        &state,
        headers,
        &format!(
            "/activities/{}/scan?code={}",
            encode_component(&activity.id),
            activity.code
        ),
    );
    let (message, refused) = match outcome {
        Some(Ok(m)) => (Some(m), None),
        Some(Err(r)) => (None, Some(r)),
        None => (None, None),
    };
    private_page(
        if refused.is_some() {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        },
        &ActivityTemplate {
            chrome: Chrome::new(&state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            starts_at: local_time(&state, &activity.starts_at),
            ends_at: local_time(&state, &activity.ends_at),
            qr_svg: qr_svg(&scan_url, "活动签到二维码：志愿者用手机扫码签到签退")?,
            scan_url,
            activity,
            attendances,
            message,
            refused,
        },
    )
}

/// A scan typed by a handheld scanner (or by hand).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ScanForm {
    csrf: String,
    code: String,
    /// `check_in` (default) or `check_out`.
    action: String,
}

async fn apply_scan(
    state: &AppState,
    session: &Session,
    id: &str,
    action: &str,
    code: String,
) -> Result<Result<String, String>, PageError> {
    let input = ScanCodeInput { code };
    let actor = &session.info.actor;
    let result = if action == "check_out" {
        state.app.check_out(actor, id, &input).await
    } else {
        state.app.check_in(actor, id, &input).await
    };
    match result {
        Ok(s) => Ok(Ok(scan_message(action, &s))),
        Err(e) => Ok(Err(shown(e)?)),
    }
}

/// Check a volunteer in or out with a scanned code (staff)
pub(crate) async fn staff_scan(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<ScanForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/activities/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.unwrap_or_default();
    check_csrf(&session, &form.csrf)?;
    let outcome = apply_scan(&state, &session, &id, &form.action, form.code).await?;
    render_activity(&state, &session, &headers, &id, Some(outcome)).await
}

/// Check a volunteer in or out with a photo of their code, decoded on the server (staff)
pub(crate) async fn staff_scan_photo(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> PageResult {
    let back = format!("/admin/activities/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let refused_upload = || {
        PageError::App(AppError::invalid(
            "image",
            "scan.upload_invalid",
            "照片上传失败（文件过大或表单不完整），请重新拍照上传。",
        ))
    };
    let mut multipart = multipart.map_err(|_| refused_upload())?;
    let (mut csrf, mut action, mut image) = (String::new(), String::new(), Vec::new());
    while let Some(field) = multipart.next_field().await.map_err(|_| refused_upload())? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(|_| refused_upload())?,
            "action" => action = field.text().await.map_err(|_| refused_upload())?,
            "image" => image = field.bytes().await.map_err(|_| refused_upload())?.to_vec(),
            _ => {}
        }
    }
    check_csrf(&session, &csrf)?;
    let outcome = match decode_qr_image(&image) {
        Ok(code) => apply_scan(&state, &session, &id, &action, code).await?,
        Err(e) => Err(shown(e)?),
    };
    render_activity(&state, &session, &headers, &id, Some(outcome)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct VerifyForm {
    csrf: String,
    activity_id: String,
    evaluation: String,
    reason: String,
}

/// Verify a session's hours (staff)
pub(crate) async fn verify(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/activities").await?;
    let Form(form) = form.unwrap_or_default();
    check_csrf(&session, &form.csrf)?;
    let input = VerifyInput {
        evaluation: Some(form.evaluation.clone()).filter(|e| !e.trim().is_empty()),
    };
    let outcome = match state
        .app
        .verify_attendance(&session.info.actor, &id, &input)
        .await
    {
        Ok(s) => Ok(format!(
            "已核验 {}：计入 {} 分钟。",
            s.display_name_masked, s.credited_minutes
        )),
        Err(e) => Err(shown(e)?),
    };
    render_activity(&state, &session, &headers, &form.activity_id, Some(outcome)).await
}

/// Withdraw a verification (staff)
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/activities").await?;
    let Form(form) = form.unwrap_or_default();
    check_csrf(&session, &form.csrf)?;
    let input = WithdrawInput {
        reason: form.reason.clone(),
    };
    let outcome = match state
        .app
        .withdraw_verification(&session.info.actor, &id, &input)
        .await
    {
        Ok(s) => Ok(format!(
            "已撤销 {} 的核验，这次服务不再计入时长。",
            s.display_name_masked
        )),
        Err(e) => Err(shown(e)?),
    };
    render_activity(&state, &session, &headers, &form.activity_id, Some(outcome)).await
}

// ---------------------------------------------------------------------------------------------
// The volunteer's side: the activity's code opened on a phone

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CodeParam {
    code: String,
}

#[derive(Template)]
#[template(path = "volunteer_scan.html")]
struct VolunteerScanTemplate {
    chrome: Chrome,
    csrf: String,
    activity: ActivityView,
    starts_at: String,
    ends_at: String,
    code: String,
    message: Option<String>,
    refused: Option<String>,
}

async fn volunteer_page(
    state: &AppState,
    session: &Session,
    id: &str,
    code: String,
    outcome: Option<Result<String, String>>,
) -> PageResult {
    let activity = state.app.activity(id).await?;
    let (message, refused) = match outcome {
        Some(Ok(m)) => (Some(m), None),
        Some(Err(r)) => (None, Some(r)),
        None => (None, None),
    };
    private_page(
        if refused.is_some() {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        },
        &VolunteerScanTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            starts_at: local_time(state, &activity.starts_at),
            ends_at: local_time(state, &activity.ends_at),
            activity,
            code,
            message,
            refused,
        },
    )
}

/// The activity's code, opened by a volunteer's phone: sign in, then check in or out
pub(crate) async fn volunteer_scan_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    query: Result<Query<CodeParam>, QueryRejection>,
) -> PageResult {
    let code = query.map(|Query(q)| q.code).unwrap_or_default();
    let back = format!(
        "/activities/{}/scan?code={}",
        encode_component(&id),
        encode_component(&code)
    );
    let session = signed_in(&state, &jar, &back).await?;
    volunteer_page(&state, &session, &id, code, None).await
}

/// Check in or out by the activity's code (the volunteer's own account)
pub(crate) async fn volunteer_scan(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<ScanForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(
        &state,
        &jar,
        &format!("/activities/{}/scan", encode_component(&id)),
    )
    .await?;
    let Form(form) = form.unwrap_or_default();
    check_csrf(&session, &form.csrf)?;
    let outcome = apply_scan(&state, &session, &id, &form.action, form.code.clone()).await?;
    volunteer_page(&state, &session, &id, form.code, Some(outcome)).await
}

// ---------------------------------------------------------------------------------------------
// The public certificate page

#[derive(Template)]
#[template(path = "volunteer_certificate.html")]
struct CertificateTemplate {
    chrome: Chrome,
    certificate: CertificateView,
    qr_svg: String,
    verify_url: String,
    /// `Some(true)`: the code given checked out; `Some(false)`: refused (see `refused`).
    verified: Option<bool>,
    refused: Option<String>,
}

/// A volunteer service certificate, verifiable by its code
pub(crate) async fn certificate(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(number): Path<String>,
    query: Result<Query<CodeParam>, QueryRejection>,
) -> PageResult {
    let session = from_cookie(&state, &jar).await?;
    let code = query.map(|Query(q)| q.code).unwrap_or_default();
    let certificate = state.app.certificate(&number).await?;
    let (verified, refused) = if code.trim().is_empty() {
        (None, None)
    } else {
        match state.app.verify_certificate_code(&number, &code).await {
            Ok(_) => (Some(true), None),
            Err(e) if e.kind == ErrorKind::Invalid => (Some(false), Some(e.message)),
            Err(e) => return Err(e.into()),
        }
    };
    let verify_url = public_url(
        &state,
        &headers,
        &format!(
            "/certificates/{}?code={}",
            encode_component(&certificate.number),
            certificate.code
        ),
    );
    let status = if verified == Some(false) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = CertificateTemplate {
        chrome: Chrome::new(&state, session.as_ref(), ""),
        qr_svg: qr_svg(&verify_url, "证书二维码：扫码核验这张志愿服务证书")?,
        verify_url,
        certificate,
        verified,
        refused,
    };
    Ok((status, Html(render(&page)?)).into_response())
}
