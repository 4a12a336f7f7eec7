//! The simulated network between sleds: per-link FIFO queues, connection
//! state and one-way partitions.
//!
//! A message can only be queued on a connected link whose direction is not
//! partitioned; a connection that goes down loses what was in flight in both
//! directions, as a TCP connection would.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use tq_types::{BaseboardId, PeerMsg};

/// A directed link.
pub type Link = (BaseboardId, BaseboardId);

/// Normalizes an undirected pair.
fn pair(a: &BaseboardId, b: &BaseboardId) -> Link {
    if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) }
}

/// Queues, connections and partitions.
#[derive(Clone, Default, Debug, Serialize, Deserialize)]
pub struct Network {
    queues: BTreeMap<Link, VecDeque<PeerMsg>>,
    connected: BTreeSet<Link>,
    blocked: BTreeSet<Link>,
}

impl Network {
    /// Whether `a` and `b` have a live connection.
    pub fn is_connected(&self, a: &BaseboardId, b: &BaseboardId) -> bool {
        self.connected.contains(&pair(a, b))
    }

    /// Whether messages from `from` to `to` are dropped.
    pub fn is_blocked(&self, from: &BaseboardId, to: &BaseboardId) -> bool {
        self.blocked.contains(&(from.clone(), to.clone()))
    }

    /// Marks `a`–`b` connected. Returns false if it already was, or if a
    /// partition in either direction prevents it.
    pub fn connect(&mut self, a: &BaseboardId, b: &BaseboardId) -> bool {
        if a == b || self.is_blocked(a, b) || self.is_blocked(b, a) {
            return false;
        }
        self.connected.insert(pair(a, b))
    }

    /// Drops the `a`–`b` connection and everything in flight on it. Returns
    /// false if it was not connected.
    pub fn disconnect(&mut self, a: &BaseboardId, b: &BaseboardId) -> bool {
        self.queues.remove(&(a.clone(), b.clone()));
        self.queues.remove(&(b.clone(), a.clone()));
        self.connected.remove(&pair(a, b))
    }

    /// Every peer `who` is connected to.
    pub fn peers_of(&self, who: &BaseboardId) -> Vec<BaseboardId> {
        self.connected
            .iter()
            .filter_map(|(a, b)| {
                if a == who {
                    Some(b.clone())
                } else if b == who {
                    Some(a.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Every connected pair.
    pub fn connections(&self) -> impl Iterator<Item = &Link> {
        self.connected.iter()
    }

    /// Blocks `from` → `to`. Returns whether it was newly blocked.
    pub fn block(&mut self, from: &BaseboardId, to: &BaseboardId) -> bool {
        self.queues.remove(&(from.clone(), to.clone()));
        self.blocked.insert((from.clone(), to.clone()))
    }

    /// Lifts every partition.
    pub fn heal_all(&mut self) {
        self.blocked.clear();
    }

    /// Lifts one partition. Returns whether it existed.
    pub fn heal(&mut self, from: &BaseboardId, to: &BaseboardId) -> bool {
        self.blocked.remove(&(from.clone(), to.clone()))
    }

    /// Blocked directions.
    pub fn blocked(&self) -> impl Iterator<Item = &Link> {
        self.blocked.iter()
    }

    /// Queues `msg` if the link is up and not blocked; returns whether it
    /// was queued.
    pub fn send(&mut self, from: &BaseboardId, to: &BaseboardId, msg: PeerMsg) -> bool {
        if !self.is_connected(from, to) || self.is_blocked(from, to) {
            return false;
        }
        self.queues.entry((from.clone(), to.clone())).or_default().push_back(msg);
        true
    }

    /// Queues `msg` ahead of everything on the link, if it is up.
    pub fn push_front(&mut self, from: &BaseboardId, to: &BaseboardId, msg: PeerMsg) -> bool {
        if !self.is_connected(from, to) || self.is_blocked(from, to) {
            return false;
        }
        self.queues.entry((from.clone(), to.clone())).or_default().push_front(msg);
        true
    }

    /// Links with something in flight.
    pub fn busy_links(&self) -> Vec<Link> {
        self.queues.iter().filter(|(_, q)| !q.is_empty()).map(|(l, _)| l.clone()).collect()
    }

    /// How many messages are queued on `link`.
    pub fn queue_len(&self, link: &Link) -> usize {
        self.queues.get(link).map_or(0, VecDeque::len)
    }

    /// Removes the `index`-th queued message of `link`.
    pub fn take(&mut self, link: &Link, index: usize) -> Option<PeerMsg> {
        let q = self.queues.get_mut(link)?;
        let msg = q.remove(index);
        if q.is_empty() {
            self.queues.remove(link);
        }
        msg
    }

    /// Total messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    /// Every queued message with its link, in queue order.
    pub fn queued(&self) -> impl Iterator<Item = (&Link, &PeerMsg)> {
        self.queues.iter().flat_map(|(l, q)| q.iter().map(move |m| (l, m)))
    }
}
