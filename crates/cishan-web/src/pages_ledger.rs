//! Pages of the donation ledger (一扫清): the public trace of one donation, printable receipts
//! and their lookup, and the staff forms that record donations, refunds, allocations,
//! disbursements (with evidence uploads), reversals and matching pools.
//!
//! Same rules as [`crate::pages`]: Chinese, phone first, no JavaScript; every form that changes
//! state echoes the session's CSRF token; a refused value is shown next to its field, in Chinese,
//! with what was typed kept. Every money-moving form carries a hidden idempotency key made when
//! the form is rendered, so a double submit (or a refresh of the result) records once.
//!
//! Amounts are typed in yuan and parsed here with [`parse_yuan`] into fen; nothing else about
//! money is decided in this module.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use cishan_app::auth::random_token;
use cishan_app::donations::{
    AllocationInput, AllocationPart, DisbursementInput, DonationInput, EvidenceFile,
    IdempotencyKey, RefundInput, Trace, CHANNELS, MAX_AMOUNT_FEN, MAX_EVIDENCE_BYTES,
};
use cishan_app::matching::MatchPoolInput;
use cishan_app::{AppError, ErrorKind, MAX_PAGE_SIZE};
use cishan_core::parse_yuan;
use serde::Deserialize;

use crate::error::{bad_request, encode_component, form_rejection, status_of, PageError};
use crate::pages::Chrome;
use crate::session::{csrf_refused, from_cookie, same_secret, Session};
use crate::view::money;
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// Evidence files one disbursement form may carry.
const MAX_EVIDENCE_FILES: usize = 5;
/// The request body limit of the disbursement form alone (every other route keeps
/// [`crate::MAX_BODY_BYTES`]): room for three files of the largest accepted size, or more
/// smaller ones, plus the text fields.
pub(crate) const DISBURSEMENT_BODY_BYTES: usize = 3 * MAX_EVIDENCE_BYTES + crate::MAX_BODY_BYTES;
/// Project rows on the allocation form (rows left empty are ignored).
const ALLOCATION_ROWS: usize = 5;
/// Organizations whose funds and projects the forms offer, in the order the disclosure lists
/// them (one page of the largest size).
const MAX_CHOICE_ORGS: i64 = MAX_PAGE_SIZE;
/// Matching pools listed under the pool form, newest first.
const LISTED_POOLS: usize = 20;
/// Longest receipt number or check code the lookup form reads.
const MAX_LOOKUP_CHARS: usize = 64;

/// The routes of this module. `lib.rs` merges them into the platform router, so they get the
/// same error pages, headers, limits and access log as every other route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/trace/{id}", get(trace))
        .route("/receipts/lookup", get(receipt_lookup))
        .route("/receipts/{number}", get(receipt))
        .route(
            "/admin/donations/new",
            get(donation_form).post(record_donation),
        )
        .route("/admin/donations/{id}", get(donation).post(refund))
        .route(
            "/admin/allocations/new",
            get(allocation_form).post(allocate),
        )
        .route(
            "/admin/disbursements/new",
            get(disbursement_form)
                .post(disburse)
                .layer(DefaultBodyLimit::max(DISBURSEMENT_BODY_BYTES)),
        )
        .route("/admin/disbursements/{id}", get(disbursement).post(reverse))
        .route("/admin/pools/new", get(pool_form).post(create_pool))
}

// ---------------------------------------------------------------------------------------------
// The frame around every page is `pages::Chrome`.

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

fn public_page(status: StatusCode, template: &impl Template) -> PageResult {
    Ok((status, Html(render(template)?)).into_response())
}

/// Staff pages show a session's CSRF token and unmasked ids: never cached.
fn staff_page(status: StatusCode, template: &impl Template) -> PageResult {
    let mut res = (status, Html(render(template)?)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn see_other(path: &str) -> PageResult {
    Ok(Redirect::to(path).into_response())
}

// ---------------------------------------------------------------------------------------------
// Who is asking.

async fn optional_session(state: &AppState, jar: &CookieJar) -> Result<Option<Session>, PageError> {
    Ok(from_cookie(state, jar).await?)
}

/// A staff or administrator account (they record donations and their movements); nobody
/// signed in goes to the login form and comes back to `back`; a member gets 403.
async fn staff_session(
    state: &AppState,
    jar: &CookieJar,
    back: &str,
) -> Result<Session, PageError> {
    let session = optional_session(state, jar)
        .await?
        .ok_or_else(|| PageError::Login {
            next: back.to_owned(),
        })?;
    session.info.actor.require_staff()?;
    Ok(session)
}

fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || !same_secret(sent, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    Ok(())
}

/// The form's hidden idempotency key, or a message when the page is too old to have one.
fn form_key(text: &str) -> Result<IdempotencyKey, FormErrors> {
    IdempotencyKey::parse(text)
        .map_err(|_| FormErrors::summary("页面已过期，请检查下面的内容后重新提交。".to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Errors shown on a form.

/// What a form says when it is refused: one line at the top, and a message next to each field
/// at fault.
#[derive(Debug, Default)]
struct FormErrors {
    summary: Option<String>,
    fields: Vec<(String, String)>,
}

impl FormErrors {
    fn summary(message: String) -> FormErrors {
        FormErrors {
            summary: Some(message),
            fields: Vec::new(),
        }
    }

    fn add(&mut self, field: &str, message: impl Into<String>) {
        if self.get(field).is_none() {
            self.fields.push((field.to_owned(), message.into()));
        }
    }

    /// The message for `field`, if it is at fault (read by the templates).
    fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    fn is_empty(&self) -> bool {
        self.summary.is_none() && self.fields.is_empty()
    }

    /// Adds the top line for field errors, so a screen reader hears that the form was refused.
    fn with_summary(mut self) -> FormErrors {
        if self.summary.is_none() && !self.fields.is_empty() {
            self.summary = Some("未保存：请按提示修改标出的项目后重新提交。".to_owned());
        }
        self
    }
}

/// How one form maps the app's field names to its own, and where a conflict without a field is
/// shown.
struct FieldMap {
    /// (app field, form field).
    renames: &'static [(&'static str, &'static str)],
    /// The form's own fields; an error about any other field goes to the top line.
    known: &'static [&'static str],
    /// Where a conflict without a field (e.g. not enough money) is shown.
    conflict_field: Option<&'static str>,
}

/// The form's answer to a refusal: the status and the messages for `Invalid` and `Conflict`; any
/// other failure becomes the error page.
fn refused(e: AppError, map: &FieldMap) -> Result<(StatusCode, FormErrors, bool), PageError> {
    if !matches!(e.kind, ErrorKind::Invalid | ErrorKind::Conflict) {
        return Err(e.into());
    }
    let status = status_of(e.kind);
    // A key already used for different content: the form gets a fresh key.
    let stale_key = e.code == "idempotency.key_reused" || e.code == "idempotency.key_invalid";
    let field = match (e.field.as_deref(), e.kind) {
        (Some(f), _) => Some(
            map.renames
                .iter()
                .find(|(from, _)| *from == f)
                .map_or(f, |(_, to)| *to),
        ),
        (None, ErrorKind::Conflict) => map.conflict_field,
        (None, _) => None,
    };
    let mut errors = FormErrors::default();
    let message = match e.code.as_str() {
        // Staff do not know about keys: this is a form sent again after its content changed.
        "idempotency.key_reused" => "这张表单已经提交过一次，内容又被修改了，所以没有再次保存（以免重复记账）。请核对上面的内容，确认无误后再点一次提交。".to_owned(),
        // The app's advice is for the API, which takes fen; these forms take yuan.
        "amount.too_large" => format!(
            "金额过大：单笔不能超过 {}（10 亿元）。请核对金额，按元填写，例如 1,000.00。",
            money(MAX_AMOUNT_FEN)
        ),
        "amount.not_positive" => "金额必须大于 0，请按元填写，例如 100 或 100.50。".to_owned(),
        _ => e.message,
    };
    match field {
        Some(_) if stale_key => errors.summary = Some(message),
        Some(f) if map.known.contains(&f) => errors.add(f, message),
        _ => errors.summary = Some(message),
    }
    Ok((status, errors.with_summary(), stale_key))
}

/// Parses a typed amount in yuan; a refusal is noted against `field`.
fn amount_fen(errors: &mut FormErrors, field: &str, text: &str) -> i64 {
    match parse_yuan(text) {
        Ok(fen) => fen.get(),
        Err(e) => {
            errors.add(field, e.message_zh());
            0
        }
    }
}

/// Parses a typed whole number; a refusal is noted against `field`.
fn whole_number(errors: &mut FormErrors, field: &str, text: &str, what: &str) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse::<i64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errors.add(field, format!("{what}必须是正整数，例如 1。"));
            None
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Values of a form that repeats fields (`project`, `weight`), read as pairs in page order.
struct Pairs(Vec<(String, String)>);

impl Pairs {
    fn first(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Labels.

fn channel_label(channel: &str) -> String {
    if channel == "match" {
        return "配捐".to_owned();
    }
    CHANNELS
        .iter()
        .find(|(c, _)| *c == channel)
        .map_or(channel, |(_, label)| *label)
        .to_owned()
}

fn form_label(form: &str) -> &'static str {
    match form {
        "cash" => "资金",
        "goods" => "物资",
        "service" => "服务费用",
        _ => "其他",
    }
}

fn purpose_label(purpose: &str) -> &'static str {
    if purpose == "management" {
        "管理费用"
    } else {
        "慈善活动支出"
    }
}

fn recipient_kind_label(kind: &str) -> &'static str {
    match kind {
        "household" => "受助家庭",
        "participant" => "受助个人",
        _ => "供应商",
    }
}

const FORMS: &[(&str, &str)] = &[("cash", "资金"), ("goods", "物资"), ("service", "服务费用")];
const PURPOSES: &[(&str, &str)] = &[("charitable", "慈善活动支出"), ("management", "管理费用")];
const RECIPIENT_KINDS: &[(&str, &str)] = &[
    ("household", "受助家庭（家庭编号）"),
    ("participant", "受助个人（人员编号）"),
    ("supplier", "供应商（名称）"),
];

/// An option of a `<select>` or a radio button.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices(options: &[(&str, &str)], current: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: *value == current,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Chinese capital numerals (大写金额) for receipts.

const CAPITAL_DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
/// Units inside a group of four digits, highest first, with the divisor that picks the digit.
const CAPITAL_UNITS: [(&str, u64); 4] = [("仟", 1000), ("佰", 100), ("拾", 10), ("", 1)];
/// Names of the groups of four digits, from the lowest (an i64 of fen needs four groups of yuan).
const CAPITAL_GROUPS: [&str; 5] = ["", "万", "亿", "万亿", "亿亿"];

/// An amount in fen written the way receipts and cheques write it: `123456` →
/// `壹仟贰佰叁拾肆元伍角陆分`, `10000` → `壹佰元整`, `1005` → `壹拾元零伍分`. A zero inside the
/// number is written once (`100005` yuan → `壹拾万零伍元整`); `拾` always has its `壹`.
pub(crate) fn amount_in_capitals(fen: i64) -> String {
    let negative = fen < 0;
    let fen = fen.unsigned_abs();
    let (yuan, jiao, cents) = (fen / 100, (fen / 10) % 10, fen % 10);
    let mut out = String::new();
    if negative {
        out.push('负');
    }
    if yuan > 0 {
        // Groups of four digits, lowest first.
        let mut groups = Vec::new();
        let mut rest = yuan;
        while rest > 0 {
            groups.push(rest % 10_000);
            rest /= 10_000;
        }
        // A run of zeros after the first digit is written as one 零, and only when another
        // digit follows it.
        let mut started = false;
        let mut zero = false;
        for (g, &group) in groups.iter().enumerate().rev() {
            if group == 0 {
                zero |= started;
                continue;
            }
            for (unit, divisor) in CAPITAL_UNITS {
                let digit = (group / divisor) % 10;
                if digit == 0 {
                    zero |= started;
                    continue;
                }
                if zero {
                    out.push('零');
                    zero = false;
                }
                out.push(capital_digit(digit));
                out.push_str(unit);
                started = true;
            }
            out.push_str(CAPITAL_GROUPS[g]);
        }
        out.push('元');
    }
    match (jiao, cents) {
        (0, 0) => {
            if yuan == 0 {
                out.push_str("零元");
            }
            out.push('整');
        }
        (0, c) => {
            if yuan > 0 {
                out.push('零');
            }
            out.push(capital_digit(c));
            out.push('分');
        }
        (j, 0) => {
            out.push(capital_digit(j));
            out.push_str("角整");
        }
        (j, c) => {
            out.push(capital_digit(j));
            out.push('角');
            out.push(capital_digit(c));
            out.push('分');
        }
    }
    out
}

fn capital_digit(digit: u64) -> char {
    CAPITAL_DIGITS[usize::try_from(digit % 10).unwrap_or(0)]
}

// ---------------------------------------------------------------------------------------------
// Reads, each behind an `App` method.

async fn read_receipt(
    state: &AppState,
    number: &str,
) -> Result<Option<cishan_store::ReceiptRow>, PageError> {
    Ok(state.app.receipt_row(number).await?)
}

/// Every receipt of a donation as stored, for its state (`issued` or `voided`).
async fn receipt_states(
    state: &AppState,
    donation_id: &str,
) -> Result<Vec<cishan_store::ReceiptRow>, PageError> {
    Ok(state.app.receipts_of_donation(donation_id).await?)
}

async fn receipt_leaf(state: &AppState, number: &str) -> Result<Option<u64>, PageError> {
    Ok(state.app.receipt_leaf_index(number).await?)
}

async fn read_disbursement(
    state: &AppState,
    id: &str,
) -> Result<Option<cishan_store::TracedDisbursement>, PageError> {
    Ok(state.app.disbursement_detail(id).await?)
}

async fn read_pools(state: &AppState) -> Result<Vec<cishan_store::MatchPoolRow>, PageError> {
    let mut pools = state.app.match_pools().await?;
    pools.reverse();
    pools.truncate(LISTED_POOLS);
    Ok(pools)
}

// ---------------------------------------------------------------------------------------------
// Funds and projects to choose from, and their names.

struct OrgChoices {
    name: String,
    funds: Vec<Choice>,
    projects: Vec<Choice>,
}

/// Every fund and project of the first [`MAX_CHOICE_ORGS`] organizations.
struct Catalog {
    orgs: Vec<CatalogOrg>,
}

/// One organization's funds and projects as (id, name).
struct CatalogOrg {
    name: String,
    funds: Vec<(String, String)>,
    projects: Vec<(String, String)>,
}

impl Catalog {
    async fn load(state: &AppState) -> Result<Catalog, PageError> {
        let page = cishan_app::disclosure::Page {
            offset: 0,
            limit: MAX_CHOICE_ORGS,
        };
        let mut orgs = Vec::new();
        for org in state.app.organizations(page).await? {
            let detail = state.app.organization(&org.id).await?;
            let funds = detail.funds.into_iter().map(|f| (f.id, f.name)).collect();
            let projects = detail
                .projects
                .into_iter()
                .map(|p| {
                    let label = if p.state == "closed" {
                        format!("{}（已结项）", p.name)
                    } else {
                        p.name
                    };
                    (p.id, label)
                })
                .collect();
            orgs.push(CatalogOrg {
                name: org.name,
                funds,
                projects,
            });
        }
        Ok(Catalog { orgs })
    }

    /// Options valued `fund:ID` and `project:ID` (or bare ids with `prefixed` false), grouped by
    /// organization; `selected` says which are chosen.
    fn choices(
        &self,
        funds: bool,
        projects: bool,
        prefixed: bool,
        selected: &dyn Fn(&str) -> bool,
    ) -> Vec<OrgChoices> {
        let make = |kind: &str, items: &[(String, String)]| -> Vec<Choice> {
            items
                .iter()
                .map(|(id, name)| {
                    let value = if prefixed {
                        format!("{kind}:{id}")
                    } else {
                        id.clone()
                    };
                    Choice {
                        selected: selected(&value),
                        value,
                        label: name.clone(),
                    }
                })
                .collect()
        };
        self.orgs
            .iter()
            .map(|o| OrgChoices {
                name: o.name.clone(),
                funds: if funds {
                    make("fund", &o.funds)
                } else {
                    Vec::new()
                },
                projects: if projects {
                    make("project", &o.projects)
                } else {
                    Vec::new()
                },
            })
            .filter(|o| !o.funds.is_empty() || !o.projects.is_empty())
            .collect()
    }

    fn project_name(&self, id: &str) -> Option<&str> {
        self.orgs
            .iter()
            .flat_map(|o| &o.projects)
            .find(|(pid, _)| pid == id)
            .map(|(_, name)| name.as_str())
    }

    fn fund_name(&self, id: &str) -> Option<&str> {
        self.orgs
            .iter()
            .flat_map(|o| &o.funds)
            .find(|(fid, _)| fid == id)
            .map(|(_, name)| name.as_str())
    }
}

/// Names of the funds and projects one donation touched: its organization's, then any other
/// project looked up by id.
struct Names {
    org: String,
    funds: BTreeMap<String, String>,
    projects: BTreeMap<String, String>,
}

impl Names {
    async fn of(state: &AppState, trace: &Trace) -> Result<Names, PageError> {
        let mut names = Names {
            org: String::new(),
            funds: BTreeMap::new(),
            projects: BTreeMap::new(),
        };
        if let Some(org) = &trace.donation.org_id {
            let detail = state.app.organization(org).await?;
            names.org = detail.organization.name;
            names.funds = detail.funds.into_iter().map(|f| (f.id, f.name)).collect();
            names.projects = detail
                .projects
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect();
        }
        let mut wanted: Vec<&str> = trace
            .allocations
            .iter()
            .map(|a| a.project_id.as_str())
            .chain(
                trace
                    .remaining
                    .iter()
                    .filter(|r| r.holder_kind == "project")
                    .map(|r| r.holder_id.as_str()),
            )
            .chain(trace.donation.project_id.as_deref())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for id in wanted {
            if !names.projects.contains_key(id) {
                match state.app.project(id).await {
                    Ok(p) => {
                        names.projects.insert(p.id, p.name);
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(names)
    }

    fn fund(&self, id: &str) -> String {
        self.funds.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }

    fn project(&self, id: &str) -> String {
        self.projects
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    fn holder(&self, kind: &str, id: &str) -> String {
        if kind == "fund" {
            format!("{}（基金，非定向）", self.fund(id))
        } else {
            format!("{}（项目）", self.project(id))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public: the trace of one donation (一扫清).

struct AllocationLine {
    on: String,
    fund: String,
    project: String,
    amount: String,
}

struct DisbursementLine {
    on: String,
    project: String,
    recipient: String,
    form: &'static str,
    purpose: &'static str,
    management: bool,
    /// Of this donation's money.
    amount: String,
    /// Of the whole disbursement (other donations may have paid the rest).
    total: String,
    reversed: bool,
    evidence: Vec<String>,
}

struct HolderLine {
    holder: String,
    amount: String,
}

struct ReceiptLine {
    number: String,
    amount: String,
    issued_on: String,
    voided: bool,
    replaced_by: Option<String>,
    replaces: Option<String>,
}

/// Shares of the donation, in thousandths, for the bar: paid out, still held, refunded.
struct Shares {
    disbursed: i64,
    remaining: i64,
    refunded: i64,
}

fn shares(disbursed: i64, remaining: i64, refunded: i64) -> Option<Shares> {
    if disbursed < 0 || remaining < 0 || refunded < 0 {
        return None;
    }
    let total = i128::from(disbursed) + i128::from(remaining) + i128::from(refunded);
    if total == 0 {
        return None;
    }
    // Rounding the running total, not each part, keeps an empty part at width 0 and the sum at
    // exactly 1000.
    let upto = |x: i128| i64::try_from(x * 1000 / total).unwrap_or(0);
    let first = upto(i128::from(disbursed));
    let second = upto(i128::from(disbursed) + i128::from(remaining));
    Some(Shares {
        disbursed: first,
        remaining: second - first,
        refunded: 1000 - second,
    })
}

#[derive(Template)]
#[template(path = "ledger_trace.html")]
struct TraceTemplate {
    chrome: Chrome,
    id: String,
    donor: String,
    anonymous: bool,
    amount: String,
    received_on: String,
    kind_label: String,
    target: String,
    org: String,
    channel: String,
    matched_from: Option<String>,
    disbursed: String,
    remaining: String,
    refunded: String,
    has_refund: bool,
    shares: Option<Shares>,
    allocations: Vec<AllocationLine>,
    disbursements: Vec<DisbursementLine>,
    holders: Vec<HolderLine>,
    receipts: Vec<ReceiptLine>,
}

async fn receipt_lines(state: &AppState, trace: &Trace) -> Result<Vec<ReceiptLine>, PageError> {
    let stored = receipt_states(state, &trace.donation.id).await?;
    Ok(trace
        .receipts
        .iter()
        .map(|r| ReceiptLine {
            number: r.number.clone(),
            amount: money(r.amount_fen),
            issued_on: r.issued_on.clone(),
            voided: stored
                .iter()
                .any(|s| s.number == r.number && s.state == "voided"),
            replaced_by: trace
                .receipts
                .iter()
                .find(|other| other.replaces.as_deref() == Some(r.number.as_str()))
                .map(|other| other.number.clone()),
            replaces: r.replaces.clone(),
        })
        .collect())
}

/// Where every fen of a donation went
pub(crate) async fn trace(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let session = optional_session(&state, &jar).await?;
    let trace = state.app.trace(&id).await?;
    let names = Names::of(&state, &trace).await?;
    let d = &trace.donation;
    let kind_label = match (&d.goods_item, d.goods_quantity) {
        (Some(item), Some(q)) => format!(
            "物资：{item} {q} {}（估值）",
            d.goods_unit.clone().unwrap_or_default()
        ),
        _ => "资金".to_owned(),
    };
    let target = match (&d.project_id, &d.fund_id) {
        (Some(p), _) => format!("{}（定向捐赠项目）", names.project(p)),
        (None, Some(f)) => format!("{}（非定向基金）", names.fund(f)),
        (None, None) => String::new(),
    };
    let template = TraceTemplate {
        chrome: Chrome::new(&state, session.as_ref(), ""),
        id: d.id.clone(),
        donor: d.donor.clone(),
        anonymous: d.anonymous,
        amount: money(d.amount_fen),
        received_on: d.received_on.clone(),
        kind_label,
        target,
        org: names.org.clone(),
        channel: channel_label(&d.channel),
        matched_from: d.matched_donation_id.clone(),
        disbursed: money(trace.disbursed_fen),
        remaining: money(trace.remaining_fen),
        refunded: money(trace.refunded_fen),
        has_refund: trace.refunded_fen > 0,
        shares: shares(trace.disbursed_fen, trace.remaining_fen, trace.refunded_fen),
        allocations: trace
            .allocations
            .iter()
            .map(|a| AllocationLine {
                on: a.on.clone(),
                fund: names.fund(&a.fund_id),
                project: names.project(&a.project_id),
                amount: money(a.amount_fen),
            })
            .collect(),
        disbursements: trace
            .disbursements
            .iter()
            .map(|x| DisbursementLine {
                on: x.on.clone(),
                project: x.project_name.clone(),
                recipient: x.recipient.clone(),
                form: form_label(&x.form),
                purpose: purpose_label(&x.purpose),
                management: x.purpose == "management",
                amount: money(x.amount_fen),
                total: money(x.disbursement_total_fen),
                reversed: x.state == "reversed",
                evidence: x.evidence_sha256.clone(),
            })
            .collect(),
        holders: trace
            .remaining
            .iter()
            .map(|r| HolderLine {
                holder: names.holder(&r.holder_kind, &r.holder_id),
                amount: money(r.amount_fen),
            })
            .collect(),
        receipts: receipt_lines(&state, &trace).await?,
    };
    public_page(StatusCode::OK, &template)
}

// ---------------------------------------------------------------------------------------------
// Public: a receipt, printable, and the lookup by number and check code.

#[derive(Template)]
#[template(path = "ledger_receipt.html")]
struct ReceiptTemplate {
    chrome: Chrome,
    number: String,
    check_code: String,
    issuer: String,
    issuer_credit_code: String,
    payer: String,
    issued_on: String,
    item: String,
    quantity: i64,
    amount: String,
    amount_capitals: String,
    voided: bool,
    voided_on: Option<String>,
    replaced_by: Option<String>,
    replaces: Option<String>,
    donation_id: String,
    trace_url: String,
    /// The receipt's long-lived signed code (`CS1.…`), also inside the QR link.
    receipt_code: String,
    qr_svg: String,
    leaf_index: Option<u64>,
}

/// The address a printed QR code should open: absolute when the request named a plausible host.
fn public_url(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let scheme = if state.options.secure_cookies {
        "https"
    } else {
        "http"
    };
    match host {
        Some(host) => format!("{scheme}://{host}{path}"),
        None => path.to_owned(),
    }
}

/// `text` as an inline SVG QR code (no XML prolog, labelled for screen readers).
fn qr_svg(text: &str) -> Result<String, PageError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| PageError::App(AppError::internal(std::io::Error::other(e.to_string()))))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg",
        "<svg class=\"receipt-qr\" role=\"img\" aria-label=\"二维码：扫码查看这笔捐赠的去向\"",
        1,
    ))
}

/// A donation receipt (公益事业捐赠票据), printable
pub(crate) async fn receipt(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> PageResult {
    let session = optional_session(&state, &jar).await?;
    let row = read_receipt(&state, &number)
        .await?
        .ok_or_else(|| AppError::not_found("receipt"))?;
    // The public fields (payer masked or 匿名) come from the app, as the log records them.
    let trace = state.app.trace(&row.donation_id).await?;
    let fact = trace
        .receipts
        .iter()
        .find(|r| r.number == row.number)
        .ok_or_else(|| AppError::not_found("receipt"))?;
    let trace_path = format!("/trace/{}", encode_component(&row.donation_id));
    let trace_url = public_url(&state, &headers, &trace_path);
    // The QR still opens the trace on a phone; the link carries the receipt's signed code, which
    // a scanner cuts out of it (`POST /api/v1/scan`, or offline with the code key).
    let receipt_code = state.app.receipt_code(&row.number).await?;
    let qr_link = format!("{trace_url}?code={receipt_code}");
    let template = ReceiptTemplate {
        chrome: Chrome::new(&state, session.as_ref(), ""),
        number: fact.number.clone(),
        check_code: fact.check_code.clone(),
        issuer: fact.issuer.clone(),
        issuer_credit_code: fact.issuer_credit_code.clone(),
        payer: fact.payer.clone(),
        issued_on: fact.issued_on.clone(),
        item: fact.item.clone(),
        quantity: fact.quantity,
        amount: money(fact.amount_fen),
        amount_capitals: amount_in_capitals(fact.amount_fen),
        voided: row.state == "voided",
        voided_on: row.voided_at.as_deref().map(|at| state.app.local_date(at)),
        replaced_by: trace
            .receipts
            .iter()
            .find(|r| r.replaces.as_deref() == Some(row.number.as_str()))
            .map(|r| r.number.clone()),
        replaces: fact.replaces.clone(),
        donation_id: row.donation_id.clone(),
        qr_svg: qr_svg(&qr_link)?,
        trace_url,
        receipt_code,
        leaf_index: receipt_leaf(&state, &row.number).await?,
    };
    public_page(StatusCode::OK, &template)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LookupParams {
    number: Option<String>,
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "ledger_lookup.html")]
struct LookupTemplate {
    chrome: Chrome,
    number: String,
    code: String,
    errors: FormErrors,
}

/// The one answer for an unknown number and a wrong check code, so the form cannot be used to
/// learn which receipt numbers exist.
const LOOKUP_REFUSED: &str =
    "票据号码与校验码不匹配，或没有这张票据。请核对票据上的号码和 8 位校验码后重试。";

/// Find a receipt by its number and check code
pub(crate) async fn receipt_lookup(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<LookupParams>, QueryRejection>,
) -> PageResult {
    let session = optional_session(&state, &jar).await?;
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let asked = params.number.is_some() || params.code.is_some();
    let clip = |t: Option<String>| -> String {
        t.unwrap_or_default()
            .trim()
            .chars()
            .take(MAX_LOOKUP_CHARS)
            .collect()
    };
    let (number, code) = (clip(params.number), clip(params.code));
    let mut errors = FormErrors::default();
    if asked {
        if number.is_empty() {
            errors.add("number", "请填写票据号码，例如 2026-MA0000001-0000001。");
        }
        let code_lower = code.to_ascii_lowercase();
        if code_lower.len() != 8 || !code_lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.add(
                "code",
                "校验码是票据上的 8 位字母数字（0–9、a–f），请照票据填写。",
            );
        }
        if errors.is_empty() {
            let found = read_receipt(&state, &number).await?;
            match found {
                Some(r) if same_secret(&r.check_code.to_ascii_lowercase(), &code_lower) => {
                    return see_other(&format!("/receipts/{}", encode_component(&r.number)));
                }
                _ => errors.summary = Some(LOOKUP_REFUSED.to_owned()),
            }
        } else {
            errors = errors.with_summary();
        }
    }
    let status = match (&errors.summary, errors.fields.is_empty()) {
        (None, _) => StatusCode::OK,
        (Some(_), true) => StatusCode::NOT_FOUND,
        (Some(_), false) => StatusCode::BAD_REQUEST,
    };
    public_page(
        status,
        &LookupTemplate {
            chrome: Chrome::new(&state, session.as_ref(), ""),
            number,
            code,
            errors,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Staff: recording a donation.

/// The donation form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DonationForm {
    csrf: String,
    /// The idempotency key made when the form was rendered.
    idem: String,
    /// `money` or `goods`.
    kind: String,
    /// Yuan, e.g. `1,000.00` or `￥1,000`.
    amount: String,
    /// `fund:ID` or `project:ID`.
    target: String,
    donor_participant_id: String,
    donor_name: String,
    anonymous: Option<String>,
    channel: String,
    payment_ref: String,
    goods_item: String,
    goods_quantity: String,
    goods_unit: String,
    valued_by: String,
}

#[derive(Template)]
#[template(path = "ledger_donation_new.html")]
struct DonationFormTemplate {
    chrome: Chrome,
    section: &'static str,
    csrf: String,
    form: DonationForm,
    goods: bool,
    targets: Vec<OrgChoices>,
    channels: Vec<Choice>,
    errors: FormErrors,
}

const DONATION_FIELDS: FieldMap = FieldMap {
    renames: &[
        ("amount_fen", "amount"),
        ("fund_id", "target"),
        ("project_id", "target"),
    ],
    known: &[
        "kind",
        "amount",
        "target",
        "donor_participant_id",
        "donor_name",
        "channel",
        "payment_ref",
        "goods_item",
        "goods_quantity",
        "goods_unit",
        "valued_by",
    ],
    conflict_field: Some("target"),
};

async fn donation_form_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: DonationForm,
    errors: FormErrors,
) -> PageResult {
    let catalog = Catalog::load(state).await?;
    let target = form.target.clone();
    let template = DonationFormTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        section: "donation",
        csrf: session.info.csrf_token.clone(),
        goods: form.kind == "goods",
        targets: catalog.choices(true, true, true, &|v| v == target),
        channels: choices(CHANNELS, &form.channel),
        form,
        errors,
    };
    staff_page(status, &template)
}

/// The form to record a donation (signed-in staff)
pub(crate) async fn donation_form(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff_session(&state, &jar, "/admin/donations/new").await?;
    let form = DonationForm {
        idem: random_token(),
        kind: "money".to_owned(),
        channel: "bank_transfer".to_owned(),
        ..DonationForm::default()
    };
    donation_form_page(
        &state,
        &session,
        StatusCode::OK,
        form,
        FormErrors::default(),
    )
    .await
}

/// Record a donation; on success, to its page with the receipt number
pub(crate) async fn record_donation(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<DonationForm>, FormRejection>,
) -> PageResult {
    let session = staff_session(&state, &jar, "/admin/donations/new").await?;
    let Form(mut form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let mut errors = FormErrors::default();
    let amount = amount_fen(&mut errors, "amount", &form.amount);
    let goods_quantity = whole_number(&mut errors, "goods_quantity", &form.goods_quantity, "数量");
    let (fund_id, project_id) = match form.target.split_once(':') {
        Some(("fund", id)) => (non_empty(id), None),
        Some(("project", id)) => (None, non_empty(id)),
        _ => (None, None),
    };
    if fund_id.is_none() && project_id.is_none() {
        errors.add("target", "请选择捐入的基金（非定向）或项目（定向）。");
    }
    if !errors.is_empty() {
        return donation_form_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            form,
            errors.with_summary(),
        )
        .await;
    }
    let key = match form_key(&form.idem) {
        Ok(key) => key,
        Err(errors) => {
            form.idem = random_token();
            return donation_form_page(&state, &session, StatusCode::BAD_REQUEST, form, errors)
                .await;
        }
    };
    let input = DonationInput {
        kind: Some(
            if form.kind == "goods" {
                "goods"
            } else {
                "money"
            }
            .to_owned(),
        ),
        amount_fen: amount,
        currency: None,
        fund_id,
        project_id,
        donor_participant_id: non_empty(&form.donor_participant_id),
        donor_name: non_empty(&form.donor_name),
        anonymous: form.anonymous.is_some(),
        channel: form.channel.clone(),
        payment_ref: non_empty(&form.payment_ref),
        goods_item: non_empty(&form.goods_item),
        goods_quantity,
        goods_unit: non_empty(&form.goods_unit),
        valued_by: non_empty(&form.valued_by),
        campaign_unit_id: None,
        received_at: None,
    };
    match state
        .app
        .record_donation(&session.info.actor, &key, &input)
        .await
    {
        Ok(outcome) => see_other(&format!(
            "/admin/donations/{}?recorded=1",
            encode_component(&outcome.value.donation_id)
        )),
        Err(e) => {
            let (status, errors, stale_key) = refused(e, &DONATION_FIELDS)?;
            if stale_key {
                form.idem = random_token();
            }
            donation_form_page(&state, &session, status, form, errors).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Staff: one donation, and its refund.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DonationParams {
    recorded: Option<String>,
    refunded: Option<String>,
}

/// The refund form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RefundForm {
    csrf: String,
    idem: String,
    /// Yuan.
    amount: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "ledger_donation.html")]
struct DonationTemplate {
    chrome: Chrome,
    section: &'static str,
    csrf: String,
    id: String,
    flash: Option<String>,
    donor: String,
    amount: String,
    refunded: String,
    net: String,
    net_fen: i64,
    received_on: String,
    target: String,
    channel: String,
    kind_label: String,
    receipts: Vec<ReceiptLine>,
    current_receipt: Option<String>,
    form: RefundForm,
    errors: FormErrors,
}

const REFUND_FIELDS: FieldMap = FieldMap {
    renames: &[("amount_fen", "amount")],
    known: &["amount", "reason"],
    conflict_field: Some("amount"),
};

async fn donation_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    id: &str,
    flash: Option<String>,
    form: RefundForm,
    errors: FormErrors,
) -> PageResult {
    let trace = state.app.trace(id).await?;
    let names = Names::of(state, &trace).await?;
    let d = &trace.donation;
    let receipts = receipt_lines(state, &trace).await?;
    let current_receipt = receipts
        .iter()
        .rev()
        .find(|r| !r.voided)
        .map(|r| r.number.clone());
    let template = DonationTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        section: "donation",
        csrf: session.info.csrf_token.clone(),
        id: d.id.clone(),
        flash,
        donor: d.donor.clone(),
        amount: money(d.amount_fen),
        refunded: money(d.refunded_fen),
        net: money(d.net_fen),
        net_fen: d.net_fen,
        received_on: d.received_on.clone(),
        target: match (&d.project_id, &d.fund_id) {
            (Some(p), _) => format!("{}（项目，定向）", names.project(p)),
            (None, Some(f)) => format!("{}（基金，非定向）", names.fund(f)),
            (None, None) => String::new(),
        },
        channel: channel_label(&d.channel),
        kind_label: match (&d.goods_item, d.goods_quantity) {
            (Some(item), Some(q)) => format!(
                "物资：{item} {q} {}",
                d.goods_unit.clone().unwrap_or_default()
            ),
            _ => "资金".to_owned(),
        },
        receipts,
        current_receipt,
        form,
        errors,
    };
    staff_page(status, &template)
}

fn fresh_refund_form() -> RefundForm {
    RefundForm {
        idem: random_token(),
        ..RefundForm::default()
    }
}

/// One donation, with its receipts and a refund form (signed-in staff)
pub(crate) async fn donation(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    query: Result<Query<DonationParams>, QueryRejection>,
) -> PageResult {
    let back = format!("/admin/donations/{}", encode_component(&id));
    let session = staff_session(&state, &jar, &back).await?;
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let flash = if params.recorded.is_some() {
        Some("捐赠已登记，票据已开具。".to_owned())
    } else if params.refunded.is_some() {
        Some("退款已办理：原票据已作废，剩余金额（如有）已重开新票据。".to_owned())
    } else {
        None
    };
    donation_page(
        &state,
        &session,
        StatusCode::OK,
        &id,
        flash,
        fresh_refund_form(),
        FormErrors::default(),
    )
    .await
}

/// Refund part or all of a donation
pub(crate) async fn refund(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<RefundForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/donations/{}", encode_component(&id));
    let session = staff_session(&state, &jar, &back).await?;
    let Form(mut form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let mut errors = FormErrors::default();
    let amount = amount_fen(&mut errors, "amount", &form.amount);
    if form.reason.trim().is_empty() {
        errors.add("reason", "请填写退款原因。");
    }
    if !errors.is_empty() {
        return donation_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            &id,
            None,
            form,
            errors.with_summary(),
        )
        .await;
    }
    let key = match form_key(&form.idem) {
        Ok(key) => key,
        Err(errors) => {
            form.idem = random_token();
            return donation_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                &id,
                None,
                form,
                errors,
            )
            .await;
        }
    };
    let input = RefundInput {
        amount_fen: amount,
        reason: form.reason.trim().to_owned(),
    };
    match state
        .app
        .refund_donation(&session.info.actor, &key, &id, &input)
        .await
    {
        Ok(_) => see_other(&format!("{back}?refunded=1")),
        Err(e) => {
            let (status, errors, stale_key) = refused(e, &REFUND_FIELDS)?;
            if stale_key {
                form.idem = random_token();
            }
            donation_page(&state, &session, status, &id, None, form, errors).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Staff: allocating a fund's money to projects.

/// One project row of the allocation form.
struct PartRow {
    projects: Vec<OrgChoices>,
    weight: String,
    number: usize,
}

struct AllocationDone {
    fund: String,
    replayed: bool,
    lines: Vec<HolderLine>,
    total: String,
}

#[derive(Template)]
#[template(path = "ledger_allocation_new.html")]
struct AllocationTemplate {
    chrome: Chrome,
    section: &'static str,
    csrf: String,
    idem: String,
    funds: Vec<OrgChoices>,
    amount: String,
    rows: Vec<PartRow>,
    done: Option<AllocationDone>,
    errors: FormErrors,
}

const ALLOCATION_FIELDS: FieldMap = FieldMap {
    renames: &[("amount_fen", "amount"), ("fund_id", "fund")],
    known: &["fund", "amount", "parts"],
    conflict_field: Some("amount"),
};

/// What the allocation form holds: the fund, the amount and (project, weight) rows.
#[derive(Debug, Default)]
struct AllocationFields {
    idem: String,
    fund: String,
    amount: String,
    parts: Vec<(String, String)>,
}

async fn allocation_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    fields: AllocationFields,
    done: Option<AllocationDone>,
    errors: FormErrors,
    catalog: Option<Catalog>,
) -> PageResult {
    let catalog = match catalog {
        Some(c) => c,
        None => Catalog::load(state).await?,
    };
    let fund = fields.fund.clone();
    let mut rows = Vec::with_capacity(ALLOCATION_ROWS);
    for i in 0..ALLOCATION_ROWS {
        let (project, weight) = fields.parts.get(i).cloned().unwrap_or_default();
        rows.push(PartRow {
            projects: catalog.choices(false, true, false, &|v| v == project),
            weight,
            number: i + 1,
        });
    }
    let template = AllocationTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        section: "allocation",
        csrf: session.info.csrf_token.clone(),
        idem: fields.idem,
        funds: catalog.choices(true, false, false, &|v| v == fund),
        amount: fields.amount,
        rows,
        done,
        errors,
    };
    staff_page(status, &template)
}

/// The form to allocate a fund's money to projects (signed-in staff)
pub(crate) async fn allocation_form(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff_session(&state, &jar, "/admin/allocations/new").await?;
    let fields = AllocationFields {
        idem: random_token(),
        ..AllocationFields::default()
    };
    allocation_page(
        &state,
        &session,
        StatusCode::OK,
        fields,
        None,
        FormErrors::default(),
        None,
    )
    .await
}

/// Allocate; the result is shown on the page with a fresh form (a refresh replays, never
/// repeats, the allocation)
pub(crate) async fn allocate(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> PageResult {
    let session = staff_session(&state, &jar, "/admin/allocations/new").await?;
    let Form(pairs) = form.map_err(form_rejection)?;
    let pairs = Pairs(pairs);
    check_csrf(&session, &pairs.first("csrf"))?;
    let mut fields = AllocationFields {
        idem: pairs.first("idem"),
        fund: pairs.first("fund"),
        amount: pairs.first("amount"),
        parts: pairs
            .all("project")
            .into_iter()
            .zip(pairs.all("weight"))
            .take(ALLOCATION_ROWS)
            .collect(),
    };
    let mut errors = FormErrors::default();
    let amount = amount_fen(&mut errors, "amount", &fields.amount);
    if fields.fund.trim().is_empty() {
        errors.add("fund", "请选择拨出资金的基金。");
    }
    let mut parts = Vec::new();
    for (i, (project, weight)) in fields.parts.iter().enumerate() {
        if project.trim().is_empty() {
            continue;
        }
        let weight = if weight.trim().is_empty() {
            1
        } else {
            match weight.trim().parse::<i64>() {
                Ok(w) if w > 0 => w,
                _ => {
                    errors.add(
                        "parts",
                        format!("第 {} 行的权重必须是正整数，例如 1。", i + 1),
                    );
                    continue;
                }
            }
        };
        parts.push(AllocationPart {
            project_id: project.trim().to_owned(),
            weight,
        });
    }
    if parts.is_empty() && errors.get("parts").is_none() {
        errors.add("parts", "请至少选择一个接收项目。");
    }
    if !errors.is_empty() {
        return allocation_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            fields,
            None,
            errors.with_summary(),
            None,
        )
        .await;
    }
    let key = match form_key(&fields.idem) {
        Ok(key) => key,
        Err(errors) => {
            fields.idem = random_token();
            return allocation_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                fields,
                None,
                errors,
                None,
            )
            .await;
        }
    };
    let input = AllocationInput {
        fund_id: fields.fund.trim().to_owned(),
        amount_fen: amount,
        parts,
    };
    match state.app.allocate(&session.info.actor, &key, &input).await {
        Ok(outcome) => {
            let catalog = Catalog::load(&state).await?;
            let done = AllocationDone {
                fund: catalog
                    .fund_name(&input.fund_id)
                    .unwrap_or(&input.fund_id)
                    .to_owned(),
                replayed: outcome.replayed,
                lines: outcome
                    .value
                    .allocations
                    .iter()
                    .map(|a| HolderLine {
                        holder: catalog
                            .project_name(&a.project_id)
                            .unwrap_or(&a.project_id)
                            .to_owned(),
                        amount: money(a.amount_fen),
                    })
                    .collect(),
                total: money(input.amount_fen),
            };
            let fresh = AllocationFields {
                idem: random_token(),
                ..AllocationFields::default()
            };
            allocation_page(
                &state,
                &session,
                StatusCode::OK,
                fresh,
                Some(done),
                FormErrors::default(),
                Some(catalog),
            )
            .await
        }
        Err(e) => {
            let (status, errors, stale_key) = refused(e, &ALLOCATION_FIELDS)?;
            if stale_key {
                fields.idem = random_token();
            }
            allocation_page(&state, &session, status, fields, None, errors, None).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Staff: disbursements (with evidence files) and their reversal.

/// The disbursement form's text fields, as typed (files are read separately).
#[derive(Debug, Default)]
struct DisbursementForm {
    csrf: String,
    idem: String,
    project: String,
    recipient_kind: String,
    household_id: String,
    recipient_participant_id: String,
    supplier_name: String,
    people_count: String,
    form: String,
    purpose: String,
    amount: String,
    description: String,
}

#[derive(Template)]
#[template(path = "ledger_disbursement_new.html")]
struct DisbursementFormTemplate {
    chrome: Chrome,
    section: &'static str,
    csrf: String,
    projects: Vec<OrgChoices>,
    recipient_kinds: Vec<Choice>,
    forms: Vec<Choice>,
    purposes: Vec<Choice>,
    form: DisbursementForm,
    max_files: usize,
    max_file_mib: usize,
    errors: FormErrors,
}

const DISBURSEMENT_FIELDS: FieldMap = FieldMap {
    renames: &[("amount_fen", "amount"), ("project_id", "project")],
    known: &[
        "project",
        "recipient_kind",
        "household_id",
        "recipient_participant_id",
        "supplier_name",
        "people_count",
        "form",
        "purpose",
        "amount",
        "description",
        "evidence",
    ],
    conflict_field: Some("amount"),
};

async fn disbursement_form_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: DisbursementForm,
    errors: FormErrors,
) -> PageResult {
    let catalog = Catalog::load(state).await?;
    let project = form.project.clone();
    let template = DisbursementFormTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        section: "disbursement",
        csrf: session.info.csrf_token.clone(),
        projects: catalog.choices(false, true, false, &|v| v == project),
        recipient_kinds: choices(RECIPIENT_KINDS, &form.recipient_kind),
        forms: choices(FORMS, &form.form),
        purposes: choices(PURPOSES, &form.purpose),
        form,
        max_files: MAX_EVIDENCE_FILES,
        max_file_mib: MAX_EVIDENCE_BYTES / (1024 * 1024),
        errors,
    };
    staff_page(status, &template)
}

/// The form to pay from a project to a recipient (signed-in staff)
pub(crate) async fn disbursement_form(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = staff_session(&state, &jar, "/admin/disbursements/new").await?;
    let form = DisbursementForm {
        idem: random_token(),
        recipient_kind: "household".to_owned(),
        form: "cash".to_owned(),
        purpose: "charitable".to_owned(),
        people_count: "1".to_owned(),
        ..DisbursementForm::default()
    };
    disbursement_form_page(
        &state,
        &session,
        StatusCode::OK,
        form,
        FormErrors::default(),
    )
    .await
}

fn multipart_refused(status: StatusCode) -> PageError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        PageError::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            bad_request(
                None,
                "request.too_large",
                format!(
                    "上传的内容太大（每次合计上限 {} MB，每个文件上限 {} MB）。请压缩或分次上传凭证。",
                    DISBURSEMENT_BODY_BYTES / (1024 * 1024),
                    MAX_EVIDENCE_BYTES / (1024 * 1024)
                ),
            ),
        )
    } else {
        PageError::App(bad_request(
            None,
            "request.form_invalid",
            "表单内容无法读取，请返回上一页重新填写后提交。",
        ))
    }
}

fn multipart_error(e: MultipartError) -> PageError {
    multipart_refused(e.status())
}

/// Reads the multipart form: its text fields, the files chosen, and whether there were more
/// files than accepted.
async fn read_disbursement_form(
    mut multipart: Multipart,
) -> Result<(DisbursementForm, Vec<EvidenceFile>, bool), PageError> {
    let mut form = DisbursementForm::default();
    let mut files = Vec::new();
    let mut too_many = false;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "evidence" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let bytes = field.bytes().await.map_err(multipart_error)?;
            // A file input left empty still sends a part, with no name and no bytes.
            if file_name.is_empty() && bytes.is_empty() {
                continue;
            }
            if files.len() == MAX_EVIDENCE_FILES {
                too_many = true;
                continue;
            }
            files.push(EvidenceFile {
                file_name,
                content_type,
                bytes: bytes.to_vec(),
            });
            continue;
        }
        let text = field.text().await.map_err(multipart_error)?;
        let slot = match name.as_str() {
            "csrf" => &mut form.csrf,
            "idem" => &mut form.idem,
            "project" => &mut form.project,
            "recipient_kind" => &mut form.recipient_kind,
            "household_id" => &mut form.household_id,
            "recipient_participant_id" => &mut form.recipient_participant_id,
            "supplier_name" => &mut form.supplier_name,
            "people_count" => &mut form.people_count,
            "form" => &mut form.form,
            "purpose" => &mut form.purpose,
            "amount" => &mut form.amount,
            "description" => &mut form.description,
            _ => continue,
        };
        *slot = text;
    }
    Ok((form, files, too_many))
}

/// Pay from a project, with evidence files; on success, to the disbursement's page
pub(crate) async fn disburse(
    State(state): State<AppState>,
    jar: CookieJar,
    multipart: Result<Multipart, MultipartRejection>,
) -> PageResult {
    // Who is asking is known before any of a possibly large body is read.
    let session = staff_session(&state, &jar, "/admin/disbursements/new").await?;
    let multipart = multipart.map_err(|r| multipart_refused(r.status()))?;
    let (mut form, files, too_many) = read_disbursement_form(multipart).await?;
    check_csrf(&session, &form.csrf)?;
    let mut errors = FormErrors::default();
    let amount = amount_fen(&mut errors, "amount", &form.amount);
    let people_count = whole_number(&mut errors, "people_count", &form.people_count, "受益人数");
    if form.project.trim().is_empty() {
        errors.add("project", "请选择支出的项目。");
    }
    if too_many {
        errors.add(
            "evidence",
            format!("每次最多上传 {MAX_EVIDENCE_FILES} 个凭证文件。"),
        );
    }
    if !errors.is_empty() {
        if !files.is_empty() {
            errors.add("evidence", "出于安全原因，请重新选择凭证文件。");
        }
        return disbursement_form_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            form,
            errors.with_summary(),
        )
        .await;
    }
    let key = match form_key(&form.idem) {
        Ok(key) => key,
        Err(errors) => {
            form.idem = random_token();
            return disbursement_form_page(&state, &session, StatusCode::BAD_REQUEST, form, errors)
                .await;
        }
    };
    let kind = form.recipient_kind.trim().to_owned();
    let input = DisbursementInput {
        project_id: form.project.trim().to_owned(),
        amount_fen: amount,
        household_id: (kind == "household")
            .then(|| non_empty(&form.household_id))
            .flatten(),
        recipient_participant_id: (kind == "participant")
            .then(|| non_empty(&form.recipient_participant_id))
            .flatten(),
        supplier_name: (kind == "supplier")
            .then(|| non_empty(&form.supplier_name))
            .flatten(),
        recipient_kind: kind,
        form: form.form.trim().to_owned(),
        purpose: non_empty(&form.purpose),
        description: form.description.trim().to_owned(),
        people_count: people_count.unwrap_or(0),
        evidence: files,
    };
    let had_files = !input.evidence.is_empty();
    match state.app.disburse(&session.info.actor, &key, &input).await {
        Ok(outcome) => see_other(&format!(
            "/admin/disbursements/{}?saved=1",
            encode_component(&outcome.value.disbursement_id)
        )),
        Err(e) => {
            let (status, mut errors, stale_key) = refused(e, &DISBURSEMENT_FIELDS)?;
            if stale_key {
                form.idem = random_token();
            }
            if had_files {
                errors.add("evidence", "出于安全原因，请重新选择凭证文件。");
            }
            disbursement_form_page(&state, &session, status, form, errors).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DisbursementParams {
    saved: Option<String>,
    reversed: Option<String>,
}

/// The reversal form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReversalForm {
    csrf: String,
    idem: String,
    reason: String,
}

struct EvidenceLine {
    file_name: String,
    sha256: String,
    size: String,
}

#[derive(Template)]
#[template(path = "ledger_disbursement.html")]
struct DisbursementTemplate {
    chrome: Chrome,
    section: &'static str,
    csrf: String,
    id: String,
    flash: Option<String>,
    project: String,
    project_id: String,
    recipient_kind: &'static str,
    recipient: String,
    people_count: i64,
    form_label: &'static str,
    purpose: &'static str,
    amount: String,
    description: String,
    paid_on: String,
    reversed: bool,
    evidence: Vec<EvidenceLine>,
    form: ReversalForm,
    errors: FormErrors,
}

const REVERSAL_FIELDS: FieldMap = FieldMap {
    renames: &[],
    known: &["reason"],
    conflict_field: None,
};

fn size_label(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!(
            "{}.{} MB",
            bytes / (1024 * 1024),
            (bytes % (1024 * 1024)) * 10 / (1024 * 1024)
        )
    } else if bytes >= 1024 {
        format!("{} KB", (bytes + 1023) / 1024)
    } else {
        format!("{bytes} 字节")
    }
}

async fn disbursement_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    id: &str,
    flash: Option<String>,
    form: ReversalForm,
    errors: FormErrors,
) -> PageResult {
    let d = read_disbursement(state, id)
        .await?
        .ok_or_else(|| AppError::not_found("disbursement"))?;
    let row = &d.row;
    let recipient = match row.recipient_kind.as_str() {
        "household" => row.household_id.clone().unwrap_or_default(),
        "participant" => row.recipient_participant_id.clone().unwrap_or_default(),
        _ => row.supplier_name.clone().unwrap_or_default(),
    };
    let template = DisbursementTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        section: "disbursement",
        csrf: session.info.csrf_token.clone(),
        id: row.id.clone(),
        flash,
        project: d.project_name.clone(),
        project_id: row.project_id.clone(),
        recipient_kind: recipient_kind_label(&row.recipient_kind),
        recipient,
        people_count: row.people_count,
        form_label: form_label(&row.form),
        purpose: purpose_label(&row.purpose),
        amount: money(row.amount_fen),
        description: row.description.clone(),
        paid_on: state.app.local_date(&row.paid_at),
        reversed: row.state == "reversed",
        evidence: d
            .evidence
            .iter()
            .map(|e| EvidenceLine {
                file_name: e.file_name.clone(),
                sha256: e.sha256.clone(),
                size: size_label(e.size_bytes),
            })
            .collect(),
        form,
        errors,
    };
    staff_page(status, &template)
}

/// One disbursement, with its evidence and a reversal form (signed-in staff)
pub(crate) async fn disbursement(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    query: Result<Query<DisbursementParams>, QueryRejection>,
) -> PageResult {
    let back = format!("/admin/disbursements/{}", encode_component(&id));
    let session = staff_session(&state, &jar, &back).await?;
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let flash = if params.saved.is_some() {
        Some("拨付已登记，凭证已保存，款项已计入对应捐赠的去向。".to_owned())
    } else if params.reversed.is_some() {
        Some("已冲正：每一分钱都已退回原来的项目资金。".to_owned())
    } else {
        None
    };
    let form = ReversalForm {
        idem: random_token(),
        ..ReversalForm::default()
    };
    disbursement_page(
        &state,
        &session,
        StatusCode::OK,
        &id,
        flash,
        form,
        FormErrors::default(),
    )
    .await
}

/// Reverse a paid disbursement
pub(crate) async fn reverse(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<ReversalForm>, FormRejection>,
) -> PageResult {
    let back = format!("/admin/disbursements/{}", encode_component(&id));
    let session = staff_session(&state, &jar, &back).await?;
    let Form(mut form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    if form.reason.trim().is_empty() {
        let mut errors = FormErrors::default();
        errors.add("reason", "请填写冲正原因。");
        return disbursement_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            &id,
            None,
            form,
            errors.with_summary(),
        )
        .await;
    }
    let key = match form_key(&form.idem) {
        Ok(key) => key,
        Err(errors) => {
            form.idem = random_token();
            return disbursement_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                &id,
                None,
                form,
                errors,
            )
            .await;
        }
    };
    match state
        .app
        .reverse_disbursement(&session.info.actor, &key, &id, form.reason.trim())
        .await
    {
        Ok(_) => see_other(&format!("{back}?reversed=1")),
        Err(e) => {
            let (status, errors, stale_key) = refused(e, &REVERSAL_FIELDS)?;
            if stale_key {
                form.idem = random_token();
            }
            disbursement_page(&state, &session, status, &id, None, form, errors).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Administrators: matching pools (配捐池).

/// The pool form's fields, as typed.
#[derive(Debug, Default)]
struct PoolFields {
    name: String,
    sponsor_participant_id: String,
    ratio_num: String,
    ratio_den: String,
    cap_per_donation: String,
    cap_per_donor: String,
    cap_total: String,
    projects: Vec<String>,
    campaign_id: String,
    starts_on: String,
    ends_on: String,
}

struct PoolLine {
    name: String,
    sponsor: String,
    ratio: String,
    caps: String,
    used: String,
    period: String,
    created: bool,
}

#[derive(Template)]
#[template(path = "ledger_pool_new.html")]
struct PoolTemplate {
    chrome: Chrome,
    section: &'static str,
    csrf: String,
    form: PoolFields,
    projects: Vec<OrgChoices>,
    pools: Vec<PoolLine>,
    flash: Option<String>,
    errors: FormErrors,
}

const POOL_FIELDS: FieldMap = FieldMap {
    renames: &[
        ("ratio_num", "ratio"),
        ("ratio_den", "ratio"),
        ("cap_per_donation_fen", "cap_per_donation"),
        ("cap_per_donor_fen", "cap_per_donor"),
        ("cap_total_fen", "cap_total"),
        ("project_ids", "projects"),
        ("starts_at", "starts_on"),
        ("ends_at", "ends_on"),
    ],
    known: &[
        "name",
        "sponsor_participant_id",
        "ratio",
        "cap_per_donation",
        "cap_per_donor",
        "cap_total",
        "projects",
        "campaign_id",
        "starts_on",
        "ends_on",
    ],
    conflict_field: None,
};

/// The administrator, or the login form for nobody and 403 for other roles.
async fn admin_session(
    state: &AppState,
    jar: &CookieJar,
    back: &str,
) -> Result<Session, PageError> {
    let session = staff_session(state, jar, back).await?;
    session.info.actor.require_admin()?;
    Ok(session)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PoolParams {
    created: Option<String>,
}

async fn pool_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: PoolFields,
    created: Option<&str>,
    errors: FormErrors,
) -> PageResult {
    let catalog = Catalog::load(state).await?;
    let chosen = form.projects.clone();
    let pools: Vec<PoolLine> = read_pools(state)
        .await?
        .into_iter()
        .map(|p| PoolLine {
            created: created == Some(p.id.as_str()),
            ratio: format!("每捐 {} 元配 {} 元", p.ratio_den, p.ratio_num),
            caps: format!(
                "单笔上限 {}，每位捐赠人上限 {}，总额 {}",
                money(p.cap_per_donation_fen),
                money(p.cap_per_donor_fen),
                money(p.cap_total_fen)
            ),
            used: money(p.used_fen),
            period: format!(
                "{} 起，至 {} 零时止",
                state.app.local_date(&p.starts_at),
                state.app.local_date(&p.ends_at)
            ),
            name: p.name,
            sponsor: p.sponsor_name,
        })
        .collect();
    let flash = pools
        .iter()
        .find(|p| p.created)
        .map(|p| format!("已创建配捐池“{}”。", p.name));
    let template = PoolTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        section: "pool",
        csrf: session.info.csrf_token.clone(),
        projects: catalog.choices(false, true, false, &|v| chosen.iter().any(|c| c == v)),
        form,
        pools,
        flash,
        errors,
    };
    staff_page(status, &template)
}

/// The form to create a matching pool (administrators)
pub(crate) async fn pool_form(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<PoolParams>, QueryRejection>,
) -> PageResult {
    let session = admin_session(&state, &jar, "/admin/pools/new").await?;
    let params = query.map(|Query(q)| q).unwrap_or_default();
    let form = PoolFields {
        ratio_num: "1".to_owned(),
        ratio_den: "1".to_owned(),
        ..PoolFields::default()
    };
    pool_page(
        &state,
        &session,
        StatusCode::OK,
        form,
        params.created.as_deref(),
        FormErrors::default(),
    )
    .await
}

/// The instant a local calendar date starts, in the region's time zone; `next_day` gives the
/// start of the day after (an inclusive end date).
fn day_start(state: &AppState, text: &str, next_day: bool) -> Option<String> {
    let date: jiff::civil::Date = text.trim().parse().ok()?;
    let date = if next_day {
        date.tomorrow().ok()?
    } else {
        date
    };
    let tz = jiff::tz::TimeZone::get(&state.app.pack().timezone).ok()?;
    let at = date.to_zoned(tz).ok()?.timestamp();
    Some(at.to_string())
}

/// Create a matching pool
pub(crate) async fn create_pool(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> PageResult {
    let session = admin_session(&state, &jar, "/admin/pools/new").await?;
    let Form(pairs) = form.map_err(form_rejection)?;
    let pairs = Pairs(pairs);
    check_csrf(&session, &pairs.first("csrf"))?;
    let form = PoolFields {
        name: pairs.first("name"),
        sponsor_participant_id: pairs.first("sponsor_participant_id"),
        ratio_num: pairs.first("ratio_num"),
        ratio_den: pairs.first("ratio_den"),
        cap_per_donation: pairs.first("cap_per_donation"),
        cap_per_donor: pairs.first("cap_per_donor"),
        cap_total: pairs.first("cap_total"),
        projects: pairs
            .all("project")
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect(),
        campaign_id: pairs.first("campaign_id"),
        starts_on: pairs.first("starts_on"),
        ends_on: pairs.first("ends_on"),
    };
    let mut errors = FormErrors::default();
    if form.name.trim().is_empty() {
        errors.add("name", "请填写配捐池名称，例如“2026 年九九公益日配捐”。");
    }
    if form.sponsor_participant_id.trim().is_empty() {
        errors.add(
            "sponsor_participant_id",
            "请填写配捐方（已登记的银行或企业）的编号。",
        );
    }
    let ratio_num = whole_number(&mut errors, "ratio", &form.ratio_num, "配捐比例");
    let ratio_den = whole_number(&mut errors, "ratio", &form.ratio_den, "配捐比例");
    if (ratio_num.is_none() || ratio_den.is_none()) && errors.get("ratio").is_none() {
        errors.add("ratio", "请填写配捐比例，例如每捐 1 元配 1 元。");
    }
    let cap_per_donation = amount_fen(&mut errors, "cap_per_donation", &form.cap_per_donation);
    let cap_per_donor = amount_fen(&mut errors, "cap_per_donor", &form.cap_per_donor);
    let cap_total = amount_fen(&mut errors, "cap_total", &form.cap_total);
    let date_error = "请按“年-月-日”填写日期，例如 2026-12-01。";
    let starts_at = day_start(&state, &form.starts_on, false);
    if starts_at.is_none() {
        errors.add("starts_on", date_error);
    }
    let ends_at = day_start(&state, &form.ends_on, true);
    if ends_at.is_none() {
        errors.add("ends_on", date_error);
    }
    if !errors.is_empty() {
        return pool_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            form,
            None,
            errors.with_summary(),
        )
        .await;
    }
    let input = MatchPoolInput {
        name: form.name.trim().to_owned(),
        sponsor_participant_id: form.sponsor_participant_id.trim().to_owned(),
        ratio_num: ratio_num.unwrap_or(0),
        ratio_den: ratio_den.unwrap_or(0),
        cap_per_donation_fen: cap_per_donation,
        cap_per_donor_fen: cap_per_donor,
        cap_total_fen: cap_total,
        project_ids: form.projects.iter().map(|p| p.trim().to_owned()).collect(),
        campaign_id: non_empty(&form.campaign_id),
        starts_at: starts_at.unwrap_or_default(),
        ends_at: ends_at.unwrap_or_default(),
    };
    match state
        .app
        .create_match_pool(&session.info.actor, &input)
        .await
    {
        Ok(pool) => see_other(&format!(
            "/admin/pools/new?created={}",
            encode_component(&pool.id)
        )),
        Err(e) => {
            let (status, errors, _) = refused(e, &POOL_FIELDS)?;
            pool_page(&state, &session, status, form, None, errors).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_amounts_in_capitals() {
        let cases = [
            (123_456, "壹仟贰佰叁拾肆元伍角陆分"),
            (10_000, "壹佰元整"),
            (1_005, "壹拾元零伍分"),
            (0, "零元整"),
            (1, "壹分"),
            (50, "伍角整"),
            (56, "伍角陆分"),
            (100, "壹元整"),
            (1_000, "壹拾元整"),
            (1_050, "壹拾元伍角整"),
            (100_000, "壹仟元整"),
            (100_005, "壹仟元零伍分"),
            (10_100, "壹佰零壹元整"),
            (100_100, "壹仟零壹元整"),
            (1_000_000, "壹万元整"),
            (1_000_100, "壹万零壹元整"),
            (10_000_500, "壹拾万零伍元整"),
            (101_000_000, "壹佰零壹万元整"),
            (1_001_000_000, "壹仟零壹万元整"),
            (10_000_000_000, "壹亿元整"),
            (10_001_000_000, "壹亿零壹万元整"),
            (10_000_000_100, "壹亿零壹元整"),
            (
                123_456_789_012,
                "壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元壹角贰分",
            ),
            (-1_234, "负壹拾贰元叁角肆分"),
        ];
        for (fen, words) in cases {
            assert_eq!(amount_in_capitals(fen), words, "{fen} fen");
        }
        // The largest amounts do not panic.
        assert!(amount_in_capitals(i64::MAX).ends_with("柒分"));
        assert!(amount_in_capitals(i64::MIN).starts_with('负'));
    }

    #[test]
    fn shares_add_up_to_a_thousand() {
        let s = shares(1, 1, 1).unwrap();
        assert_eq!(s.disbursed + s.remaining + s.refunded, 1000);
        let s = shares(50_000, 73_456, 0).unwrap();
        assert_eq!((s.disbursed, s.remaining, s.refunded), (405, 595, 0));
        let s = shares(0, 1, 999_999).unwrap();
        assert_eq!((s.disbursed, s.remaining, s.refunded), (0, 0, 1000));
        assert!(shares(0, 0, 0).is_none());
    }

    #[test]
    fn form_errors_keep_the_first_message_per_field() {
        let mut e = FormErrors::default();
        e.add("amount", "a");
        e.add("amount", "b");
        assert_eq!(e.get("amount"), Some("a"));
        assert_eq!(e.get("reason"), None);
        assert!(e.with_summary().summary.is_some());
    }

    #[test]
    fn refusals_land_next_to_the_right_field() {
        let e = AppError::invalid("amount_fen", "amount.not_positive", "以分为单位");
        let (status, errors, stale) = refused(e, &DONATION_FIELDS).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // The API's advice (amounts in fen) becomes the form's (amounts in yuan).
        assert_eq!(
            errors.get("amount"),
            Some("金额必须大于 0，请按元填写，例如 100 或 100.50。")
        );
        assert!(!stale);
        let e = AppError::invalid("received_at", "x", "到账时间");
        let (_, errors, _) = refused(e, &DONATION_FIELDS).unwrap();
        assert_eq!(errors.summary.as_deref(), Some("到账时间"));
        let e = AppError::conflict("refund.exceeds", "超过可退金额");
        let (status, errors, _) = refused(e, &REFUND_FIELDS).unwrap();
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(errors.get("amount"), Some("超过可退金额"));
        assert!(refused(AppError::not_found("donation"), &REFUND_FIELDS).is_err());
    }
}
