//! What the world reports as it applies an event: the transitions the
//! safety checker must see as they happened (a durable write, a message
//! released, a disk lost, a secret loaded), recorded with the state they
//! happened in, since later steps of the same event may change it.

use std::sync::Arc;

use tq_types::{BaseboardId, Envelope, Epoch, LoadRackSecretError};
use trust_quorum::{PersistentState, RackSecret};

/// One transition the world went through, in the order it happened.
pub(crate) enum Observation {
    /// A sled durably wrote `new` over `old`.
    Persisted {
        /// The sled.
        who: BaseboardId,
        /// What the write replaced.
        old: PersistentState,
        /// What was written.
        new: Arc<PersistentState>,
    },
    /// A sled released `envelope` for sending, its durable state then being
    /// `sender_disk`.
    Sent {
        /// The message.
        envelope: Envelope,
        /// The sender's durable state when it released the message.
        sender_disk: Arc<PersistentState>,
    },
    /// A crashed sled's durable state was wiped (a disk loss, or the
    /// operator's reset of a sled being re-added). Reported only when the
    /// disk held something: resetting a blank sled loses nothing.
    Wiped {
        /// The sled.
        who: BaseboardId,
        /// Its durable state just before the wipe: the prepares and commits
        /// the lost disk took with it.
        lost: PersistentState,
    },
    /// A sled answered a request for the secret of `epoch`.
    SecretLoaded {
        /// The sled.
        who: BaseboardId,
        /// The requested epoch.
        epoch: Epoch,
        /// Its answer.
        result: Result<Option<RackSecret>, LoadRackSecretError>,
        /// Its durable state when it answered.
        disk: Arc<PersistentState>,
        /// Whether it had raised an alarm when it answered.
        alarmed: bool,
    },
    /// A crashed sled's damaged stored state was read back: what was
    /// written, and what decoding the damaged bytes gave (the state, or
    /// why it was refused).
    DiskDecoded {
        /// The sled.
        who: BaseboardId,
        /// The state written before the damage.
        written: Arc<PersistentState>,
        /// What the damaged bytes decoded into.
        decoded: Result<Arc<PersistentState>, String>,
    },
}
