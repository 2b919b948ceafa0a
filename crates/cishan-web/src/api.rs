//! The JSON API under `/api/v1`. Response types here are the web layer's own (DTOs deriving
//! [`ToSchema`]), so the OpenAPI document is generated from the same structs that serialise the
//! answers, and the lower crates stay free of HTTP concerns.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cishan_app::disclosure::OrganizationDetail;
use cishan_app::indicators::{ActualSource, IndicatorView};
use cishan_app::region::RegionView;
use cishan_app::AppError;
use cishan_core::{Better, Comparator, Decimal, Status};
use cishan_store::{DisclosureSummary, FundRow, OrganizationSummary, ProjectSummary};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::{
    json_rejection, parse_year, path_rejection, query_rejection, ApiError, ErrorBody,
};
use crate::params::{PageParams, YearParams};
use crate::session::{api_actor, api_session};
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------------
// Response types.

/// The region this deployment serves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegionDto {
    /// Division code of the district, e.g. `330302`.
    #[schema(example = "330302")]
    code: String,
    #[schema(example = "鹿城区")]
    name: String,
    #[schema(example = "Lucheng District")]
    name_en: String,
    #[schema(example = "Asia/Shanghai")]
    timezone: String,
    /// The district, its streets and towns, and their communities and villages.
    divisions: Vec<DivisionDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DivisionDto {
    code: String,
    name: String,
    /// `district`, `street`, `town`, `community` or `village`.
    #[schema(example = "street")]
    level: String,
    /// The code of the division this one belongs to.
    parent: Option<String>,
}

impl From<RegionView> for RegionDto {
    fn from(r: RegionView) -> RegionDto {
        RegionDto {
            code: r.code,
            name: r.name,
            name_en: r.name_en,
            timezone: r.timezone,
            divisions: r
                .divisions
                .into_iter()
                .map(|d| DivisionDto {
                    code: d.code,
                    name: d.name,
                    level: d.level.to_owned(),
                    parent: d.parent,
                })
                .collect(),
        }
    }
}

/// Which direction is an improvement.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BetterDto {
    Higher,
    Lower,
}

/// How a target compares: `eq` (reach the number), `ge` (≥), `le` (≤), `about` (左右),
/// `increase` (有所提高, better than the year before), `actual` (以实际为准).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ComparatorDto {
    Eq,
    Ge,
    Le,
    About,
    Increase,
    Actual,
}

/// Whether the actual meets the target.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusDto {
    Met,
    NotMet,
    NoData,
}

/// Where the actual comes from: entered by an administrator, or counted by the platform.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActualSourceDto {
    Entered,
    Computed,
}

/// One year's target as printed in the plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TargetDto {
    /// The text exactly as printed, e.g. `≥90.6` or `有所提高`; empty when there is no target.
    #[schema(example = "≥90.6")]
    raw: String,
    /// `null` when the plan sets no target that year.
    comparator: Option<ComparatorDto>,
    /// The number, for charts; `null` for `increase`, `actual` and no target.
    #[serde(with = "rust_decimal::serde::float_option")]
    #[schema(value_type = Option<f64>, example = 90.6)]
    value: Option<Decimal>,
}

/// One indicator of the plan's table for one year.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorDto {
    /// `1`..`25`, `T1`..`T3`.
    #[schema(example = "8")]
    code: String,
    name: String,
    unit: String,
    category: String,
    /// The departments responsible.
    owner: String,
    better: BetterDto,
    year: i16,
    target: TargetDto,
    /// The actual value as a number (display only); `null` when there is none.
    #[serde(with = "rust_decimal::serde::float_option")]
    #[schema(value_type = Option<f64>, example = 92.5)]
    actual: Option<Decimal>,
    /// The actual exactly as stored, e.g. `92.50`; `null` when there is none.
    #[schema(example = "92.5")]
    actual_text: Option<String>,
    actual_source: Option<ActualSourceDto>,
    /// Whether administrators enter this indicator (`false`: computed by the platform).
    manual: bool,
    status: StatusDto,
}

impl From<IndicatorView> for IndicatorDto {
    fn from(v: IndicatorView) -> IndicatorDto {
        IndicatorDto {
            code: v.code,
            name: v.name,
            unit: v.unit,
            category: v.category,
            owner: v.owner,
            better: match v.better {
                Better::Higher => BetterDto::Higher,
                Better::Lower => BetterDto::Lower,
            },
            year: v.year,
            target: TargetDto {
                raw: v.target.raw,
                comparator: v.target.comparator.map(|c| match c {
                    Comparator::Eq => ComparatorDto::Eq,
                    Comparator::Ge => ComparatorDto::Ge,
                    Comparator::Le => ComparatorDto::Le,
                    Comparator::About => ComparatorDto::About,
                    Comparator::Increase => ComparatorDto::Increase,
                    Comparator::Actual => ComparatorDto::Actual,
                }),
                value: v.target.value,
            },
            actual: v.actual,
            actual_text: v.actual_text,
            actual_source: v.actual_source.map(|s| match s {
                ActualSource::Entered => ActualSourceDto::Entered,
                ActualSource::Computed => ActualSourceDto::Computed,
            }),
            manual: v.manual,
            status: match v.status {
                Status::Met => StatusDto::Met,
                Status::NotMet => StatusDto::NotMet,
                Status::NoData => StatusDto::NoData,
            },
        }
    }
}

/// The plan's indicator table for one year.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorsDto {
    year: i16,
    indicators: Vec<IndicatorDto>,
}

/// An actual value to record. A decimal in the indicator's printed unit; a string keeps it
/// exact (`"92.50"`), a JSON number is accepted too.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ActualInput {
    #[schema(value_type = String, example = "92.5")]
    #[expect(
        dead_code,
        reason = "documents the body; the handler reads it field by field"
    )]
    value: serde_json::Value,
}

/// The platform-wide disclosure figures (阳光慈善).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SummaryDto {
    /// Donors: distinct registered donors plus one per walk-in donation.
    donors: i64,
    /// Total donated, in fen (0.01 yuan).
    donated_fen: i64,
    /// Person-times helped by disbursements.
    people_helped: i64,
    projects: i64,
    organizations: i64,
}

impl From<DisclosureSummary> for SummaryDto {
    fn from(s: DisclosureSummary) -> SummaryDto {
        SummaryDto {
            donors: s.donors,
            donated_fen: s.donated_fen,
            people_helped: s.people_helped,
            projects: s.projects,
            organizations: s.organizations,
        }
    }
}

/// An organization with its public totals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationDto {
    #[schema(example = "org_0001")]
    id: String,
    name: String,
    /// Unified social credit code (统一社会信用代码).
    credit_code: String,
    kind: String,
    division_code: Option<String>,
    /// Registered or recognised as a charity organization (慈善组织).
    is_charity: bool,
    /// `YYYY-MM-DD`.
    registered_on: String,
    funds: i64,
    projects: i64,
    /// Donations received through its funds and projects, in fen.
    donated_fen: i64,
}

impl From<OrganizationSummary> for OrganizationDto {
    fn from(o: OrganizationSummary) -> OrganizationDto {
        OrganizationDto {
            id: o.id,
            name: o.name,
            credit_code: o.credit_code,
            kind: o.kind,
            division_code: o.division_code,
            is_charity: o.is_charity,
            registered_on: o.registered_on,
            funds: o.funds,
            projects: o.projects,
            donated_fen: o.donated_fen,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FundDto {
    id: String,
    name: String,
    /// RFC 3339 instant.
    created_at: String,
}

impl From<FundRow> for FundDto {
    fn from(f: FundRow) -> FundDto {
        FundDto {
            id: f.id,
            name: f.name,
            created_at: f.created_at,
        }
    }
}

/// An organization with its funds and projects.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationDetailDto {
    organization: OrganizationDto,
    funds: Vec<FundDto>,
    projects: Vec<ProjectDto>,
}

impl From<OrganizationDetail> for OrganizationDetailDto {
    fn from(d: OrganizationDetail) -> OrganizationDetailDto {
        OrganizationDetailDto {
            organization: d.organization.into(),
            funds: d.funds.into_iter().map(Into::into).collect(),
            projects: d.projects.into_iter().map(Into::into).collect(),
        }
    }
}

/// A project with its public totals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectDto {
    #[schema(example = "prj_0001")]
    id: String,
    org_id: String,
    org_name: String,
    name: String,
    summary: String,
    state: String,
    /// Fundraising goal, in fen.
    goal_fen: i64,
    /// Donations received for the project, in fen.
    raised_fen: i64,
    /// Paid out to beneficiaries, in fen.
    disbursed_fen: i64,
    /// Person-times helped.
    people_helped: i64,
}

impl From<ProjectSummary> for ProjectDto {
    fn from(p: ProjectSummary) -> ProjectDto {
        ProjectDto {
            id: p.id,
            org_id: p.org_id,
            org_name: p.org_name,
            name: p.name,
            summary: p.summary,
            state: p.state,
            goal_fen: p.goal_fen,
            raised_fen: p.raised_fen,
            disbursed_fen: p.disbursed_fen,
            people_helped: p.people_helped,
        }
    }
}

/// One page of organizations.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationPageDto {
    page: i64,
    per_page: i64,
    /// The next page's number, or `null` on the last page.
    next_page: Option<i64>,
    items: Vec<OrganizationDto>,
}

/// One page of projects.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectPageDto {
    page: i64,
    per_page: i64,
    /// The next page's number, or `null` on the last page.
    next_page: Option<i64>,
    items: Vec<ProjectDto>,
}

/// Credentials for a new session.
#[derive(Debug, Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the body; the handler reads it field by field"
)]
pub(crate) struct LoginInput {
    #[schema(example = "admin")]
    username: String,
    password: String,
}

/// A new session. Send `Authorization: Bearer <token>`; a browser holding the token in a cookie
/// sends `X-CSRF-Token: <csrf_token>` with every change instead.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionDto {
    token: String,
    csrf_token: String,
    /// RFC 3339 instant.
    expires_at: String,
}

/// Health of the service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthDto {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    status: &'static str,
    /// `ok` or `error`.
    #[schema(example = "ok")]
    database: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// Service health
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The service and its database answer", body = HealthDto),
        (status = 503, description = "The database does not answer", body = HealthDto),
    )
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    match state.app.store().ping().await {
        Ok(()) => Json(HealthDto {
            status: "ok",
            database: "ok",
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error.cause = %e, "health check: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthDto {
                    status: "unavailable",
                    database: "error",
                }),
            )
                .into_response()
        }
    }
}

/// This document
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "api",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> Response {
    match openapi().to_json() {
        Ok(json) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(e) => ApiError::from(AppError::internal(e)).into_response(),
    }
}

/// The region and its divisions
#[utoipa::path(
    get,
    path = "/api/v1/region",
    tag = "api",
    responses((status = 200, body = RegionDto))
)]
pub(crate) async fn region(State(state): State<AppState>) -> Json<RegionDto> {
    Json(state.app.region().into())
}

/// The indicator table for one year
#[utoipa::path(
    get,
    path = "/api/v1/indicators",
    tag = "api",
    params(YearParams),
    responses(
        (status = 200, body = IndicatorsDto),
        (status = 400, description = "Unknown year", body = ErrorBody),
    )
)]
pub(crate) async fn indicators(
    State(state): State<AppState>,
    query: Result<Query<YearParams>, QueryRejection>,
) -> ApiResult<Json<IndicatorsDto>> {
    let Query(params) = query.map_err(query_rejection)?;
    let year = params.parse(&state)?;
    let views = state.app.indicators(year).await?;
    Ok(Json(IndicatorsDto {
        year,
        indicators: views.into_iter().map(Into::into).collect(),
    }))
}

/// Record an indicator's actual value for a year (administrators)
#[utoipa::path(
    put,
    path = "/api/v1/indicators/{code}/actuals/{year}",
    tag = "api",
    params(
        ("code" = String, Path, description = "Indicator code, `1`..`25`"),
        ("year" = i16, Path, description = "Year"),
        ("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication"),
    ),
    request_body = ActualInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The indicator with its new status", body = IndicatorDto),
        (status = 400, description = "Invalid value or year, or a computed indicator", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an administrator, or CSRF token missing", body = ErrorBody),
        (status = 404, description = "Unknown indicator", body = ErrorBody),
    )
)]
pub(crate) async fn set_actual(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<Json<IndicatorDto>> {
    // Who first: an anonymous caller learns nothing about the input.
    let actor = api_actor(&state, &headers).await?;
    let Path((code, year)) = path.map_err(path_rejection)?;
    let year = parse_year("year", &year)?;
    let Json(body) = body.map_err(json_rejection)?;
    let value = match body.get("value") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(AppError::invalid(
                "value",
                "indicator.value_invalid",
                "实际值必须是数字或数字字符串，例如 {\"value\": \"92.5\"}。",
            )
            .into())
        }
        None => {
            return Err(AppError::invalid(
                "value",
                "request.field_missing",
                "缺少字段 value：请填写实际值，例如 {\"value\": \"92.5\"}。",
            )
            .into())
        }
    };
    let view = state
        .app
        .set_indicator_actual(&actor, &code, year, &value)
        .await?;
    Ok(Json(view.into()))
}

/// The platform-wide disclosure summary
#[utoipa::path(
    get,
    path = "/api/v1/disclosure/summary",
    tag = "api",
    responses((status = 200, body = SummaryDto))
)]
pub(crate) async fn disclosure_summary(
    State(state): State<AppState>,
) -> ApiResult<Json<SummaryDto>> {
    Ok(Json(state.app.disclosure_summary().await?.into()))
}

/// Organizations with their totals, by name
#[utoipa::path(
    get,
    path = "/api/v1/organizations",
    tag = "api",
    params(PageParams),
    responses(
        (status = 200, body = OrganizationPageDto),
        (status = 400, description = "Invalid page or per_page", body = ErrorBody),
    )
)]
pub(crate) async fn organizations(
    State(state): State<AppState>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<OrganizationPageDto>> {
    let Query(params) = query.map_err(query_rejection)?;
    let page = params.parse()?;
    let rows = state.app.organizations(page.probe).await?;
    let (rows, next_page) = page.split(rows);
    Ok(Json(OrganizationPageDto {
        page: page.number,
        per_page: page.size,
        next_page,
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// One organization with its funds and projects
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Organization id")),
    responses(
        (status = 200, body = OrganizationDetailDto),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrganizationDetailDto>> {
    Ok(Json(state.app.organization(&id).await?.into()))
}

/// Projects with their totals, by name
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "api",
    params(PageParams),
    responses(
        (status = 200, body = ProjectPageDto),
        (status = 400, description = "Invalid page or per_page", body = ErrorBody),
    )
)]
pub(crate) async fn projects(
    State(state): State<AppState>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<ProjectPageDto>> {
    let Query(params) = query.map_err(query_rejection)?;
    let page = params.parse()?;
    let rows = state.app.projects(page.probe).await?;
    let (rows, next_page) = page.split(rows);
    Ok(Json(ProjectPageDto {
        page: page.number,
        per_page: page.size,
        next_page,
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// One project with its totals
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, body = ProjectDto),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn project(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectDto>> {
    Ok(Json(state.app.project(&id).await?.into()))
}

/// Sign in and get a session token
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    tag = "api",
    request_body = LoginInput,
    responses(
        (status = 201, body = SessionDto),
        (status = 400, description = "Missing username or password", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
    )
)]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SessionDto>)> {
    let Json(body) = body.map_err(json_rejection)?;
    let field = |name: &str| -> Result<String, AppError> {
        match body.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(AppError::invalid(
                name,
                "request.field_missing",
                format!("请填写 {name}（字符串）。"),
            )),
        }
    };
    let username = field("username")?;
    let password = field("password")?;
    let session = state.app.login(&username, &password).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionDto {
            token: session.token,
            csrf_token: session.info.csrf_token,
            expires_at: session.info.expires_at.to_string(),
        }),
    ))
}

/// Sign out: end the calling session
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/current",
    tag = "api",
    params(("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The session is ended"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "CSRF token missing", body = ErrorBody),
    )
)]
pub(crate) async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let session = api_session(&state, &headers).await?;
    state.app.logout(&session.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// The document.

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The session token from POST /api/v1/sessions.".to_owned(),
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::session::SESSION_COOKIE,
                    "The page session cookie; changes also need the X-CSRF-Token header.",
                ),
            )),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cishan 慈善鹿城 API",
        description = "Public disclosure, the plan's indicator table and its administration. \
                       Errors use one envelope: {\"error\": {\"code\", \"message\", \"field\"}}.",
        license(name = "Apache-2.0")
    ),
    paths(
        healthz,
        crate::metrics::render,
        openapi_json,
        region,
        indicators,
        set_actual,
        disclosure_summary,
        organizations,
        organization,
        projects,
        project,
        create_session,
        delete_session,
        crate::api_ledger::record_donation,
        crate::api_ledger::refund,
        crate::api_ledger::trace,
        crate::api_ledger::allocate,
        crate::api_ledger::disburse,
        crate::api_ledger::reverse,
        crate::api_ledger::create_pool,
        crate::api_ledger::receipt,
        crate::api_log::head,
        crate::api_log::key,
        crate::api_log::proof,
        crate::api_log::consistency,
        crate::api_campaigns::create_campaign,
        crate::api_campaigns::add_units,
        crate::api_campaigns::campaign_report,
        crate::api_campaigns::convert_card_points,
        crate::api_campaigns::export_organization,
        crate::api_campaigns::export_fund,
        crate::api_campaigns::export_project,
        crate::api_campaigns::tax_summary,
        crate::api_participants::register,
        crate::api_participants::search,
        crate::api_participants::participant,
        crate::api_participants::roles,
        crate::api_participants::me,
        crate::api_participants::start_import,
        crate::api_participants::import_job,
        crate::api_points::points,
        crate::api_points::rules,
        crate::api_points::recompute,
        crate::api_points::offers,
        crate::api_points::create_offer,
        crate::api_points::record_skill,
        crate::api_points::redeem,
        crate::api_points::cancel,
        crate::api_codes::code_key,
        crate::api_codes::participant_code,
        crate::api_codes::scan,
        crate::api_volunteering::create_activity,
        crate::api_volunteering::activities,
        crate::api_volunteering::activity,
        crate::api_volunteering::check_in,
        crate::api_volunteering::check_out,
        crate::api_volunteering::attendances,
        crate::api_volunteering::verify,
        crate::api_volunteering::withdraw,
        crate::api_volunteering::hours,
        crate::api_volunteering::issue_certificate,
        crate::api_volunteering::certificate,
        crate::api_volunteering::create_team,
        crate::api_volunteering::add_member,
        crate::api_volunteering::set_rules,
        crate::api_registry::households,
        crate::api_registry::register_household,
        crate::api_registry::household,
        crate::api_registry::update_household,
        crate::api_registry::unmask,
        crate::api_registry::register_need,
        crate::api_registry::needs,
        crate::api_registry::close_need,
        crate::api_registry::edge_households,
        crate::api_registry::jobs,
        crate::api_registry::create_job,
        crate::api_registry::employment,
        crate::api_registry::job,
        crate::api_registry::close_job,
        crate::api_registry::place,
        crate::api_registry::end_placement,
        crate::api_registry::staff_accounts,
        crate::api_registry::set_scope,
        crate::api_orders::create_service,
        crate::api_orders::services,
        crate::api_orders::service,
        crate::api_orders::update_service,
        crate::api_orders::set_categories,
        crate::api_orders::org_rating,
        crate::api_orders::create_order,
        crate::api_orders::import_orders,
        crate::api_orders::orders,
        crate::api_orders::order,
        crate::api_orders::candidates,
        crate::api_orders::dispatch,
        crate::api_orders::accept,
        crate::api_orders::start,
        crate::api_orders::complete,
        crate::api_orders::cancel,
        crate::api_orders::reject,
        crate::api_orders::review,
        crate::api_orders::verify_minutes,
        crate::api_orders::batch,
        crate::api_orders::sweep,
        crate::api_orders::alerts,
        crate::api_orders::limits,
        crate::api_orders::set_limits,
        crate::pages::stylesheet,
        crate::pages::home,
        crate::pages::organizations,
        crate::pages::organization,
        crate::pages::projects,
        crate::pages::project,
        crate::pages::dashboard,
        crate::pages::login_form,
        crate::pages::login,
        crate::pages::logout,
        crate::pages::admin_indicators,
        crate::pages::admin_set_actual,
    ),
    components(schemas(ErrorBody, crate::pages::LoginForm, crate::pages::ActualForm, crate::pages::CsrfForm)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "api", description = "JSON API, version 1"),
        (name = "pages", description = "Server-rendered HTML pages (Chinese)"),
        (name = "operations", description = "Health, metrics and static files"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every route, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
