//! Settings per host and per endpoint rule, from a TOML file, against a
//! local server that refuses everything with 429:
//!
//! ```text
//! cargo run -p ratekeeper-http --example per_host
//! ```
//!
//! The host's `max_attempts = 2` gives a call two tries before
//! `RATE_LIMIT_MAX_RETRIES_EXCEEDED`; the export rule switches the gate
//! off for its URLs, so they pass straight through, 429 and all.

use std::sync::Arc;

use ratekeeper_http::{Config, Gate, GateMiddleware, gate_error};

const CONFIG: &str = r#"
max_attempts = 6
backoff_base_ms = 100

[hosts."127.0.0.1"]
max_attempts = 2
breaker_failures = 10

[[endpoints]]
pattern = "/export/*"
enabled = false
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let busy = axum::Router::new().fallback(|| async { (axum::http::StatusCode::TOO_MANY_REQUESTS, "busy") });
    tokio::spawn(async move { axum::serve(listener, busy).await });

    let config = Config::from_toml_str(CONFIG)?;
    let gate = Arc::new(Gate::memory(&config)?);
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(GateMiddleware::new(Arc::clone(&gate)))
        .build();
    for path in ["/items/1", "/export/1"] {
        match client.get(format!("http://{addr}{path}")).send().await {
            Ok(response) => println!(
                "{path}: HTTP {} (passed straight through)",
                response.status().as_u16()
            ),
            Err(error) => match gate_error(&error) {
                Some(refused) => println!(
                    "{path}: {} after {} attempts: {}",
                    refused.code(),
                    refused.attempts(),
                    refused.user_message()
                ),
                None => println!("{path}: transport error: {error}"),
            },
        }
    }
    Ok(())
}
