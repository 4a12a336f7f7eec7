//! Deliberately wrong behaviours, for the simulator's self-test.
//!
//! A bug can only be switched on with the `planted-bugs` cargo feature
//! ([`NodeCtx::plant_bug`](crate::NodeCtx::plant_bug),
//! [`ControlPlane::plant_bug`](crate::control::ControlPlane::plant_bug)).
//! Without it the switch does not exist and every check below is `false`.
//! Never enable the feature in a build that runs a real rack.

use serde::{Deserialize, Serialize};

/// Declares [`PlantedBug`], public with the `planted-bugs` feature and
/// crate-private without it (the checks in the code still name it, but
/// nothing outside can even spell a bug).
macro_rules! planted_bug {
    ($vis:vis) => {
        /// A deliberately wrong behaviour the simulator must catch.
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(
            not(feature = "planted-bugs"),
            allow(dead_code, reason = "never switched on without the feature")
        )]
        $vis enum PlantedBug {
            /// The control plane starts committing at K prepare acks instead of
            /// K + Z.
            CommitAtThreshold,
            /// Nodes take shares from peers without checking them against the
            /// sender's digest, and use their own stored share without
            /// checking it against their own digest.
            SkipShareDigestCheck,
            /// Nodes acknowledge prepares for epochs older than their latest
            /// committed one.
            AckStalePrepare,
            /// Members never tell a removed node that asks them for a share
            /// that it was expunged.
            NeverTellExpunged,
            /// Nodes store a prepared configuration without checking the
            /// authority's signature on its embedded request.
            SkipPrepareSignature,
            /// Nodes apply an expunged notice without checking its
            /// certificate, whether it leaves them out, or its age.
            AcceptAnyExpunged,
            /// Nodes hand their share of an epoch to a peer that is not a
            /// member of it.
            ShareToNonMember,
        }
    };
}

#[cfg(feature = "planted-bugs")]
planted_bug!(pub);
#[cfg(not(feature = "planted-bugs"))]
planted_bug!(pub(crate));

/// The planted bug of one node or control plane, if any.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Planted(Option<PlantedBug>);

impl Planted {
    /// Whether `bug` is planted.
    pub(crate) fn is(self, bug: PlantedBug) -> bool {
        self.0 == Some(bug)
    }

    #[cfg(feature = "planted-bugs")]
    pub(crate) fn set(&mut self, bug: PlantedBug) {
        self.0 = Some(bug);
    }
}
