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

/// The floor any validator pays: HMAC-SHA1 of the exact signed bytes with a prepared key (a
/// clone of a keyed `Hmac`, as `Validator` keeps one).
pub fn hmac_floor<'a>(token: &str, signed: &'a [u8]) -> Bench<'a> {
    use hmac::{Hmac, KeyInit, Mac};
    let prepared = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    Bench::new("floor", move || {
        let mut mac = prepared.clone();
        mac.update(std::hint::black_box(signed));
        std::hint::black_box(mac.finalize());
    })
}

/// The floor over a rotation of signed texts, one per call, as the rotating rows use them.
pub fn hmac_floor_rotating<'a>(token: &str, signed: &'a [&'a [u8]]) -> Bench<'a> {
    use hmac::{Hmac, KeyInit, Mac};
    let prepared = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    let mut i = 0;
    Bench::new("floor", move || {
        let mut mac = prepared.clone();
        mac.update(std::hint::black_box(signed[i]));
        std::hint::black_box(mac.finalize());
        i = if i + 1 == signed.len() { 0 } else { i + 1 };
    })
}

/// Median nanoseconds per call of each bench, sampled in `rounds` interleaved rounds.
pub fn medians(benches: &mut [Bench<'_>], rounds: usize) -> Vec<f64> {
    summaries(benches, rounds)
        .into_iter()
        .map(|s| s.median)
        .collect()
}

/// Nanoseconds per call of one bench over its rounds.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub median: f64,
    /// The fastest round: on a shared machine, the figure load moves least.
    pub min: f64,
}

/// [`medians`], with the minimum of the rounds beside each median.
pub fn summaries(benches: &mut [Bench<'_>], rounds: usize) -> Vec<Summary> {
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
            Summary {
                median: s[s.len() / 2],
                min: s[0],
            }
        })
        .collect()
}

/// `--quick` (or BENCH_QUICK=1) makes a smoke run for CI; the default is a real measurement.
pub fn rounds() -> usize {
    let quick =
        std::env::args().any(|a| a == "--quick") || std::env::var_os("BENCH_QUICK").is_some();
    if quick { 3 } else { 41 }
}
