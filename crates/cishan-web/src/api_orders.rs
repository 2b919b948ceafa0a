//! The service catalogue, orders, dispatch and early warnings over JSON (制单—点单—派单—评单).
//! Handlers are thin: parse, call one `App` method, render. Every order move accepts an
//! optional `Idempotency-Key`: a retry with the same key and body returns the first result
//! (`Idempotent-Replayed: true`); an illegal move is 409 naming the order's current state.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use cishan_app::alerts::{AlertList, AlertQuery};
use cishan_app::dispatch::{
    BatchInput, BatchReport, CandidateView, DispatchInput, DispatchResult, OrderLimits, SweepReport,
};
use cishan_app::donations::IdempotencyKey;
use cishan_app::orders::{
    MoveInput, OrderDetail, OrderImportReport, OrderInput, OrderListQuery, OrderView,
    OrgRatingView, ReasonInput, ReviewInput, ServiceInput, ServiceView, VerifyMinutesInput,
    VolunteerCategoriesInput,
};
use cishan_app::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api_ledger::{app_error, body, respond, IDEMPOTENCY_KEY};
use crate::error::{path_rejection, query_rejection, ApiError, ErrorBody};
use crate::params::PageParams;
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of this module, for the router table in `lib.rs`.
pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (M::POST, "/api/v1/services", routing::post(create_service)),
        (M::GET, "/api/v1/services", routing::get(services)),
        (M::GET, "/api/v1/services/{id}", routing::get(service)),
        (
            M::PUT,
            "/api/v1/services/{id}",
            routing::put(update_service),
        ),
        (
            M::PUT,
            "/api/v1/volunteers/{participant_id}/categories",
            routing::put(set_categories),
        ),
        (
            M::GET,
            "/api/v1/organizations/{id}/rating",
            routing::get(org_rating),
        ),
        (M::POST, "/api/v1/orders", routing::post(create_order)),
        (
            M::POST,
            "/api/v1/orders/import",
            routing::post(import_orders),
        ),
        (M::GET, "/api/v1/orders", routing::get(orders)),
        (M::GET, "/api/v1/orders/{id}", routing::get(order)),
        (
            M::GET,
            "/api/v1/orders/{id}/candidates",
            routing::get(candidates),
        ),
        (
            M::POST,
            "/api/v1/orders/{id}/dispatch",
            routing::post(dispatch),
        ),
        (M::POST, "/api/v1/orders/{id}/accept", routing::post(accept)),
        (M::POST, "/api/v1/orders/{id}/start", routing::post(start)),
        (
            M::POST,
            "/api/v1/orders/{id}/complete",
            routing::post(complete),
        ),
        (M::POST, "/api/v1/orders/{id}/cancel", routing::post(cancel)),
        (M::POST, "/api/v1/orders/{id}/reject", routing::post(reject)),
        (M::POST, "/api/v1/orders/{id}/review", routing::post(review)),
        (
            M::POST,
            "/api/v1/orders/{id}/verify-minutes",
            routing::post(verify_minutes),
        ),
        (M::POST, "/api/v1/dispatch/batch", routing::post(batch)),
        (M::POST, "/api/v1/dispatch/sweep", routing::post(sweep)),
        (M::GET, "/api/v1/alerts", routing::get(alerts)),
        (M::GET, "/api/v1/order-limits", routing::get(limits)),
        (M::PUT, "/api/v1/order-limits", routing::put(set_limits)),
    ]
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(value) = p.map_err(path_rejection)?;
    Ok(value)
}

/// The optional `Idempotency-Key` of an order move.
fn optional_key(
    headers: &HeaderMap,
    actor: &cishan_app::Actor,
) -> Result<Option<IdempotencyKey>, ApiError> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(v) => Ok(Some(IdempotencyKey::for_account(
            &actor.user_id,
            v.to_str().unwrap_or("\u{0}"),
        )?)),
    }
}

/// An optional JSON body (empty means the default).
fn optional_body<T: for<'de> Deserialize<'de> + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        AppError::invalid(
            "body",
            "request.body_invalid",
            format!("请求内容不是有效的 JSON：{e}"),
        )
        .into()
    })
}

/// A page of services.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServicePage {
    page: i64,
    per_page: i64,
    items: Vec<ServiceView>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderPage {
    page: i64,
    per_page: i64,
    items: Vec<OrderView>,
}

/// The catalogue filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ServiceQuery {
    /// A service category code.
    category: Option<String>,
    /// A provider organization id.
    org_id: Option<String>,
    #[param(value_type = Option<i64>)]
    page: Option<String>,
    #[param(value_type = Option<i64>)]
    per_page: Option<String>,
}

/// A volunteer's categories.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CategoriesView {
    participant_id: String,
    categories: Vec<String>,
}

/// The candidates of an order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CandidateList {
    items: Vec<CandidateView>,
}

/// Publish a service (制单)
///
/// Staff; an organization's staff only for their organization. Where it serves: `community`
/// (its own), `street` (its street), `district`. Time windows like `weekdays 09:00-17:00;
/// sat 09:00-12:00`; eligibility: assistance categories (empty = everyone).
#[utoipa::path(post, path = "/api/v1/services", tag = "api", request_body = ServiceInput,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = ServiceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<ServiceInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = state.app.create_service(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The service catalogue (published services)
#[utoipa::path(get, path = "/api/v1/services", tag = "api", params(ServiceQuery),
    responses((status = 200, body = ServicePage), (status = 400, body = ErrorBody)))]
pub(crate) async fn services(
    State(state): State<AppState>,
    query: Result<Query<ServiceQuery>, QueryRejection>,
) -> ApiResult<Json<ServicePage>> {
    let Query(q) = query.map_err(query_rejection)?;
    let page = PageParams {
        page: q.page,
        per_page: q.per_page,
    }
    .parse()?;
    let items = state
        .app
        .services(
            None,
            q.category.as_deref(),
            q.org_id.as_deref(),
            (page.number - 1) * page.size,
            page.size,
        )
        .await?;
    Ok(Json(ServicePage {
        page: page.number,
        per_page: page.size,
        items,
    }))
}

/// One service, with its rating
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "api", params(("id" = String, Path, description = "Service id (svc_…)")),
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody)))]
pub(crate) async fn service(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ServiceView>> {
    Ok(Json(state.app.service(&path(id)?).await?))
}

/// Change a service (or withdraw it with `state: withdrawn`)
#[utoipa::path(put, path = "/api/v1/services/{id}", tag = "api", request_body = ServiceInput, params(("id" = String, Path, description = "Service id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = ServiceView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<ServiceInput>, JsonRejection>,
) -> ApiResult<Json<ServiceView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.update_service(&actor, &id, &input).await?))
}

/// Set a volunteer's service categories (main one first)
#[utoipa::path(put, path = "/api/v1/volunteers/{participant_id}/categories", tag = "api", request_body = VolunteerCategoriesInput,
    params(("participant_id" = String, Path, description = "Volunteer's participant id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = CategoriesView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn set_categories(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<VolunteerCategoriesInput>, JsonRejection>,
) -> ApiResult<Json<CategoriesView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let categories = state
        .app
        .set_volunteer_categories(&actor, &id, &input)
        .await?;
    Ok(Json(CategoriesView {
        participant_id: id,
        categories,
    }))
}

/// An organization's evaluation from its services' reviews
#[utoipa::path(get, path = "/api/v1/organizations/{id}/rating", tag = "api", params(("id" = String, Path, description = "Organization id")),
    responses((status = 200, body = OrgRatingView), (status = 404, body = ErrorBody)))]
pub(crate) async fn org_rating(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<OrgRatingView>> {
    Ok(Json(state.app.org_rating(&path(id)?).await?))
}

/// Make an order (点单)
///
/// The person served for their own household, or staff of the household's street on its
/// behalf: from a picked service (`service_id`), a need (`need_id`) or a household and category.
#[utoipa::path(post, path = "/api/v1/orders", tag = "api", request_body = OrderInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional: 1–200 visible ASCII characters")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = OrderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<OrderInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = optional_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .create_order(&actor, key.as_ref(), &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Orders the caller may see, newest first
///
/// Staff of a street: their street's (district staff: all, filterable); an organization's
/// staff: their services' orders; a member: their own, those they hold as a volunteer and
/// their household's (as on /me/orders).
#[utoipa::path(get, path = "/api/v1/orders", tag = "api", params(OrderListQuery, PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn orders(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OrderListQuery>, QueryRejection>,
    paging: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<OrderPage>> {
    let actor = api_actor(&state, &headers).await?;
    let Query(q) = query.map_err(query_rejection)?;
    let Query(p) = paging.map_err(query_rejection)?;
    let page = p.parse()?;
    let items = state
        .app
        .orders(&actor, &q, (page.number - 1) * page.size, page.size)
        .await?;
    Ok(Json(OrderPage {
        page: page.number,
        per_page: page.size,
        items,
    }))
}

/// One order with its history, dispatch attempts (explained) and review
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "api", params(("id" = String, Path, description = "Order id (ord_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn order(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<OrderDetail>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.order_detail(&actor, &id).await?))
}

/// The candidates an order would get now, with explained scores (nothing is dispatched)
#[utoipa::path(get, path = "/api/v1/orders/{id}/candidates", tag = "api", params(("id" = String, Path, description = "Order id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = CandidateList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn candidates(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<CandidateList>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(CandidateList {
        items: state.app.order_candidates(&actor, &id).await?,
    }))
}

/// Dispatch an order (派单)
///
/// Ranks the providers (category fit, distance, remaining weekly capacity, rating, load),
/// returns the candidates with each score explained, and sends the order to the best one, or
/// to `provider_id` (a staff override). 409 when no provider is free or the order is not open.
#[utoipa::path(post, path = "/api/v1/orders/{id}/dispatch", tag = "api", request_body(content = DispatchInput, description = "Optional"),
    params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = DispatchResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn dispatch(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let key = optional_key(&headers, &actor)?;
    let input: DispatchInput = optional_body(&bytes)?;
    let outcome = state
        .app
        .dispatch_order(&actor, key.as_ref(), &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome))
}

macro_rules! order_move {
    ($name:ident, $path:literal, $doc:literal, $call:ident) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "api",
            request_body(content = MoveInput, description = "Optional; empty or {}, any field is refused"),
            params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
            security(("bearer" = []), ("cookie" = [])),
            responses((status = 200, body = OrderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Illegal in the current state", body = ErrorBody), (status = 422, body = ErrorBody)))]
        pub(crate) async fn $name(State(state): State<AppState>, headers: HeaderMap, id: Result<Path<String>, PathRejection>, bytes: Bytes) -> ApiResult<Response> {
            let id = path(id)?;
            let actor = api_actor(&state, &headers).await?;
            let key = optional_key(&headers, &actor)?;
            // No input, but a body with fields is refused like any other unknown field.
            let MoveInput {} = optional_body(&bytes)?;
            let outcome = state.app.$call(&actor, key.as_ref(), &id).await.map_err(app_error)?;
            Ok(respond(StatusCode::OK, outcome))
        }
    };
}

order_move!(
    accept,
    "/api/v1/orders/{id}/accept",
    "Accept an order (the provider holding it)",
    accept_order
);
order_move!(
    start,
    "/api/v1/orders/{id}/start",
    "Start serving an accepted order",
    start_order
);
order_move!(
    complete,
    "/api/v1/orders/{id}/complete",
    "Complete an order in service (a volunteer's minutes are recorded, pending verification)",
    complete_order
);

/// Cancel an order before completion (the person served or staff)
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "api", request_body(content = ReasonInput, description = "Optional"),
    params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let key = optional_key(&headers, &actor)?;
    let input: ReasonInput = optional_body(&bytes)?;
    let outcome = state
        .app
        .cancel_order(&actor, key.as_ref(), &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Reject an order (the provider); it goes on to the next candidate at once
#[utoipa::path(post, path = "/api/v1/orders/{id}/reject", tag = "api", request_body(content = ReasonInput, description = "Optional"),
    params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let key = optional_key(&headers, &actor)?;
    let input: ReasonInput = optional_body(&bytes)?;
    let outcome = state
        .app
        .reject_order(&actor, key.as_ref(), &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Rate a completed order (评单), once: 1–5 and a comment
///
/// The person served, or staff recording a follow-up call (marked `on_behalf`). A second
/// review is 409.
#[utoipa::path(post, path = "/api/v1/orders/{id}/review", tag = "api", request_body = ReviewInput,
    params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<ReviewInput>, JsonRejection>,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let key = optional_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .review_order(&actor, key.as_ref(), &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Verify a volunteer's minutes of a completed order (staff), so they count, once
///
/// Staff of the order's street or the district. All the minutes the completion recorded, or
/// fewer (`minutes`, never more). The review of the person served verifies them too; once
/// verified, verifying again changes nothing and is 409 `order.minutes_already_verified` (when
/// and how many minutes were verified); a retry with the first call's `Idempotency-Key` replays
/// the first answer. 409 too before completion or for an order a service (not a volunteer)
/// holds.
#[utoipa::path(post, path = "/api/v1/orders/{id}/verify-minutes", tag = "api", request_body(content = VerifyMinutesInput, description = "Optional"),
    params(("id" = String, Path, description = "Order id"), ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn verify_minutes(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let key = optional_key(&headers, &actor)?;
    let input: VerifyMinutesInput = optional_body(&bytes)?;
    let outcome = state
        .app
        .verify_order_minutes(&actor, key.as_ref(), &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Dispatch many open orders at once, oldest first, within everyone's capacity
#[utoipa::path(post, path = "/api/v1/dispatch/batch", tag = "api", request_body(content = BatchInput, description = "Optional"),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = BatchReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<BatchReport>> {
    let actor = api_actor(&state, &headers).await?;
    let input: BatchInput = optional_body(&bytes)?;
    Ok(Json(state.app.batch_dispatch(&actor, &input).await?))
}

/// Pass over providers whose accept deadline has passed (the server also does this every minute)
#[utoipa::path(post, path = "/api/v1/dispatch/sweep", tag = "api",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = SweepReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn sweep(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<SweepReport>> {
    let actor = api_actor(&state, &headers).await?;
    actor.require_staff()?;
    Ok(Json(state.app.sweep_orders().await?))
}

/// Early warnings (预警通报)
///
/// Orders not dispatched, accepted or completed within their limits, low ratings and needs
/// that waited too long. Street staff see their street's, an organization's staff their own.
/// `total`, `counts` (per kind) and `by_street` are counted over everything in scope; `items`
/// lists at most 500 of each kind.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "api", params(AlertQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = AlertList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> ApiResult<Json<AlertList>> {
    let actor = api_actor(&state, &headers).await?;
    let Query(q) = query.map_err(query_rejection)?;
    Ok(Json(state.app.alerts(&actor, &q).await?))
}

/// The order limits in force (accept deadline and warning limits)
#[utoipa::path(get, path = "/api/v1/order-limits", tag = "api",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderLimits), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn limits(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<OrderLimits>> {
    let actor = api_actor(&state, &headers).await?;
    actor.require_staff()?;
    Ok(Json(state.app.order_limits().await?))
}

/// Set the order limits (administrators)
#[utoipa::path(put, path = "/api/v1/order-limits", tag = "api", request_body = OrderLimits,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderLimits), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn set_limits(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<OrderLimits>, JsonRejection>,
) -> ApiResult<Json<OrderLimits>> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.set_order_limits(&actor, &input).await?))
}

/// Import orders from CSV (staff)
///
/// UTF-8 CSV with the header `household_id,category,description,need_id,service_id,wanted_at`.
/// Every row goes through the same use case as `POST /api/v1/orders`; the answer accounts for
/// every row. Importing the same file again creates nothing (rows are replayed).
#[utoipa::path(post, path = "/api/v1/orders/import", tag = "api",
    request_body(content = String, content_type = "text/csv"),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = OrderImportReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn import_orders(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<OrderImportReport>> {
    let actor = api_actor(&state, &headers).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        AppError::invalid(
            "file",
            "import.encoding",
            "CSV 文件应为 UTF-8 编码；请在 Excel 中另存为“CSV UTF-8”。",
        )
    })?;
    Ok(Json(state.app.import_orders(&actor, text).await?))
}
