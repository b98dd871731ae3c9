//! Shared helpers for the latchkey benches: the workload every store bench uses, so that the
//! memory and Redis figures are taken on the same payload, session count and task count, and
//! the interleaved pass that the jwt and axum benches run after their criterion groups.

use std::time::Instant;

use serde_json::Value;
use tokio::runtime::Runtime;

/// Bytes of application data in every bench session.
pub const PAYLOAD_LEN: usize = 200;
/// Sessions created before the load and save groups run.
pub const PRELOADED: usize = 10_000;
/// Concurrent tasks in the "many tasks" groups.
pub const TASKS: usize = 64;

/// The session payload: one JSON string of [`PAYLOAD_LEN`] bytes.
#[must_use]
pub fn payload() -> Value {
    Value::String("p".repeat(PAYLOAD_LEN))
}

/// A 2-worker multi-threaded tokio runtime (one worker per core of the development machine).
///
/// # Panics
///
/// If the runtime cannot be built.
#[must_use]
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One contender of an interleaved pass: its name and a closure that runs `n` operations.
pub type Variant<'a> = (&'a str, &'a mut dyn FnMut(u32));

/// A [`Variant`] closure from one operation: runs it `n` times, each result through
/// [`black_box`](std::hint::black_box), as criterion's `iter` does.
pub fn batch<T>(op: impl Fn() -> T) -> impl FnMut(u32) {
    move |n| {
        for _ in 0..n {
            std::hint::black_box(op());
        }
    }
}

/// Whether to run the interleaved pass after criterion: only under `cargo bench` (which passes
/// `--bench`), not when listing, and with no filter or the filter `interleaved` (which matches
/// no criterion benchmark, so that the pass runs alone).
#[must_use]
pub fn interleaved_wanted() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err());
    filters.all(|f| f == "interleaved")
        && args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| a == "--list")
}

/// Times `variants` interleaved and prints, per variant, the median over rounds of its time per
/// operation, of its difference to `variants[baseline]` (when given) and of its ratio to each
/// of `variants[references]` in the same round, with quartiles.
///
/// Every round runs `per_round` operations of each variant, in an order that rotates from round
/// to round. On a machine whose speed drifts over seconds (shared or throttled cores),
/// criterion's one-contender-after-the-other medians can move apart by more than the effect
/// measured; the median of same-round ratios cannot, because both sides of every ratio ran
/// within milliseconds of each other.
///
/// # Panics
///
/// If `variants` is empty or an index is out of range.
pub fn interleaved(
    title: &str,
    variants: &mut [Variant<'_>],
    references: &[usize],
    baseline: Option<usize>,
    rounds: usize,
    per_round: u32,
) {
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds {
        for k in 0..variants.len() {
            let i = (round + k) % variants.len();
            let start = Instant::now();
            (variants[i].1)(per_round);
            times[i].push(start.elapsed().as_secs_f64() * 1e9 / f64::from(per_round));
        }
    }
    let quartiles = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
    };
    println!("{title} interleaved: {rounds} rounds of {per_round} operations per variant (medians over rounds)");
    for (i, (name, _)) in variants.iter().enumerate() {
        let (_, ns, _) = quartiles(times[i].clone());
        let above = baseline.map_or(String::new(), |b| {
            let d = quartiles(times[i].iter().zip(&times[b]).map(|(x, y)| x - y).collect()).1;
            format!(", {d:>7.1} ns above {}", variants[b].0)
        });
        let ratios: Vec<String> = references
            .iter()
            .map(|&reference| {
                let ratios = times[i]
                    .iter()
                    .zip(&times[reference])
                    .map(|(x, r)| x / r)
                    .collect();
                let (q1, r, q3) = quartiles(ratios);
                format!(
                    "/ {} in the same round: {r:.3}x (quartiles {q1:.3}-{q3:.3})",
                    variants[reference].0
                )
            })
            .collect();
        println!("  {name:<22} {ns:>8.1} ns/op{above}; {}", ratios.join("; "));
    }
}
