//! The operator commands: `up`, `add`, `remove`, `status`, `kill`,
//! `restart` and `down`. Each returns what its contract line prints.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tq_types::{BaseboardId, Epoch, RackMembershipState, RackMembershipStatus};

use crate::client::Operator;
use crate::error::RackError;
use crate::layout::{Proc, Rack};
use crate::procs::{self, Launcher};
use crate::setup::{self, NewRack};
use crate::wait;

/// What `up` made.
#[derive(Clone, Debug)]
pub struct Up {
    /// The committed first epoch.
    pub epoch: Epoch,
    /// Its members.
    pub members: usize,
}

/// Makes a rack in `dir`, starts its agents and replicas, initializes it
/// and waits (at most `limit`) until its first epoch is committed.
pub async fn up(
    launcher: &Launcher,
    dir: &Path,
    new: &NewRack,
    limit: Duration,
) -> Result<Up, RackError> {
    let rack = setup::create(dir, new)?;
    tracing::info!(dir = %rack.dir.display(), sleds = new.sleds, spares = new.spares, replicas = new.replicas, "rack created");
    let first: Vec<usize> = (0..new.sleds).collect();
    start_sleds(launcher, &rack, &first).await?;
    for replica in 0..rack.layout.replicas.len() {
        // One at a time: the first one creates the ledger's tables.
        wait::start_ready(launcher, &rack, Proc::Ctl(replica)).await?;
    }
    let operator = Operator::new(&rack)?;
    let ids: BTreeSet<BaseboardId> =
        first.iter().map(|i| rack.sled(*i).map(|s| s.id.clone())).collect::<Result<_, _>>()?;
    let status = operator.change("initialize", &ids).await??;
    tracing::info!(epoch = %status.epoch, "initialize accepted");
    let done = wait::committed(&operator, status.epoch, limit).await?;
    Ok(Up { epoch: done.epoch, members: done.members.len() })
}

/// Starts the agents of `sleds` and waits until each answers.
pub async fn start_sleds(
    launcher: &Launcher,
    rack: &Rack,
    sleds: &[usize],
) -> Result<(), RackError> {
    let mut pids = Vec::with_capacity(sleds.len());
    for i in sleds {
        pids.push((Proc::Sled(*i), launcher.start(rack, Proc::Sled(*i))?));
    }
    for (proc, pid) in pids {
        wait::ready(rack, proc, pid, wait::READY_LIMIT).await?;
    }
    Ok(())
}

/// The newest epoch that is not aborted (the rack's membership, or the
/// change in progress), if any.
pub async fn current(operator: &Operator) -> Result<Option<RackMembershipStatus>, RackError> {
    let mut status = operator.status(None).await?;
    while let Some(s) = &status {
        if s.state != RackMembershipState::Aborted {
            break;
        }
        let Some(before) = s.epoch.0.checked_sub(1).filter(|e| *e > 0) else {
            return Ok(None);
        };
        status = operator.status(Some(Epoch(before))).await?;
    }
    Ok(status)
}

/// Starts `count` never-used sleds, asks the control plane to add them,
/// and (with `wait`) waits for the commit. Returns the epoch.
pub async fn add(
    launcher: &Launcher,
    dir: &Path,
    count: usize,
    wait: Option<Duration>,
) -> Result<Epoch, RackError> {
    if count == 0 {
        return Err(RackError::Usage("--count must be at least 1".into()));
    }
    let rack = Rack::load(dir)?;
    let fresh: Vec<usize> = rack
        .layout
        .sleds
        .iter()
        .map(|s| s.index)
        .filter(|i| !rack.sled_used(*i))
        .take(count)
        .collect();
    if fresh.len() < count {
        return Err(RackError::Failed(format!(
            "only {} never-used sleds are left of {} (make the rack with more --spares)",
            fresh.len(),
            rack.layout.sleds.len()
        )));
    }
    start_sleds(launcher, &rack, &fresh).await?;
    let ids: BTreeSet<BaseboardId> =
        fresh.iter().map(|i| rack.sled(*i).map(|s| s.id.clone())).collect::<Result<_, _>>()?;
    change(&rack, "add", &ids, wait).await
}

/// Asks the control plane to remove one sled and (with `wait`) waits for
/// the commit. Returns the epoch. The sled's agent keeps running.
pub async fn remove(dir: &Path, sled: &str, wait: Option<Duration>) -> Result<Epoch, RackError> {
    let rack = Rack::load(dir)?;
    let index = rack.find_sled(sled)?;
    let ids = BTreeSet::from([rack.sled(index)?.id.clone()]);
    change(&rack, "remove", &ids, wait).await
}

async fn change(
    rack: &Rack,
    op: &str,
    ids: &BTreeSet<BaseboardId>,
    wait: Option<Duration>,
) -> Result<Epoch, RackError> {
    let operator = Operator::new(rack)?;
    let status = operator.change(op, ids).await??;
    tracing::info!(op, epoch = %status.epoch, "change accepted");
    match wait {
        Some(limit) => Ok(wait::committed(&operator, status.epoch, limit).await?.epoch),
        None => Ok(status.epoch),
    }
}

/// The latest membership status as the operator API answers it (JSON).
pub async fn status(dir: &Path) -> Result<serde_json::Value, RackError> {
    let rack = Rack::load(dir)?;
    Operator::new(&rack)?
        .status_json(None)
        .await?
        .ok_or_else(|| RackError::Failed("the rack has no configuration yet".into()))
}

/// A one-line summary of a status.
pub fn summary(status: &RackMembershipStatus) -> String {
    let state = match status.state {
        RackMembershipState::InProgress => "in_progress",
        RackMembershipState::Committed => "committed",
        RackMembershipState::Aborted => "aborted",
    };
    format!(
        "epoch={} state={state} members={} unacknowledged={}",
        status.epoch,
        status.members.len(),
        status.unacknowledged_members.len()
    )
}

/// Names a process from `--sled ID` or `--ctl R`.
pub fn target(rack: &Rack, sled: Option<&str>, ctl: Option<&str>) -> Result<Proc, RackError> {
    match (sled, ctl) {
        (Some(sled), None) => Ok(Proc::Sled(rack.find_sled(sled)?)),
        (None, Some(ctl)) => Ok(Proc::Ctl(rack.find_replica(ctl)?)),
        _ => Err(RackError::Usage("give exactly one of --sled ID or --ctl R".into())),
    }
}

/// SIGKILLs one process. Returns whether it was running.
pub async fn kill(
    dir: &Path,
    sled: Option<&str>,
    ctl: Option<&str>,
) -> Result<(Proc, bool), RackError> {
    let rack = Rack::load(dir)?;
    let proc = target(&rack, sled, ctl)?;
    Ok((proc, procs::kill_now(&rack, proc).await?))
}

/// Starts one process again from its files (stopping it first if it
/// runs) and waits until it answers. Returns its pid.
pub async fn restart(
    launcher: &Launcher,
    dir: &Path,
    sled: Option<&str>,
    ctl: Option<&str>,
) -> Result<(Proc, u32), RackError> {
    let rack = Rack::load(dir)?;
    let proc = target(&rack, sled, ctl)?;
    procs::stop(&rack, &[proc]).await?;
    Ok((proc, wait::start_ready(launcher, &rack, proc).await?))
}

/// Stops every process recorded in the rack's folder. Returns how many
/// were running.
pub async fn down(dir: &Path) -> Result<usize, RackError> {
    let rack = Rack::load(dir)?;
    let recorded = procs::recorded_procs(&rack.dir);
    procs::stop(&rack, &recorded).await
}
