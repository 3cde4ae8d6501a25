//! `--metrics-addr`: a job's metrics over HTTP, in the Prometheus text format, at `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use weir::JobMetrics;

/// Serves `metrics` at `http://ADDR/metrics` from a background thread until the process ends;
/// returns the address it listens on (port 0 picks a free one).
pub fn serve(addr: SocketAddr, metrics: Arc<JobMetrics>) -> anyhow::Result<SocketAddr> {
    let server = tiny_http::Server::http(addr)
        .map_err(|error| anyhow::anyhow!("{error}"))
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .context("the metrics server listens on no IP address")?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url() == "/metrics" {
                    let content_type = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; version=0.0.4; charset=utf-8"[..],
                    );
                    let response = tiny_http::Response::from_string(metrics.prometheus());
                    match content_type {
                        Ok(header) => response.with_header(header),
                        Err(()) => response,
                    }
                } else {
                    tiny_http::Response::from_string("weir serves its metrics at /metrics\n")
                        .with_status_code(404)
                };
                if let Err(error) = request.respond(response) {
                    tracing::debug!(%error, "a metrics request failed");
                }
            }
        })
        .context("cannot start the metrics thread")?;
    Ok(bound)
}
