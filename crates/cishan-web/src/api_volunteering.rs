//! Volunteering (志愿服务) over JSON: activities, check-in and check-out by scan, attendance,
//! verification and its withdrawal, a volunteer's hours, certificates, teams and the rules.
//! Handlers are thin: parse, call one `App` method, render.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use cishan_app::volunteering::{
    ActivityInput, ActivityView, CertificateInput, CertificateView, HoursView, ScanCodeInput,
    SessionView, TeamInput, TeamView, VerifyInput, VolunteerRulesInput, WithdrawInput,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api_ledger::body;
use crate::error::{path_rejection, query_rejection, ApiError, ErrorBody};
use crate::params::PageParams;
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of this module, for the router table in `lib.rs`.
pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (
            M::POST,
            "/api/v1/activities",
            routing::post(create_activity),
        ),
        (M::GET, "/api/v1/activities", routing::get(activities)),
        (M::GET, "/api/v1/activities/{id}", routing::get(activity)),
        (
            M::POST,
            "/api/v1/activities/{id}/check-in",
            routing::post(check_in),
        ),
        (
            M::POST,
            "/api/v1/activities/{id}/check-out",
            routing::post(check_out),
        ),
        (
            M::GET,
            "/api/v1/activities/{id}/attendances",
            routing::get(attendances),
        ),
        (
            M::POST,
            "/api/v1/attendances/{id}/verification",
            routing::post(verify),
        ),
        (
            M::POST,
            "/api/v1/attendances/{id}/withdrawal",
            routing::post(withdraw),
        ),
        (
            M::GET,
            "/api/v1/volunteers/{participant_id}/hours",
            routing::get(hours),
        ),
        (
            M::POST,
            "/api/v1/volunteers/{participant_id}/certificates",
            routing::post(issue_certificate),
        ),
        (
            M::GET,
            "/api/v1/certificates/{number}",
            routing::get(certificate),
        ),
        (
            M::POST,
            "/api/v1/volunteer-teams",
            routing::post(create_team),
        ),
        (
            M::POST,
            "/api/v1/volunteer-teams/{id}/members",
            routing::post(add_member),
        ),
        (M::PUT, "/api/v1/volunteer-rules", routing::put(set_rules)),
    ]
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(value) = p.map_err(path_rejection)?;
    Ok(value)
}

/// A page of activities.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActivityPage {
    page: i64,
    per_page: i64,
    items: Vec<ActivityView>,
}

/// The attendance list of an activity.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttendanceList {
    items: Vec<SessionView>,
}

/// A volunteer to add to a team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberInput {
    participant_id: String,
}

/// The rules now in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RulesView {
    daily_max_minutes: i64,
    star_hours: Vec<i64>,
}

/// A certificate check (`?code=CS1.…`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct CertificateQuery {
    /// The certificate's code, as scanned from it.
    code: Option<String>,
}

/// A certificate and whether its code was checked.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CertificateCheck {
    certificate: CertificateView,
    /// True when `?code=` was given and is this certificate's valid signed code.
    code_verified: bool,
}

/// Create a volunteer activity
///
/// Staff only. The place is a division code of the region pack plus an address; the category
/// is a service category code of the pack. The answer carries the activity's long-lived signed
/// code for volunteers to scan.
#[utoipa::path(
    post,
    path = "/api/v1/activities",
    tag = "api",
    request_body = ActivityInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = ActivityView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<ActivityInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let view = state.app.create_activity(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Volunteer activities, the latest start first
#[utoipa::path(
    get,
    path = "/api/v1/activities",
    tag = "api",
    params(PageParams),
    responses(
        (status = 200, body = ActivityPage),
        (status = 400, body = ErrorBody),
    )
)]
pub(crate) async fn activities(
    State(state): State<AppState>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> ApiResult<Json<ActivityPage>> {
    let Query(params) = query.map_err(query_rejection)?;
    let page = params.parse()?;
    let items = state
        .app
        .activities((page.number - 1) * page.size, page.size)
        .await?;
    Ok(Json(ActivityPage {
        page: page.number,
        per_page: page.size,
        items,
    }))
}

/// One activity, with its code
#[utoipa::path(
    get,
    path = "/api/v1/activities/{id}",
    tag = "api",
    params(("id" = String, Path, description = "Activity id (act_…)")),
    responses((status = 200, body = ActivityView), (status = 404, body = ErrorBody))
)]
pub(crate) async fn activity(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ActivityView>> {
    Ok(Json(state.app.activity(&path(id)?).await?))
}

/// Check in by scan
///
/// Either direction: a signed-in volunteer sends the activity's code they scanned, or staff
/// send the volunteer's participant code they scanned. 201 for a new check-in; scanning again
/// while checked in changes nothing and answers 200 with the existing session
/// (`unchanged: true`). Refused: a full activity (409), a replayed participant code (409),
/// outside the check-in window (409), forged or expired codes (400).
#[utoipa::path(
    post,
    path = "/api/v1/activities/{id}/check-in",
    tag = "api",
    request_body = ScanCodeInput,
    params(("id" = String, Path, description = "Activity id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = SessionView),
        (status = 200, description = "Already checked in: nothing changed", body = SessionView),
        (status = 400, description = "Malformed, forged, expired or wrong-kind code", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Full, replayed code, already checked out, or outside the window", body = ErrorBody),
    )
)]
pub(crate) async fn check_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<ScanCodeInput>, JsonRejection>,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let session = state.app.check_in(&actor, &id, &input).await?;
    let status = if session.unchanged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(session)).into_response())
}

/// Check out by scan
///
/// The same two directions as check-in. Check-out without a check-in is refused with 409; a
/// second check-out changes nothing (200, `unchanged: true`). Minutes are whole minutes from
/// check-in to check-out; they count only after the organizer verifies them.
#[utoipa::path(
    post,
    path = "/api/v1/activities/{id}/check-out",
    tag = "api",
    request_body = ScanCodeInput,
    params(("id" = String, Path, description = "Activity id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not checked in, or replayed code", body = ErrorBody),
    )
)]
pub(crate) async fn check_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<ScanCodeInput>, JsonRejection>,
) -> ApiResult<Json<SessionView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(state.app.check_out(&actor, &id, &input).await?))
}

/// The attendance list of an activity (staff)
#[utoipa::path(
    get,
    path = "/api/v1/activities/{id}/attendances",
    tag = "api",
    params(("id" = String, Path, description = "Activity id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = AttendanceList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn attendances(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<AttendanceList>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(AttendanceList {
        items: state.app.activity_attendances(&actor, &id).await?,
    }))
}

/// Verify a session's hours (staff)
///
/// The session must be checked out. Its minutes, split by local day and capped by the daily
/// maximum, become service records and count from now on. Verifying again changes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/attendances/{id}/verification",
    tag = "api",
    request_body = VerifyInput,
    params(("id" = String, Path, description = "Attendance id (att_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not checked out yet", body = ErrorBody),
    )
)]
pub(crate) async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<VerifyInput>, JsonRejection>,
) -> ApiResult<Json<SessionView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(
        state.app.verify_attendance(&actor, &id, &input).await?,
    ))
}

/// Withdraw a verification (staff)
///
/// The session's service records are marked withdrawn and stop counting.
#[utoipa::path(
    post,
    path = "/api/v1/attendances/{id}/withdrawal",
    tag = "api",
    request_body = WithdrawInput,
    params(("id" = String, Path, description = "Attendance id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = SessionView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not verified", body = ErrorBody),
    )
)]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<WithdrawInput>, JsonRejection>,
) -> ApiResult<Json<SessionView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(
        state.app.withdraw_verification(&actor, &id, &input).await?,
    ))
}

/// A volunteer's hours, stars, service records and certificates
///
/// The volunteer themself or staff. Only verified hours count.
#[utoipa::path(
    get,
    path = "/api/v1/volunteers/{participant_id}/hours",
    tag = "api",
    params(("participant_id" = String, Path, description = "Participant id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = HoursView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn hours(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<HoursView>> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.volunteer_hours(&actor, &id).await?))
}

/// Issue a service certificate (staff)
///
/// For the volunteer's verified hours so far. The certificate's public page and code let
/// anyone verify it.
#[utoipa::path(
    post,
    path = "/api/v1/volunteers/{participant_id}/certificates",
    tag = "api",
    request_body = CertificateInput,
    params(("participant_id" = String, Path, description = "Participant id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = CertificateView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Not a registered volunteer", body = ErrorBody),
    )
)]
pub(crate) async fn issue_certificate(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<CertificateInput>, JsonRejection>,
) -> ApiResult<Response> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let cert = state.app.issue_certificate(&actor, &id, &input).await?;
    Ok((StatusCode::CREATED, Json(cert)).into_response())
}

/// A certificate, checked against its code
///
/// Public (personal data masked). With `?code=` the code must be this certificate's valid
/// signed code, or the answer is 400 with the reason.
#[utoipa::path(
    get,
    path = "/api/v1/certificates/{number}",
    tag = "api",
    params(("number" = String, Path, description = "Certificate number"), CertificateQuery),
    responses(
        (status = 200, body = CertificateCheck),
        (status = 400, description = "The code is forged, of another certificate, or malformed", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn certificate(
    State(state): State<AppState>,
    number: Result<Path<String>, PathRejection>,
    query: Result<Query<CertificateQuery>, QueryRejection>,
) -> ApiResult<Json<CertificateCheck>> {
    let number = path(number)?;
    let Query(query) = query.map_err(query_rejection)?;
    let check = match query.code.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(code) => CertificateCheck {
            certificate: state.app.verify_certificate_code(&number, code).await?,
            code_verified: true,
        },
        None => CertificateCheck {
            certificate: state.app.certificate(&number).await?,
            code_verified: false,
        },
    };
    Ok(Json(check))
}

/// Create a volunteer team (staff)
#[utoipa::path(
    post,
    path = "/api/v1/volunteer-teams",
    tag = "api",
    request_body = TeamInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = TeamView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<TeamInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let team = state.app.create_team(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

/// Add a registered volunteer to a team (staff)
#[utoipa::path(
    post,
    path = "/api/v1/volunteer-teams/{id}/members",
    tag = "api",
    request_body = MemberInput,
    params(("id" = String, Path, description = "Team id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Added (or already a member)"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a registered volunteer", body = ErrorBody),
    )
)]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    input: Result<Json<MemberInput>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let id = path(id)?;
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    state
        .app
        .add_team_member(&actor, &id, &input.participant_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set the volunteer rules (administrators)
///
/// The daily maximum of credited minutes per volunteer per local day, and the star thresholds
/// in hours. Apply to verifications from now on.
#[utoipa::path(
    put,
    path = "/api/v1/volunteer-rules",
    tag = "api",
    request_body = VolunteerRulesInput,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = RulesView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn set_rules(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<VolunteerRulesInput>, JsonRejection>,
) -> ApiResult<Json<RulesView>> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let rules = state.app.set_volunteer_rules(&actor, &input).await?;
    Ok(Json(RulesView {
        daily_max_minutes: rules.daily_max_minutes,
        star_hours: rules.star_hours,
    }))
}
