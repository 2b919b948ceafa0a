//! Pages of charity points (一键算, 转化—回馈): the personal points page (`/me/points`), the
//! public rules page (`/rules`), the partner's redemption page (`/partner/redeem`) and the
//! administrator's rules page (`/admin/points/rules`: upload, dry run, apply).
//!
//! Same rules as the other pages: Chinese, phone first, no JavaScript; every state-changing form
//! echoes the session's CSRF token and carries a hidden idempotency key made when the form is
//! rendered, so a double submit redeems once.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use cishan_app::auth::random_token;
use cishan_app::donations::IdempotencyKey;
use cishan_app::points::{PointsStatement, RecomputeReport};
use cishan_app::rewards::{channel_zh, CancelInput, RedeemInput};
use cishan_app::{AppError, ErrorKind};
use cishan_core::region::RegionPack;
use serde::Deserialize;

use crate::error::{form_rejection, status_of, PageError};
use crate::pages::Chrome;
use crate::pages_volunteering::local_time;
use crate::session::{csrf_refused, from_cookie, same_secret, Session};
use crate::AppState;

type PageResult = Result<Response, PageError>;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/points", get(my_points))
        .route("/rules", get(rules))
        .route("/partner/redeem", get(partner_page).post(partner_redeem))
        .route(
            "/partner/redemptions/{id}/cancel",
            axum::routing::post(partner_cancel),
        )
        .route(
            "/admin/points/rules",
            get(admin_rules).post(admin_recompute),
        )
}

fn render(template: &impl Template) -> Result<String, PageError> {
    template
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))
}

fn private_page(status: StatusCode, template: &impl Template) -> PageResult {
    let mut res = (status, Html(render(template)?)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn signed_in(state: &AppState, jar: &CookieJar, back: &str) -> Result<Session, PageError> {
    from_cookie(state, jar)
        .await?
        .ok_or_else(|| PageError::Login {
            next: back.to_owned(),
        })
}

fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || !same_secret(sent, &session.info.csrf_token) {
        return Err(csrf_refused().into());
    }
    Ok(())
}

/// A refusal the form shows (invalid input or a conflict), or an error page for anything else.
fn shown(e: AppError) -> Result<(StatusCode, String), PageError> {
    if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Conflict) {
        Ok((status_of(e.kind), e.message))
    } else {
        Err(e.into())
    }
}

// ---------------------------------------------------------------------------------------------
// /me/points

struct ActLine {
    date: String,
    kind: String,
    category: String,
    rule_version: String,
    honour: i64,
    spendable: i64,
    explanation: String,
    note: String,
}

struct OfferLine {
    channel: String,
    title: String,
    cost: i64,
    min_tier: String,
    stock: i64,
    affordable: bool,
}

struct RedemptionLine {
    id: String,
    title: String,
    cost: i64,
    state: String,
    at: String,
}

#[derive(Template)]
#[template(path = "points_me.html")]
struct MyPointsTemplate {
    chrome: Chrome,
    has_participant: bool,
    honour: i64,
    spendable: i64,
    tier: String,
    next_tier: String,
    to_next: Option<i64>,
    next_expiry: String,
    acts: Vec<ActLine>,
    offers: Vec<OfferLine>,
    redemptions: Vec<RedemptionLine>,
}

/// The acts, latest first, with categories by their Chinese name in the region pack (a code
/// the pack does not know is shown as stored).
fn act_lines(s: &PointsStatement, pack: &RegionPack) -> Vec<ActLine> {
    s.acts
        .iter()
        .rev()
        .map(|a| ActLine {
            date: a.local_date.clone(),
            kind: a.kind_zh.clone(),
            category: a
                .category
                .as_deref()
                .map(|code| {
                    pack.service_categories
                        .iter()
                        .find(|c| c.code == code)
                        .map_or_else(|| code.to_owned(), |c| c.name.clone())
                })
                .unwrap_or_default(),
            rule_version: a.rule_version.clone().unwrap_or_else(|| "—".into()),
            honour: a.honour,
            spendable: a.spendable,
            explanation: a.explanation.clone(),
            note: a.note.clone(),
        })
        .collect()
}

/// My points: balance, tier, breakdown and offers (signed in; a member sees their own)
pub(crate) async fn my_points(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = signed_in(&state, &jar, "/me/points").await?;
    let actor = &session.info.actor;
    let chrome = Chrome::new(&state, Some(&session), "");
    let Some(pid) = actor.participant_id.clone() else {
        let t = MyPointsTemplate {
            chrome,
            has_participant: false,
            honour: 0,
            spendable: 0,
            tier: String::new(),
            next_tier: String::new(),
            to_next: None,
            next_expiry: String::new(),
            acts: Vec::new(),
            offers: Vec::new(),
            redemptions: Vec::new(),
        };
        return private_page(StatusCode::OK, &t);
    };
    let s = state.app.points_statement(actor, &pid).await?;
    let book = state.app.rule_book().await?;
    let set = book.sets().last();
    let my_rank = s
        .tier
        .as_ref()
        .and_then(|t| set.and_then(|r| r.tier_rank(&t.code)));
    let offers = state
        .app
        .current_offers()
        .await?
        .into_iter()
        .map(|o| {
            let need = o
                .min_tier
                .as_deref()
                .map(|t| set.and_then(|r| r.tier_rank(t)));
            let tier_ok = match need {
                None => true,
                Some(Some(n)) => my_rank.is_some_and(|m| m >= n),
                Some(None) => false,
            };
            OfferLine {
                channel: channel_zh(&o.channel).to_owned(),
                affordable: tier_ok && o.stock > 0 && s.spendable >= o.cost_points,
                min_tier: o
                    .min_tier
                    .as_deref()
                    .and_then(|t| set.and_then(|r| r.tiers.iter().find(|x| x.code == t)))
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                title: o.title,
                cost: o.cost_points,
                stock: o.stock,
            }
        })
        .collect();
    let redemptions = state
        .app
        .redemptions_for(actor)
        .await?
        .into_iter()
        .filter(|(r, _)| r.participant_id == pid)
        .map(|(r, title)| RedemptionLine {
            id: r.id,
            title,
            cost: r.cost_points,
            state: if r.state == "cancelled" {
                "已取消"
            } else {
                "已兑换"
            }
            .into(),
            at: state.app.local_date(&r.redeemed_at),
        })
        .collect();
    let t = MyPointsTemplate {
        chrome,
        has_participant: true,
        honour: s.honour,
        spendable: s.spendable,
        tier: s.tier.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
        next_tier: s
            .next_tier
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        to_next: s.to_next_tier,
        next_expiry: s.next_expiry.clone().unwrap_or_default(),
        acts: act_lines(&s, state.app.pack()),
        offers,
        redemptions,
    };
    private_page(StatusCode::OK, &t)
}

// ---------------------------------------------------------------------------------------------
// /rules (public)

struct RuleLine {
    version: String,
    name: String,
    effective_from: String,
    published_at: String,
    summary: Vec<String>,
    tiers: Vec<String>,
    body: String,
}

#[derive(Template)]
#[template(path = "points_rules.html")]
struct RulesTemplate {
    chrome: Chrome,
    sets: Vec<RuleLine>,
}

fn yuan(fen: i64) -> String {
    if fen % 100 == 0 {
        format!("¥{}", fen / 100)
    } else {
        format!("¥{}.{:02}", fen / 100, fen % 100)
    }
}

fn summary_of(set: &cishan_core::points::RuleSet) -> Vec<String> {
    let mut lines = vec![
        format!(
            "资金捐赠：每满 {} 计 {} 分",
            yuan(set.money.step),
            set.money.points_per_step
        ),
        format!(
            "物资捐赠（按估值）：每满 {} 计 {} 分",
            yuan(set.goods.step),
            set.goods.points_per_step
        ),
        format!(
            "志愿服务：每满 1 小时计 {} 分，按活动类别倍率（{}）",
            set.volunteer.points_per_hour,
            set.volunteer
                .category_percent
                .iter()
                .map(|(c, p)| format!("{c} {p}%"))
                .collect::<Vec<_>>()
                .join("、")
        ),
        format!(
            "知识技能捐赠：经评估的工时每满 1 小时计 {} 分，按领域倍率",
            set.skill.points_per_hour
        ),
        format!(
            "银行卡积分捐赠：每满 {} 银行积分计 {} 分",
            set.card_points.step, set.card_points.points_per_step
        ),
        format!(
            "可用积分为荣誉积分的 {}%，自行为之日起 {} 个月后到期，先到期的先用",
            set.spendable_percent, set.spendable_expiry_months
        ),
    ];
    for (kind, cap) in &set.caps {
        let name = cishan_core::points::ActKind::parse(kind).map_or(kind.as_str(), |k| k.name_zh());
        let mut parts = Vec::new();
        if let Some(d) = cap.daily {
            parts.push(format!("每日最多 {d} 分"));
        }
        if let Some(m) = cap.monthly {
            parts.push(format!("每月最多 {m} 分"));
        }
        lines.push(format!("{name}上限：{}", parts.join("，")));
    }
    lines
}

/// The published points rules (public)
pub(crate) async fn rules(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = from_cookie(&state, &jar).await?;
    let rows = state.app.published_rules().await?;
    let mut sets = Vec::new();
    for r in rows.into_iter().rev() {
        let parsed = cishan_app::points::parse_rules(&r.body)?;
        sets.push(RuleLine {
            summary: summary_of(&parsed),
            tiers: parsed
                .tiers
                .iter()
                .map(|t| format!("{}：荣誉积分 ≥ {}", t.name, t.min_honour))
                .collect(),
            version: r.version,
            name: r.name,
            effective_from: r.effective_from,
            published_at: r.published_at.chars().take(10).collect(),
            body: r.body,
        });
    }
    let t = RulesTemplate {
        chrome: Chrome::new(&state, session.as_ref(), ""),
        sets,
    };
    Ok((StatusCode::OK, Html(render(&t)?)).into_response())
}

// ---------------------------------------------------------------------------------------------
// /partner/redeem

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RedeemForm {
    csrf: String,
    idem: String,
    offer_id: String,
    code: String,
    participant_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CancelForm {
    csrf: String,
    idem: String,
    reason: String,
}

struct OfferChoice {
    id: String,
    label: String,
    selected: bool,
}

struct PartnerRedemption {
    id: String,
    title: String,
    participant: String,
    cost: i64,
    cancelled: bool,
    at: String,
    idem: String,
}

#[derive(Template)]
#[template(path = "points_partner.html")]
struct PartnerTemplate {
    chrome: Chrome,
    csrf: String,
    idem: String,
    is_staff: bool,
    offers: Vec<OfferChoice>,
    code: String,
    participant_id: String,
    error: Option<String>,
    done: Option<String>,
    redemptions: Vec<PartnerRedemption>,
}

async fn partner_view(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: RedeemForm,
    error: Option<String>,
    done: Option<String>,
) -> PageResult {
    let actor = &session.info.actor;
    let orgs = cishan_app::rewards::partner_orgs(&state.app, actor).await?;
    if orgs.as_ref().is_some_and(Vec::is_empty) {
        return Err(AppError::forbidden().into());
    }
    let offers = state
        .app
        .current_offers()
        .await?
        .into_iter()
        .filter(|o| orgs.as_ref().is_none_or(|os| os.contains(&o.org_id)))
        .map(|o| OfferChoice {
            selected: o.id == form.offer_id,
            label: format!(
                "【{}】{}（{} 分，余 {}）",
                channel_zh(&o.channel),
                o.title,
                o.cost_points,
                o.stock
            ),
            id: o.id,
        })
        .collect();
    let redemptions = state
        .app
        .redemptions_for(actor)
        .await?
        .into_iter()
        .take(30)
        .map(|(r, title)| PartnerRedemption {
            cancelled: r.state == "cancelled",
            id: r.id,
            title,
            participant: r.participant_id,
            cost: r.cost_points,
            at: local_time(state, &r.redeemed_at),
            idem: random_token(),
        })
        .collect();
    let t = PartnerTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        csrf: session.info.csrf_token.clone(),
        idem: if form.idem.is_empty() {
            random_token()
        } else {
            form.idem
        },
        is_staff: actor.is_staff(),
        offers,
        code: form.code,
        participant_id: form.participant_id,
        error,
        done,
        redemptions,
    };
    private_page(status, &t)
}

/// The partner's redemption page: scan or paste the participant's code, choose the offer
pub(crate) async fn partner_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = signed_in(&state, &jar, "/partner/redeem").await?;
    partner_view(
        &state,
        &session,
        StatusCode::OK,
        RedeemForm::default(),
        None,
        None,
    )
    .await
}

/// Redeem an offer for the participant whose code was scanned
pub(crate) async fn partner_redeem(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<RedeemForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/partner/redeem").await?;
    let Form(mut form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let key = match IdempotencyKey::parse(&form.idem) {
        Ok(k) => k,
        Err(_) => {
            form.idem = random_token();
            return partner_view(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                form,
                Some("页面已过期，请重新提交。".into()),
                None,
            )
            .await;
        }
    };
    let input = RedeemInput {
        offer_id: form.offer_id.trim().to_owned(),
        code: Some(form.code.trim().to_owned()).filter(|c| !c.is_empty()),
        participant_id: Some(form.participant_id.trim().to_owned()).filter(|c| !c.is_empty()),
    };
    match state.app.redeem(&session.info.actor, &key, &input).await {
        Ok(done) => {
            let v = done.value;
            let msg = format!(
                "兑换成功：{}，扣除 {} 分，参与者剩余可用 {} 分。兑换编号 {}。",
                v.offer_title, v.cost_points, v.spendable_after, v.id
            );
            partner_view(
                &state,
                &session,
                StatusCode::OK,
                RedeemForm::default(),
                None,
                Some(msg),
            )
            .await
        }
        Err(e) => {
            // A refused redemption leaves the code unused: keep it in the form so another offer
            // can be chosen while it is valid; a code that was itself refused is cleared.
            let code_refused = e.code.starts_with("code.");
            let (status, message) = shown(e)?;
            form.idem = random_token();
            if code_refused {
                form.code.clear();
            }
            partner_view(&state, &session, status, form, Some(message), None).await
        }
    }
}

/// Cancel a redemption (points and stock go back, once)
pub(crate) async fn partner_cancel(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    form: Result<Form<CancelForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/partner/redeem").await?;
    let Form(form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let key = IdempotencyKey::parse(&form.idem)?;
    let reason = if form.reason.trim().is_empty() {
        "合作机构取消".to_owned()
    } else {
        form.reason.trim().to_owned()
    };
    match state
        .app
        .cancel_redemption(&session.info.actor, &key, &id, &CancelInput { reason })
        .await
    {
        Ok(_) => Ok(Redirect::to("/partner/redeem").into_response()),
        Err(e) => {
            let (status, message) = shown(e)?;
            partner_view(
                &state,
                &session,
                status,
                RedeemForm::default(),
                Some(message),
                None,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /admin/points/rules

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RulesForm {
    csrf: String,
    rules: String,
    /// `dry_run` or `apply`.
    action: String,
}

#[derive(Template)]
#[template(path = "points_admin_rules.html")]
struct AdminRulesTemplate {
    chrome: Chrome,
    csrf: String,
    rules: String,
    error: Option<String>,
    report: Option<RecomputeReport>,
    published: Vec<(String, String, String)>,
}

async fn admin_view(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    rules: String,
    error: Option<String>,
    report: Option<RecomputeReport>,
) -> PageResult {
    let published = state
        .app
        .published_rules()
        .await?
        .into_iter()
        .map(|r| {
            (
                r.version,
                r.effective_from,
                r.published_at.chars().take(10).collect(),
            )
        })
        .collect();
    let t = AdminRulesTemplate {
        chrome: Chrome::new(state, Some(session), ""),
        csrf: session.info.csrf_token.clone(),
        rules,
        error,
        report,
        published,
    };
    private_page(status, &t)
}

/// The administrator's rules page: upload a new version, see the dry run, apply
pub(crate) async fn admin_rules(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let session = signed_in(&state, &jar, "/admin/points/rules").await?;
    session.info.actor.require_admin()?;
    admin_view(&state, &session, StatusCode::OK, String::new(), None, None).await
}

/// Dry run or apply a rule version
pub(crate) async fn admin_recompute(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<RulesForm>, FormRejection>,
) -> PageResult {
    let session = signed_in(&state, &jar, "/admin/points/rules").await?;
    session.info.actor.require_admin()?;
    let Form(form) = form.map_err(form_rejection)?;
    check_csrf(&session, &form.csrf)?;
    let dry_run = form.action != "apply";
    match state
        .app
        .recompute_points(&session.info.actor, &form.rules, dry_run)
        .await
    {
        Ok(report) => {
            admin_view(
                &state,
                &session,
                StatusCode::OK,
                form.rules,
                None,
                Some(report),
            )
            .await
        }
        Err(e) => {
            let (status, message) = shown(e)?;
            admin_view(&state, &session, status, form.rules, Some(message), None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_categories_show_by_their_chinese_name() {
        let act = |category: Option<&str>| {
            serde_json::json!({
                "seq": 1, "kind": "volunteer_minutes", "kind_zh": "志愿服务",
                "category": category, "source_kind": "service_record", "source_id": "svc_1",
                "occurred_at": "2024-03-01T02:00:00Z", "local_date": "2024-03-01",
                "quantity": 120, "reversed_quantity": 0, "rule_version": "lucheng-v1",
                "honour": 24, "spendable": 24, "explanation": "", "note": ""
            })
        };
        let statement: PointsStatement = serde_json::from_value(serde_json::json!({
            "participant_id": "ptc_1", "honour": 24, "spendable": 24, "tier": null,
            "next_tier": null, "to_next_tier": null, "next_expiry": null,
            "acts": [act(Some("health")), act(Some("not_in_pack")), act(None)]
        }))
        .unwrap();
        let lines = act_lines(&statement, &cishan_core::region::embedded::lucheng());
        let names: Vec<&str> = lines.iter().map(|l| l.category.as_str()).collect();
        assert_eq!(names, ["", "not_in_pack", "医疗健康"]);
    }
}
