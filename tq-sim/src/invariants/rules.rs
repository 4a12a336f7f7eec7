//! The names of the checker's invariants. A check reports a [`Rule`], never
//! a free string, so every name the checker can report is in
//! [`INVARIANTS`], and the firing tests (`firing.rs`) require one crafted
//! input breaking each of them.

/// Declares the rules, their names and the list of names at once.
macro_rules! rules {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// One invariant the checker enforces (docs/protocol.md section 7.3).
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
        pub(crate) enum Rule {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Rule {
            /// The invariant's stable name, as violations report it.
            pub(crate) const fn name(self) -> &'static str {
                match self {
                    $(Rule::$variant => $name,)*
                }
            }
        }

        /// The name of every invariant the checker can report, in the
        /// order declared.
        pub(crate) const INVARIANTS: &[&str] = &[$($name,)*];
    };
}

rules! {
    /// Configurations and shares are never replaced, and removed only once
    /// superseded; the latest commit never moves back; `expunged` changes
    /// only by a re-admitting configuration.
    Monotonicity => "monotonicity",
    /// Every committed epoch is prepared.
    CommitImpliesPrepared => "commit_implies_prepared",
    /// A node stores a configuration or share only of epochs it is a member of.
    Membership => "membership",
    /// Every stored share matches its holder's digest.
    ShareIntegrity => "share_integrity",
    /// One configuration per epoch, everywhere.
    GlobalUniqueness => "global_uniqueness",
    /// An expunged node sends nothing.
    ExpungedSilence => "expunged_silence",
    /// Shares go only to members of their epoch.
    ShareOnlyToMembers => "share_only_to_members",
    /// Prepares go only to members.
    PrepareOnlyToMembers => "prepare_only_to_members",
    /// No prepare acknowledgement from a node that committed a later epoch.
    StalePrepares => "stale_prepares",
    /// A prepare is acknowledged only once it is durable.
    PersistBeforeSend => "persist_before_send",
    /// A loaded configuration's sealed secrets open, and they are exactly
    /// the secrets of the epochs below it that were committed.
    ChainCompleteness => "chain_completeness",
    /// Every answer to a secret load is the right one for the sled's
    /// durable state and the world's committed epochs.
    LoadPostconditions => "load_postconditions",
    /// Every secret loaded is the one its epoch's coordinator generated.
    SecretAgreement => "secret_agreement",
    /// Every share a coordinator hands out has its member's x-coordinate and
    /// digest and lies on one polynomial of degree below K.
    SplitConsistency => "split_consistency",
    /// No node raises an alarm.
    NoAlarms => "no_alarms",
    /// No node coordinates while computing a share.
    CoordinateXorCompute => "coordinate_xor_compute",
    /// Members a coordinator counts as acknowledged are durably prepared.
    AckedMembersPrepared => "acked_members_prepared",
    /// A durable state keeps nothing superseded, so it holds at most three
    /// epochs whatever the rack's history.
    StateBound => "state_bound",
    /// An honest sled stores only configurations built from a request the
    /// control plane signed, and commits only what it certified.
    SignedConfigsOnly => "signed_configs_only",
    /// An honest sled becomes expunged only by a committed configuration
    /// that removed it.
    ExpungedOnlyIfRemoved => "expunged_only_if_removed",
    /// A damaged stored state is refused when read back, never decoded into
    /// a state other than the one written.
    CorruptionDetected => "corruption_detected",
}
