//! `cishan bench donations` through the binary: a short run posts donations over HTTP to the
//! real server and reports them all stored. No timing assertions: only that it works.

use std::process::{Command, Stdio};

/// The number after `label` at the start of a line of `text`.
fn reported(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
}

#[test]
fn a_short_donations_bench_stores_every_donation_it_reports() {
    let out = Command::new(env!("CARGO_BIN_EXE_cishan"))
        .args(["bench", "donations", "--clients", "4", "--seconds", "1"])
        .env("RUST_LOG", "warn")
        .env_remove("CISHAN_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run cishan bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let donations = reported(&stdout, "donations: ");
    assert!(donations > 0, "{stdout}");
    assert_eq!(reported(&stdout, "failures: "), 0, "{stdout}");
    assert_eq!(reported(&stdout, "database: "), donations, "{stdout}");
}
