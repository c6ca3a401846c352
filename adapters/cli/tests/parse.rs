//! `ratekeeper parse` as a user runs it: the built binary, headers on
//! stdin, one JSON object on stdout, reasons on stderr.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `ratekeeper parse ARGS` with `stdin`; returns (exit code, stdout JSON, stderr).
fn parse(args: &[&str], stdin: &str) -> (i32, serde_json::Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratekeeper"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin is written");
    let output = child.wait_with_output().expect("the binary exits");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    assert_eq!(stdout.lines().count(), 1, "one line of output: {stdout:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let keys: Vec<&str> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "format",
        "limit",
        "remaining",
        "reset_after_ms",
        "retry_after_ms",
        "window_ms",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected, "all six keys, always");
    (
        output.status.code().expect("an exit code"),
        json,
        String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    )
}

#[test]
fn close_search_endpoint_as_in_the_contract() {
    let (code, json, stderr) = parse(
        &["--now", "0"],
        "HTTP/1.1 200 OK\nratelimit: limit=16; remaining=14; reset=1\n",
    );
    assert_eq!(code, 0);
    assert_eq!(json["limit"], 16);
    assert_eq!(json["remaining"], 14);
    assert_eq!(json["reset_after_ms"], 1000);
    assert_eq!(json["format"], "close");
    assert!(json["retry_after_ms"].is_null() && json["window_ms"].is_null());
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn draft_08_window_and_retry_after_on_any_status() {
    let input = "HTTP/2 200\r\nRateLimit-Policy: \"burst\";q=100;w=60\r\nRateLimit: \"burst\";r=0;t=30\r\nRetry-After: 2.5\r\n\r\n{\"body\": 1}\n";
    let (code, json, _) = parse(&[], input);
    assert_eq!(code, 0);
    assert_eq!(
        (json["limit"].as_u64(), json["window_ms"].as_u64()),
        (Some(100), Some(60_000))
    );
    assert_eq!(json["retry_after_ms"], 2500);
}

#[test]
fn now_overrides_date_and_date_is_the_default() {
    let input = "date: Tue, 14 Nov 2023 22:13:20 GMT\nx-ratelimit-limit: 5000\nx-ratelimit-remaining: 1\nx-ratelimit-reset: 1700000060\n";
    assert_eq!(parse(&[], input).1["reset_after_ms"], 60_000);
    assert_eq!(parse(&["--now", "1700000050"], input).1["reset_after_ms"], 10_000);
}

#[test]
fn host_profiles_apply() {
    let input = "X-Rate-Limit-Limit: 1000\nX-Rate-Limit-Remaining: 999\nX-Rate-Limit-Reset: 600000\n";
    assert_eq!(
        parse(&["--host", "api.prisjakt.nu"], input).1["reset_after_ms"],
        600_000
    );
    assert_eq!(parse(&[], input).1["reset_after_ms"], 600_000_000);
}

#[test]
fn malformed_fields_are_null_and_explained() {
    let (code, json, stderr) = parse(
        &["--now", "0"],
        "HTTP/1.1 429\nx-ratelimit-limit: NaN\nx-ratelimit-remaining: -1\nnot a header\n",
    );
    assert_eq!(code, 0);
    assert!(
        json.as_object().unwrap().values().all(serde_json::Value::is_null),
        "{json}"
    );
    assert!(
        stderr.contains("x-ratelimit-limit") && stderr.contains("malformed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("negative") && stderr.contains("line 4"),
        "{stderr}"
    );
    let (code, json, _) = parse(&[], "");
    assert_eq!((code, json["format"].is_null()), (0, true));
}
