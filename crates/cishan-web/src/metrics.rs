//! Prometheus metrics. Each router owns its recorder, so two routers in one process (tests, or a
//! second listener) never fight over a global one.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::AppState;

/// Histogram buckets for request durations, in seconds.
const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The Prometheus text exposition format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One router's recorder and the handle that renders it.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let builder = PrometheusBuilder::new();
        // The bucket list is a non-empty constant, so this cannot fail; fall back to summaries
        // rather than panic if it ever did.
        let builder = match builder.set_buckets(DURATION_BUCKETS_SECONDS) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Metrics { recorder, handle }
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }
}

/// Counts every request by method, route template and status, and times it.
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only the methods the platform knows become label values: anyone can send an invented
    // method, and each distinct label value is a new time series kept forever.
    let method = match *req.method() {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::OPTIONS => req.method().as_str().to_owned(),
        _ => "other".to_owned(),
    };
    // The template (`/projects/{id}`), never the raw path: bounded label values, and no
    // identifiers in metrics.
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let elapsed = started.elapsed();
    state.metrics.with(|| {
        counter!(
            "http_requests_total",
            "method" => method.clone(),
            "path" => path.clone(),
            "status" => status
        )
        .increment(1);
        histogram!(
            "http_request_duration_seconds",
            "method" => method,
            "path" => path
        )
        .record(elapsed);
    });
    res
}

/// Prometheus text format
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String))
)]
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    // Platform gauges are read at scrape time, so they are exact and cost nothing between
    // scrapes. A failed read leaves the previous value and is logged.
    let journal = state.app.store().recent_journal(1).await;
    let summary = state.app.disclosure_summary().await;
    state.metrics.with(|| {
        match journal {
            Ok(entries) => {
                // Sequence numbers are gapless from 1, so the head's number is the count.
                let head = entries.first().map_or(0, |e| e.seq);
                gauge!("cishan_journal_entries").set(as_gauge(head));
            }
            Err(e) => tracing::error!(error.cause = %e, "metrics: cannot read the journal head"),
        }
        match summary {
            Ok(s) => {
                gauge!("cishan_donors").set(as_gauge(s.donors));
                gauge!("cishan_donated_fen").set(as_gauge(s.donated_fen));
                gauge!("cishan_people_helped").set(as_gauge(s.people_helped));
                gauge!("cishan_projects").set(as_gauge(s.projects));
                gauge!("cishan_organizations").set(as_gauge(s.organizations));
            }
            Err(e) => tracing::error!(error.code = %e.code, "metrics: cannot read the summary"),
        }
    });
    state.metrics.handle.run_upkeep();
    let body = state.metrics.handle.render();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// Gauges are `f64`; counts far below 2^53 convert exactly.
fn as_gauge(n: i64) -> f64 {
    n as f64
}
