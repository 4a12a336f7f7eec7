//! The agent's one task that owns the node: every input goes through the
//! node, then the embedder step: the durable write, then the envelopes to
//! the transport, then the answer to whoever asked.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tq_types::{BaseboardId, Epoch};
use trust_quorum::node::{Persisted, Write};
use trust_quorum::{Node, NodeCtx};

use super::request::{Input, KeyError, LocalKey, Request, Response};
use crate::storage::Storage;
use crate::transport::{TransportEvent, TransportHandle};
use crate::unlock::derive_key;

/// How long a secret load may wait for peers' shares.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A local caller waiting for the rack secret of an epoch.
struct PendingLoad {
    epoch: Epoch,
    context: String,
    deadline: Instant,
    respond: oneshot::Sender<Response>,
}

/// Why the actor stopped on its own.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Stop {
    /// The durable write failed: nothing may be sent after it.
    #[error("durable write failed: {0}")]
    Write(String),
}

/// The node, its context, its store and its outputs.
pub(crate) struct Actor {
    pub(crate) id: BaseboardId,
    pub(crate) node: Node,
    pub(crate) ctx: NodeCtx,
    pub(crate) storage: Storage,
    pub(crate) transport: TransportHandle,
    pub(crate) committed: watch::Sender<Option<Epoch>>,
    pending: Vec<PendingLoad>,
}

impl Actor {
    pub(crate) fn new(
        id: BaseboardId,
        node: Node,
        ctx: NodeCtx,
        storage: Storage,
        transport: TransportHandle,
        committed: watch::Sender<Option<Epoch>>,
    ) -> Actor {
        Actor { id, node, ctx, storage, transport, committed, pending: Vec::new() }
    }

    /// Runs until `inputs` closes or `stop` fires, or a write fails.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Stop> {
        let mut expiry = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.on_input(input)?,
                    None => return Ok(()),
                },
                _ = expiry.tick() => self.expire_loads(),
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    fn on_input(&mut self, input: Input) -> Result<(), Stop> {
        match input {
            Input::Transport(TransportEvent::Connected(peer)) => {
                tracing::info!(sled = %self.id, %peer, "peer connected");
                self.node.on_connect(&mut self.ctx, peer);
                self.step(|_| ())?;
            }
            Input::Transport(TransportEvent::Disconnected(peer)) => {
                tracing::info!(sled = %self.id, %peer, "peer disconnected");
                self.node.on_disconnect(&mut self.ctx, &peer);
                self.step(|_| ())?;
            }
            Input::Transport(TransportEvent::Message { from, msg }) => {
                tracing::debug!(sled = %self.id, peer = %from, msg = msg.kind.name(), "received");
                self.node.handle(&mut self.ctx, from, *msg);
                self.step(|_| ())?;
                self.retry_loads()?;
            }
            Input::Request(request, respond) => self.on_request(*request, respond)?,
        }
        self.publish_commits();
        Ok(())
    }

    fn on_request(
        &mut self,
        request: Request,
        respond: oneshot::Sender<Response>,
    ) -> Result<(), Stop> {
        let response = match request {
            Request::Reconfigure(msg) => {
                tracing::info!(sled = %self.id, epoch = %msg.msg.epoch, "reconfigure requested");
                let reply = self.node.coordinate_reconfiguration(&mut self.ctx, msg);
                Response::Reconfigure(self.step(|p| reply.release(p))?)
            }
            Request::Commit(req) => {
                tracing::info!(sled = %self.id, epoch = %req.epoch, "commit requested");
                let reply = self.node.commit_configuration(&mut self.ctx, req);
                Response::Commit(self.step(|p| reply.release(p))?)
            }
            Request::PrepareAndCommit(req) => {
                tracing::info!(sled = %self.id, epoch = %req.config.epoch, "prepare-and-commit requested");
                let reply = self.node.prepare_and_commit(&mut self.ctx, req);
                Response::PrepareAndCommit(self.step(|p| reply.release(p))?)
            }
            Request::CoordinatorStatus => {
                let reply = self.node.coordinator_status();
                Response::CoordinatorStatus(self.step(|p| reply.release(p))?)
            }
            Request::Status => Response::Status(Box::new(self.node.status(&self.ctx))),
            Request::LoadKey { epoch, context } => {
                let pending = PendingLoad {
                    epoch,
                    context,
                    deadline: Instant::now().checked_add(LOAD_TIMEOUT).unwrap_or_else(Instant::now),
                    respond,
                };
                self.pending.push(pending);
                return self.retry_loads();
            }
        };
        // The caller may have gone away; nothing to do then.
        let _gone = respond.send(response);
        Ok(())
    }

    /// The embedder step: persist what changed (or stop), then send, then
    /// hand `release` the proof for the call's answer.
    fn step<T>(&mut self, release: impl FnOnce(&Persisted<'_>) -> T) -> Result<T, Stop> {
        let mut persisted = match self.ctx.take_write() {
            Write::Pending(write) => {
                let bytes = write.encode().map_err(|e| Stop::Write(e.to_string()))?;
                let storage = &mut self.storage;
                // The write blocks (fsync); on a multi-threaded runtime let
                // other tasks move meanwhile. A current-thread runtime has
                // nothing to hand over to, and `block_in_place` would panic.
                let multi = tokio::runtime::Handle::current().runtime_flavor()
                    == tokio::runtime::RuntimeFlavor::MultiThread;
                let written = if multi {
                    tokio::task::block_in_place(|| storage.write(&bytes))
                } else {
                    storage.write(&bytes)
                };
                if let Err(e) = written {
                    tracing::error!(sled = %self.id, error = %e, "durable write failed; stopping");
                    return Err(Stop::Write(e.to_string()));
                }
                tracing::info!(sled = %self.id, generation = self.storage.generation(), "state written");
                write.written()
            }
            Write::Nothing(persisted) => persisted,
        };
        for envelope in persisted.envelopes() {
            tracing::debug!(sled = %self.id, peer = %envelope.to, msg = envelope.msg.kind.name(), "send");
            self.transport.send(&envelope.to, envelope.msg);
        }
        Ok(release(&persisted))
    }

    /// Asks the node again for every waiting secret load.
    fn retry_loads(&mut self) -> Result<(), Stop> {
        let pending = std::mem::take(&mut self.pending);
        for load in pending {
            let result = self.node.load_rack_secret(&mut self.ctx, load.epoch);
            self.step(|_| ())?;
            match result {
                Ok(None) => self.pending.push(load),
                Ok(Some(secret)) => {
                    tracing::info!(sled = %self.id, epoch = %load.epoch, "rack secret loaded; key derived");
                    let key = derive_key(&secret, load.epoch, &load.context);
                    let _gone =
                        load.respond.send(Response::Key(Ok(LocalKey { epoch: load.epoch, key })));
                }
                Err(error) => {
                    tracing::warn!(sled = %self.id, epoch = %load.epoch, %error, "rack secret not loaded");
                    let _gone = load.respond.send(Response::Key(Err(error.into())));
                }
            }
        }
        Ok(())
    }

    /// Answers loads that waited too long.
    fn expire_loads(&mut self) {
        let now = Instant::now();
        let (expired, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|l| l.deadline <= now);
        self.pending = waiting;
        for load in expired {
            tracing::warn!(sled = %self.id, epoch = %load.epoch, "secret load timed out waiting for shares");
            let _gone = load.respond.send(Response::Key(Err(KeyError::TimedOut)));
        }
    }

    fn publish_commits(&self) {
        let latest = self.ctx.persistent_state().latest_committed_epoch();
        self.committed.send_if_modified(|current| {
            let changed = *current != latest;
            *current = latest;
            changed
        });
    }
}
