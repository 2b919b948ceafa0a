//! Campaigns (一日捐), bank card point donations, public exports and donors' tax summaries over
//! JSON (and CSV for the exports). Handlers are thin: parse, call one `App` method, render.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::Json;
use cishan_app::campaigns::{
    CampaignInput, CampaignReport, CampaignUnitInput, CampaignUnitView, CampaignView,
};
use cishan_app::card_points::{CardPointsConverted, CardPointsInput};
use cishan_app::exports::{Export, ExportKind, ExportQuery, TaxSummary};
use cishan_app::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api_ledger::{app_error, body, idempotency_key, respond};
use crate::error::{
    parse_int_param, parse_year, path_rejection, query_rejection, ApiError, ErrorBody,
};
use crate::session::api_actor;
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of this module, for the router table in `lib.rs`.
pub(crate) fn routes() -> Vec<crate::Route> {
    use Method as M;
    vec![
        (M::POST, "/api/v1/campaigns", routing::post(create_campaign)),
        (
            M::POST,
            "/api/v1/campaigns/{id}/units",
            routing::post(add_units),
        ),
        (
            M::GET,
            "/api/v1/campaigns/{id}/report",
            routing::get(campaign_report),
        ),
        (
            M::POST,
            "/api/v1/card-point-conversions",
            routing::post(convert_card_points),
        ),
        (
            M::GET,
            "/api/v1/exports/organizations/{file}",
            routing::get(export_organization),
        ),
        (
            M::GET,
            "/api/v1/exports/funds/{file}",
            routing::get(export_fund),
        ),
        (
            M::GET,
            "/api/v1/exports/projects/{file}",
            routing::get(export_project),
        ),
        (
            M::GET,
            "/api/v1/donors/{participant_id}/tax-summary",
            routing::get(tax_summary),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Campaigns

/// Units to add to a campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnitsInput {
    units: Vec<CampaignUnitInput>,
}

/// The units just added.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UnitsAdded {
    units: Vec<CampaignUnitView>,
}

/// Create a campaign (一日捐)
///
/// Targets left out take the plan's defaults (government 100 %, institution 100 %,
/// enterprise 75 %) and are stored on the campaign.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns",
    tag = "api",
    request_body = CampaignInput,
    params(("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = CampaignView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<CampaignInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let input = body(input)?;
    let campaign = state.app.create_campaign(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(campaign)).into_response())
}

/// Add participating units to a campaign
///
/// All or nothing: a duplicate name (in the request or already in the campaign) is refused with
/// the row that carries it.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/{id}/units",
    tag = "api",
    request_body = UnitsInput,
    params(
        ("id" = String, Path, description = "Campaign id"),
        ("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = UnitsAdded),
        (status = 400, description = "Invalid row, or a name twice in the request", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A name already in the campaign", body = ErrorBody),
    )
)]
pub(crate) async fn add_units(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    input: Result<Json<UnitsInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let Path(id) = path.map_err(path_rejection)?;
    let input = body(input)?;
    let units = state
        .app
        .add_campaign_units(&actor, &id, &input.units)
        .await?;
    Ok((StatusCode::CREATED, Json(UnitsAdded { units })).into_response())
}

/// A campaign's participation report
///
/// Public. Per unit: donors (distinct registered donors plus one per walk-in donation), staff
/// participation and net amount; per unit type: participating units against the campaign's
/// target. Donations refunded in full do not count. Rates are exact fractions with a per-mille
/// rounded down.
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/report",
    tag = "api",
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = CampaignReport), (status = 404, body = ErrorBody))
)]
pub(crate) async fn campaign_report(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<CampaignReport>> {
    let Path(id) = path.map_err(path_rejection)?;
    Ok(Json(state.app.campaign_report(&id).await?))
}

// ---------------------------------------------------------------------------------------------
// Bank card points

/// Convert a bank's batch of card points into donations (银行卡积分捐赠)
///
/// Each item is worth `floor(points × 100 / points_per_yuan)` fen and becomes a donation with
/// channel `card_points` and the batch reference as payment reference. All or nothing; an item
/// worth less than one fen is refused naming its index. Retrying with the same
/// `Idempotency-Key` and body returns the first result (header `Idempotent-Replayed: true`).
#[utoipa::path(
    post,
    path = "/api/v1/card-point-conversions",
    tag = "api",
    request_body = CardPointsInput,
    params(
        ("Idempotency-Key" = String, Header, description = "1–200 visible ASCII characters, e.g. a UUID"),
        ("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = CardPointsConverted),
        (status = 400, description = "Invalid field or item, or missing key", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The bank's batch was already converted", body = ErrorBody),
        (status = 422, description = "Key reused with another body", body = ErrorBody),
    )
)]
pub(crate) async fn convert_card_points(
    State(state): State<AppState>,
    headers: HeaderMap,
    input: Result<Json<CardPointsInput>, JsonRejection>,
) -> ApiResult<Response> {
    let actor = api_actor(&state, &headers).await?;
    let key = idempotency_key(&headers, &actor)?;
    let input = body(input)?;
    let outcome = state
        .app
        .convert_card_points(&actor, &key, &input)
        .await
        .map_err(app_error)?;
    Ok(respond(StatusCode::CREATED, outcome))
}

// ---------------------------------------------------------------------------------------------
// Exports

/// Which rows of an export's lists to return; the totals always cover everything. Read as
/// text and parsed field by field, so an error names its field. (Documented inline in each
/// `#[utoipa::path]`: an `IntoParams` type declared in this module trips the
/// `unused_qualifications` lint through the macro's expansion.)
#[derive(Debug, Deserialize)]
pub(crate) struct ExportParams {
    page: Option<String>,
    per_page: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

/// Splits `ID.csv` / `ID.json` into the id and whether CSV was asked for.
fn export_file(file: &str) -> Result<(String, bool), AppError> {
    let bad = || {
        AppError::invalid(
            "file",
            "export.format_invalid",
            "导出链接应以 .csv 或 .json 结尾，例如 /api/v1/exports/projects/prj_0001.csv。",
        )
    };
    let (id, ext) = file.rsplit_once('.').ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    match ext {
        "csv" => Ok((id.to_owned(), true)),
        "json" => Ok((id.to_owned(), false)),
        _ => Err(bad()),
    }
}

async fn export(
    state: &AppState,
    kind: ExportKind,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Path(file) = path.map_err(path_rejection)?;
    let Query(params) = query.map_err(query_rejection)?;
    let (id, csv) = export_file(&file)?;
    let query = ExportQuery {
        page: parse_int_param("page", params.page.as_deref(), "页码")?,
        per_page: parse_int_param("per_page", params.per_page.as_deref(), "每页条数")?,
        from: params.from,
        until: params.until,
    };
    let export = state.app.export(kind, &id, &query).await?;
    if !csv {
        return Ok(Json(export).into_response());
    }
    let bytes = export.to_csv()?;
    // The file name is built from the id's safe characters only, so it needs no quoting rules.
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let disposition = format!("attachment; filename=\"cishan-{safe}.csv\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Export an organization: totals, masked donors, allocations and disbursements
///
/// Public. `{file}` is the organization id followed by `.csv` (UTF-8 with BOM, CRLF, amounts in
/// yuan, formula-like cells prefixed with `'`: opens correctly in Chinese Excel) or `.json`
/// (amounts in fen, text as stored). Anonymous donors appear as `匿名`, persons masked.
#[utoipa::path(
    get,
    path = "/api/v1/exports/organizations/{file}",
    tag = "api",
    params(
        ("file" = String, Path, description = "`ID.csv` or `ID.json`"),
        ("page" = Option<i64>, Query, description = "Page of the lists, from 1"),
        ("per_page" = Option<i64>, Query, description = "Rows per list, 1 to 5000 (default 5000)"),
        ("from" = Option<String>, Query, description = "First local date of the lists, `YYYY-MM-DD`"),
        ("until" = Option<String>, Query, description = "Last local date of the lists (inclusive), `YYYY-MM-DD`"),
    ),
    responses(
        (status = 200, description = "The export", content(
            (Export = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn export_organization(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    export(&state, ExportKind::Organization, path, query).await
}

/// Export a fund: money donated to it, where it went, and what remains
///
/// Public. Same formats as the organization export.
#[utoipa::path(
    get,
    path = "/api/v1/exports/funds/{file}",
    tag = "api",
    params(
        ("file" = String, Path, description = "`ID.csv` or `ID.json`"),
        ("page" = Option<i64>, Query, description = "Page of the lists, from 1"),
        ("per_page" = Option<i64>, Query, description = "Rows per list, 1 to 5000 (default 5000)"),
        ("from" = Option<String>, Query, description = "First local date of the lists, `YYYY-MM-DD`"),
        ("until" = Option<String>, Query, description = "Last local date of the lists (inclusive), `YYYY-MM-DD`"),
    ),
    responses(
        (status = 200, description = "The export", content(
            (Export = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn export_fund(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    export(&state, ExportKind::Fund, path, query).await
}

/// Export a project: its donations and allocations, disbursements and what it holds
///
/// Public. Same formats as the organization export.
#[utoipa::path(
    get,
    path = "/api/v1/exports/projects/{file}",
    tag = "api",
    params(
        ("file" = String, Path, description = "`ID.csv` or `ID.json`"),
        ("page" = Option<i64>, Query, description = "Page of the lists, from 1"),
        ("per_page" = Option<i64>, Query, description = "Rows per list, 1 to 5000 (default 5000)"),
        ("from" = Option<String>, Query, description = "First local date of the lists, `YYYY-MM-DD`"),
        ("until" = Option<String>, Query, description = "Last local date of the lists (inclusive), `YYYY-MM-DD`"),
    ),
    responses(
        (status = 200, description = "The export", content(
            (Export = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn export_project(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    export(&state, ExportKind::Project, path, query).await
}

// ---------------------------------------------------------------------------------------------
// Tax summaries

/// The year of a tax summary, read as text so a bad value names its field.
#[derive(Debug, Deserialize)]
pub(crate) struct TaxYearParams {
    year: Option<String>,
}

/// A donor's receipts in force issued in one year, with the total (for tax deduction)
///
/// Staff and administrators: it names the donor. Voided receipts are left out; a receipt
/// reissued after a partial refund counts in the year it was reissued.
#[utoipa::path(
    get,
    path = "/api/v1/donors/{participant_id}/tax-summary",
    tag = "api",
    params(
        ("participant_id" = String, Path, description = "The donor (`ptc_…`)"),
        ("year" = i16, Query, description = "Calendar year in the region's time zone (Asia/Shanghai for Lucheng)"),
        ("x-csrf-token" = Option<String>, Header, description = "Required with cookie authentication"),
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = TaxSummary),
        (status = 400, description = "Missing or invalid year", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn tax_summary(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<TaxYearParams>, QueryRejection>,
) -> ApiResult<Json<TaxSummary>> {
    let actor = api_actor(&state, &headers).await?;
    let Path(participant_id) = path.map_err(path_rejection)?;
    let Query(params) = query.map_err(query_rejection)?;
    let year = match params.year.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(AppError::invalid(
                "year",
                "request.field_missing",
                "请用参数 year 指定年份，例如 ?year=2026。",
            )
            .into())
        }
        Some(text) => parse_year("year", text)?,
    };
    Ok(Json(
        state
            .app
            .donor_tax_summary(&actor, &participant_id, year)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_files_name_id_and_format() {
        assert_eq!(
            export_file("prj_1.csv").unwrap(),
            ("prj_1".to_owned(), true)
        );
        assert_eq!(export_file("a.b.json").unwrap(), ("a.b".to_owned(), false));
        assert!(export_file("prj_1").is_err());
        assert!(export_file(".csv").is_err());
        assert!(export_file("prj_1.xlsx").is_err());
    }
}
