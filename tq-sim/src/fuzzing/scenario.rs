//! The small rack run once, fault-free, whose durable states and messages
//! the node fuzzing draws from.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{
    BaseboardId, CommitRequest, Configuration, Envelope, Epoch, RackId, ReconfigureMsg, Threshold,
};
use trust_quorum::PersistentState;
use trust_quorum::crypto::authority::Authority;
use trust_quorum::harness::Rack;

use crate::world::sled_id;

/// A small rack run once, fault-free, through the embedder loop: the states
/// and messages `node_inputs` draws from.
pub(super) struct Scenario {
    /// Durable states worth starting from, by sled.
    pub(super) checkpoints: Vec<(BaseboardId, PersistentState)>,
    /// Every envelope sent during the run.
    pub(super) sent: Vec<Envelope>,
    /// Every configuration seen.
    pub(super) configs: Vec<Configuration>,
    /// The control plane's authority, which every sled trusts.
    pub(super) authority: Authority,
}

/// The scenario, built once.
pub(super) fn scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(build_scenario)
}

/// The rack the scenario and the fuzzed inputs belong to.
pub(super) fn rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0xf022))
}

/// Five sleds commit epoch 1 ({0..4}); epoch 2 removes sled 4 and adds 5.
fn build_scenario() -> Scenario {
    let ids: Vec<BaseboardId> = (0..6).map(sled_id).collect();
    let authority = Authority::generate(&mut ChaCha20Rng::seed_from_u64(0xa07));
    let mut rack_ = Rack::new(ids.iter().cloned(), authority.public_key(), 0);
    let mut checkpoints = Vec::new();
    let mut configs = Vec::new();
    let members1: BTreeSet<BaseboardId> = ids.iter().take(5).cloned().collect();
    let members2: BTreeSet<BaseboardId> =
        ids.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, id)| id.clone()).collect();
    for (epoch, last, members, coordinator) in
        [(1, None, &members1, &ids[0]), (2, Some(Epoch(1)), &members2, &ids[1])]
    {
        let msg = ReconfigureMsg {
            rack_id: rack(),
            epoch: Epoch(epoch),
            last_committed_epoch: last,
            members: members.clone(),
            threshold: Threshold(3),
            coordinator: coordinator.clone(),
        };
        let msg = authority.sign_reconfigure(msg).expect("signs");
        let accepted = rack_.request(coordinator, |n, c| n.coordinate_reconfiguration(c, msg));
        accepted.expect("up").expect("valid request");
        rack_.deliver_all().expect("drains");
        let status = rack_.sled(coordinator).and_then(|s| s.coordinator_status().cloned());
        let config = status.expect("coordinating").config;
        let certificate = authority.certify(&config).expect("certifies");
        for m in members {
            let req = CommitRequest { rack_id: rack(), epoch: Epoch(epoch), certificate };
            let _answer = rack_.request(m, |n, c| n.commit_configuration(c, req));
        }
        // Every member loads the secret, so shares flow too.
        for m in members {
            let _pending = rack_.call(m, |n, c| n.load_rack_secret(c, Epoch(epoch)));
        }
        rack_.deliver_all().expect("drains");
        for (id, sled) in rack_.sleds() {
            checkpoints.push((id.clone(), sled.disk().clone()));
        }
        configs.push(config);
    }
    Scenario { checkpoints, sent: rack_.sent().to_vec(), configs, authority }
}
