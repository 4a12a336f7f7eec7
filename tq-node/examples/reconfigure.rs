//! Benchmark: one reconfiguration of a rack of sled agents over loopback
//! TLS, connections already up, from the request to every member committed
//! (durable writes with fsync included). Prints medians for 8 and 32 sleds.
//!
//! `cargo run --release -p tq-node --example reconfigure`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::arithmetic_side_effects
)]
#![allow(missing_docs, clippy::indexing_slicing)]

#[path = "../tests/agents_support/mod.rs"]
mod agents_support;

use std::time::Duration;

use agents_support::{LocalRack, now, sled, sleds};

const ITERATIONS: usize = 10;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn measure(n: usize) {
    let mut rack = LocalRack::new(n);
    rack.start_all().await;
    rack.initialize(sleds(0..n)).await;
    let spare = sled(n - 1);
    let (mut total, mut prepare, mut commit) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ITERATIONS {
        let start = std::time::Instant::now();
        let epoch = if i % 2 == 0 {
            rack.cp.remove_sleds([spare.clone()], now(), &mut rack.rng).unwrap()
        } else {
            rack.cp.add_sleds([spare.clone()], now(), &mut rack.rng).unwrap()
        };
        let (committing, committed) = rack.drive_tight(epoch).await;
        total.push(committed - start);
        prepare.push(committing - start);
        commit.push(committed - committing);
    }
    println!(
        "{n} sleds: reconfiguration median {:.1} ms (request to K+Z prepared {:.1} ms, then to all committed {:.1} ms), {ITERATIONS} runs",
        median(total).as_secs_f64() * 1e3,
        median(prepare).as_secs_f64() * 1e3,
        median(commit).as_secs_f64() * 1e3,
    );
    rack.shutdown().await;
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        for n in [8, 32] {
            measure(n).await;
        }
    });
}
