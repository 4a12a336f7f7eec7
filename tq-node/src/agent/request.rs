//! What the HTTP servers and the transport hand the actor, and what it
//! answers.

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tq_types::{
    CommitError, CommitRequest, CommitStatus, CoordinatorStatus, Epoch, LoadRackSecretError,
    NodeStatus, PrepareAndCommitError, PrepareAndCommitRequest, ReconfigurationError,
    SignedReconfigure,
};
use zeroize::Zeroizing;

use crate::transport::TransportEvent;

/// One input to the actor.
pub(crate) enum Input {
    Transport(TransportEvent),
    Request(Box<Request>, oneshot::Sender<Response>),
}

/// A request from the control API or the local API.
pub(crate) enum Request {
    Reconfigure(SignedReconfigure),
    Commit(CommitRequest),
    PrepareAndCommit(PrepareAndCommitRequest),
    CoordinatorStatus,
    Status,
    LoadKey { epoch: Epoch, context: String },
}

/// The answer to a [`Request`], released after the state it reports is
/// durable.
pub(crate) enum Response {
    Reconfigure(Result<(), ReconfigurationError>),
    Commit(Result<CommitStatus, CommitError>),
    PrepareAndCommit(Result<CommitStatus, PrepareAndCommitError>),
    CoordinatorStatus(Option<CoordinatorStatus>),
    Status(Box<NodeStatus>),
    Key(Result<LocalKey, KeyError>),
}

/// A key derived from the rack secret of an epoch for a caller's context.
pub struct LocalKey {
    /// The epoch whose secret the key comes from.
    pub epoch: Epoch,
    /// 32 bytes, lowercase hex.
    pub key: Zeroizing<String>,
}

impl Serialize for LocalKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("LocalKey", 2)?;
        out.serialize_field("epoch", &self.epoch)?;
        out.serialize_field("key", self.key.as_str())?;
        out.end()
    }
}

impl core::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalKey").field("epoch", &self.epoch).finish_non_exhaustive()
    }
}

/// Why no key could be derived.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyError {
    /// The node refused to load the secret.
    #[error(transparent)]
    Load(LoadRackSecretError),
    /// Not enough peers answered in time.
    #[error("not enough shares arrived in time")]
    TimedOut,
}

/// The queue into the actor, for the HTTP servers.
#[derive(Clone)]
pub(crate) struct Requester(pub(super) mpsc::Sender<Input>);

/// The actor is gone (stopped after a failed write, or shut down).
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the sled agent is not running")]
pub(crate) struct AgentGone;

impl Requester {
    pub(crate) async fn ask(&self, request: Request) -> Result<Response, AgentGone> {
        let (respond, answer) = oneshot::channel();
        self.0.send(Input::Request(Box::new(request), respond)).await.map_err(|_| AgentGone)?;
        answer.await.map_err(|_| AgentGone)
    }
}

impl From<LoadRackSecretError> for KeyError {
    fn from(e: LoadRackSecretError) -> Self {
        KeyError::Load(e)
    }
}
