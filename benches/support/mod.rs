//! A small timing harness shared by the benches.
//!
//! The functions under comparison are sampled in interleaved rounds, so that a burst of load on
//! this shared machine hits all of them alike, and each is summarised by its median sample.
//! Ratios are only ever computed between figures from the same run.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// How long one sample runs.
const SAMPLE: Duration = Duration::from_millis(4);

pub struct Bench<'a> {
    pub name: &'static str,
    pub run: Box<dyn FnMut() + 'a>,
}

impl<'a> Bench<'a> {
    pub fn new(name: &'static str, run: impl FnMut() + 'a) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }
}

/// Median nanoseconds per call of each bench, sampled in `rounds` interleaved rounds.
pub fn medians(benches: &mut [Bench<'_>], rounds: usize) -> Vec<f64> {
    // Calibrate: iterations per sample so that each sample takes about SAMPLE.
    let iterations: Vec<u64> = benches
        .iter_mut()
        .map(|bench| {
            let mut n = 1u64;
            loop {
                let start = Instant::now();
                for _ in 0..n {
                    (bench.run)();
                }
                if start.elapsed() >= SAMPLE / 4 {
                    break n * 4;
                }
                n *= 2;
            }
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); benches.len()];
    for _ in 0..rounds {
        for (i, bench) in benches.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..iterations[i] {
                (bench.run)();
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / iterations[i] as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// `--quick` (or BENCH_QUICK=1) makes a smoke run for CI; the default is a real measurement.
pub fn rounds() -> usize {
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    if quick { 3 } else { 41 }
}

/// The inbound-SMS webhook Twilio sends: 20 parameters, about 560 bytes of body.
pub fn sms_params() -> Vec<(String, String)> {
    [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", "Hello from Twilio! Reply STOP to opt out."),
        ("FromCountry", "US"),
        ("To", "+14155550100"),
        ("MessagingServiceSid", "MG1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "SM8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c"),
        ("AccountSid", "AC3f9a7c2e5b8d1f4a6c9e2b5d8f1a4c7e"),
        ("From", "+14155550123"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn tiny_params() -> Vec<(String, String)> {
    vec![
        ("CallSid".into(), "CA1234567890ABCDE".into()),
        ("CallStatus".into(), "completed".into()),
        ("From".into(), "+14155550123".into()),
    ]
}

/// A large webhook: 100 parameters, about 8.5 KiB of body.
pub fn large_params() -> Vec<(String, String)> {
    (0..100)
        .map(|i| {
            (
                format!("Field{i:03}"),
                format!(
                    "value {i} with some text, a + sign and 70 more characters of payload: {}",
                    "x".repeat(i % 7)
                ),
            )
        })
        .collect()
}

pub fn form_body(params: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}
