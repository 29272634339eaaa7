//! How validation scales: per parameter and per byte, against the floor of the same run.
//!
//! Run: `cargo bench --bench scaling`. Rows: 1 to 1,000 distinct parameters; one name repeated
//! 1,000 times (every value under it sorted); 45% of the values escaped; 100 KB bodies. Each
//! row prints the floor (HMAC-SHA1 of the exact signed bytes), `validate_body` with a valid
//! signature, their ratio, and the cost per parameter: linear growth shows as a flat ratio.

#[path = "../tests/support/mod.rs"]
mod fixtures;
mod support;

use std::hint::black_box;

use fixtures::form_body;
use support::{Bench, hmac_floor, medians, rounds};
use twilio_webhook::{Validator, compute_signature, signed_string};

const TOKEN: &str = "7c3f1e0a9b8d4c2e6f5a1b3d9e8c7f60";
const URL: &str = "https://api.example.com/twilio/sms/inbound";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

fn distinct(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("Param{i:04}"), format!("value number {i}")))
        .collect()
}

fn repeated(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                "MediaUrl".to_owned(),
                format!("https://m/{}", (i * 7919) % n),
            )
        })
        .collect()
}

fn escaped(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let value = if i % 20 < 9 {
                format!("+1415555{i:04} & café/{i}")
            } else {
                format!("plain{i}")
            };
            (format!("Field{i:03}"), value)
        })
        .collect()
}

fn large(bytes: usize) -> Vec<(String, String)> {
    let per = 1000;
    (0..bytes / per)
        .map(|i| (format!("Chunk{i:03}"), "x".repeat(per - 10)))
        .collect()
}

fn main() {
    let rounds = rounds();
    println!(
        "{:<28} {:>7} {:>8} {:>10} {:>10} {:>8} {:>10}",
        "shape", "params", "body B", "floor ns", "valid ns", "valid/f", "ns/param"
    );
    let rows: Vec<(String, Vec<(String, String)>)> = [1, 10, 100, 1000]
        .into_iter()
        .map(|n| (format!("{n} distinct"), distinct(n)))
        .chain([
            ("one name x1000".to_owned(), repeated(1000)),
            ("45% escaped, 100".to_owned(), escaped(100)),
            ("100 KB body".to_owned(), large(100_000)),
        ])
        .collect();
    let validator = Validator::new(TOKEN);
    for (name, params) in rows {
        let body = form_body(&params);
        let signed = signed_string(URL, &params);
        let good = compute_signature(TOKEN, URL, &params);
        let mut benches = [
            hmac_floor(TOKEN, signed.as_bytes()),
            Bench::new("valid", || {
                let verdict = validator.validate_body(
                    black_box(URL),
                    FORM,
                    black_box(body.as_bytes()),
                    black_box(&good),
                );
                assert!(verdict.is_ok());
            }),
        ];
        let m = medians(&mut benches, rounds);
        println!(
            "{:<28} {:>7} {:>8} {:>10.0} {:>10.0} {:>8.2} {:>10.1}",
            name,
            params.len(),
            body.len(),
            m[0],
            m[1],
            m[1] / m[0],
            (m[1] - m[0]) / params.len() as f64
        );
    }
}
