//! Pages for people and for the staff who register them: self-registration (`/register`), the
//! personal page (`/me`: name, masked ID and phone, roles, links to the code, hours and points
//! pages), staff registration and roles (`/admin/participants`), and roster imports with a
//! progress page that refreshes itself (`/admin/imports`).
//!
//! Chinese, phone first, no JavaScript: the progress page refreshes with the `Refresh` header.
//! Every form that changes state echoes the session's CSRF token; the registration form, which
//! has no session yet, uses the login form's double-submit cookie.

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use cishan_app::import::{ImportJobView, ImportKind, MAX_IMPORT_BYTES};
use cishan_app::participants::{ParticipantView, PersonInput, SelfRegistration, ROLES};
use cishan_app::{AppError, ErrorKind};
use serde::Deserialize;

use crate::error::{encode_component, form_rejection, PageError};
use crate::pages::Chrome;
use crate::session::{
    csrf_refused, from_cookie, login_csrf_cookie, removal, same_secret, session_cookie, Session,
    LOGIN_CSRF_COOKIE,
};
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// Seconds between refreshes of a running import's progress page.
const PROGRESS_REFRESH_SECONDS: u32 = 2;

/// The routes of this module, merged into the platform router by `lib.rs`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/register", get(register_form).post(register))
        .route("/me", get(me))
        .route("/me/volunteer", post(become_volunteer))
        .route(
            "/admin/participants",
            get(participants_page).post(register_person),
        )
        .route("/admin/participants/{id}", get(participant_page))
        .route("/admin/participants/{id}/roles", post(change_role))
        .route(
            "/admin/imports",
            get(import_form)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES + 64 * 1024)),
        )
        .route("/admin/imports/{id}", get(import_progress))
}

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

/// Pages that show personal data or a CSRF token must not be cached.
fn page(status: StatusCode, body: String) -> Response {
    let mut res = (status, Html(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
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

/// An error shown on the form (invalid input, conflict), or passed on as an error page.
fn shown(e: AppError) -> Result<FieldError, PageError> {
    match e.kind {
        ErrorKind::Invalid | ErrorKind::Conflict => Ok(FieldError {
            field: e.field.unwrap_or_default(),
            message: e.message,
        }),
        _ => Err(e.into()),
    }
}

/// One message next to the field it is about.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) message: String,
}

impl FieldError {
    /// True when the error is about `field` (the template marks the input invalid).
    pub(crate) fn on(&self, field: &str) -> bool {
        self.field == field
    }
}

/// A `<select>` option.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

fn division_choices(state: &AppState, selected: &str) -> Vec<Choice> {
    let pack = state.app.pack();
    let mut out = Vec::new();
    for street in pack.streets_and_towns() {
        out.push(Choice {
            value: street.code.as_str().to_owned(),
            label: street.name.clone(),
            selected: street.code.as_str() == selected,
        });
        for c in pack.communities_of(street.code.as_str()) {
            out.push(Choice {
                value: c.code.as_str().to_owned(),
                label: format!("{} · {}", street.name, c.name),
                selected: c.code.as_str() == selected,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Self-registration.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RegisterForm {
    csrf: String,
    name: String,
    id_number: String,
    phone: String,
    division_code: String,
    password: String,
}

#[derive(Template)]
#[template(path = "personal_register.html")]
struct RegisterTemplate {
    chrome: Chrome,
    csrf: String,
    name: String,
    phone: String,
    divisions: Vec<Choice>,
    error: Option<FieldError>,
}

fn register_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    csrf: Option<String>,
    form: &RegisterForm,
    error: Option<FieldError>,
) -> PageResult {
    let csrf = csrf
        .filter(|t| t.len() >= 32)
        .unwrap_or_else(cishan_app::auth::random_token);
    let jar = jar.add(login_csrf_cookie(state, csrf.clone()));
    let body = render(&RegisterTemplate {
        chrome: Chrome::new(state, None, "register"),
        csrf,
        name: form.name.clone(),
        // The ID number and password are never echoed back into the page.
        phone: form.phone.clone(),
        divisions: division_choices(state, &form.division_code),
        error,
    })?;
    let mut res = (status, jar, Html(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The self-registration form
pub(crate) async fn register_form(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let csrf = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    register_page(
        &state,
        jar,
        StatusCode::OK,
        csrf,
        &RegisterForm::default(),
        None,
    )
}

/// Register and sign in
pub(crate) async fn register(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> PageResult {
    let Form(form) = form.map_err(form_rejection)?;
    let cookie_token = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if cookie_token.is_empty() || form.csrf.is_empty() || !same_secret(&cookie_token, &form.csrf) {
        return register_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            None,
            &form,
            Some(FieldError {
                field: String::new(),
                message: "页面已过期或安全校验未通过，请重新填写后提交。".into(),
            }),
        );
    }
    let input = SelfRegistration {
        name: form.name.clone(),
        id_number: form.id_number.clone(),
        phone: form.phone.clone(),
        division_code: Some(form.division_code.clone()).filter(|d| !d.is_empty()),
        password: form.password.clone(),
    };
    match state.app.register_self(&input).await {
        Ok(_) => {
            // Sign the new member in with what they just typed.
            let session = state.app.login(&form.id_number, &form.password).await?;
            let jar = jar
                .remove(removal(LOGIN_CSRF_COOKIE))
                .add(session_cookie(&state, session.token));
            let mut res = (jar, Redirect::to("/me")).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        }
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let error = shown(e)?;
            register_page(&state, jar, status, Some(cookie_token), &form, Some(error))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The personal page.

#[derive(Template)]
#[template(path = "personal_me.html")]
struct MeTemplate {
    chrome: Chrome,
    me: Option<ParticipantView>,
    csrf: String,
    /// Why registering as a volunteer was refused, shown next to the button.
    error: Option<String>,
}

fn me_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    me: Option<ParticipantView>,
    error: Option<String>,
) -> PageResult {
    let body = render(&MeTemplate {
        chrome: Chrome::new(state, Some(session), "me"),
        me,
        csrf: session.info.csrf_token.clone(),
        error,
    })?;
    Ok(page(status, body))
}

async fn my_view(
    state: &AppState,
    session: &Session,
) -> Result<Option<ParticipantView>, PageError> {
    match state.app.my_participant(&session.info.actor).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The personal page: who I am, my roles, and where my code, hours and points are
pub(crate) async fn me(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = signed_in(&state, &jar, "/me").await?;
    let me = my_view(&state, &session).await?;
    me_page(&state, &session, StatusCode::OK, me, None)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// Register myself as a volunteer (志愿者注册): the volunteer role and a volunteer number, once
pub(crate) async fn become_volunteer(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/me").await?;
    let Form(form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    match state
        .app
        .register_self_as_volunteer(&session.info.actor)
        .await
    {
        Ok(_) => Ok(Redirect::to("/me").into_response()),
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let error = shown(e)?;
            let me = my_view(&state, &session).await?;
            me_page(&state, &session, status, me, Some(error.message))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Staff: registering people and their roles.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SearchParams {
    q: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PersonForm {
    csrf: String,
    name: String,
    id_number: String,
    phone: String,
    division_code: String,
    roles: String,
}

#[derive(Template)]
#[template(path = "personal_admin.html")]
struct AdminTemplate {
    chrome: Chrome,
    csrf: String,
    q: String,
    results: Option<Vec<ParticipantView>>,
    search_error: Option<String>,
    name: String,
    phone: String,
    roles: Vec<Choice>,
    divisions: Vec<Choice>,
    error: Option<FieldError>,
}

fn role_choices(selected: &str) -> Vec<Choice> {
    ROLES
        .iter()
        .map(|r| Choice {
            value: (*r).to_owned(),
            label: cishan_app::participants::role_label(r).to_owned(),
            selected: *r == selected,
        })
        .collect()
}

/// Search and registration for staff
pub(crate) async fn participants_page(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<SearchParams>, QueryRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/participants").await?;
    let q = query
        .map(|Query(p)| p.q.unwrap_or_default())
        .unwrap_or_default();
    let (results, search_error) = if q.trim().is_empty() {
        (None, None)
    } else {
        match state.app.find_participants(&session.info.actor, &q).await {
            Ok(r) => (Some(r), None),
            Err(e) if e.kind == ErrorKind::Invalid => (None, Some(e.message)),
            Err(e) => return Err(e.into()),
        }
    };
    let body = render(&AdminTemplate {
        chrome: Chrome::new(&state, Some(&session), "participants"),
        csrf: session.info.csrf_token.clone(),
        q: q.trim().chars().take(40).collect(),
        results,
        search_error,
        name: String::new(),
        phone: String::new(),
        roles: role_choices(""),
        divisions: division_choices(&state, ""),
        error: None,
    })?;
    Ok(page(StatusCode::OK, body))
}

/// Register a person (staff)
pub(crate) async fn register_person(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<PersonForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/participants").await?;
    let Form(form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let input = PersonInput {
        name: form.name.clone(),
        id_number: form.id_number.clone(),
        phone: Some(form.phone.clone()),
        division_code: Some(form.division_code.clone()),
        roles: Some(form.roles.clone())
            .filter(|r| !r.is_empty())
            .into_iter()
            .collect(),
    };
    match state.app.register_person(&session.info.actor, &input).await {
        Ok(view) => Ok(Redirect::to(&format!(
            "/admin/participants/{}",
            encode_component(&view.id)
        ))
        .into_response()),
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let error = shown(e)?;
            let body = render(&AdminTemplate {
                chrome: Chrome::new(&state, Some(&session), "participants"),
                csrf: session.info.csrf_token.clone(),
                q: String::new(),
                results: None,
                search_error: None,
                name: form.name.clone(),
                phone: form.phone.clone(),
                roles: role_choices(&form.roles),
                divisions: division_choices(&state, &form.division_code),
                error: Some(error),
            })?;
            Ok(page(status, body))
        }
    }
}

#[derive(Template)]
#[template(path = "personal_participant.html")]
struct ParticipantTemplate {
    chrome: Chrome,
    csrf: String,
    p: ParticipantView,
    roles: Vec<Choice>,
    error: Option<String>,
}

async fn render_participant(
    state: &AppState,
    session: &Session,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    let p = state.app.participant_view(&session.info.actor, id).await?;
    let body = render(&ParticipantTemplate {
        chrome: Chrome::new(state, Some(session), "participants"),
        csrf: session.info.csrf_token.clone(),
        p,
        roles: role_choices(""),
        error,
    })?;
    Ok(page(status, body))
}

/// One participant for staff: masked identifiers, roles, and the role forms
pub(crate) async fn participant_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let back = format!("/admin/participants/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    render_participant(&state, &session, &id, StatusCode::OK, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RoleForm {
    csrf: String,
    role: String,
    org_id: String,
    /// `attach` or `detach`.
    action: String,
}

/// Attach or detach a role (staff)
pub(crate) async fn change_role(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<RoleForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/participants/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let org = Some(form.org_id.as_str()).filter(|o| !o.trim().is_empty());
    let actor = &session.info.actor;
    let result = if form.action == "detach" {
        state.app.detach_role(actor, &id, &form.role, org).await
    } else {
        state.app.attach_role(actor, &id, &form.role, org).await
    };
    match result {
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            let error = shown(e)?;
            render_participant(&state, &session, &id, status, Some(error.message)).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Roster imports.

#[derive(Template)]
#[template(path = "personal_import.html")]
struct ImportTemplate {
    chrome: Chrome,
    csrf: String,
    max_mb: usize,
    error: Option<String>,
}

fn import_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    let body = render(&ImportTemplate {
        chrome: Chrome::new(state, Some(session), "imports"),
        csrf: session.info.csrf_token.clone(),
        max_mb: MAX_IMPORT_BYTES / 1024 / 1024,
        error,
    })?;
    Ok(page(status, body))
}

/// The upload form
pub(crate) async fn import_form(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff(&state, &jar, "/admin/imports").await?;
    import_page(&state, &session, StatusCode::OK, None)
}

/// Upload a roster and start importing it
pub(crate) async fn upload(
    State(state): State<AppState>,
    jar: CookieJar,
    multipart: Result<Multipart, MultipartRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/imports").await?;
    let refused = || {
        PageError::App(AppError::invalid(
            "file",
            "import.upload_invalid",
            format!(
                "文件上传失败（超过 {} MB 或表单不完整），请重新选择文件上传。",
                MAX_IMPORT_BYTES / 1024 / 1024
            ),
        ))
    };
    let mut multipart = multipart.map_err(|_| refused())?;
    let (mut csrf, mut kind, mut name, mut bytes) =
        (String::new(), String::new(), String::new(), Vec::new());
    while let Some(field) = multipart.next_field().await.map_err(|_| refused())? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(|_| refused())?,
            "kind" => kind = field.text().await.map_err(|_| refused())?,
            "file" => {
                name = field.file_name().unwrap_or("upload").to_owned();
                bytes = field.bytes().await.map_err(|_| refused())?.to_vec();
            }
            _ => {}
        }
    }
    check_csrf(&session, &csrf)?;
    if bytes.is_empty() {
        return import_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            Some("请选择要导入的 CSV 或 Excel（.xlsx）文件。".into()),
        );
    }
    let kind = match ImportKind::parse(&kind) {
        Ok(k) => k,
        Err(e) => return import_page(&state, &session, StatusCode::BAD_REQUEST, Some(e.message)),
    };
    let job = state
        .app
        .start_import(&session.info.actor, kind, &name, bytes)
        .await?;
    Ok(Redirect::to(&format!("/admin/imports/{}", encode_component(&job))).into_response())
}

#[derive(Template)]
#[template(path = "personal_import_job.html")]
struct JobTemplate {
    chrome: Chrome,
    job: ImportJobView,
    /// Whole percent done.
    percent: i64,
    running: bool,
    kind_label: &'static str,
}

/// An import's progress (refreshing while it runs) and its per-row report
pub(crate) async fn import_progress(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let back = format!("/admin/imports/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let job = state.app.import_job(&session.info.actor, &id).await?;
    let running = job.state == "running";
    let percent = if job.total > 0 {
        job.processed * 100 / job.total
    } else if running {
        0
    } else {
        100
    };
    let kind_label = ImportKind::parse(&job.kind).map_or("", ImportKind::label);
    let body = render(&JobTemplate {
        chrome: Chrome::new(&state, Some(&session), "imports"),
        job,
        percent,
        running,
        kind_label,
    })?;
    let mut res = page(StatusCode::OK, body);
    if running {
        res.headers_mut().insert(
            header::REFRESH,
            HeaderValue::from_str(&PROGRESS_REFRESH_SECONDS.to_string())
                .unwrap_or(HeaderValue::from_static("2")),
        );
    }
    Ok(res)
}
