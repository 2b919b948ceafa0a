//! Pages of the service catalogue and orders (制单—点单—派单—评单): the public catalogue
//! (`/services`, with an organization's average rating), staff's dispatch board
//! (`/admin/orders`: open orders, batch dispatch), an order's page (`/admin/orders/{id}`:
//! candidates with their explained scores, override, history, moves on behalf), early warnings
//! (`/admin/alerts`), a provider organization's incoming orders (`/org/orders`, staff with an
//! organization) and a member's orders (`/me/orders`: those they hold as a volunteer, with
//! accept/reject/start/complete, and their household's, with cancel and a rating form).
//!
//! Every move is one form posting to `/orders/{id}/move`, which calls the same use case as the
//! API (the state machine is the server's), then goes back to the page it came from with the
//! outcome in the address (`?done=` or `?error=`). Chinese, no JavaScript, CSRF on every form.
//!
//! Nothing in the address is shown as it stands: `?done=` is a short code mapped to a fixed
//! text (the batch's counts are numbers), and `?error=` carries the server's refusal with
//! `&sig=`, an HMAC of the message keyed by the session's CSRF secret, so a page shows only a
//! message this server produced for this session. A link with `?error=账号异常，请致电…`
//! shows nothing.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use cishan_app::alerts::{AlertList, AlertQuery};
use cishan_app::dispatch::{BatchInput, CandidateView, DispatchInput};
use cishan_app::orders::{
    OrderDetail, OrderInput, OrderListQuery, OrderView, ReasonInput, ReviewInput, ServiceInput,
    ServiceView, VerifyMinutesInput,
};
use cishan_app::{AppError, ErrorKind};
use serde::Deserialize;

use crate::error::{encode_component, PageError};
use crate::pages::Chrome;
use crate::pages_volunteering::local_time;
use crate::session::{csrf_refused, from_cookie, same_secret, Session};
use crate::AppState;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type PageResult = Result<Response, PageError>;

/// Orders a list shows at most.
const LISTED_ORDERS: i64 = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(services_page))
        .route("/admin/services", post(create_service))
        .route("/admin/services/order", post(order_service))
        .route("/admin/orders", get(board))
        .route("/admin/orders/batch", post(batch))
        .route("/admin/orders/{id}", get(order_page))
        .route("/admin/alerts", get(alerts_page))
        .route("/org/orders", get(org_orders))
        .route("/me/orders", get(my_orders))
        .route("/orders/{id}/move", post(move_order))
}

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

fn private_page(template: &impl Template) -> PageResult {
    let mut res = (StatusCode::OK, Html(render(template)?)).into_response();
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

fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || !same_secret(sent, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    Ok(())
}

/// `?done=` / `?error=` of a page a move came back to.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Flash {
    done: Option<String>,
    error: Option<String>,
    /// The server's signature of `error` for this session (see [`error_sig`]).
    sig: Option<String>,
    /// A batch dispatch's counts (`done=batch`).
    considered: Option<u64>,
    dispatched: Option<u64>,
    without_candidate: Option<u64>,
    street: Option<String>,
    org_id: Option<String>,
    category: Option<String>,
    state: Option<String>,
    household_id: Option<String>,
}

fn flash(query: Result<Query<Flash>, QueryRejection>) -> Flash {
    query.map(|Query(f)| f).unwrap_or_default()
}

/// The signature of a refusal sent back to a page in the address: HMAC-SHA256 of the message,
/// keyed by the session's CSRF secret (which only this session's pages know), hex.
fn error_sig(session: &Session, message: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(session.info.csrf_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"cishan.pages_orders.error\0");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The refusal in the address, only if this server signed it for this session; anything else
/// (a forged link, another session's) is not shown.
fn signed_error(session: Option<&Session>, f: &Flash) -> Option<String> {
    let (session, error, sig) = (session?, f.error.as_deref()?, f.sig.as_deref()?);
    same_secret(&error_sig(session, error), sig).then(|| error.to_owned())
}

/// The notice for `?done=`: a fixed text per code; a batch's with its counts.
fn done_notice(f: &Flash) -> Option<String> {
    let done = f.done.as_deref()?;
    if let ("batch", Some(considered), Some(dispatched), Some(without)) =
        (done, f.considered, f.dispatched, f.without_candidate)
    {
        return Some(format!(
            "批量派单完成：{considered} 张待派订单中派出 {dispatched} 张，{without} 张暂无空闲的服务者。"
        ));
    }
    Some(done_text(done).to_owned())
}

fn done_text(action: &str) -> &'static str {
    match action {
        "dispatch" => "已派单。",
        "accept" => "已接单。",
        "reject" => "已拒单，订单已改派下一位服务者（如有空闲）。",
        "start" => "已开始服务。",
        "complete" => "服务已完成。",
        "cancel" => "订单已取消。",
        "review" => "评价已提交，谢谢！",
        "verify_minutes" => "服务时长已核验，已计入志愿服务时长和积分。",
        "batch" => "批量派单完成。",
        "service" => "服务已发布。",
        "order" => "已为该户下单（点单），请在下方派单。",
        _ => "已完成。",
    }
}

/// An order as a list row.
struct OrderRow {
    id: String,
    category: String,
    place: String,
    state: String,
    state_name: String,
    provider: String,
    created_at: String,
    deadline: String,
    passes: i64,
}

fn order_row(state: &AppState, o: &OrderView) -> OrderRow {
    OrderRow {
        id: o.id.clone(),
        category: o.category_name.clone(),
        place: format!("{} {}", o.street_name, o.community_name),
        state: o.state.clone(),
        state_name: o.state_name.clone(),
        provider: o.provider_id.clone().unwrap_or_default(),
        created_at: local_time(state, &o.created_at),
        deadline: o
            .accept_deadline
            .as_deref()
            .map(|d| local_time(state, d))
            .unwrap_or_default(),
        passes: o.passes,
    }
}

// ---------------------------------------------------------------------------------------------
// Catalogue

#[derive(Template)]
#[template(path = "orders_services.html")]
struct ServicesTemplate {
    chrome: Chrome,
    services: Vec<ServiceView>,
    categories: Vec<(String, String, bool)>,
    org_rating: Option<String>,
    csrf: Option<String>,
    /// The household staff are ordering for (`?household_id=`), prefilled in the order form.
    household_id: String,
    done: Option<String>,
    error: Option<String>,
}

/// The service catalogue (服务目录)
pub(crate) async fn services_page(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<Flash>, QueryRejection>,
) -> PageResult {
    let f = flash(query);
    let session = from_cookie(&state, &jar).await?;
    let category = f.category.clone().filter(|c| !c.is_empty());
    let org = f.org_id.clone().filter(|c| !c.is_empty());
    let services = state
        .app
        .services(None, category.as_deref(), org.as_deref(), 0, 100)
        .await?;
    let org_rating = match &org {
        Some(o) => state.app.org_rating(o).await.ok().map(|r| {
            if r.rating_count == 0 {
                format!("{}：暂无评价（{} 项服务）", r.org_name, r.services)
            } else {
                format!(
                    "{}：平均 {}.{:02} 星（{} 条评价，{} 项服务）",
                    r.org_name,
                    r.average_milli / 1000,
                    (r.average_milli % 1000) / 10,
                    r.rating_count,
                    r.services
                )
            }
        }),
        None => None,
    };
    let staff = session.as_ref().is_some_and(|s| s.info.actor.is_staff());
    let error = signed_error(session.as_ref(), &f);
    private_page(&ServicesTemplate {
        chrome: Chrome::new(&state, session.as_ref(), ""),
        categories: state
            .app
            .pack()
            .service_categories
            .iter()
            .map(|c| {
                (
                    c.code.clone(),
                    c.name.clone(),
                    Some(&c.code) == category.as_ref(),
                )
            })
            .collect(),
        services,
        org_rating,
        csrf: session.filter(|_| staff).map(|s| s.info.csrf_token.clone()),
        household_id: f.household_id.clone().unwrap_or_default(),
        done: done_notice(&f),
        error,
    })
}

/// The publish form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServiceForm {
    csrf: String,
    org_id: String,
    category: String,
    name: String,
    description: String,
    scope: String,
    division_code: String,
    capacity_per_week: String,
    time_windows: String,
    eligibility: String,
}

/// Publish a service from the catalogue page (staff)
pub(crate) async fn create_service(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ServiceForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/services").await?;
    let Form(form) = form.map_err(|_| crate::pages_registry::form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let capacity = form.capacity_per_week.trim().parse::<i64>().unwrap_or(0);
    let input = ServiceInput {
        org_id: form.org_id.trim().to_owned(),
        team_id: None,
        category: form.category,
        name: form.name,
        description: form.description,
        scope: form.scope,
        division_code: Some(form.division_code.trim().to_owned()).filter(|d| !d.is_empty()),
        capacity_per_week: capacity,
        time_windows: form.time_windows,
        eligibility: form
            .eligibility
            .split([',', '，', ' '])
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        state: None,
    };
    Ok(
        match state.app.create_service(&session.info.actor, &input).await {
            Ok(_) => Redirect::to("/services?done=service").into_response(),
            Err(e) => back_with_error(&session, "/services", e)?,
        },
    )
}

/// The Chinese name of a field of [`cishan_app::orders::OrderInput`], for a refused order form.
pub(crate) fn order_field_label(field: &str) -> &str {
    match field {
        "household_id" => "家庭编号",
        "member_id" => "家庭成员",
        "need_id" => "需求",
        "service_id" => "服务",
        "category" => "服务类别",
        "description" => "需求说明",
        "wanted_at" => "期望服务时间",
        "minutes" => "核验服务时长",
        other => other,
    }
}

/// The catalogue's order form (staff ordering a picked service for a household).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServiceOrderForm {
    csrf: String,
    household_id: String,
    service_id: String,
    description: String,
}

/// Order a picked service for a household (点单 by staff on its behalf), through the same use
/// case as the API; then to the order's page to dispatch it
pub(crate) async fn order_service(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ServiceOrderForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/services").await?;
    session.info.actor.require_staff()?;
    let Form(form) = form.map_err(|_| crate::pages_registry::form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let household = form.household_id.trim().to_owned();
    if household.is_empty() {
        return back_with_error(
            &session,
            "/services",
            AppError::invalid(
                "household_id",
                "order.household_required",
                "请填写要为哪一户点单（家庭编号 hh_…，可在该户页面点“从服务目录点单”进入）。",
            ),
        );
    }
    let back = format!("/services?household_id={}", encode_component(&household));
    let input = OrderInput {
        household_id: Some(household),
        service_id: Some(form.service_id.trim().to_owned()).filter(|s| !s.is_empty()),
        description: Some(form.description.trim().to_owned()).filter(|d| !d.is_empty()),
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
        Err(mut e) => {
            if e.field.is_none() && e.code == "order.category_required" {
                e.field = Some("service_id".into());
            }
            e.field = e.field.map(|f| order_field_label(&f).to_owned());
            back_with_error(&session, &back, e)
        }
    }
}

/// Back to the page with the refusal in the address, signed for this session.
fn back_with_error(session: &Session, back: &str, e: AppError) -> PageResult {
    match e.kind {
        ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Forbidden | ErrorKind::NotFound => {
            let sep = if back.contains('?') { '&' } else { '?' };
            let field = e
                .field
                .as_deref()
                .map(|f| format!("（{f}）"))
                .unwrap_or_default();
            let message = format!("{}{field}", e.message);
            Ok(Redirect::to(&format!(
                "{back}{sep}error={}&sig={}",
                encode_component(&message),
                error_sig(session, &message)
            ))
            .into_response())
        }
        _ => Err(PageError::App(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch board

#[derive(Template)]
#[template(path = "orders_board.html")]
struct BoardTemplate {
    chrome: Chrome,
    csrf: String,
    open: Vec<OrderRow>,
    others: Vec<OrderRow>,
    state_filter: String,
    counts: Vec<(String, String, i64)>,
    alerts_total: i64,
    done: Option<String>,
    error: Option<String>,
}

/// The dispatch board (派单台): open orders and the others by state
pub(crate) async fn board(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<Flash>, QueryRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/admin/orders").await?;
    session.info.actor.require_staff()?;
    let f = flash(query);
    let actor = &session.info.actor;
    let open = state
        .app
        .orders(
            actor,
            &OrderListQuery {
                state: Some("created".into()),
                ..OrderListQuery::default()
            },
            0,
            LISTED_ORDERS,
        )
        .await?;
    let filter = f.state.clone().filter(|s| !s.is_empty() && s != "created");
    let others = state
        .app
        .orders(
            actor,
            &OrderListQuery {
                state: filter.clone(),
                ..OrderListQuery::default()
            },
            0,
            LISTED_ORDERS,
        )
        .await?
        .into_iter()
        .filter(|o| o.state != "created")
        .collect::<Vec<_>>();
    let counts = state.app.order_counts(actor).await?;
    let alerts_total = state
        .app
        .alert_counts(actor, &AlertQuery::default())
        .await
        .map_or(0, |a| a.total);
    private_page(&BoardTemplate {
        chrome: Chrome::new(&state, Some(&session), ""),
        csrf: session.info.csrf_token.clone(),
        open: open.iter().map(|o| order_row(&state, o)).collect(),
        others: others.iter().map(|o| order_row(&state, o)).collect(),
        state_filter: filter.unwrap_or_default(),
        counts,
        alerts_total,
        done: done_notice(&f),
        error: signed_error(Some(&session), &f),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CsrfOnly {
    csrf: String,
}

/// Batch dispatch of the open orders (staff)
pub(crate) async fn batch(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/admin/orders").await?;
    let Form(form) = form.map_err(|_| crate::pages_registry::form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    Ok(
        match state
            .app
            .batch_dispatch(&session.info.actor, &BatchInput::default())
            .await
        {
            // A success is a notice: a code and the counts, worded by the board.
            Ok(r) => Redirect::to(&format!(
                "/admin/orders?done=batch&considered={}&dispatched={}&without_candidate={}",
                r.considered, r.dispatched, r.without_candidate
            ))
            .into_response(),
            Err(e) => back_with_error(&session, "/admin/orders", e)?,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// One order

#[derive(Template)]
#[template(path = "orders_detail.html")]
struct OrderTemplate {
    chrome: Chrome,
    csrf: String,
    detail: OrderDetail,
    created_at: String,
    candidates: Vec<CandidateView>,
    /// Staff see the verification of a volunteer's pending minutes.
    staff: bool,
    back: String,
    done: Option<String>,
    error: Option<String>,
}

/// One order: candidates with explained scores, override, history and moves
pub(crate) async fn order_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    query: Result<Query<Flash>, QueryRejection>,
) -> PageResult {
    let back = format!("/admin/orders/{}", encode_component(&id));
    let session = signed_in(&state, &jar, &back).await?;
    let f = flash(query);
    let actor = &session.info.actor;
    let detail = state.app.order_detail(actor, &id).await?;
    let candidates = if detail.order.state == "created" && actor.is_staff() {
        state
            .app
            .order_candidates(actor, &id)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    private_page(&OrderTemplate {
        chrome: Chrome::new(&state, Some(&session), ""),
        csrf: session.info.csrf_token.clone(),
        created_at: local_time(&state, &detail.order.created_at),
        detail,
        candidates,
        staff: actor.is_staff(),
        back,
        done: done_notice(&f),
        error: signed_error(Some(&session), &f),
    })
}

/// A move from any order page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MoveForm {
    csrf: String,
    /// dispatch, accept, reject, start, complete, cancel, review or verify_minutes.
    action: String,
    provider_id: String,
    /// A reason (reject, cancel) or a verification's note.
    reason: String,
    /// The minutes staff verify (empty: all of them).
    minutes: String,
    rating: String,
    comment: String,
    /// The page to go back to (a path on this site).
    back: String,
}

fn safe_back(back: &str) -> String {
    if back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && !back.contains('?')
    {
        back.to_owned()
    } else {
        "/me/orders".to_owned()
    }
}

/// The minutes a verification form sends: empty means all of them.
fn form_minutes(text: &str) -> Result<Option<i64>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| {
        AppError::invalid(
            "minutes",
            "order.minutes_invalid",
            "核验的服务时长应为整数分钟。",
        )
    })
}

/// Moves an order (the same use cases as the API)
pub(crate) async fn move_order(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<MoveForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/me/orders").await?;
    let Form(form) = form.map_err(|_| crate::pages_registry::form_unreadable())?;
    check_csrf(&session, &form.csrf)?;
    let back = safe_back(&form.back);
    let actor = &session.info.actor;
    let app = &state.app;
    let reason = ReasonInput {
        reason: Some(form.reason.clone()).filter(|r| !r.trim().is_empty()),
    };
    let result = match form.action.as_str() {
        "dispatch" => app
            .dispatch_order(
                actor,
                None,
                &id,
                &DispatchInput {
                    provider_id: Some(form.provider_id.trim().to_owned()).filter(|p| !p.is_empty()),
                },
            )
            .await
            .map(|_| ()),
        "accept" => app.accept_order(actor, None, &id).await.map(|_| ()),
        "reject" => app
            .reject_order(actor, None, &id, &reason)
            .await
            .map(|_| ()),
        "start" => app.start_order(actor, None, &id).await.map(|_| ()),
        "complete" => app.complete_order(actor, None, &id).await.map(|_| ()),
        "cancel" => app
            .cancel_order(actor, None, &id, &reason)
            .await
            .map(|_| ()),
        "review" => match form.rating.trim().parse::<i64>() {
            Ok(rating) => app
                .review_order(
                    actor,
                    None,
                    &id,
                    &ReviewInput {
                        rating,
                        comment: Some(form.comment.clone()),
                    },
                )
                .await
                .map(|_| ()),
            Err(_) => Err(AppError::invalid(
                "rating",
                "review.rating_invalid",
                "请选择 1 到 5 星。",
            )),
        },
        "verify_minutes" => match form_minutes(&form.minutes) {
            Ok(minutes) => app
                .verify_order_minutes(
                    actor,
                    None,
                    &id,
                    &VerifyMinutesInput {
                        minutes,
                        note: reason.reason.clone(),
                    },
                )
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        _ => Err(AppError::invalid(
            "action",
            "order.action_unknown",
            "无法识别的操作，请刷新页面后重试。",
        )),
    };
    match result {
        Ok(()) => Ok(
            Redirect::to(&format!("{back}?done={}", encode_component(&form.action)))
                .into_response(),
        ),
        Err(e) => back_with_error(&session, &back, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Warnings

#[derive(Template)]
#[template(path = "orders_alerts.html")]
struct AlertsTemplate {
    chrome: Chrome,
    alerts: AlertList,
    since: Vec<String>,
    street: String,
    org_id: String,
    streets: Vec<(String, String)>,
}

/// Early warnings (预警通报), by street and organization
pub(crate) async fn alerts_page(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<Flash>, QueryRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/admin/alerts").await?;
    session.info.actor.require_staff()?;
    let f = flash(query);
    let q = AlertQuery {
        street: f.street.clone().filter(|s| !s.is_empty()),
        org_id: f.org_id.clone().filter(|s| !s.is_empty()),
    };
    let alerts = state.app.alerts(&session.info.actor, &q).await?;
    let since = alerts
        .items
        .iter()
        .map(|a| local_time(&state, &a.since))
        .collect();
    private_page(&AlertsTemplate {
        chrome: Chrome::new(&state, Some(&session), ""),
        since,
        alerts,
        street: q.street.unwrap_or_default(),
        org_id: q.org_id.unwrap_or_default(),
        streets: state
            .app
            .pack()
            .streets_and_towns()
            .map(|d| (d.code.as_str().to_owned(), d.name.clone()))
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Providers and the person served

#[derive(Template)]
#[template(path = "orders_mine.html")]
struct MineTemplate {
    chrome: Chrome,
    csrf: String,
    title: String,
    back: String,
    held: Vec<OrderRow>,
    served: Vec<OrderRow>,
    done: Option<String>,
    error: Option<String>,
}

/// A provider organization's incoming orders (staff with an organization)
pub(crate) async fn org_orders(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<Flash>, QueryRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/org/orders").await?;
    session.info.actor.require_staff()?;
    let f = flash(query);
    let held = state
        .app
        .orders(
            &session.info.actor,
            &OrderListQuery::default(),
            0,
            LISTED_ORDERS,
        )
        .await?;
    private_page(&MineTemplate {
        chrome: Chrome::new(&state, Some(&session), ""),
        csrf: session.info.csrf_token.clone(),
        title: "本机构收到的订单".into(),
        back: "/org/orders".into(),
        held: held.iter().map(|o| order_row(&state, o)).collect(),
        served: Vec::new(),
        done: done_notice(&f),
        error: signed_error(Some(&session), &f),
    })
}

/// My orders: those I hold as a volunteer, and my household's
pub(crate) async fn my_orders(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<Flash>, QueryRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/me/orders").await?;
    let f = flash(query);
    let (held, served) = state.app.my_orders(&session.info.actor).await?;
    private_page(&MineTemplate {
        chrome: Chrome::new(&state, Some(&session), ""),
        csrf: session.info.csrf_token.clone(),
        title: "我的服务订单".into(),
        back: "/me/orders".into(),
        held: held.iter().map(|o| order_row(&state, o)).collect(),
        served: served.iter().map(|o| order_row(&state, o)).collect(),
        done: done_notice(&f),
        error: signed_error(Some(&session), &f),
    })
}
