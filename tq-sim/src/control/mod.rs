//! The control-plane side of the world: replicas sharing one ledger store
//! with compare-and-set (`store`), the request/reply channel from the
//! control plane to sleds, direct or through a proxy member (`channel`),
//! the control-plane events applied to them (`side`) and which of those
//! events happens next (`schedule`).

mod channel;
mod decisions;
mod schedule;
mod side;
mod store;

pub use self::channel::{InFlightReply, InFlightRequest, ReplyKind};
pub(crate) use self::decisions::Decisions;
pub(crate) use self::schedule::{
    fault_event, operator_event, progress_event, retry_event, wipe_is_survivable,
};
pub use self::side::ControlSide;
pub(crate) use self::side::Surroundings;
pub use self::store::timestamp;
