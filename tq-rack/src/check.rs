//! Checking a rack from outside once it settled: the members' durable
//! files, the keys they derive, the ledger and the sleds' alarms.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use tq_types::{ConfigState, Epoch, RackMembershipState, RackMembershipStatus};
use trust_quorum::PersistentState;
use trust_quorum::control::{ControlPlane, ControlPlaneConfig};

use crate::client::{self, Operator};
use crate::commands;
use crate::error::RackError;
use crate::layout::{Proc, Rack};
use crate::procs;
use crate::wait::{ABORT_SETTLE, Deadline};

/// The key derivation context of the check.
pub const KEY_CONTEXT: &str = "chaos";
/// How long each member may take to derive its key.
pub const KEY_LIMIT: Duration = Duration::from_secs(30);

/// A settled rack.
#[derive(Clone, Debug)]
pub struct Settled {
    /// The latest epoch of the ledger (committed or aborted).
    pub latest: Epoch,
    /// The newest committed epoch and its members.
    pub committed: RackMembershipStatus,
}

/// Waits (at most `limit`) until the rack settles: its latest epoch
/// committed by every member, or aborted (and left so for
/// [`ABORT_SETTLE`]) over a base committed by every member.
pub async fn settle(operator: &Operator, limit: Duration) -> Result<Settled, RackError> {
    let mut deadline =
        Deadline::new("the rack to settle (latest epoch committed or aborted)", limit);
    let mut aborted: Option<(Epoch, Instant)> = None;
    loop {
        match operator.status(None).await {
            Ok(Some(latest)) => match latest.state {
                RackMembershipState::Committed if latest.unacknowledged_members.is_empty() => {
                    return Ok(Settled { latest: latest.epoch, committed: latest });
                }
                RackMembershipState::Aborted => {
                    let since = match aborted {
                        Some((epoch, since)) if epoch == latest.epoch => since,
                        _ => Instant::now(),
                    };
                    aborted = Some((latest.epoch, since));
                    match commands::current(operator).await {
                        Ok(Some(base))
                            if base.state == RackMembershipState::Committed
                                && base.unacknowledged_members.is_empty()
                                && since.elapsed() >= ABORT_SETTLE =>
                        {
                            return Ok(Settled { latest: latest.epoch, committed: base });
                        }
                        Ok(base) => deadline.note(format!(
                            "epoch {} aborted; base: {}",
                            latest.epoch,
                            base.as_ref().map_or("none".into(), commands::summary)
                        )),
                        Err(e) => deadline.note(e.to_string()),
                    }
                }
                _ => deadline.note(commands::summary(&latest)),
            },
            Ok(None) => deadline.note("no configuration in the ledger"),
            Err(e) => deadline.note(e.to_string()),
        }
        deadline.tick(Duration::from_millis(200)).await?;
    }
}

/// Runs every check on a settled rack; returns the violations found.
pub async fn check(rack: &Rack, operator: &Operator, settled: &Settled) -> Vec<String> {
    let mut violations = Vec::new();
    let epoch = settled.committed.epoch;
    let mut members = Vec::new();
    for id in &settled.committed.members {
        match rack.index_of(id) {
            Some(index) => members.push(index),
            None => {
                violations.push(format!("member {id} of epoch {epoch} is not a sled of the rack"))
            }
        }
    }
    for index in &members {
        if let Err(v) = durable(rack, *index, epoch) {
            violations.push(v);
        }
    }
    violations.extend(keys(rack, &members, epoch).await);
    violations.extend(ledger(rack, operator, settled).await);
    violations.extend(alarms(rack, &members, epoch).await);
    violations
}

/// Sled `index`'s durable files, read from a copy, commit `epoch` as
/// their latest and are not expunged.
pub fn durable(rack: &Rack, index: usize, epoch: Epoch) -> Result<(), String> {
    let state = read_state(rack, index).map_err(|e| format!("sled-{index}: {e}"))?;
    let latest = state.latest_committed_epoch();
    if latest != Some(epoch) {
        return Err(format!(
            "sled-{index}: its durable files commit {latest:?} as the latest, not epoch {epoch}"
        ));
    }
    if let Some(expunged) = state.expunged() {
        return Err(format!("sled-{index}: member of epoch {epoch} but expunged: {expunged:?}"));
    }
    Ok(())
}

/// Sled `index`'s durable state, read from copies of its two files in a
/// temporary folder (opening may repair, and must not touch the sled's).
pub fn read_state(rack: &Rack, index: usize) -> Result<PersistentState, String> {
    let temp = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let names = tq_node::storage::FILE_NAMES;
    let [a, b] = rack.data_dirs(index);
    let sources = [a.join(names[0]), b.join(names[1])];
    let copies = [temp.path().join("a").join(names[0]), temp.path().join("b").join(names[1])];
    for (source, copy) in sources.iter().zip(&copies) {
        let folder = copy.parent().unwrap_or(temp.path());
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        match std::fs::copy(source, copy) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("copying {}: {e}", source.display())),
        }
    }
    let opened = tq_node::storage::Storage::open(copies)
        .map_err(|e| format!("durable state unusable: {e}"))?;
    let payload = opened.payload.ok_or("no durable state at all")?;
    PersistentState::decode(&payload).map_err(|e| format!("durable state does not decode: {e}"))
}

/// Every member derives the same key for [`KEY_CONTEXT`] from `epoch`.
async fn keys(rack: &Rack, members: &[usize], epoch: Epoch) -> Vec<String> {
    let mut violations = Vec::new();
    let Ok(http) = client::http() else { return vec!["no HTTP client".into()] };
    // All at once, so the whole check takes at most KEY_LIMIT.
    let mut asks = tokio::task::JoinSet::new();
    for index in members.iter().copied() {
        let (rack, http) = (rack.clone(), http.clone());
        asks.spawn(async move { (index, member_key(&rack, &http, index, epoch).await) });
    }
    let mut keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    while let Some(answer) = asks.join_next().await {
        match answer {
            Ok((index, Ok(key))) => keys.entry(key).or_default().push(index),
            Ok((index, Err(e))) => {
                violations.push(format!("sled-{index}: no key for epoch {epoch}: {e}"));
            }
            Err(e) => violations.push(format!("a key request failed: {e}")),
        }
    }
    keys.values_mut().for_each(|sleds| sleds.sort_unstable());
    if keys.len() > 1 {
        let groups: Vec<String> = keys.values().map(|sleds| format!("{sleds:?}")).collect();
        violations.push(format!(
            "members derive {} different keys for epoch {epoch}: {}",
            keys.len(),
            groups.join(" / ")
        ));
    }
    violations
}

async fn member_key(
    rack: &Rack,
    http: &reqwest::Client,
    index: usize,
    epoch: Epoch,
) -> Result<String, RackError> {
    let token_path = rack.token_path(index);
    let token = std::fs::read_to_string(&token_path).map_err(RackError::io(&token_path))?;
    let local = rack.sled(index)?.local;
    let mut deadline =
        Deadline::new(format!("sled-{index} to derive its key of epoch {epoch}"), KEY_LIMIT);
    loop {
        match client::sled_key(http, local, token.trim(), epoch, KEY_CONTEXT).await {
            Ok(Ok(key)) => return Ok(key),
            Ok(Err((503, body))) => deadline.note(format!("HTTP 503 {body}")),
            Ok(Err((status, body))) => {
                return Err(RackError::Failed(format!("HTTP {status}: {body}")));
            }
            Err(e) => deadline.note(e.to_string()),
        }
        deadline.tick(Duration::from_millis(250)).await?;
    }
}

/// The ledger in the database validates and agrees with the operator
/// API; every epoch's view can be read.
async fn ledger(rack: &Rack, operator: &Operator, settled: &Settled) -> Vec<String> {
    let mut violations = Vec::new();
    match load_ledger(rack).await {
        Ok(cp) => {
            if cp.latest_epoch() != Some(settled.latest) {
                violations.push(format!(
                    "the database's latest epoch is {:?}, the operator API's {}",
                    cp.latest_epoch(),
                    settled.latest
                ));
            }
            if cp.last_committed_epoch() != Some(settled.committed.epoch) {
                violations.push(format!(
                    "the database's last committed epoch is {:?}, not {}",
                    cp.last_committed_epoch(),
                    settled.committed.epoch
                ));
            }
        }
        Err(e) => violations.push(format!("ledger database: {e}")),
    }
    for e in 1..=settled.latest.0 {
        match operator.config(Epoch(e)).await {
            Ok(Some(view)) if view.epoch == Epoch(e) => {
                if e == settled.committed.epoch.0 {
                    let ids: BTreeSet<_> = view.members.keys().cloned().collect();
                    if view.state != ConfigState::Committed || ids != settled.committed.members {
                        violations.push(format!(
                            "epoch {e}'s view is {} with members {ids:?}",
                            view.state
                        ));
                    }
                }
            }
            Ok(other) => violations.push(format!("GET config/{e} answered {other:?}")),
            Err(err) => violations.push(format!("GET config/{e}: {err}")),
        }
    }
    violations
}

/// The ledger stored in `rack`'s database, validated (the store validates
/// on load, and `from_ledger` again), under the rack's authority.
pub async fn load_ledger(rack: &Rack) -> Result<ControlPlane, String> {
    let keys = rack.dir.join("keys").join(tq_node::authority::SECRET_FILE);
    let authority = tq_node::authority::load(&keys).map_err(|e| e.to_string())?;
    let db = &rack.layout.db;
    let store = tq_ctl::store::Store::open_read_only(db).await.map_err(|e| e.to_string())?;
    let ledger = store.load().await.map_err(|e| e.to_string())?.ok_or("the ledger is empty")?;
    ControlPlane::from_ledger(ControlPlaneConfig::default(), std::sync::Arc::new(authority), ledger)
        .map_err(|e| e.to_string())
}

/// No running sled reports an alarm or an unexpected latest commit, and
/// no sled's log holds an alarm (alarms are lost on restart).
async fn alarms(rack: &Rack, members: &[usize], epoch: Epoch) -> Vec<String> {
    let mut violations = Vec::new();
    for sled in &rack.layout.sleds {
        let proc = Proc::Sled(sled.index);
        if procs::running(rack, proc).is_none() {
            continue;
        }
        let status = match client::control_client(rack, sled.index) {
            Ok(control) => client::sled_status(&control).await,
            Err(e) => Err(e),
        };
        match status {
            Ok(status) => {
                if !status.alarms.is_empty() {
                    violations.push(format!("{proc}: alarms {:?}", status.alarms));
                }
                if members.contains(&sled.index) && status.latest_committed != Some(epoch) {
                    violations.push(format!(
                        "{proc}: reports latest committed {:?}, not {epoch}",
                        status.latest_committed
                    ));
                }
            }
            Err(e) => violations.push(format!("{proc}: status: {e}")),
        }
        violations.extend(
            log_alarms(&rack.log_path(proc)).into_iter().map(|l| format!("{proc} logged: {l}")),
        );
    }
    violations
}

/// The alarm lines of a log.
pub fn log_alarms(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("ERROR") && l.contains(" alarm"))
        .map(str::to_owned)
        .collect()
}
