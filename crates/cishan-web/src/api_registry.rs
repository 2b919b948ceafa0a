//! The beneficiary registry (低收入人口库), needs, the edge list (边缘救助), welfare jobs and staff
//! scopes over JSON. Every answer is masked; `POST …/unmask` with a reason is the one way to
//! personal data in clear, and it is journaled. A household of another street is 404.
//! Handlers are thin: parse, call one `App` method, render.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use cishan_app::jobs::{
    EmploymentReport, EndPlacementInput, JobDetail, JobInput, JobView, PlacementInput,
    PlacementView,
};
use cishan_app::registry::{
    CloseNeedInput, EdgeQuery, EdgeReport, HouseholdFilter, HouseholdInput, HouseholdPage,
    HouseholdUpdate, HouseholdView, NeedFilter, NeedInput, NeedView, StaffAccountView,
    StaffScopeInput, UnmaskInput, UnmaskedHousehold,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api_ledger::body;
use crate::error::{parse_int_param, path_rejection, query_rejection, ApiError, ErrorBody};
use crate::params::PageParams;
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of this module, for the router table in `lib.rs`.
pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (M::GET, "/api/v1/households", routing::get(households)),
        (
            M::POST,
            "/api/v1/households",
            routing::post(register_household),
        ),
        (M::GET, "/api/v1/households/{id}", routing::get(household)),
        (
            M::PATCH,
            "/api/v1/households/{id}",
            routing::patch(update_household),
        ),
        (
            M::POST,
            "/api/v1/households/{id}/unmask",
            routing::post(unmask),
        ),
        (
            M::POST,
            "/api/v1/households/{id}/needs",
            routing::post(register_need),
        ),
        (M::GET, "/api/v1/needs", routing::get(needs)),
        (
            M::POST,
            "/api/v1/needs/{id}/close",
            routing::post(close_need),
        ),
        (
            M::GET,
            "/api/v1/edge-households",
            routing::get(edge_households),
        ),
        (M::GET, "/api/v1/jobs", routing::get(jobs)),
        (M::POST, "/api/v1/jobs", routing::post(create_job)),
        (M::GET, "/api/v1/jobs/employment", routing::get(employment)),
        (M::GET, "/api/v1/jobs/{id}", routing::get(job)),
        (M::POST, "/api/v1/jobs/{id}/close", routing::post(close_job)),
        (
            M::POST,
            "/api/v1/jobs/{id}/placements",
            routing::post(place),
        ),
        (
            M::POST,
            "/api/v1/jobs/placements/{id}/end",
            routing::post(end_placement),
        ),
        (M::GET, "/api/v1/staff", routing::get(staff_accounts)),
        (M::PUT, "/api/v1/staff/{id}/scope", routing::put(set_scope)),
    ]
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(value) = p.map_err(path_rejection)?;
    Ok(value)
}

/// Filters of the household list, with paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HouseholdParams {
    /// A street or town code (staff of a street see only their own).
    street_code: Option<String>,
    /// A community or village code.
    community_code: Option<String>,
    /// An assistance category code.
    category: Option<String>,
    /// The exact ID number of any member (found by keyed digest; never logged).
    id_number: Option<String>,
    /// Page number, from 1.
    #[param(value_type = Option<i64>)]
    page: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<i64>)]
    per_page: Option<String>,
}

/// Filters of the needs list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NeedParams {
    household_id: Option<String>,
    /// `open` (open and ordered; default), `met`, `closed` or `all`.
    state: Option<String>,
    street_code: Option<String>,
}

/// What the edge list asks.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EdgeParams {
    /// Needs nothing reached for more than this many days are listed (default 30).
    #[param(value_type = Option<i64>)]
    unreached_days: Option<String>,
    street_code: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    items: Vec<JobView>,
}

/// Staff accounts with their scopes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StaffList {
    items: Vec<StaffAccountView>,
}

/// Needs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NeedList {
    items: Vec<NeedView>,
}

/// Households of the registry, masked (staff)
///
/// Staff whose account has a street see only that street's households; district staff and
/// administrators see all. Search by the exact ID number of any member with `id_number`.
#[utoipa::path(
    get,
    path = "/api/v1/households",
    tag = "api",
    params(HouseholdParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = HouseholdPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn households(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HouseholdParams>, QueryRejection>,
) -> ApiResult<Json<HouseholdPage>> {
    let Query(params) = query.map_err(query_rejection)?;
    let actor = api_actor(&state, &headers).await?;
    let page = PageParams {
        page: params.page,
        per_page: params.per_page,
    }
    .parse()?;
    let filter = HouseholdFilter {
        street_code: params.street_code,
        community_code: params.community_code,
        category: params.category,
        id_number: params.id_number,
    };
    Ok(Json(
        state
            .app
            .households(&actor, &filter, (page.number - 1) * page.size, page.size)
            .await?,
    ))
}

/// Register a household (staff)
///
/// Requires `consent: true` (the head of household agreed; the staff member and the time are
/// recorded). The street's community, the ID numbers (GB 11643), the phone and the income are
/// checked; nothing is written when any field is wrong.
#[utoipa::path(
    post,
    path = "/api/v1/households",
    tag = "api",
    request_body = HouseholdInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = HouseholdView),
        (status = 400, description = "Invalid field (named)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "An ID number is registered already", body = ErrorBody),
    )
)]
pub(crate) async fn register_household(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<HouseholdInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = state.app.register_household(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// One household, masked (staff of its street)
#[utoipa::path(
    get,
    path = "/api/v1/households/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Household id (hh_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = HouseholdView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Unknown, or another street's", body = ErrorBody),
    )
)]
pub(crate) async fn household(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<HouseholdView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.household(&actor, &id).await?))
}

/// Change a household's category, phone, address or income (staff of its street)
///
/// Absent fields stay as they are; the journal names the fields changed, not their values.
#[utoipa::path(
    patch,
    path = "/api/v1/households/{id}",
    tag = "api",
    request_body = HouseholdUpdate,
    params(("id" = String, Path, description = "Household id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = HouseholdView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn update_household(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<HouseholdUpdate>, JsonRejection>,
) -> ApiResult<Json<HouseholdView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.update_household(&actor, &id, &input).await?))
}

/// A household's personal data in clear (administrators, or staff allowed to unmask)
///
/// Needs a stated `reason`; the read is journaled with the actor, the household, the fields
/// and the reason (never the values). Without the permission 403; without a reason 400.
#[utoipa::path(
    post,
    path = "/api/v1/households/{id}/unmask",
    tag = "api",
    request_body = UnmaskInput,
    params(("id" = String, Path, description = "Household id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = UnmaskedHousehold),
        (status = 400, description = "No reason, or an unknown field", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn unmask(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<UnmaskInput>, JsonRejection>,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let clear = state.app.unmask_household(&actor, &id, &input).await?;
    let mut res = Json(clear).into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// Register a need for a household (staff)
#[utoipa::path(
    post,
    path = "/api/v1/households/{id}/needs",
    tag = "api",
    request_body = NeedInput,
    params(("id" = String, Path, description = "Household id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = NeedView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn register_need(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<NeedInput>, JsonRejection>,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = state.app.register_need(&actor, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Needs of a household, or of the caller's street (staff)
#[utoipa::path(
    get,
    path = "/api/v1/needs",
    tag = "api",
    params(NeedParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = NeedList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn needs(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<NeedParams>, QueryRejection>,
) -> ApiResult<Json<NeedList>> {
    let Query(params) = query.map_err(query_rejection)?;
    let actor = api_actor(&state, &headers).await?;
    let filter = NeedFilter {
        household_id: params.household_id,
        state: params.state,
        street_code: params.street_code,
    };
    Ok(Json(NeedList {
        items: state.app.needs(&actor, &filter).await?,
    }))
}

/// Close a need with a reason (staff)
#[utoipa::path(
    post,
    path = "/api/v1/needs/{id}/close",
    tag = "api",
    request_body = CloseNeedInput,
    params(("id" = String, Path, description = "Need id (need_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = NeedView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Ordered or closed already", body = ErrorBody),
    )
)]
pub(crate) async fn close_need(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<CloseNeedInput>, JsonRejection>,
) -> ApiResult<Json<NeedView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.close_need(&actor, &id, &input).await?))
}

/// The edge list (边缘救助) (staff)
///
/// Households not in subsistence or extreme-poverty support whose per-capita income is under
/// the near-subsistence line of the year (the pack's standard × multiplier; an income exactly on
/// the line is not under it), with the line and each household's distance under it as a band
/// of tenths of the line (never the exact gap, which would give the income); and needs, open or
/// ordered, that no service has reached in more than `unreached_days` days (default 30).
#[utoipa::path(
    get,
    path = "/api/v1/edge-households",
    tag = "api",
    params(EdgeParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = EdgeReport),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn edge_households(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EdgeParams>, QueryRejection>,
) -> ApiResult<Json<EdgeReport>> {
    let Query(params) = query.map_err(query_rejection)?;
    let actor = api_actor(&state, &headers).await?;
    let query = EdgeQuery {
        unreached_days: parse_int_param(
            "unreached_days",
            params.unreached_days.as_deref(),
            "未服务天数",
        )?,
        street_code: params.street_code,
    };
    Ok(Json(state.app.edge_households(&actor, &query).await?))
}

/// Welfare jobs the caller may see, open first (staff)
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "api",
    params(PageParams),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = JobList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<JobList>> {
    let Query(params) = query.map_err(query_rejection)?;
    let page = params.parse()?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(JobList {
        items: state
            .app
            .jobs(&actor, (page.number - 1) * page.size, page.size)
            .await?,
    }))
}

/// Post a welfare job (公益岗位 / 爱心岗位) (staff)
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "api",
    request_body = JobInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = JobView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<JobInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = state.app.create_job(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The employment rate of placed people, per street and overall (staff)
#[utoipa::path(
    get,
    path = "/api/v1/jobs/employment",
    tag = "api",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = EmploymentReport),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn employment(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<EmploymentReport>> {
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.employment_report(&actor).await?))
}

/// One job with its placements (staff)
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Job id (job_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = JobDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn job(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<JobDetail>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.job(&actor, &id).await?))
}

/// Close a job to new placements (staff)
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/close",
    tag = "api",
    params(("id" = String, Path, description = "Job id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = JobView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    )
)]
pub(crate) async fn close_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<JobView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.close_job(&actor, &id).await?))
}

/// Place a registry member in a job (staff)
///
/// 409 when the job is full or closed, or the member holds a job already. Concurrent
/// placements never pass the job's positions.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/placements",
    tag = "api",
    request_body = PlacementInput,
    params(("id" = String, Path, description = "Job id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = PlacementView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Full, closed, or the member is placed already", body = ErrorBody),
    )
)]
pub(crate) async fn place(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<PlacementInput>, JsonRejection>,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = state.app.place_member(&actor, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// End a placement with a reason (staff)
#[utoipa::path(
    post,
    path = "/api/v1/jobs/placements/{id}/end",
    tag = "api",
    request_body = EndPlacementInput,
    params(("id" = String, Path, description = "Placement id (plc_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PlacementView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Ended already", body = ErrorBody),
    )
)]
pub(crate) async fn end_placement(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<EndPlacementInput>, JsonRejection>,
) -> ApiResult<Json<PlacementView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.end_placement(&actor, &id, &input).await?))
}

/// Staff accounts with their street, organization and unmasking permission (administrators)
#[utoipa::path(
    get,
    path = "/api/v1/staff",
    tag = "api",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = StaffList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn staff_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<StaffList>> {
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(StaffList {
        items: state.app.staff_accounts(&actor).await?,
    }))
}

/// Set a staff account's street, organization and unmasking permission (administrators)
#[utoipa::path(
    put,
    path = "/api/v1/staff/{id}/scope",
    tag = "api",
    request_body = StaffScopeInput,
    params(("id" = String, Path, description = "User id (usr_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = StaffAccountView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn set_scope(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<StaffScopeInput>, JsonRejection>,
) -> ApiResult<Json<StaffAccountView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.set_staff_scope(&actor, &id, &input).await?))
}
