//! The simulator: a whole fault-free reconfiguration of 32 sleds, and event
//! throughput with 16 sleds.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tq_sim::event::Event;
use tq_sim::liveness::settle;
use tq_sim::world::sled_id;
use tq_sim::{FaultPreset, SimOptions, World, run};

/// A settled 32-sled world whose first configuration has 17 members.
fn settled_world() -> World {
    let options = SimOptions {
        nodes: 32,
        steps: 0,
        faults: FaultPreset::None,
        replicas: 1,
        ..SimOptions::new(1)
    };
    let mut world = World::new(options);
    world.apply(&Event::BeginLiveness);
    settle(&mut world, 1_000_000).unwrap();
    world
}

fn reconfiguration(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    // Add the 15 spares at once: from the request to every member committed
    // and activated.
    g.bench_function("add_15_sleds_to_17_committed_activated", |b| {
        b.iter_batched(
            settled_world,
            |mut world| {
                let sleds = (17..32).map(sled_id).collect();
                world.apply(&Event::AddSleds { replica: 0, sleds });
                settle(&mut world, 1_000_000).unwrap();
                world
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_throughput_16_sleds");
    g.sample_size(10);
    for faults in [FaultPreset::None, FaultPreset::Swarm] {
        let options = SimOptions { nodes: 16, faults, ..SimOptions::new(11) };
        let events = run(&options, false).events;
        g.throughput(Throughput::Elements(events));
        g.bench_function(faults.to_string(), |b| b.iter(|| run(&options, false)));
    }
    g.finish();
}

criterion_group!(benches, reconfiguration, throughput);
criterion_main!(benches);
