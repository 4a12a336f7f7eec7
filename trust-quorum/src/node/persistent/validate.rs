//! The rules every persistent state obeys (docs/protocol.md section 2.1),
//! checked on every state that enters from outside the library.
//!
//! What the library writes obeys them by construction: configurations pass
//! `check_config` before they are stored, a share is stored with or after its
//! configuration and only once it matched the node's digest, a commit only
//! for a prepared epoch, one rack is fixed by the first configuration, and an
//! expunged notice is only taken at or above every stored epoch.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{
    AuthorityError, AuthorityKey, BaseboardId, CommitCertificate, Configuration, Epoch,
    ExpungedMetadata, RackId, Share, SignedField,
};

use super::error::InvalidPersistentState as Invalid;
use super::limits::{MAX_COMMITS, MAX_CONFIGS, MAX_ID_FIELD_LEN, MAX_SEALED_DATA_LEN, MAX_SHARES};
use super::retention::Retention;
use crate::crypto::authority::{verify_certificate, verify_certificate_signature, verify_config};
use crate::crypto::{self, SHARE_LEN};
use crate::node::validate::{check_config, id_field_len};

/// The fields of a state, borrowed.
pub(super) struct Fields<'a> {
    pub(super) authority: &'a AuthorityKey,
    pub(super) configs: &'a BTreeMap<Epoch, Configuration>,
    pub(super) shares: &'a BTreeMap<Epoch, Share>,
    pub(super) commits: &'a BTreeSet<Epoch>,
    pub(super) certificates: &'a BTreeMap<Epoch, CommitCertificate>,
    pub(super) expunged: Option<&'a ExpungedMetadata>,
}

/// Checks every rule that does not need the node's id, reporting the first
/// broken one.
pub(super) fn check(f: &Fields<'_>) -> Result<(), Invalid> {
    check_counts(f)?;
    let mut rack: Option<RackId> = None;
    for (key, config) in f.configs {
        check_stored_config(*key, config, &mut rack)?;
        verify_config(f.authority, config)
            .map_err(|error| Invalid::Unauthorized { epoch: *key, error })?;
    }
    for (key, certificate) in f.certificates {
        let config = f.configs.get(key).ok_or(Invalid::CertificateWithoutConfig { epoch: *key })?;
        verify_certificate(f.authority, certificate, config)
            .map_err(|error| Invalid::Unauthorized { epoch: *key, error })?;
    }
    for (epoch, share) in f.shares {
        check_share(f.configs, *epoch, share)?;
    }
    for epoch in f.commits {
        if !f.configs.contains_key(epoch) {
            return Err(Invalid::CommitWithoutConfig { epoch: *epoch });
        }
        if !f.shares.contains_key(epoch) {
            return Err(Invalid::CommitWithoutShare { epoch: *epoch });
        }
        if !f.certificates.contains_key(epoch) {
            return Err(Invalid::CommitWithoutCertificate { epoch: *epoch });
        }
    }
    if let Some(ex) = f.expunged {
        check_expunged(f.authority, f.configs, ex)?;
    }
    check_retention(f)
}

/// Checks that every stored share is `me`'s: `me` is a member of its
/// configuration and the share matches `me`'s digest there.
pub(super) fn check_own_shares(f: &Fields<'_>, me: &BaseboardId) -> Result<(), Invalid> {
    for (epoch, share) in f.shares {
        let epoch = *epoch;
        let config = f.configs.get(&epoch).ok_or(Invalid::ShareWithoutConfig { epoch })?;
        let digest = config.members.get(me).ok_or(Invalid::NotAMember { epoch })?;
        if !crypto::share_matches(share, digest) {
            return Err(Invalid::ShareNotOwn { epoch });
        }
    }
    Ok(())
}

fn check_counts(f: &Fields<'_>) -> Result<(), Invalid> {
    let (configs, shares, commits) = (f.configs.len(), f.shares.len(), f.commits.len());
    if configs > MAX_CONFIGS {
        return Err(Invalid::TooManyConfigs { count: configs, max: MAX_CONFIGS });
    }
    if shares > MAX_SHARES {
        return Err(Invalid::TooManyShares { count: shares, max: MAX_SHARES });
    }
    if commits > MAX_COMMITS {
        return Err(Invalid::TooManyCommits { count: commits, max: MAX_COMMITS });
    }
    Ok(())
}

/// Nothing is stored for an epoch the state no longer keeps
/// (`retention.rs`).
fn check_retention(f: &Fields<'_>) -> Result<(), Invalid> {
    let retention = Retention::of(f.commits, f.configs);
    let stored = f
        .configs
        .keys()
        .chain(f.shares.keys())
        .chain(f.commits.iter())
        .chain(f.certificates.keys());
    match stored.copied().find(|e| !retention.keeps(*e)) {
        Some(epoch) => Err(Invalid::NotRetained { epoch }),
        None => Ok(()),
    }
}

/// One stored configuration: its key, its structure, its sizes, and its
/// rack against the earlier ones (`rack` is set by the first).
fn check_stored_config(
    key: Epoch,
    config: &Configuration,
    rack: &mut Option<RackId>,
) -> Result<(), Invalid> {
    let epoch = config.epoch;
    if key != epoch {
        return Err(Invalid::ConfigEpochMismatch { key, epoch });
    }
    // The size caps first, with their own errors; `check_config` has them
    // too, for what arrives from peers and the control plane.
    for id in std::iter::once(&config.coordinator).chain(config.members.keys()) {
        check_id(id, Some(epoch))?;
    }
    if let Some(sealed) = &config.encrypted_rack_secrets {
        let len = sealed.data.len();
        if len > MAX_SEALED_DATA_LEN {
            return Err(Invalid::SealedDataTooLong { epoch, len, max: MAX_SEALED_DATA_LEN });
        }
    }
    check_config(config).map_err(|reason| Invalid::InvalidConfig { epoch, reason })?;
    match *rack {
        None => *rack = Some(config.rack_id),
        Some(expected) if expected != config.rack_id => {
            return Err(Invalid::RackIdMismatch { epoch, expected, found: config.rack_id });
        }
        Some(_) => {}
    }
    Ok(())
}

fn check_id(id: &BaseboardId, epoch: Option<Epoch>) -> Result<(), Invalid> {
    let len = id_field_len(id);
    if len > MAX_ID_FIELD_LEN {
        return Err(Invalid::IdTooLong { epoch, len, max: MAX_ID_FIELD_LEN });
    }
    Ok(())
}

/// A share has a configuration, the length of a share, and matches the
/// digest the configuration records for the member at the share's
/// x-coordinate (which is the holder's position in identity order).
fn check_share(
    configs: &BTreeMap<Epoch, Configuration>,
    epoch: Epoch,
    share: &Share,
) -> Result<(), Invalid> {
    let config = configs.get(&epoch).ok_or(Invalid::ShareWithoutConfig { epoch })?;
    let len = share.as_bytes().len();
    if len != SHARE_LEN {
        return Err(Invalid::ShareLength { epoch, len });
    }
    let holder = crypto::share_x(share)
        .and_then(|x| usize::from(x).checked_sub(1))
        .and_then(|index| config.members.values().nth(index));
    match holder {
        Some(digest) if crypto::share_matches(share, digest) => Ok(()),
        _ => Err(Invalid::ShareDigestMismatch { epoch }),
    }
}

/// The marker needs a stored configuration and is at or above every stored
/// epoch: a node takes an expunged notice only then, and a later
/// configuration clears it. Its certificate is the authority's, for the
/// marker's epoch and the state's rack (the removing configuration itself
/// is not stored, so only the signature over its digest can be checked).
fn check_expunged(
    authority: &AuthorityKey,
    configs: &BTreeMap<Epoch, Configuration>,
    ex: &ExpungedMetadata,
) -> Result<(), Invalid> {
    check_id(&ex.from, None)?;
    let Some((latest, config)) = configs.last_key_value() else {
        return Err(Invalid::ExpungedWithoutConfig { epoch: ex.epoch });
    };
    if *latest > ex.epoch {
        return Err(Invalid::ExpungedBeforeLatestConfig { epoch: ex.epoch, latest: *latest });
    }
    let certificate = &ex.certificate;
    let unauthorized = |error| Invalid::Unauthorized { epoch: ex.epoch, error };
    if certificate.epoch != ex.epoch {
        return Err(unauthorized(AuthorityError::CertificateMismatch(SignedField::Epoch)));
    }
    if certificate.rack_id != config.rack_id {
        return Err(unauthorized(AuthorityError::CertificateMismatch(SignedField::Rack)));
    }
    verify_certificate_signature(authority, certificate).map_err(unauthorized)
}
