//! Codes (一码通) over JSON: the public key that verifies every code offline, a participant's
//! current code, and scanning a code given as text or as a photo decoded on the server.

use axum::extract::multipart::MultipartError;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use cishan_app::codes::{
    decode_qr_image, CodePublicKey, ParticipantCode, ScanResult, MAX_SCAN_IMAGE_BYTES,
};
use cishan_app::AppError;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{json_rejection, path_rejection, ApiError, ErrorBody};
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The body limit of `POST /api/v1/scan`: one photo plus the form's framing.
pub(crate) const SCAN_BODY_BYTES: usize = MAX_SCAN_IMAGE_BYTES + 64 * 1024;

/// The routes of this module, for the router table in `lib.rs`.
pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (M::GET, "/api/v1/codes/key", routing::get(code_key)),
        (
            M::GET,
            "/api/v1/participants/{id}/code",
            routing::get(participant_code),
        ),
        (
            M::POST,
            "/api/v1/scan",
            routing::post(scan).layer(DefaultBodyLimit::max(SCAN_BODY_BYTES)),
        ),
    ]
}

/// A scanned code as text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanInput {
    /// The text the scanner read (`CS1.…`), or a link that carries it.
    payload: String,
}

/// A photo of a code (multipart/form-data), decoded on the server.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the multipart form for the OpenAPI document only"
)]
pub(crate) struct ScanUpload {
    /// A PNG or JPEG photo of the QR code (at most 8 MB).
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// The public key that verifies codes
///
/// Codes are `CS1.` + base64url(body ‖ Ed25519 signature); the signature covers
/// `cishan-code-v1\n` ‖ body. A scanner that keeps this key checks any code offline
/// (docs/codes-and-volunteering.md describes the body).
#[utoipa::path(
    get,
    path = "/api/v1/codes/key",
    tag = "api",
    responses((status = 200, body = CodePublicKey))
)]
pub(crate) async fn code_key(State(state): State<AppState>) -> Response {
    let mut res = Json(state.app.code_public_key()).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

/// A participant's current code (一码通)
///
/// A fresh signed payload valid for 90 seconds and its QR code as SVG. Only the participant
/// themself (a member account) or staff.
#[utoipa::path(
    get,
    path = "/api/v1/participants/{id}/code",
    tag = "api",
    params(("id" = String, Path, description = "Participant id (ptc_…)")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ParticipantCode),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn participant_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let Path(id) = id.map_err(path_rejection)?;
    let actor = api_session_actor(&state, &headers).await?;
    let code = state.app.participant_code(&actor, &id).await?;
    let mut res = Json(code).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Reading a code needs no CSRF token with a bearer token; with the session cookie a GET is
/// safe too (it changes nothing), so the cookie alone is enough here.
async fn api_session_actor(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<cishan_app::Actor, AppError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return api_actor(state, headers).await;
    }
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    Ok(crate::session::from_cookie(state, &jar)
        .await?
        .ok_or_else(AppError::unauthenticated)?
        .info
        .actor)
}

fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    let err = AppError::invalid(
        "image",
        "scan.upload_invalid",
        format!(
            "上传的照片无法读取（超过 {} MB 或表单不完整）。请重新拍照上传，或直接输入码的文字。",
            MAX_SCAN_IMAGE_BYTES / 1024 / 1024
        ),
    );
    ApiError(err, Some(status))
}

/// Scan a code
///
/// Send the text the scanner read as JSON `{"payload": "CS1.…"}`, or a photo as
/// multipart/form-data (field `image`, PNG or JPEG) to be decoded on the server. Any signed-in
/// account may scan. A participant code shows the masked name and tier (and the roles to
/// staff); activity, certificate and receipt codes show what they stand for. Scanning only
/// looks: nothing is used up. Forged, expired and malformed codes are refused (400) with the
/// reason.
#[utoipa::path(
    post,
    path = "/api/v1/scan",
    tag = "api",
    request_body(content(
        (ScanInput = "application/json"),
        (ScanUpload = "multipart/form-data"),
    )),
    params(("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ScanResult),
        (status = 400, description = "Malformed, forged, expired or unreadable code", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub(crate) async fn scan(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let headers = req.headers().clone();
    // Who is asking is known before any of a possibly large photo is read.
    let actor = api_actor(&state, &headers).await?;
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let payload = if is_multipart {
        let mut multipart = Multipart::from_request(req, &state)
            .await
            .map_err(|r| ApiError(upload_refused(), Some(r.status())))?;
        let mut payload = None;
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            match field.name().unwrap_or_default() {
                "image" => {
                    let bytes = field.bytes().await.map_err(multipart_error)?;
                    payload = Some(decode_qr_image(&bytes)?);
                }
                "payload" => {
                    let text = field.text().await.map_err(multipart_error)?;
                    if !text.trim().is_empty() {
                        payload = Some(text);
                    }
                }
                _ => {}
            }
        }
        payload.ok_or_else(|| {
            AppError::invalid(
                "image",
                "scan.image_missing",
                "请上传二维码的照片（字段 image），或填写码的文字（字段 payload）。",
            )
        })?
    } else {
        let Json(input) = Json::<ScanInput>::from_request(req, &state)
            .await
            .map_err(json_rejection)?;
        input.payload
    };
    let result = state.app.scan(&actor, &payload).await?;
    Ok((StatusCode::OK, Json(result)).into_response())
}

fn upload_refused() -> AppError {
    AppError::invalid(
        "image",
        "scan.upload_invalid",
        "上传的内容不是有效的表单（multipart/form-data）。",
    )
}
