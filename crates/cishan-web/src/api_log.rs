//! The transparency log over JSON (docs/ledger.md, "Transparency log"): the signed tree head,
//! the public key that verifies it, inclusion proofs and consistency proofs. Everything here is
//! public and read-only; answers can be checked offline with `cishan verify` or any RFC 6962
//! verifier.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::routing::{self, MethodRouter};
use axum::Json;
use cishan_app::translog::{ConsistencyProof, InclusionProof, LogPublicKey, SignedTreeHead};
use cishan_app::AppError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{path_rejection, query_rejection, ApiError, ErrorBody};
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The log's routes, for the router's table in `lib.rs`.
pub(crate) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/log/head", routing::get(head)),
        (Method::GET, "/api/v1/log/key", routing::get(key)),
        (Method::GET, "/api/v1/log/proof/{leaf}", routing::get(proof)),
        (
            Method::GET,
            "/api/v1/log/consistency",
            routing::get(consistency),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Response types.

/// A tree head signed by the platform. The Ed25519 signature covers the UTF-8 bytes of
/// `cishan-tree-head-v1\n{tree_size}\n{root_hash}\n{timestamp}` (no trailing newline).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TreeHeadDto {
    /// How many leaves the tree has.
    #[schema(example = 57)]
    tree_size: u64,
    /// The RFC 6962 root of the first `tree_size` leaves, lowercase hex.
    #[schema(example = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
    root_hash: String,
    /// When the head was signed, RFC 3339 UTC with microseconds.
    #[schema(example = "2026-12-03T13:41:02.123456Z")]
    timestamp: String,
    /// Ed25519 signature, standard base64.
    signature: String,
}

impl From<SignedTreeHead> for TreeHeadDto {
    fn from(h: SignedTreeHead) -> TreeHeadDto {
        TreeHeadDto {
            tree_size: h.tree_size,
            root_hash: h.root_hash,
            timestamp: h.timestamp,
            signature: h.signature,
        }
    }
}

/// The public key that verifies tree heads.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogKeyDto {
    #[schema(example = "ed25519")]
    algorithm: String,
    /// The 32-byte Ed25519 public key, standard base64.
    public_key: String,
    /// Hex of the first 8 bytes of SHA-256 of the public key.
    #[schema(example = "3f1c0a9be2d47781")]
    key_id: String,
}

impl From<LogPublicKey> for LogKeyDto {
    fn from(k: LogPublicKey) -> LogKeyDto {
        LogKeyDto {
            algorithm: k.algorithm.to_owned(),
            public_key: k.public_key,
            key_id: k.key_id,
        }
    }
}

/// A leaf of the log and the proof that it is in a tree (RFC 9162 §2.1.3).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InclusionProofDto {
    /// The leaf's position, from 0.
    leaf_index: u64,
    /// The exact leaf text: canonical JSON of the public fact (keys sorted, no spaces).
    leaf: String,
    /// SHA-256(0x00 ‖ leaf), lowercase hex.
    leaf_hash: String,
    tree_size: u64,
    /// The root of the first `tree_size` leaves, lowercase hex.
    root_hash: String,
    /// The audit path, lowercase hex, deepest first.
    proof: Vec<String>,
    /// The signed head of that tree; `null` when `tree_size` names a size the platform never
    /// signed (check the proof against `root_hash` and a head you hold).
    tree_head: Option<TreeHeadDto>,
}

impl From<InclusionProof> for InclusionProofDto {
    fn from(p: InclusionProof) -> InclusionProofDto {
        InclusionProofDto {
            leaf_index: p.leaf_index,
            leaf: p.leaf,
            leaf_hash: p.leaf_hash,
            tree_size: p.tree_size,
            root_hash: p.root_hash,
            proof: p.proof,
            tree_head: p.tree_head.map(Into::into),
        }
    }
}

/// The proof that the tree of `first` leaves is a prefix of the tree of `second` leaves
/// (RFC 9162 §2.1.4): nothing logged was changed or removed in between.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsistencyProofDto {
    first: u64,
    second: u64,
    /// Root of the first `first` leaves, lowercase hex.
    first_root: String,
    /// Root of the first `second` leaves, lowercase hex.
    second_root: String,
    /// Lowercase hex hashes; empty when `first` is 0 or equals `second`.
    proof: Vec<String>,
}

impl From<ConsistencyProof> for ConsistencyProofDto {
    fn from(p: ConsistencyProof) -> ConsistencyProofDto {
        ConsistencyProofDto {
            first: p.first,
            second: p.second,
            first_root: p.first_root,
            second_root: p.second_root,
            proof: p.proof,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters. Read as text and parsed one by one, so an error names its field.

pub(crate) use query::{ConsistencyParams, ProofParams};

/// The query strings, in a module of their own: utoipa's `params(...)` names them by path, which
/// the `unused_qualifications` lint flags when they are defined in the handlers' module.
mod query {
    use serde::Deserialize;
    use utoipa::IntoParams;

    #[derive(Debug, Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct ProofParams {
        /// The tree to prove inclusion in (default: the latest signed head).
        #[param(value_type = Option<u64>, minimum = 1)]
        pub(crate) tree_size: Option<String>,
    }

    #[derive(Debug, Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct ConsistencyParams {
        /// The earlier tree size.
        #[param(value_type = u64, minimum = 0)]
        pub(crate) first: Option<String>,
        /// The later tree size, not larger than the log.
        #[param(value_type = u64, minimum = 0)]
        pub(crate) second: Option<String>,
    }
}

/// Reads a count or position: a non-negative integer, with a message naming `field`.
fn parse_count(field: &str, text: &str, what: &str) -> Result<u64, AppError> {
    text.trim().parse::<u64>().map_err(|_| {
        AppError::invalid(
            field,
            "request.number_invalid",
            format!("参数 {field}（{what}）必须是不小于 0 的整数，例如 {field}=8。"),
        )
    })
}

fn required(field: &str, text: Option<&str>, what: &str) -> Result<u64, AppError> {
    match text.map(str::trim) {
        None | Some("") => Err(AppError::invalid(
            field,
            "request.field_missing",
            format!("缺少参数 {field}（{what}），例如 ?first=4&second=8。"),
        )),
        Some(t) => parse_count(field, t, what),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// The latest signed tree head
///
/// Signs the current tree first when new facts were logged since the last head.
#[utoipa::path(
    get,
    path = "/api/v1/log/head",
    tag = "api",
    responses((status = 200, body = TreeHeadDto))
)]
pub(crate) async fn head(State(state): State<AppState>) -> ApiResult<Json<TreeHeadDto>> {
    Ok(Json(state.app.signed_head().await?.into()))
}

/// The public key that verifies tree heads
#[utoipa::path(
    get,
    path = "/api/v1/log/key",
    tag = "api",
    responses((status = 200, body = LogKeyDto))
)]
pub(crate) async fn key(State(state): State<AppState>) -> Json<LogKeyDto> {
    Json(state.app.log_public_key().into())
}

/// A leaf with its inclusion proof
#[utoipa::path(
    get,
    path = "/api/v1/log/proof/{leaf}",
    tag = "api",
    params(
        ("leaf" = u64, Path, description = "Leaf index, from 0"),
        ProofParams,
    ),
    responses(
        (status = 200, body = InclusionProofDto),
        (status = 400, description = "Invalid leaf or tree size, or a leaf outside that tree", body = ErrorBody),
        (status = 404, description = "No such leaf", body = ErrorBody),
    )
)]
pub(crate) async fn proof(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ProofParams>, QueryRejection>,
) -> ApiResult<Json<InclusionProofDto>> {
    let Path(leaf) = path.map_err(path_rejection)?;
    let Query(params) = query.map_err(query_rejection)?;
    let leaf = parse_count("leaf", &leaf, "日志记录序号")?;
    let tree_size = match params.tree_size.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(parse_count("tree_size", t, "日志树大小")?),
    };
    Ok(Json(
        state.app.inclusion_proof(leaf, tree_size).await?.into(),
    ))
}

/// A consistency proof between two tree sizes
#[utoipa::path(
    get,
    path = "/api/v1/log/consistency",
    tag = "api",
    params(ConsistencyParams),
    responses(
        (status = 200, body = ConsistencyProofDto),
        (status = 400, description = "Missing or invalid sizes, first > second, or second larger than the log", body = ErrorBody),
    )
)]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    query: Result<Query<ConsistencyParams>, QueryRejection>,
) -> ApiResult<Json<ConsistencyProofDto>> {
    let Query(params) = query.map_err(query_rejection)?;
    let first = required("first", params.first.as_deref(), "较早的日志树大小")?;
    let second = required("second", params.second.as_deref(), "较晚的日志树大小")?;
    Ok(Json(
        state.app.consistency_proof(first, second).await?.into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_parsed_naming_the_field() {
        assert_eq!(parse_count("leaf", " 41 ", "序号").unwrap(), 41);
        for bad in ["-1", "x", "1.5", ""] {
            let err = parse_count("leaf", bad, "序号").unwrap_err();
            assert_eq!(err.field.as_deref(), Some("leaf"), "{bad}");
        }
        let err = required("first", None, "大小").unwrap_err();
        assert_eq!(err.code, "request.field_missing");
        assert_eq!(required("second", Some("8"), "大小").unwrap(), 8);
    }

    #[test]
    fn every_route_is_a_get_under_the_log() {
        for (method, path, _) in routes() {
            assert_eq!(method, Method::GET);
            assert!(path.starts_with("/api/v1/log/"), "{path}");
        }
    }
}
