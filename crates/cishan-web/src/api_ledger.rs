//! The donation ledger over JSON (一扫清): record donations, refunds, allocations,
//! disbursements and reversals (each with an `Idempotency-Key`), trace a donation, fetch a
//! receipt document with its proof, and create matching pools.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cishan_app::donations::{
    AllocationInput, AllocationRecorded, DisbursementInput, DisbursementRecorded, DonationInput,
    DonationRecorded, IdempotencyKey, Outcome, RefundInput, RefundRecorded, Trace,
};
use cishan_app::matching::MatchPoolInput;
use cishan_app::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{json_rejection, ApiError, ErrorBody};
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The header that makes a money-moving request safe to retry.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set to `true` on a response replayed from an earlier request with the same key.
pub(crate) const REPLAYED: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, scoped to the signed-in account
/// ([`IdempotencyKey::for_account`]).
pub(crate) fn idempotency_key(
    headers: &HeaderMap,
    actor: &cishan_app::Actor,
) -> Result<IdempotencyKey, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "idempotency.key_missing",
            "涉及资金的请求必须带请求头 Idempotency-Key（例如一个 UUID）；网络中断后用同一个值重试，不会重复记账。",
        )
        .into());
    };
    if headers.get_all(IDEMPOTENCY_KEY).iter().count() > 1 {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "idempotency.key_repeated",
            "请求头 Idempotency-Key 只能有一个。",
        )
        .into());
    }
    let text = value.to_str().unwrap_or("\u{0}");
    Ok(IdempotencyKey::for_account(&actor.user_id, text)?)
}

/// A key reused with a different body is unprocessable (422), not merely invalid.
pub(crate) fn app_error(e: AppError) -> ApiError {
    if e.code == "idempotency.key_reused" {
        ApiError(e, Some(StatusCode::UNPROCESSABLE_ENTITY))
    } else {
        ApiError(e, None)
    }
}

pub(crate) fn respond<T: Serialize>(status: StatusCode, outcome: Outcome<T>) -> Response {
    let mut res = (status, Json(outcome.value)).into_response();
    if outcome.replayed {
        res.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    res
}

pub(crate) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    let Json(value) = body.map_err(json_rejection)?;
    Ok(value)
}

/// Record a donation (money or goods)
///
/// Issues the receipt and applies any matching pool in the same transaction. Retrying with the
/// same `Idempotency-Key` and body returns the first result (header `Idempotent-Replayed: true`)
/// and records nothing; the same key with a different body is refused with 422.
#[utoipa::path(
    post,
    path = "/api/v1/donations",
    tag = "api",
    request_body = DonationInput,
    params(("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters, e.g. a UUID")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = DonationRecorded),
        (status = 400, description = "Invalid field or missing key", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "Project closed", body = ErrorBody),
        (status = 422, description = "Key reused with another body", body = ErrorBody),
    )
)]
pub(crate) async fn record_donation(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<DonationInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .record_donation(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Refund part or all of a donation
///
/// Only money not yet paid out can be refunded. The receipt is voided and, when money remains,
/// reissued for the remainder under a new number; the match (配捐) is returned to its pool.
#[utoipa::path(
    post,
    path = "/api/v1/donations/{id}/refunds",
    tag = "api",
    request_body = RefundInput,
    params(
        ("id" = String, Path, description = "Donation id"),
        ("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, body = RefundRecorded),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "More than the refundable remainder, or already spent", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub(crate) async fn refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    input: Result<Json<RefundInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .refund_donation(&actor, &key, &id, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Where every fen of a donation went (一扫清)
///
/// Public. The donor is masked (`王*测`) or `匿名`; recipients are described without personal data.
#[utoipa::path(
    get,
    path = "/api/v1/donations/{id}/trace",
    tag = "api",
    params(("id" = String, Path, description = "Donation id")),
    responses((status = 200, body = Trace), (status = 404, body = ErrorBody))
)]
pub(crate) async fn trace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Trace>> {
    Ok(Json(state.app.trace(&id).await?))
}

/// Move money from a fund to projects, split by weights
#[utoipa::path(
    post,
    path = "/api/v1/allocations",
    tag = "api",
    request_body = AllocationInput,
    params(("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = AllocationRecorded),
        (status = 400, body = ErrorBody),
        (status = 409, description = "Not enough money in the fund", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub(crate) async fn allocate(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<AllocationInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .allocate(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Pay from a project to a household, a person or a supplier
///
/// Consumes the project's oldest money first. Evidence files travel base64-encoded and are
/// stored by their SHA-256.
#[utoipa::path(
    post,
    path = "/api/v1/disbursements",
    tag = "api",
    request_body = DisbursementInput,
    params(("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = DisbursementRecorded),
        (status = 400, body = ErrorBody),
        (status = 409, description = "Not enough money in the project", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub(crate) async fn disburse(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<DisbursementInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .disburse(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

/// Why a disbursement is reversed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReversalInput {
    reason: String,
}

/// Reverse a paid disbursement: every fen returns to the lot it came from
#[utoipa::path(
    post,
    path = "/api/v1/disbursements/{id}/reversal",
    tag = "api",
    request_body = ReversalInput,
    params(
        ("id" = String, Path, description = "Disbursement id"),
        ("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DisbursementRecorded),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already reversed", body = ErrorBody),
    )
)]
pub(crate) async fn reverse(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    input: Result<Json<ReversalInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .reverse_disbursement(&actor, &key, &id, &input.reason)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::OK, outcome))
}

/// Create a matching pool (配捐)
#[utoipa::path(
    post,
    path = "/api/v1/match-pools",
    tag = "api",
    request_body = MatchPoolInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The pool", body = Object),
        (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_pool(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<MatchPoolInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let pool = state.app.create_match_pool(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(pool)).into_response())
}

/// A receipt with its transparency-log proof
///
/// The document `cishan verify --receipt FILE --key FILE` checks offline: the receipt's public
/// fields, the exact log leaf, a signed tree head and the inclusion proof; and `code`, the
/// receipt's long-lived signed code (`CS1.…`, kind receipt, subject the number), which
/// `POST /api/v1/scan` or the code key (`GET /api/v1/codes/key`) verifies.
#[utoipa::path(
    get,
    path = "/api/v1/receipts/{number}",
    tag = "api",
    params(("number" = String, Path, description = "Receipt number")),
    responses((status = 200, description = "Receipt document", body = Object), (status = 404, body = ErrorBody))
)]
pub(crate) async fn receipt(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut document = state.app.receipt_document(&number).await?;
    document["code"] = state.app.receipt_code(&number).await?.into();
    Ok(Json(document))
}
