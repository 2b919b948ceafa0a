//! The HTTP face of cishan: server-rendered pages and the JSON API under `/api/v1`.
//!
//! Architecture invariant: handlers are thin. Each parses its input at the boundary, calls one
//! [`App`] use case and renders the result; access checks, validation of domain values and the
//! journal live in the app layer. This crate holds no SQL.
//!
//! Cross-cutting concerns, each in one place:
//! - errors: [`error`] maps `cishan_app::ErrorKind` to an HTTP status for both the JSON envelope
//!   and the HTML error page, and logs internal causes once;
//! - sessions and CSRF: [`session`];
//! - metrics: [`metrics`] (a per-router Prometheus recorder, no global state);
//! - security headers, body limit, timeout and access log: [`router_with`].

mod api;
mod api_campaigns;
mod api_codes;
mod api_ledger;
mod api_log;
mod api_orders;
mod api_participants;
mod api_points;
mod api_registry;
mod api_volunteering;
mod error;
mod metrics;
mod pages;
mod pages_ledger;
mod pages_orders;
mod pages_personal;
mod pages_points;
mod pages_registry;
mod pages_volunteering;
mod params;
mod session;
mod view;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::routing::{self, MethodRouter};
use cishan_app::App;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use api::openapi;

/// The largest request body accepted, in bytes. Every form and JSON body of the platform is
/// far smaller; anything bigger is refused before it is read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long one request may take before the server answers 503 and drops it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The Content-Security-Policy of every response. The pages need no script at all and carry no
/// inline styles, so everything is same-origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Whether session cookies carry `Secure` unless configured otherwise. Off so that a local
/// `http://127.0.0.1` deployment and the tests work; a deployment behind HTTPS turns it on with
/// [`WebOptions::secure_cookies`].
pub const fn default_secure_cookies() -> bool {
    false
}

/// How the web layer is set up. [`router`] uses [`WebOptions::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebOptions {
    /// Adds `Secure` to cookies (serve over HTTPS only).
    pub secure_cookies: bool,
    /// Shows the "演示数据" banner on every page: the data is synthetic.
    pub demo_banner: bool,
}

impl Default for WebOptions {
    fn default() -> WebOptions {
        WebOptions {
            secure_cookies: default_secure_cookies(),
            demo_banner: false,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) app: App,
    pub(crate) options: WebOptions,
    pub(crate) metrics: Arc<metrics::Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Every route of the platform, with its method. The router is built from this table, and a
/// test checks that each entry appears in the OpenAPI document.
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|(m, p, _)| (m, p)).collect()
}

pub(crate) type Route = (Method, &'static str, MethodRouter<AppState>);

fn routes() -> Vec<Route> {
    use Method as M;
    let mut routes = vec![
        // Operations.
        (M::GET, "/healthz", routing::get(api::healthz)),
        (M::GET, "/metrics", routing::get(metrics::render)),
        (M::GET, "/static/app.css", routing::get(pages::stylesheet)),
        // JSON API.
        (
            M::GET,
            "/api/v1/openapi.json",
            routing::get(api::openapi_json),
        ),
        (M::GET, "/api/v1/region", routing::get(api::region)),
        (M::GET, "/api/v1/indicators", routing::get(api::indicators)),
        (
            M::PUT,
            "/api/v1/indicators/{code}/actuals/{year}",
            routing::put(api::set_actual),
        ),
        (
            M::GET,
            "/api/v1/disclosure/summary",
            routing::get(api::disclosure_summary),
        ),
        (
            M::GET,
            "/api/v1/organizations",
            routing::get(api::organizations),
        ),
        (
            M::GET,
            "/api/v1/organizations/{id}",
            routing::get(api::organization),
        ),
        (M::GET, "/api/v1/projects", routing::get(api::projects)),
        (M::GET, "/api/v1/projects/{id}", routing::get(api::project)),
        (
            M::POST,
            "/api/v1/sessions",
            routing::post(api::create_session),
        ),
        (
            M::DELETE,
            "/api/v1/sessions/current",
            routing::delete(api::delete_session),
        ),
        // The donation ledger (一扫清).
        (
            M::POST,
            "/api/v1/donations",
            routing::post(api_ledger::record_donation),
        ),
        (
            M::POST,
            "/api/v1/donations/{id}/refunds",
            routing::post(api_ledger::refund),
        ),
        (
            M::GET,
            "/api/v1/donations/{id}/trace",
            routing::get(api_ledger::trace),
        ),
        (
            M::POST,
            "/api/v1/allocations",
            routing::post(api_ledger::allocate),
        ),
        (
            M::POST,
            "/api/v1/disbursements",
            routing::post(api_ledger::disburse),
        ),
        (
            M::POST,
            "/api/v1/disbursements/{id}/reversal",
            routing::post(api_ledger::reverse),
        ),
        (
            M::POST,
            "/api/v1/match-pools",
            routing::post(api_ledger::create_pool),
        ),
        (
            M::GET,
            "/api/v1/receipts/{number}",
            routing::get(api_ledger::receipt),
        ),
        // Pages.
        (M::GET, "/", routing::get(pages::home)),
        (M::GET, "/organizations", routing::get(pages::organizations)),
        (
            M::GET,
            "/organizations/{id}",
            routing::get(pages::organization),
        ),
        (M::GET, "/projects", routing::get(pages::projects)),
        (M::GET, "/projects/{id}", routing::get(pages::project)),
        (M::GET, "/dashboard", routing::get(pages::dashboard)),
        (M::GET, "/login", routing::get(pages::login_form)),
        (M::POST, "/login", routing::post(pages::login)),
        (M::POST, "/logout", routing::post(pages::logout)),
        (
            M::GET,
            "/admin/indicators",
            routing::get(pages::admin_indicators),
        ),
        (
            M::POST,
            "/admin/indicators",
            routing::post(pages::admin_set_actual),
        ),
    ];
    routes.extend(api_log::routes());
    routes.extend(api_campaigns::routes());
    routes.extend(api_participants::routes());
    routes.extend(api_points::routes());
    routes.extend(api_codes::routes());
    routes.extend(api_volunteering::routes());
    routes.extend(api_registry::routes());
    routes.extend(api_orders::routes());
    routes
}

/// Every route of the platform, with the default [`WebOptions`].
pub fn router(app: App) -> axum::Router {
    router_with(app, WebOptions::default())
}

/// Every route of the platform.
pub fn router_with(app: App, options: WebOptions) -> axum::Router {
    let state = AppState {
        app,
        options,
        metrics: Arc::new(metrics::Metrics::new()),
    };
    let mut router = axum::Router::new();
    for (_, path, method_router) in routes() {
        // Routes sharing a path (GET and POST /login) merge into one method router.
        router = router.route(path, method_router);
    }
    // The ledger's pages (一扫清, receipts, staff forms) bring their own router: the evidence
    // upload route needs a larger body limit than the rest.
    let router = router.merge(pages_ledger::routes());
    let router = router.merge(pages_personal::routes());
    let router = router.merge(pages_volunteering::routes());
    let router = router.merge(pages_points::routes());
    let router = router.merge(pages_orders::routes());
    let router = router.merge(pages_registry::routes());
    let trace = TraceLayer::new_for_http()
        // The span names the route template, never the raw path or query string, which may
        // carry identifiers of people.
        .make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", http.method = %req.method(), http.route = route)
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
        // Failures are logged once, with their cause, where the error is turned into a
        // response (`error.rs`); a second line here would only repeat the status.
        .on_failure(());
    router
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::render_error_pages,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(trace)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .with_state(state)
}

/// Serves `router(app)` on `listener` until `shutdown` completes.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(app, WebOptions::default(), listener, shutdown).await
}

/// Serves `router_with(app, options)` on `listener` until `shutdown` completes.
pub async fn serve_with(
    app: App,
    options: WebOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router_with(app, options))
        .with_graceful_shutdown(shutdown)
        .await
}
