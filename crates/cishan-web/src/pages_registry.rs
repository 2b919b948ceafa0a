//! Staff pages of the beneficiary registry (低收入人口库): the household list (filters and exact-ID
//! search), registering a household, a household's page (masked, with the unmask form that asks
//! for a reason, its needs and placements), the needs list, the edge list (边缘救助), welfare jobs
//! (公益岗位) with placements and the employment rate, and the administrator's staff scopes.
//!
//! Same rules as the other pages: Chinese, phone first, no JavaScript; every form that changes
//! state echoes the session's CSRF token; a refused form is shown again with the message and the
//! field, and nothing is written. Pages with personal data are never cached.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use cishan_app::jobs::{EmploymentReport, EndPlacementInput, JobInput, PlacementInput};
use cishan_app::orders::OrderInput;
use cishan_app::registry::{
    CloseNeedInput, EdgeQuery, HouseholdFilter, HouseholdInput, HouseholdUpdate, HouseholdView,
    MemberInput, NeedFilter, NeedInput, NeedView, StaffScopeInput, UnmaskInput, UnmaskedHousehold,
    RELATIONS,
};
use cishan_app::{AppError, ErrorKind};
use cishan_core::assistance::CATEGORIES;
use serde::Deserialize;

use crate::error::{encode_component, status_of, PageError};
use crate::pages::Chrome;
use crate::pages_orders::order_field_label;
use crate::pages_volunteering::local_time;
use crate::session::{csrf_refused, from_cookie, same_secret, Session};
use crate::view::money;
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// Households one page of the list shows.
const PER_PAGE: i64 = 50;
/// Member rows the registration form offers besides the head.
const FORM_MEMBERS: usize = 4;

/// The routes of this module, merged into the platform router by `lib.rs`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/registry", get(registry_list).post(registry_search))
        .route(
            "/admin/registry/new",
            get(new_household_form).post(register_household),
        )
        .route("/admin/registry/{id}", get(household_page))
        .route("/admin/registry/{id}/unmask", post(unmask))
        .route("/admin/registry/{id}/update", post(update_household))
        .route("/admin/registry/{id}/needs", post(add_need))
        .route("/admin/registry/{id}/order", post(order_for_household))
        .route("/admin/needs", get(needs_page))
        .route("/admin/needs/{id}/close", post(close_need))
        .route("/admin/edge", get(edge_page))
        .route("/admin/jobs", get(jobs_page).post(create_job))
        .route("/admin/jobs/{id}", get(job_page))
        .route("/admin/jobs/{id}/place", post(place))
        .route("/admin/placements/{id}/end", post(end_placement))
        .route("/admin/staff", get(staff_page).post(set_scope))
}

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

fn private_page(status: StatusCode, template: &impl Template) -> PageResult {
    let mut res = (status, Html(render(template)?)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn staff(state: &AppState, jar: &CookieJar, back: &str) -> Result<Session, PageError> {
    let session = from_cookie(state, jar)
        .await?
        .ok_or_else(|| PageError::Login {
            next: back.to_owned(),
        })?;
    session.info.actor.require_staff()?;
    Ok(session)
}

fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || !same_secret(sent, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    Ok(())
}

/// A form that could not be read (missing or malformed fields): ask the user to reload it.
pub(crate) fn form_unreadable() -> PageError {
    PageError::App(AppError::invalid(
        "form",
        "form.invalid",
        "表单内容无法读取，请刷新页面后重新填写。",
    ))
}

/// A refusal to show on the page (with its status); anything else is an error page.
fn refusal(e: AppError) -> Result<Refusal, PageError> {
    match e.kind {
        ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Forbidden => Ok(Refusal {
            status: status_of(e.kind),
            message: e.message,
            field: e.field,
        }),
        _ => Err(PageError::App(e)),
    }
}

struct Refusal {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

struct Choice {
    value: String,
    label: String,
}

fn street_choices(state: &AppState) -> Vec<Choice> {
    state
        .app
        .pack()
        .streets_and_towns()
        .map(|d| Choice {
            value: d.code.as_str().to_owned(),
            label: d.name.clone(),
        })
        .collect()
}

/// Communities and villages with their street, for a select: `五马街道 · 鼓楼社区`.
fn community_choices(state: &AppState) -> Vec<Choice> {
    let pack = state.app.pack();
    let mut out = Vec::new();
    for street in pack.streets_and_towns() {
        for c in pack.communities_of(street.code.as_str()) {
            out.push(Choice {
                value: c.code.as_str().to_owned(),
                label: format!("{} · {}", street.name, c.name),
            });
        }
    }
    out
}

fn category_choices() -> Vec<Choice> {
    CATEGORIES
        .iter()
        .map(|c| Choice {
            value: c.code.to_owned(),
            label: c.name.to_owned(),
        })
        .collect()
}

fn service_choices(state: &AppState) -> Vec<Choice> {
    state
        .app
        .pack()
        .service_categories
        .iter()
        .map(|c| Choice {
            value: c.code.clone(),
            label: c.name.clone(),
        })
        .collect()
}

fn yuan_input(field: &str, text: &str, what: &str) -> Result<i64, AppError> {
    cishan_core::parse_yuan_allow_zero(text.trim())
        .map(cishan_core::Fen::get)
        .map_err(|e| {
            AppError::invalid(
                field,
                e.code(),
                format!(
                    "{what}请填写金额（元），例如 12000 或 12000.50：{}",
                    e.message_zh()
                ),
            )
        })
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListParams {
    street_code: String,
    community_code: String,
    category: String,
    id_number: String,
    page: String,
}

struct HouseholdRowView {
    id: String,
    head: String,
    head_id: String,
    category: String,
    place: String,
    members: i64,
}

#[derive(Template)]
#[template(path = "registry_list.html")]
struct ListTemplate {
    chrome: Chrome,
    csrf: String,
    params: ListParams,
    total: i64,
    rows: Vec<HouseholdRowView>,
    streets: Vec<Choice>,
    categories: Vec<Choice>,
    error: Option<String>,
    prev: Option<String>,
    next: Option<String>,
    page: i64,
}

fn list_url(p: &ListParams, page: i64) -> String {
    format!(
        "/admin/registry?street_code={}&community_code={}&category={}&page={page}",
        encode_component(&p.street_code),
        encode_component(&p.community_code),
        encode_component(&p.category)
    )
}

/// The registry: households, filtered (staff)
pub(crate) async fn registry_list(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<ListParams>, QueryRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/registry").await?;
    let Query(mut params) = query.unwrap_or_default();
    // An ID number is searched by POST only, so it never sits in a URL (history, proxy logs).
    params.id_number.clear();
    render_list(&state, &session, params).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SearchForm {
    csrf: String,
    id_number: String,
}

/// Search the registry by the exact ID number of any member (staff)
pub(crate) async fn registry_search(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<SearchForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/registry").await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let params = ListParams {
        id_number: form.id_number,
        ..ListParams::default()
    };
    render_list(&state, &session, params).await
}

async fn render_list(state: &AppState, session: &Session, params: ListParams) -> PageResult {
    let page = params.page.trim().parse::<i64>().unwrap_or(1).max(1);
    let filter = HouseholdFilter {
        street_code: Some(params.street_code.clone()),
        community_code: Some(params.community_code.clone()),
        category: Some(params.category.clone()),
        id_number: Some(params.id_number.clone()),
    };
    let (result, error, status) = match state
        .app
        .households(
            &session.info.actor,
            &filter,
            (page - 1) * PER_PAGE,
            PER_PAGE,
        )
        .await
    {
        Ok(p) => (Some(p), None, StatusCode::OK),
        Err(e) => {
            let r = refusal(e)?;
            (None, Some(r.message), r.status)
        }
    };
    let (total, items) = result.map_or((0, Vec::new()), |p| (p.total, p.items));
    let rows = items
        .into_iter()
        .map(|h| HouseholdRowView {
            place: format!("{} {}", h.street_name, h.community_name),
            id: h.id,
            head: h.head_name_masked,
            head_id: h.head_id_masked,
            category: h.category_name,
            members: h.member_count,
        })
        .collect();
    let searched = !params.id_number.trim().is_empty();
    let prev = (page > 1 && !searched).then(|| list_url(&params, page - 1));
    let next = (page * PER_PAGE < total && !searched).then(|| list_url(&params, page + 1));
    private_page(
        status,
        &ListTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            total,
            rows,
            streets: street_choices(state),
            categories: category_choices(),
            error,
            prev,
            next,
            page,
            params,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Registering a household

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct HouseholdForm {
    csrf: String,
    category: String,
    street_code: String,
    community_code: String,
    head_name: String,
    head_id_number: String,
    phone: String,
    address: String,
    /// Yuan per person per year, as typed.
    income_yuan: String,
    consent: String,
    m1_name: String,
    m1_id: String,
    m1_relation: String,
    m2_name: String,
    m2_id: String,
    m2_relation: String,
    m3_name: String,
    m3_id: String,
    m3_relation: String,
    m4_name: String,
    m4_id: String,
    m4_relation: String,
}

struct MemberSlot {
    n: usize,
    name: String,
    id: String,
    relation: String,
}

#[derive(Template)]
#[template(path = "registry_new.html")]
struct NewTemplate {
    chrome: Chrome,
    csrf: String,
    form: HouseholdForm,
    members: Vec<MemberSlot>,
    relations: Vec<Choice>,
    streets: Vec<Choice>,
    communities: Vec<Choice>,
    categories: Vec<Choice>,
    error: Option<String>,
    error_field: Option<String>,
}

fn slots(form: &HouseholdForm) -> Vec<MemberSlot> {
    let raw = [
        (&form.m1_name, &form.m1_id, &form.m1_relation),
        (&form.m2_name, &form.m2_id, &form.m2_relation),
        (&form.m3_name, &form.m3_id, &form.m3_relation),
        (&form.m4_name, &form.m4_id, &form.m4_relation),
    ];
    raw.iter()
        .take(FORM_MEMBERS)
        .enumerate()
        .map(|(i, (n, id, r))| MemberSlot {
            n: i + 1,
            name: (*n).clone(),
            id: (*id).clone(),
            relation: (*r).clone(),
        })
        .collect()
}

fn new_page(
    state: &AppState,
    session: &Session,
    form: HouseholdForm,
    refused: Option<Refusal>,
) -> PageResult {
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let (error, error_field) = match refused {
        Some(r) => (Some(r.message), r.field),
        None => (None, None),
    };
    private_page(
        status,
        &NewTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            members: slots(&form),
            form,
            relations: RELATIONS
                .iter()
                .filter(|(c, _)| *c != "head")
                .map(|(c, n)| Choice {
                    value: (*c).to_owned(),
                    label: (*n).to_owned(),
                })
                .collect(),
            streets: street_choices(state),
            communities: community_choices(state),
            categories: category_choices(),
            error,
            error_field,
        },
    )
}

/// The form to register a household (staff)
pub(crate) async fn new_household_form(
    State(state): State<AppState>,
    jar: CookieJar,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/registry/new").await?;
    new_page(&state, &session, HouseholdForm::default(), None)
}

/// Register a household (staff)
pub(crate) async fn register_household(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<HouseholdForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/registry/new").await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let income = match yuan_input("per_capita_income_fen", &form.income_yuan, "家庭人均年收入")
    {
        Ok(fen) => fen,
        Err(e) => {
            let r = refusal(e)?;
            return new_page(&state, &session, form, Some(r));
        }
    };
    let members = slots(&form)
        .into_iter()
        .filter(|s| !(s.name.trim().is_empty() && s.id.trim().is_empty()))
        .map(|s| MemberInput {
            name: s.name,
            id_number: s.id,
            relation: s.relation,
            phone: None,
            category: None,
        })
        .collect();
    let input = HouseholdInput {
        category: form.category.clone(),
        street_code: form.street_code.clone(),
        community_code: form.community_code.clone(),
        head_name: form.head_name.clone(),
        head_id_number: form.head_id_number.clone(),
        phone: Some(form.phone.clone()),
        address: form.address.clone(),
        per_capita_income_fen: income,
        members,
        consent: form.consent == "yes",
    };
    match state
        .app
        .register_household(&session.info.actor, &input)
        .await
    {
        Ok(view) => Ok(
            Redirect::to(&format!("/admin/registry/{}", encode_component(&view.id)))
                .into_response(),
        ),
        Err(e) => {
            let r = refusal(e)?;
            new_page(&state, &session, form, Some(r))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A household

struct NeedRowView {
    id: String,
    category: String,
    description: String,
    state: String,
    state_name: String,
    registered_at: String,
    last_served_at: String,
    household_id: String,
    place: String,
    head: String,
}

fn need_row(state: &AppState, n: NeedView) -> NeedRowView {
    NeedRowView {
        registered_at: local_time(state, &n.registered_at),
        last_served_at: n
            .last_served_at
            .as_deref()
            .map(|t| local_time(state, t))
            .unwrap_or_default(),
        place: format!("{} {}", n.street_name, n.community_name),
        id: n.id,
        category: n.category_name,
        description: n.description,
        state: n.state,
        state_name: n.state_name,
        household_id: n.household_id,
        head: n.head_name_masked,
    }
}

struct PlacementRowView {
    id: String,
    job_id: String,
    job_title: String,
    member: String,
    state: String,
    placed_at: String,
    ended: String,
}

#[derive(Template)]
#[template(path = "registry_household.html")]
struct HouseholdTemplate {
    chrome: Chrome,
    csrf: String,
    household: HouseholdView,
    consent_at: String,
    needs: Vec<NeedRowView>,
    placements: Vec<PlacementRowView>,
    services: Vec<Choice>,
    categories: Vec<Choice>,
    clear: Option<UnmaskedHousehold>,
    clear_income: String,
    message: Option<String>,
    error: Option<String>,
    error_field: Option<String>,
}

async fn render_household(
    state: &AppState,
    session: &Session,
    id: &str,
    clear: Option<UnmaskedHousehold>,
    outcome: Option<Result<String, Refusal>>,
) -> PageResult {
    let actor = &session.info.actor;
    let household = state.app.household(actor, id).await?;
    let needs = state
        .app
        .needs(
            actor,
            &NeedFilter {
                household_id: Some(household.id.clone()),
                state: Some("all".into()),
                street_code: None,
            },
        )
        .await?
        .into_iter()
        .map(|n| need_row(state, n))
        .collect();
    let placements = state
        .app
        .household_placements(actor, &household.id)
        .await?
        .into_iter()
        .map(|p| PlacementRowView {
            placed_at: local_time(state, &p.placed_at),
            ended: p
                .ended_at
                .as_deref()
                .map(|t| {
                    format!(
                        "{}（{}）",
                        local_time(state, t),
                        p.end_reason.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default(),
            id: p.id,
            job_id: p.job_id,
            job_title: p.job_title,
            member: p.member_name_masked,
            state: p.state,
        })
        .collect();
    let (status, message, error, error_field) = match outcome {
        None => (StatusCode::OK, None, None, None),
        Some(Ok(m)) => (StatusCode::OK, Some(m), None, None),
        Some(Err(r)) => (r.status, None, Some(r.message), r.field),
    };
    private_page(
        status,
        &HouseholdTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            consent_at: household
                .consent_at
                .as_deref()
                .map(|t| local_time(state, t))
                .unwrap_or_default(),
            household,
            needs,
            placements,
            services: service_choices(state),
            categories: category_choices(),
            clear_income: clear
                .as_ref()
                .and_then(|c| c.per_capita_income_fen)
                .map(money)
                .unwrap_or_default(),
            clear,
            message,
            error,
            error_field,
        },
    )
}

/// A household, masked, with its needs and placements (staff of its street)
pub(crate) async fn household_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let back = format!("/admin/registry/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    render_household(&state, &session, &id, None, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UnmaskForm {
    csrf: String,
    reason: String,
}

/// Show the household's personal data in clear, with a stated reason (journaled)
pub(crate) async fn unmask(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<UnmaskForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/registry/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let input = UnmaskInput {
        reason: form.reason,
        fields: Vec::new(),
    };
    match state
        .app
        .unmask_household(&session.info.actor, &id, &input)
        .await
    {
        Ok(clear) => {
            let note = format!(
                "本次查看已记录（日志序号 {}），请仅用于所填事由。",
                clear.journal_seq
            );
            render_household(&state, &session, &id, Some(clear), Some(Ok(note))).await
        }
        Err(e) => {
            let r = refusal(e)?;
            render_household(&state, &session, &id, None, Some(Err(r))).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UpdateForm {
    csrf: String,
    category: String,
    /// Yuan per person per year; empty: unchanged.
    income_yuan: String,
    /// Empty: unchanged.
    phone: String,
    /// Empty: unchanged.
    address: String,
}

/// Change the household's category, income, phone or address (a review)
pub(crate) async fn update_household(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<UpdateForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/registry/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let nonempty = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let income = match nonempty(&form.income_yuan) {
        None => None,
        Some(text) => match yuan_input("per_capita_income_fen", &text, "家庭人均年收入") {
            Ok(fen) => Some(fen),
            Err(e) => {
                let r = refusal(e)?;
                return render_household(&state, &session, &id, None, Some(Err(r))).await;
            }
        },
    };
    let input = HouseholdUpdate {
        category: nonempty(&form.category),
        phone: nonempty(&form.phone),
        address: nonempty(&form.address),
        per_capita_income_fen: income,
    };
    let outcome = match state
        .app
        .update_household(&session.info.actor, &id, &input)
        .await
    {
        Ok(_) => Ok("已保存修改。".to_owned()),
        Err(e) => Err(refusal(e)?),
    };
    render_household(&state, &session, &id, None, Some(outcome)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NeedForm {
    csrf: String,
    category: String,
    description: String,
    member_id: String,
}

/// Register a need for the household
pub(crate) async fn add_need(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<NeedForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/registry/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let input = NeedInput {
        category: form.category,
        description: form.description,
        member_id: Some(form.member_id).filter(|m| !m.trim().is_empty()),
    };
    let outcome = match state
        .app
        .register_need(&session.info.actor, &id, &input)
        .await
    {
        Ok(n) => Ok(format!("已登记需求：{}。", n.category_name)),
        Err(e) => Err(refusal(e)?),
    };
    render_household(&state, &session, &id, None, Some(outcome)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OrderForm {
    csrf: String,
    /// An open need of the household to turn into the order; empty: order by category.
    need_id: String,
    category: String,
    description: String,
}

/// Order a service for the household (点单 on its behalf), by category or from an open need,
/// through the same use case as the API; then to the order's page to dispatch it
pub(crate) async fn order_for_household(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<OrderForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/registry/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let nonempty = |v: String| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let need_id = nonempty(form.need_id);
    let input = OrderInput {
        household_id: Some(id.clone()),
        // From a need, the need's category and description are the order's.
        category: if need_id.is_some() {
            None
        } else {
            nonempty(form.category)
        },
        description: nonempty(form.description),
        need_id,
        ..OrderInput::default()
    };
    match state
        .app
        .create_order(&session.info.actor, None, &input)
        .await
    {
        Ok(order) => Ok(Redirect::to(&format!(
            "/admin/orders/{}?done=order",
            encode_component(&order.value.id)
        ))
        .into_response()),
        Err(e) => {
            let mut r = refusal(e)?;
            r.field = r.field.map(|f| order_field_label(&f).to_owned());
            render_household(&state, &session, &id, None, Some(Err(r))).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Needs

#[derive(Template)]
#[template(path = "registry_needs.html")]
struct NeedsTemplate {
    chrome: Chrome,
    csrf: String,
    needs: Vec<NeedRowView>,
    message: Option<String>,
    error: Option<String>,
}

async fn render_needs(
    state: &AppState,
    session: &Session,
    outcome: Option<Result<String, Refusal>>,
) -> PageResult {
    let needs = state
        .app
        .needs(&session.info.actor, &NeedFilter::default())
        .await?
        .into_iter()
        .map(|n| need_row(state, n))
        .collect();
    let (status, message, error) = match outcome {
        None => (StatusCode::OK, None, None),
        Some(Ok(m)) => (StatusCode::OK, Some(m), None),
        Some(Err(r)) => (r.status, None, Some(r.message)),
    };
    private_page(
        status,
        &NeedsTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            needs,
            message,
            error,
        },
    )
}

/// Open needs of the caller's street (or the district), oldest first (staff)
pub(crate) async fn needs_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff(&state, &jar, "/admin/needs").await?;
    render_needs(&state, &session, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReasonForm {
    csrf: String,
    reason: String,
}

/// Close a need with a reason
pub(crate) async fn close_need(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<ReasonForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/needs").await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let input = CloseNeedInput {
        reason: form.reason,
    };
    let outcome = match state.app.close_need(&session.info.actor, &id, &input).await {
        Ok(n) => Ok(format!("已关闭需求：{}。", n.category_name)),
        Err(e) => Err(refusal(e)?),
    };
    render_needs(&state, &session, Some(outcome)).await
}

// ---------------------------------------------------------------------------------------------
// The edge list

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EdgeParams {
    unreached_days: String,
}

struct EdgeRowView {
    household_id: String,
    head: String,
    category: String,
    place: String,
    members: i64,
    gap: String,
}

struct UnreachedRowView {
    household_id: String,
    head: String,
    category: String,
    description: String,
    place: String,
    state_name: String,
    since: String,
    days: i64,
}

#[derive(Template)]
#[template(path = "registry_edge.html")]
struct EdgeTemplate {
    chrome: Chrome,
    year: i16,
    standard_year: String,
    standard: String,
    multiplier: String,
    line: String,
    under_total: i64,
    under: Vec<EdgeRowView>,
    days: i64,
    days_input: String,
    unreached_total: i64,
    unreached: Vec<UnreachedRowView>,
    error: Option<String>,
}

/// The edge list (边缘救助): households under the edge line, and needs nothing reached (staff)
pub(crate) async fn edge_page(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<EdgeParams>, QueryRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/edge").await?;
    let Query(params) = query.unwrap_or_default();
    let mut error = None;
    let days = match params.unreached_days.trim() {
        "" => None,
        t => match t.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                error = Some("未服务天数请填写整数，例如 30。".to_owned());
                None
            }
        },
    };
    let query = EdgeQuery {
        unreached_days: days,
        street_code: None,
    };
    let report = match state.app.edge_households(&session.info.actor, &query).await {
        Ok(r) => r,
        Err(e) => {
            error = Some(refusal(e)?.message);
            state
                .app
                .edge_households(&session.info.actor, &EdgeQuery::default())
                .await?
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    private_page(
        status,
        &EdgeTemplate {
            chrome: Chrome::new(&state, Some(&session), ""),
            year: report.year,
            standard_year: report
                .standard_year
                .map(|y| y.to_string())
                .unwrap_or_default(),
            standard: report
                .subsistence_standard_fen
                .map(money)
                .unwrap_or_else(|| "—".into()),
            multiplier: report.edge_multiplier.clone(),
            line: report
                .edge_line_fen
                .map(money)
                .unwrap_or_else(|| "—".into()),
            under_total: report.under_line_total,
            under: report
                .under_line
                .into_iter()
                .map(|h| EdgeRowView {
                    place: format!("{} {}", h.street_name, h.community_name),
                    household_id: h.household_id,
                    head: h.head_name_masked,
                    category: h.category_name,
                    members: h.member_count,
                    gap: h.gap_band_name,
                })
                .collect(),
            days: report.unreached_days,
            days_input: report.unreached_days.to_string(),
            unreached_total: report.unreached_total,
            unreached: report
                .unreached
                .into_iter()
                .map(|n| UnreachedRowView {
                    since: local_time(
                        &state,
                        n.last_served_at.as_deref().unwrap_or(&n.registered_at),
                    ),
                    place: format!("{} {}", n.street_name, n.community_name),
                    household_id: n.household_id,
                    head: n.head_name_masked,
                    category: n.category_name,
                    description: n.description,
                    state_name: if n.state == "ordered" {
                        "已下单，未服务".to_owned()
                    } else {
                        "待服务".to_owned()
                    },
                    days: n.days_waiting,
                })
                .collect(),
            error,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Welfare jobs

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JobForm {
    csrf: String,
    title: String,
    org_id: String,
    street_code: String,
    kind: String,
    positions: String,
    /// Yuan per month, as typed.
    wage_yuan: String,
    description: String,
}

struct JobRowView {
    id: String,
    title: String,
    org: String,
    street: String,
    kind: String,
    filled: i64,
    positions: i64,
    wage: String,
    state: String,
}

#[derive(Template)]
#[template(path = "registry_jobs.html")]
struct JobsTemplate {
    chrome: Chrome,
    csrf: String,
    jobs: Vec<JobRowView>,
    report: EmploymentReport,
    form: JobForm,
    streets: Vec<Choice>,
    error: Option<String>,
    error_field: Option<String>,
}

async fn render_jobs(
    state: &AppState,
    session: &Session,
    form: JobForm,
    refused: Option<Refusal>,
) -> PageResult {
    let actor = &session.info.actor;
    let jobs = state
        .app
        .jobs(actor, 0, cishan_app::MAX_PAGE_SIZE)
        .await?
        .into_iter()
        .map(|j| JobRowView {
            id: j.id,
            title: j.title,
            org: j.org_name,
            street: j.street_name,
            kind: j.kind_name,
            filled: j.filled,
            positions: j.positions,
            wage: money(j.wage_fen_per_month),
            state: if j.state == "open" {
                "招聘中"
            } else {
                "已关闭"
            }
            .to_owned(),
        })
        .collect();
    let report = state.app.employment_report(actor).await?;
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let (error, error_field) = match refused {
        Some(r) => (Some(r.message), r.field),
        None => (None, None),
    };
    private_page(
        status,
        &JobsTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            jobs,
            report,
            form,
            streets: street_choices(state),
            error,
            error_field,
        },
    )
}

/// Welfare jobs, the employment rate, and the form to post a job (staff)
pub(crate) async fn jobs_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff(&state, &jar, "/admin/jobs").await?;
    let form = JobForm {
        positions: "3".into(),
        kind: "welfare".into(),
        ..JobForm::default()
    };
    render_jobs(&state, &session, form, None).await
}

/// Post a job (staff)
pub(crate) async fn create_job(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<JobForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/jobs").await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let parsed = (|| {
        let positions = form.positions.trim().parse::<i64>().map_err(|_| {
            AppError::invalid(
                "positions",
                "positions.invalid",
                "岗位数请填写整数，例如 3。",
            )
        })?;
        let wage = yuan_input("wage_fen_per_month", &form.wage_yuan, "月工资")?;
        Ok::<_, AppError>((positions, wage))
    })();
    let (positions, wage) = match parsed {
        Ok(v) => v,
        Err(e) => {
            let r = refusal(e)?;
            return render_jobs(&state, &session, form, Some(r)).await;
        }
    };
    let input = JobInput {
        title: form.title.clone(),
        org_id: form.org_id.clone(),
        street_code: form.street_code.clone(),
        kind: form.kind.clone(),
        positions,
        wage_fen_per_month: wage,
        description: Some(form.description.clone()),
    };
    match state.app.create_job(&session.info.actor, &input).await {
        Ok(job) => {
            Ok(Redirect::to(&format!("/admin/jobs/{}", encode_component(&job.id))).into_response())
        }
        Err(e) => {
            let r = refusal(e)?;
            render_jobs(&state, &session, form, Some(r)).await
        }
    }
}

#[derive(Template)]
#[template(path = "registry_job.html")]
struct JobTemplate {
    chrome: Chrome,
    csrf: String,
    job: JobRowView,
    description: String,
    remaining: i64,
    open: bool,
    placements: Vec<PlacementRowView>,
    message: Option<String>,
    error: Option<String>,
}

async fn render_job(
    state: &AppState,
    session: &Session,
    id: &str,
    outcome: Option<Result<String, Refusal>>,
) -> PageResult {
    let detail = state.app.job(&session.info.actor, id).await?;
    let j = detail.job;
    let (status, message, error) = match outcome {
        None => (StatusCode::OK, None, None),
        Some(Ok(m)) => (StatusCode::OK, Some(m), None),
        Some(Err(r)) => (r.status, None, Some(r.message)),
    };
    private_page(
        status,
        &JobTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            description: j.description.clone(),
            remaining: j.remaining,
            open: j.state == "open",
            job: JobRowView {
                id: j.id,
                title: j.title,
                org: j.org_name,
                street: j.street_name,
                kind: j.kind_name,
                filled: j.filled,
                positions: j.positions,
                wage: money(j.wage_fen_per_month),
                state: if j.state == "open" {
                    "招聘中"
                } else {
                    "已关闭"
                }
                .to_owned(),
            },
            placements: detail
                .placements
                .into_iter()
                .map(|p| PlacementRowView {
                    placed_at: local_time(state, &p.placed_at),
                    ended: p
                        .ended_at
                        .as_deref()
                        .map(|t| {
                            format!(
                                "{}（{}）",
                                local_time(state, t),
                                p.end_reason.clone().unwrap_or_default()
                            )
                        })
                        .unwrap_or_default(),
                    id: p.id,
                    job_id: p.job_id,
                    job_title: p.job_title,
                    member: p.member_name_masked,
                    state: p.state,
                })
                .collect(),
            message,
            error,
        },
    )
}

/// A job with its placements and the form to place a member (staff)
pub(crate) async fn job_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let back = format!("/admin/jobs/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    render_job(&state, &session, &id, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PlaceForm {
    csrf: String,
    member_id: String,
}

/// Place a registry member in the job
pub(crate) async fn place(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<PlaceForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/jobs/{}", encode_component(&id));
    let session = staff(&state, &jar, &back).await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let input = PlacementInput {
        member_id: form.member_id,
    };
    let outcome = match state
        .app
        .place_member(&session.info.actor, &id, &input)
        .await
    {
        Ok(p) => Ok(format!("已安置 {} 到本岗位。", p.member_name_masked)),
        Err(e) => Err(refusal(e)?),
    };
    render_job(&state, &session, &id, Some(outcome)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct EndForm {
    csrf: String,
    reason: String,
    job_id: String,
}

/// End a placement with a reason
pub(crate) async fn end_placement(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<EndForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/jobs").await?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let input = EndPlacementInput {
        reason: form.reason,
    };
    let outcome = match state
        .app
        .end_placement(&session.info.actor, &id, &input)
        .await
    {
        Ok(p) => Ok(format!("已结束 {} 的安置。", p.member_name_masked)),
        Err(e) => Err(refusal(e)?),
    };
    render_job(&state, &session, &form.job_id, Some(outcome)).await
}

// ---------------------------------------------------------------------------------------------
// Staff scopes (administrators)

struct StaffRowView {
    user_id: String,
    username: String,
    display_name: String,
    role: String,
    division_code: String,
    division_name: String,
    org_id: String,
    can_unmask: bool,
}

#[derive(Template)]
#[template(path = "registry_staff.html")]
struct StaffTemplate {
    chrome: Chrome,
    csrf: String,
    accounts: Vec<StaffRowView>,
    streets: Vec<Choice>,
    message: Option<String>,
    error: Option<String>,
}

async fn render_staff(
    state: &AppState,
    session: &Session,
    outcome: Option<Result<String, Refusal>>,
) -> PageResult {
    let accounts = state
        .app
        .staff_accounts(&session.info.actor)
        .await?
        .into_iter()
        .map(|a| StaffRowView {
            user_id: a.user_id,
            username: a.username,
            display_name: a.display_name,
            role: if a.role == "admin" {
                "管理员"
            } else {
                "工作人员"
            }
            .to_owned(),
            division_code: a.division_code.unwrap_or_default(),
            division_name: a.division_name.unwrap_or_else(|| "全区".into()),
            org_id: a.org_id.unwrap_or_default(),
            can_unmask: a.can_unmask,
        })
        .collect();
    let (status, message, error) = match outcome {
        None => (StatusCode::OK, None, None),
        Some(Ok(m)) => (StatusCode::OK, Some(m), None),
        Some(Err(r)) => (r.status, None, Some(r.message)),
    };
    private_page(
        status,
        &StaffTemplate {
            chrome: Chrome::new(state, Some(session), ""),
            csrf: session.info.csrf_token.clone(),
            accounts,
            streets: street_choices(state),
            message,
            error,
        },
    )
}

/// Staff accounts and their scopes (administrators)
pub(crate) async fn staff_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff(&state, &jar, "/admin/staff").await?;
    session.info.actor.require_admin()?;
    render_staff(&state, &session, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ScopeForm {
    csrf: String,
    user_id: String,
    division_code: String,
    org_id: String,
    can_unmask: String,
}

/// Set a staff account's street, organization and unmasking permission
pub(crate) async fn set_scope(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ScopeForm>, FormRejection>,
) -> PageResult {
    let session = staff(&state, &jar, "/admin/staff").await?;
    session.info.actor.require_admin()?;
    let Form(form) = form.map_err(|_| form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let input = StaffScopeInput {
        division_code: Some(form.division_code),
        org_id: Some(form.org_id),
        can_unmask: form.can_unmask == "yes",
    };
    let outcome = match state
        .app
        .set_staff_scope(&session.info.actor, &form.user_id, &input)
        .await
    {
        Ok(a) => Ok(format!(
            "已更新 {} 的范围：{}{}。",
            a.username,
            a.division_name.unwrap_or_else(|| "全区".into()),
            if a.can_unmask {
                "，可查看完整信息"
            } else {
                ""
            }
        )),
        Err(e) => Err(refusal(e)?),
    };
    render_staff(&state, &session, Some(outcome)).await
}
