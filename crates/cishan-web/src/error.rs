//! Errors at the HTTP edge. One mapping from [`ErrorKind`] to a status serves the JSON envelope
//! ([`ApiError`]) and the HTML error page ([`PageError`]); internal causes are logged here, once,
//! and never shown.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use cishan_app::{AppError, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The HTTP status for a kind of failure. The only place this mapping exists.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs what the operator needs: the code and, for internal errors, the cause. Never the
/// message's inputs or anything personal.
fn log(err: &AppError) {
    if err.kind == ErrorKind::Internal {
        match &err.cause {
            Some(cause) => {
                tracing::error!(error.code = %err.code, error.cause = %cause, "request failed")
            }
            None => tracing::error!(error.code = %err.code, "request failed"),
        }
    } else {
        tracing::debug!(error.code = %err.code, "request refused");
    }
}

/// The JSON error envelope: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// What went wrong, for a program (`code`) and for a person (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine code, e.g. `indicator.value_invalid`.
    #[schema(example = "indicator.value_invalid")]
    pub(crate) code: String,
    /// What was wrong and what to do, in Chinese.
    pub(crate) message: String,
    /// The input field at fault, if any.
    pub(crate) field: Option<String>,
}

/// An error answered as the JSON envelope. The status follows the kind, except for the few
/// transport-level refusals (413, 415, 405) that have no kind of their own.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) AppError, pub(crate) Option<StatusCode>);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError(e, None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError(err, status) = self;
        log(&err);
        let status = status.unwrap_or_else(|| status_of(err.kind));
        let body = ErrorBody {
            error: ErrorDetail {
                code: err.code,
                message: err.message,
                field: err.field,
            },
        };
        let mut res = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"cishan\""),
            );
        }
        res
    }
}

/// An invalid request that is not about one field's value.
pub(crate) fn bad_request(field: Option<&str>, code: &str, message: impl Into<String>) -> AppError {
    let mut e = AppError::invalid(field.unwrap_or(""), code, message);
    if field.is_none() {
        e.field = None;
    }
    e
}

/// A body larger than [`crate::MAX_BODY_BYTES`].
fn too_large() -> AppError {
    bad_request(
        None,
        "request.too_large",
        format!(
            "提交的内容太大（上限 {} KiB），请删减后重试。",
            crate::MAX_BODY_BYTES / 1024
        ),
    )
}

/// A body that is not JSON, or JSON with a field of the wrong type or name. axum reports the
/// field's path (`amount_fen: invalid type: floating point …`); the envelope names that field.
fn json_body_error(detail: &str) -> AppError {
    let detail = detail
        .split_once("target type: ")
        .map_or(detail, |(_, rest)| rest)
        .trim();
    // serde names a missing or unknown field in backquotes: "missing field `amount_fen` at …".
    let quoted = |prefix: &str| {
        detail
            .split_once(prefix)
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(name, _)| name.to_owned())
    };
    if let Some(field) = quoted("missing field `") {
        let message =
            format!("缺少必填字段 {field}，请补上后重试（字段见接口文档 /api/v1/openapi.json）。");
        return bad_request(Some(&field), "request.field_missing", message);
    }
    if let Some(field) = quoted("unknown field `") {
        let message = format!(
            "不认识的字段 {field}：可能拼写有误，请改正或删除（字段见接口文档 /api/v1/openapi.json）。"
        );
        return bad_request(Some(&field), "request.field_unknown", message);
    }
    // A value of the wrong type: "amount_fen: invalid type: string \"1,000\", expected i64 at …".
    let field = detail
        .split_once(": ")
        .map(|(path, _)| path)
        .filter(|path| !path.is_empty() && !path.contains(' '));
    let message = match field {
        Some(field) => format!(
            "字段 {field} 的值不对：{}。详情：{detail}",
            expected_zh(field, detail)
        ),
        None => format!(
            "请求体不是有效的 JSON，请对照接口文档 /api/v1/openapi.json 检查（引号、逗号、括号是否成对）。详情：{detail}"
        ),
    };
    bad_request(field, "request.json_invalid", message)
}

/// What a field needs, in words, from serde's "expected …" and the field's name.
fn expected_zh(field: &str, detail: &str) -> &'static str {
    let expected = detail.rsplit_once("expected ").map_or("", |(_, e)| e);
    if field.ends_with("_fen") {
        "金额以分为单位，填不带引号的整数，例如 100 元填 10000"
    } else if expected.starts_with("a boolean") {
        "应为 true 或 false（不加引号）"
    } else if ["i64", "u64", "i32", "u32", "u16", "u8", "an integer"]
        .iter()
        .any(|t| expected.starts_with(t))
    {
        "应为不带引号的整数"
    } else if expected.starts_with("a string") || expected.starts_with("a borrowed string") {
        "应为加引号的文字"
    } else if expected.starts_with("a sequence") {
        "应为列表，例如 [\"a\", \"b\"]"
    } else if expected.starts_with("variant") || expected.contains("one of") {
        "不是可选的值之一，可选值见接口文档"
    } else {
        "类型不对或无法识别，请对照接口文档"
    }
}

/// Turns a JSON body rejection into the envelope: 413 for an oversized body, 415 for a wrong
/// content type, 400 otherwise.
pub(crate) fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => bad_request(
            None,
            "request.content_type",
            "请求体必须是 JSON，请设置请求头 Content-Type: application/json。",
        ),
        _ => json_body_error(&rejection.body_text()),
    };
    let status = matches!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE
    )
    .then_some(status);
    ApiError(err, status)
}

/// A query string that cannot be read at all (fields are parsed one by one afterwards, so a bad
/// number names its field).
pub(crate) fn query_rejection(_: QueryRejection) -> ApiError {
    bad_request(
        None,
        "request.query_invalid",
        "查询参数格式不正确，请检查链接。",
    )
    .into()
}

pub(crate) fn path_rejection(_: PathRejection) -> ApiError {
    bad_request(
        None,
        "request.path_invalid",
        "链接中的编号格式不正确，请检查链接。",
    )
    .into()
}

pub(crate) fn form_rejection(rejection: FormRejection) -> PageError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        PageError::Status(StatusCode::PAYLOAD_TOO_LARGE, too_large())
    } else {
        PageError::App(bad_request(
            None,
            "request.form_invalid",
            "表单内容无法读取，请返回上一页重新填写后提交。",
        ))
    }
}

fn with_status(mut res: Response, status: StatusCode) -> Response {
    *res.status_mut() = status;
    res
}

/// Reads an optional integer query parameter, naming the field when it is not one.
pub(crate) fn parse_int_param(
    field: &str,
    text: Option<&str>,
    what: &str,
) -> Result<Option<i64>, AppError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<i64>().map(Some).map_err(|_| {
            AppError::invalid(
                field,
                "request.number_invalid",
                format!("参数 {field}（{what}）必须是整数，例如 1。"),
            )
        }),
    }
}

/// Reads a year, naming the field when it is not one.
pub(crate) fn parse_year(field: &str, text: &str) -> Result<i16, AppError> {
    text.trim().parse::<i16>().map_err(|_| {
        AppError::invalid(
            field,
            "request.year_invalid",
            format!("年份“{}”无效，请填写四位数字年份，例如 2023。", text.trim()),
        )
    })
}

/// An error answered as an HTML page (or a redirect to the login form).
#[derive(Debug)]
pub(crate) enum PageError {
    /// Rendered by [`crate::pages::render_error_pages`] as a Chinese page with the right status.
    App(AppError),
    /// The same, with a transport-level status that has no [`ErrorKind`] (413).
    Status(StatusCode, AppError),
    /// Not signed in: go to the login form, then come back.
    Login { next: String },
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        PageError::App(e)
    }
}

/// Attached to an error response so the page layer can render it with the site's chrome.
#[derive(Debug, Clone)]
pub(crate) struct ErrorPage {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login { next } => {
                Redirect::to(&format!("/login?next={}", encode_component(&next))).into_response()
            }
            PageError::App(err) => PageError::Status(status_of(err.kind), err).into_response(),
            PageError::Status(status, err) => {
                log(&err);
                let mut res = status.into_response();
                res.extensions_mut().insert(ErrorPage {
                    code: err.code,
                    message: err.message,
                });
                res
            }
        }
    }
}

/// Unknown routes: the JSON envelope under `/api/`, an HTML page elsewhere.
pub(crate) async fn not_found(uri: Uri) -> Response {
    let err = AppError::not_found("route");
    if is_api(&uri) {
        ApiError::from(err).into_response()
    } else {
        PageError::App(err).into_response()
    }
}

/// A known route called with a method it does not serve.
pub(crate) async fn method_not_allowed(uri: Uri) -> Response {
    let err = bad_request(
        None,
        "request.method_not_allowed",
        "此地址不支持该请求方法，请查阅接口文档 /api/v1/openapi.json。",
    );
    let res = if is_api(&uri) {
        ApiError::from(err).into_response()
    } else {
        PageError::App(err).into_response()
    };
    with_status(res, StatusCode::METHOD_NOT_ALLOWED)
}

fn is_api(uri: &Uri) -> bool {
    uri.path() == "/api" || uri.path().starts_with("/api/")
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass through).
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        let cases = [
            (ErrorKind::Invalid, 400),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::TooManyAttempts, 429),
            (ErrorKind::Internal, 500),
        ];
        for (kind, status) in cases {
            assert_eq!(status_of(kind).as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn encodes_query_components() {
        assert_eq!(
            encode_component("/admin/indicators?year=2023"),
            "%2Fadmin%2Findicators%3Fyear%3D2023"
        );
        assert_eq!(encode_component("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn json_errors_name_the_field_and_what_it_needs() {
        let missing = json_body_error(
            "Failed to deserialize the JSON body into the target type: missing field `amount_fen` at line 1 column 2",
        );
        assert_eq!(missing.code, "request.field_missing");
        assert_eq!(missing.field.as_deref(), Some("amount_fen"));
        assert!(
            missing.message.contains("缺少必填字段 amount_fen"),
            "{}",
            missing.message
        );

        let unknown = json_body_error(
            "Failed to deserialize the JSON body into the target type: unknown field `foo`, expected one of `amount_fen`, `channel` at line 1 column 6",
        );
        assert_eq!(unknown.code, "request.field_unknown");
        assert_eq!(unknown.field.as_deref(), Some("foo"));

        let flag = json_body_error(
            "Failed to deserialize the JSON body into the target type: anonymous: invalid type: string \"yes\", expected a boolean at line 1 column 18",
        );
        assert_eq!(flag.field.as_deref(), Some("anonymous"));
        assert!(flag.message.contains("true 或 false"), "{}", flag.message);
        assert!(!flag.message.contains("以分为单位"), "{}", flag.message);

        let money = json_body_error(
            "Failed to deserialize the JSON body into the target type: amount_fen: invalid type: string \"1,000\", expected i64 at line 1 column 20",
        );
        assert!(money.message.contains("以分为单位"), "{}", money.message);

        let count = json_body_error(
            "Failed to deserialize the JSON body into the target type: goods_quantity: invalid type: string \"3\", expected i64 at line 1 column 20",
        );
        assert!(
            count.message.contains("不带引号的整数"),
            "{}",
            count.message
        );
        assert!(!count.message.contains("以分为单位"), "{}", count.message);

        let broken = json_body_error(
            "Failed to parse the request body as JSON: EOF while parsing an object at line 1 column 9",
        );
        assert_eq!(broken.field, None);
        assert_eq!(broken.code, "request.json_invalid");
    }

    #[test]
    fn parses_numbers_naming_the_field() {
        assert_eq!(parse_int_param("page", None, "页码").unwrap(), None);
        assert_eq!(parse_int_param("page", Some("3"), "页码").unwrap(), Some(3));
        let err = parse_int_param("page", Some("x"), "页码").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("page"));
        assert_eq!(parse_year("year", " 2023 ").unwrap(), 2023);
        assert_eq!(
            parse_year("year", "20x3").unwrap_err().field.as_deref(),
            Some("year")
        );
    }
}
