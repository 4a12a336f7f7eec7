//! Per-peer connection state: the live link's outbound queue, and the
//! ordering of successive connections to the same peer.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tq_types::{BaseboardId, PeerMsg};
use tracing::{debug, warn};

/// One configured peer.
#[derive(Debug)]
pub(super) struct Slot {
    /// Held by a connection from before it reports `Connected` until after
    /// it reports `Disconnected`, so one peer's events never interleave.
    pub(super) session: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The generation of the newest connection; older ones must give way.
    generation: u64,
    /// The live connection, if any.
    link: Option<Link>,
}

/// The sending side of a live connection.
#[derive(Debug)]
struct Link {
    generation: u64,
    queue: mpsc::Sender<PeerMsg>,
    /// Dropping this tells the connection to close.
    _close: oneshot::Sender<()>,
}

impl Slot {
    pub(super) fn new() -> Self {
        Slot { session: tokio::sync::Mutex::new(()), state: Mutex::new(State::default()) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement: a panic elsewhere
        // cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection, which closes the current one (if any) and
    /// makes any older pending one give up. Returns its generation.
    pub(super) fn supersede(&self) -> u64 {
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        state.link = None;
        state.generation
    }

    /// Makes connection `generation` the live one; false if a newer one has
    /// registered since.
    pub(super) fn install(
        &self,
        generation: u64,
        queue: mpsc::Sender<PeerMsg>,
        close: oneshot::Sender<()>,
    ) -> bool {
        let mut state = self.state();
        if state.generation != generation {
            return false;
        }
        state.link = Some(Link { generation, queue, _close: close });
        true
    }

    /// Removes connection `generation`'s link, if it is still the live one.
    pub(super) fn remove(&self, generation: u64) {
        let mut state = self.state();
        if state.link.as_ref().is_some_and(|l| l.generation == generation) {
            state.link = None;
        }
    }

    /// Queues `msg` on the live link, dropping the link if its queue is full.
    pub(super) fn send(&self, peer: &BaseboardId, msg: PeerMsg) {
        let mut state = self.state();
        let Some(link) = state.link.as_ref() else {
            debug!(%peer, kind = msg.kind.name(), "dropping message: peer not connected");
            return;
        };
        match link.queue.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => {
                warn!(%peer, kind = msg.kind.name(), "outbound queue full: dropping connection");
                state.link = None;
            }
            Err(TrySendError::Closed(msg)) => {
                debug!(%peer, kind = msg.kind.name(), "dropping message: connection closing");
            }
        }
    }
}
