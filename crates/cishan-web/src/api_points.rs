//! Charity points over JSON (一键算, 转化—回馈): a participant's balance and breakdown, the
//! published rules, partner offers, redemptions (with `Idempotency-Key`) and their cancellation,
//! assessed skill donations, and recompute under a new rule version (dry run or apply).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{routing, Json};
use cishan_app::points::{PointsStatement, RecomputeReport, SkillActInput, SkillActRecorded};
use cishan_app::rewards::{CancelInput, OfferInput, RedeemInput, RedemptionView};
use cishan_store::points::{PointsOfferRow, PointsRuleSetRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api_ledger::{app_error, body, idempotency_key, respond};
use crate::error::{ApiError, ErrorBody};
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (
            M::GET,
            "/api/v1/participants/{id}/points",
            routing::get(points),
        ),
        (M::GET, "/api/v1/points/rules", routing::get(rules)),
        (
            M::POST,
            "/api/v1/points/recompute",
            routing::post(recompute),
        ),
        (M::GET, "/api/v1/points/offers", routing::get(offers)),
        (
            M::POST,
            "/api/v1/points/offers",
            routing::post(create_offer),
        ),
        (
            M::POST,
            "/api/v1/points/skill-acts",
            routing::post(record_skill),
        ),
        (M::POST, "/api/v1/redemptions", routing::post(redeem)),
        (
            M::POST,
            "/api/v1/redemptions/{id}/cancel",
            routing::post(cancel),
        ),
    ]
}

/// A participant's points: balance, tier and the breakdown (一键算)
///
/// Honour points (lifetime, set the tier), spendable points usable now (negative while a
/// reversal is unpaid), the tier and the next one, and every act with the rule version applied
/// and how its points came about. The participant themself or staff only.
#[utoipa::path(
    get,
    path = "/api/v1/participants/{id}/points",
    tag = "api",
    params(("id" = String, Path, description = "Participant id (ptc_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PointsStatement),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn points(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<PointsStatement>> {
    let actor = api_actor(&state, &headers).await?;
    Ok(Json(state.app.points_statement(&actor, &id).await?))
}

/// A published rule set.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuleSetView {
    version: String,
    name: String,
    /// First local (Asia/Shanghai) date the set governs.
    effective_from: String,
    /// The rule text (TOML) as published.
    body: String,
    body_sha256: String,
    published_at: String,
}

impl From<PointsRuleSetRow> for RuleSetView {
    fn from(r: PointsRuleSetRow) -> RuleSetView {
        RuleSetView {
            version: r.version,
            name: r.name,
            effective_from: r.effective_from,
            body: r.body,
            body_sha256: r.body_sha256,
            published_at: r.published_at,
        }
    }
}

/// The published points rules (public)
#[utoipa::path(
    get,
    path = "/api/v1/points/rules",
    tag = "api",
    responses((status = 200, body = [RuleSetView]))
)]
pub(crate) async fn rules(State(state): State<AppState>) -> ApiResult<Json<Vec<RuleSetView>>> {
    let rows = state.app.published_rules().await?;
    Ok(Json(rows.into_iter().map(RuleSetView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecomputeInput {
    /// The rule set as TOML (see rules/points-lucheng-v1.toml).
    rules: String,
    /// Only report what would change (default true).
    #[serde(default = "yes")]
    dry_run: bool,
}

fn yes() -> bool {
    true
}

/// Publish a rule version and recompute (administrators)
///
/// With `dry_run` (the default) nothing is written: the report lists who would change and by how
/// much. Without it the version is published and every difference becomes an adjustment entry;
/// history is never rewritten, and applying the same version again writes nothing.
#[utoipa::path(
    post,
    path = "/api/v1/points/recompute",
    tag = "api",
    request_body = RecomputeInput,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RecomputeReport),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn recompute(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<RecomputeInput>, JsonRejection>,
) -> ApiResult<Json<RecomputeReport>> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    Ok(Json(
        state
            .app
            .recompute_points(&actor, &input.rules, input.dry_run)
            .await?,
    ))
}

/// Offers that can be redeemed today (public)
#[utoipa::path(
    get,
    path = "/api/v1/points/offers",
    tag = "api",
    responses((status = 200, body = [Object]))
)]
pub(crate) async fn offers(State(state): State<AppState>) -> ApiResult<Json<Vec<PointsOfferRow>>> {
    Ok(Json(state.app.current_offers().await?))
}

/// Publish an offer (staff, or a partner of the organization)
#[utoipa::path(
    post,
    path = "/api/v1/points/offers",
    tag = "api",
    request_body = OfferInput,
    params(("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = Object),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_offer(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<OfferInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .create_offer(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Record an assessed knowledge or skill donation (staff)
#[utoipa::path(
    post,
    path = "/api/v1/points/skill-acts",
    tag = "api",
    request_body = SkillActInput,
    params(("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = SkillActRecorded),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn record_skill(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<SkillActInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .record_skill_act(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Redeem an offer for a participant (partners scan the participant's code)
///
/// Atomic: the points come from unexpired lots, first-expiring-first; the stock never goes
/// below zero; a negative balance or a tier below the offer's minimum is refused (409). Retrying
/// with the same `Idempotency-Key` returns the first result and spends nothing.
#[utoipa::path(
    post,
    path = "/api/v1/redemptions",
    tag = "api",
    request_body = RedeemInput,
    params(("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = RedemptionView),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Not enough points, out of stock, tier too low, negative balance", body = ErrorBody),
        (status = 422, description = "Key reused with another body", body = ErrorBody),
    )
)]
pub(crate) async fn redeem(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<RedeemInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .redeem(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Cancel a redemption: the points and the item go back, once
#[utoipa::path(
    post,
    path = "/api/v1/redemptions/{id}/cancel",
    tag = "api",
    request_body = CancelInput,
    params(
        ("id" = String, Path, description = "Redemption id (rdm_…)"),
        ("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, body = RedemptionView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already cancelled", body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    input: Result<Json<CancelInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .cancel_redemption(&actor, &key, &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome).into_response())
}
