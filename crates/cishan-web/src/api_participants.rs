//! Participants over JSON: register people and organizations (staff), read one (masked; the
//! person themself or staff), attach and detach roles, search by exact identifier, the signed-in
//! member's own record, and roster imports with progress. Handlers are thin: parse, call one
//! `App` method, render.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use cishan_app::import::{ImportJobView, ImportKind, MAX_IMPORT_BYTES};
use cishan_app::participants::{OrganizationInput, ParticipantView, PersonInput};
use cishan_app::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api_ledger::body;
use crate::error::{path_rejection, query_rejection, ApiError, ErrorBody};
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of this module, for the router table in `lib.rs`.
pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (M::POST, "/api/v1/participants", routing::post(register)),
        (M::GET, "/api/v1/participants", routing::get(search)),
        (
            M::GET,
            "/api/v1/participants/{id}",
            routing::get(participant),
        ),
        (
            M::POST,
            "/api/v1/participants/{id}/roles",
            routing::post(roles),
        ),
        (M::GET, "/api/v1/me", routing::get(me)),
        (
            M::POST,
            "/api/v1/imports",
            routing::post(start_import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        ),
        (M::GET, "/api/v1/imports/{id}", routing::get(import_job)),
    ]
}

/// A person (`kind` = `person`, the default) or an organization to register.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    /// `person` (default) or `organization`.
    #[serde(default)]
    kind: Option<String>,
    /// Real name (people) or registered name (organizations).
    #[serde(default)]
    name: String,
    /// People: 18-character resident ID number.
    #[serde(default)]
    id_number: Option<String>,
    /// Organizations: unified social credit code.
    #[serde(default)]
    credit_code: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    division_code: Option<String>,
    /// donor | volunteer | beneficiary | partner | staff.
    #[serde(default)]
    roles: Vec<String>,
}

/// Register a person or an organization (staff)
///
/// People need a valid ID number (checksum, birth date), organizations a valid credit code. An
/// identifier already registered is refused with 409 naming the existing record. Errors name
/// the field (`name`, `id_number`, `credit_code`, `phone`, `division_code`, `roles`).
#[utoipa::path(
    post,
    path = "/api/v1/participants",
    tag = "api",
    request_body = RegisterBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ParticipantView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not staff", body = ErrorBody),
        (status = 409, description = "Already registered", body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<RegisterBody>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = match input.kind.as_deref().unwrap_or("person") {
        "person" => {
            state
                .app
                .register_person(
                    &actor,
                    &PersonInput {
                        name: input.name,
                        id_number: input.id_number.unwrap_or_default(),
                        phone: input.phone,
                        division_code: input.division_code,
                        roles: input.roles,
                    },
                )
                .await?
        }
        "organization" => {
            state
                .app
                .register_organization(
                    &actor,
                    &OrganizationInput {
                        name: input.name,
                        credit_code: input.credit_code.unwrap_or_default(),
                        phone: input.phone,
                        division_code: input.division_code,
                        roles: input.roles,
                    },
                )
                .await?
        }
        _ => {
            return Err(AppError::invalid(
                "kind",
                "participant.kind_invalid",
                "kind 只能是 person（个人）或 organization（机构）。",
            )
            .into())
        }
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchParams {
    q: Option<String>,
}

/// Find participants by exact identifier (staff)
///
/// `q` is a full ID number, phone, credit code or participant id; fragments are refused so the
/// API cannot be used to enumerate people.
#[utoipa::path(
    get,
    path = "/api/v1/participants",
    tag = "api",
    params(("q" = String, Query, description = "Full ID number, phone, credit code or ptc_ id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<ParticipantView>),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SearchParams>, QueryRejection>,
) -> ApiResult<Json<Vec<ParticipantView>>> {
    let actor = api_actor(&state, &headers).await?;
    let Query(params) = query.map_err(query_rejection)?;
    let q = params.q.unwrap_or_default();
    Ok(Json(state.app.find_participants(&actor, &q).await?))
}

/// One participant, identifiers masked (the person themself, or staff)
#[utoipa::path(
    get,
    path = "/api/v1/participants/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Participant id (ptc_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ParticipantView),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Someone else's record", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn participant(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ParticipantView>> {
    let actor = api_actor(&state, &headers).await?;
    let Path(id) = path.map_err(path_rejection)?;
    Ok(Json(state.app.participant_view(&actor, &id).await?))
}

/// A role to attach or detach.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    /// donor | volunteer | beneficiary | partner | staff.
    #[serde(default)]
    role: String,
    /// Within this organization (org_…), optional.
    #[serde(default)]
    org_id: Option<String>,
    /// `attach` (default) or `detach`.
    #[serde(default)]
    action: Option<String>,
}

/// Attach or detach a role (staff)
///
/// Attaching a role already held changes nothing; detaching one not held is refused.
#[utoipa::path(
    post,
    path = "/api/v1/participants/{id}/roles",
    tag = "api",
    params(("id" = String, Path, description = "Participant id (ptc_…)")),
    request_body = RoleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ParticipantView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    input: Result<Json<RoleBody>, JsonRejection>,
) -> ApiResult<Json<ParticipantView>> {
    let actor = api_actor(&state, &headers).await?;
    let Path(id) = path.map_err(path_rejection)?;
    let input = body(input)?;
    let org = input.org_id.as_deref();
    let view = match input.action.as_deref().unwrap_or("attach") {
        "attach" => state.app.attach_role(&actor, &id, &input.role, org).await?,
        "detach" => state.app.detach_role(&actor, &id, &input.role, org).await?,
        _ => {
            return Err(AppError::invalid(
                "action",
                "participant.action_invalid",
                "action 只能是 attach（添加）或 detach（移除）。",
            )
            .into())
        }
    };
    Ok(Json(view))
}

/// The signed-in member's record and the links of their personal page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MeDto {
    participant: ParticipantView,
    /// Personal page sections: code (一码通), hours, points.
    links: Vec<String>,
}

/// The signed-in person's own record (masked)
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "api",
    security(("bearer" = [])),
    responses(
        (status = 200, body = MeDto),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The account is not a participant's (e.g. staff)", body = ErrorBody),
    )
)]
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<MeDto>> {
    let actor = api_actor(&state, &headers).await?;
    let participant = state.app.my_participant(&actor).await?;
    Ok(Json(MeDto {
        links: vec![
            "/me/code".to_owned(),
            "/me/hours".to_owned(),
            "/me/points".to_owned(),
        ],
        participant,
    }))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ImportParams {
    kind: Option<String>,
    file_name: Option<String>,
}

/// Start a roster import (staff)
///
/// The body is the file itself (CSV in UTF-8, UTF-8 with BOM or GBK/GB18030, or XLSX), at most
/// 64 MB. Answers 202 with the job id at once; poll `GET /api/v1/imports/{id}` for progress and
/// the per-row report.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "api",
    params(
        ("kind" = String, Query, description = "people or volunteers"),
        ("file_name" = Option<String>, Query, description = "Shown on the progress page"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Started: {\"job_id\": \"imp_…\"}", body = Object),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 413, description = "File too large", body = ErrorBody),
    )
)]
pub(crate) async fn start_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ImportParams>, QueryRejection>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let Query(params) = query.map_err(query_rejection)?;
    let kind = ImportKind::parse(params.kind.as_deref().unwrap_or(""))?;
    if bytes.is_empty() {
        return Err(AppError::invalid("file", "import.file_empty", "上传的文件是空的。").into());
    }
    let name = params.file_name.unwrap_or_else(|| "upload".to_owned());
    let job_id = state
        .app
        .start_import(&actor, kind, &name, bytes.to_vec())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "job_id": job_id })),
    )
        .into_response())
}

/// An import's progress and report (staff)
///
/// `processed`/`total` while `state` is `running`; once `done`, `rows` lists every row that was
/// not simply imported (updated, already present, duplicated in the file, refused) with its line
/// and reason.
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Import job id (imp_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = Object),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn import_job(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ImportJobView>> {
    let actor = api_actor(&state, &headers).await?;
    let Path(id) = path.map_err(path_rejection)?;
    Ok(Json(state.app.import_job(&actor, &id).await?))
}
