//! `GET /metrics` (feature `metrics`): the service's metrics in
//! Prometheus's text format, from metrics-exporter-prometheus's recorder,
//! served by this router rather than a listener of the exporter's own.
//!
//! DEMO ONLY: anyone may read it here. The figures hold no secret, but
//! they tell traffic and failure rates: a real service serves them on an
//! internal port, or behind its own authentication.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use api_tokens::TokenService;
use api_tokens::metrics::{VERIFICATION_DURATION, VERIFICATION_DURATION_BUCKETS};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the process's metrics recorder, with real histogram buckets for
/// the verification duration. Call it before building the `TokenService`:
/// a service reports to the recorder installed when it was built.
pub fn install() -> Result<PrometheusHandle, Box<dyn Error>> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(VERIFICATION_DURATION.to_owned()),
            VERIFICATION_DURATION_BUCKETS,
        )?
        .install_recorder()?;
    api_tokens::metrics::describe_metrics();
    Ok(handle)
}

/// `GET /metrics`, with `tokens`' verification counts exact to the last
/// call. Also runs the exporter's upkeep every five seconds (the
/// recorder buffers histogram samples until then), so the buffer stays
/// small however rarely Prometheus scrapes.
pub fn routes(handle: PrometheusHandle, tokens: Arc<TokenService>) -> Router {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let scrape = async move || {
        // Verification counts reach the recorder in batches; this hands
        // over the last one.
        tokens.publish_metrics();
        let text_format = "text/plain; version=0.0.4; charset=utf-8";
        ([(CONTENT_TYPE, text_format)], handle.render())
    };
    Router::new().route("/metrics", get(scrape))
}
