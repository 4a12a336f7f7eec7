//! The control plane's signing authority and the checks nodes make on its
//! decisions (docs/protocol.md section 8.4).
//!
//! The [`Authority`] is an ed25519 signing key (ed25519-dalek). It signs
//! every reconfiguration request and every commit decision; nodes hold its
//! public key ([`AuthorityKey`]) and accept a configuration, a commit or an
//! expungement only with a valid signature. Signatures are deterministic, so
//! replicas sharing the key sign the same decision to the same bytes, and a
//! decision can be signed again from the ledger at any time.
//!
//! Each signed message is domain-separated by a context string, so a
//! signature over one kind of decision can never be replayed as another.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use tq_types::codec;
use tq_types::{
    AuthorityError, AuthorityKey, AuthoritySignature, CommitCertificate, CommittedConfig,
    ConfigDigest, Configuration, Epoch, RackId, ReconfigureMsg, SignedField, SignedReconfigure,
};
use zeroize::Zeroizing;

/// Context of a signed reconfiguration request.
const RECONFIGURE_CONTEXT: &[u8] = b"trust-quorum v1 signed reconfigure\0";
/// Context of a commit certificate.
const COMMIT_CONTEXT: &[u8] = b"trust-quorum v1 commit certificate\0";
/// BLAKE3 key-derivation context of configuration digests.
const DIGEST_CONTEXT: &str = "trust-quorum v1 configuration digest";

/// The control plane's signing key. Wiped on drop; `Debug` shows only the
/// public key.
pub struct Authority {
    key: SigningKey,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").field("public_key", &self.public_key()).finish()
    }
}

impl Authority {
    /// A new signing key drawn from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Authority {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut_slice());
        Authority::from_secret_bytes(&seed)
    }

    /// The signing key with these secret bytes (as [`Self::secret_bytes`]
    /// returned them).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Authority {
        Authority { key: SigningKey::from_bytes(bytes) }
    }

    /// The secret bytes, for the embedder to store the key (a file only the
    /// control plane can read). Wiped when dropped.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key nodes verify with.
    pub fn public_key(&self) -> AuthorityKey {
        AuthorityKey(self.key.verifying_key().to_bytes())
    }

    /// Signs a reconfiguration request.
    pub fn sign_reconfigure(
        &self,
        msg: ReconfigureMsg,
    ) -> Result<SignedReconfigure, AuthorityError> {
        let payload = reconfigure_payload(&msg)?;
        let signature = AuthoritySignature(self.key.sign(&payload).to_bytes());
        Ok(SignedReconfigure { msg, signature })
    }

    /// Certifies that `config` is committed.
    pub fn certify(&self, config: &Configuration) -> Result<CommitCertificate, AuthorityError> {
        let config_digest = config_digest(config)?;
        let payload = commit_payload(config.rack_id, config.epoch, config_digest)?;
        let signature = AuthoritySignature(self.key.sign(&payload).to_bytes());
        Ok(CommitCertificate {
            rack_id: config.rack_id,
            epoch: config.epoch,
            config_digest,
            signature,
        })
    }
}

/// The digest a commit certificate names: BLAKE3 (in key-derivation mode)
/// over the configuration's binary encoding.
pub fn config_digest(config: &Configuration) -> Result<ConfigDigest, AuthorityError> {
    let bytes = codec::encode(config).map_err(|_| AuthorityError::Encoding)?;
    let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    hasher.update(&bytes);
    Ok(ConfigDigest(*hasher.finalize().as_bytes()))
}

/// Checks that the authority signed `signed`.
pub fn verify_reconfigure(
    key: &AuthorityKey,
    signed: &SignedReconfigure,
) -> Result<(), AuthorityError> {
    verify(key, &reconfigure_payload(&signed.msg)?, &signed.signature)
}

/// Checks that `config` is what the authority asked for: its embedded
/// request is validly signed and agrees with it on rack, epoch,
/// coordinator, members and threshold, and it carries sealed prior secrets
/// exactly when the request builds on a committed epoch.
pub fn verify_config(key: &AuthorityKey, config: &Configuration) -> Result<(), AuthorityError> {
    verify_reconfigure(key, &config.reconfigure)?;
    let msg = &config.reconfigure.msg;
    let checks = [
        (msg.rack_id == config.rack_id, SignedField::Rack),
        (msg.epoch == config.epoch, SignedField::Epoch),
        (msg.coordinator == config.coordinator, SignedField::Coordinator),
        (msg.threshold == config.threshold, SignedField::Threshold),
        (msg.members.iter().eq(config.members.keys()), SignedField::Members),
        (
            msg.last_committed_epoch.is_some() == config.encrypted_rack_secrets.is_some(),
            SignedField::LastCommittedEpoch,
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, field)) => Err(AuthorityError::ConfigMismatch(*field)),
        None => Ok(()),
    }
}

/// Checks a commit certificate's signature and that it names `config`
/// exactly (rack, epoch and digest).
pub fn verify_certificate(
    key: &AuthorityKey,
    certificate: &CommitCertificate,
    config: &Configuration,
) -> Result<(), AuthorityError> {
    if certificate.rack_id != config.rack_id {
        return Err(AuthorityError::CertificateMismatch(SignedField::Rack));
    }
    if certificate.epoch != config.epoch {
        return Err(AuthorityError::CertificateMismatch(SignedField::Epoch));
    }
    if certificate.config_digest != config_digest(config)? {
        return Err(AuthorityError::CertificateMismatch(SignedField::Configuration));
    }
    verify_certificate_signature(key, certificate)
}

/// Checks only a commit certificate's signature: the authority committed
/// the configuration with the certificate's digest at its rack and epoch.
/// For an epoch whose configuration a node no longer keeps; otherwise use
/// [`verify_certificate`].
pub fn verify_certificate_signature(
    key: &AuthorityKey,
    certificate: &CommitCertificate,
) -> Result<(), AuthorityError> {
    let payload =
        commit_payload(certificate.rack_id, certificate.epoch, certificate.config_digest)?;
    verify(key, &payload, &certificate.signature)
}

/// Checks a committed configuration: [`verify_config`] and
/// [`verify_certificate`].
pub fn verify_committed(
    key: &AuthorityKey,
    committed: &CommittedConfig,
) -> Result<(), AuthorityError> {
    verify_config(key, &committed.config)?;
    verify_certificate(key, &committed.certificate, &committed.config)
}

fn verify(
    key: &AuthorityKey,
    payload: &[u8],
    signature: &AuthoritySignature,
) -> Result<(), AuthorityError> {
    let key = VerifyingKey::from_bytes(&key.0).map_err(|_| AuthorityError::BadKey)?;
    let signature = Signature::from_bytes(&signature.0);
    key.verify_strict(payload, &signature).map_err(|_| AuthorityError::BadSignature)
}

fn reconfigure_payload(msg: &ReconfigureMsg) -> Result<Vec<u8>, AuthorityError> {
    let body = codec::encode(msg).map_err(|_| AuthorityError::Encoding)?;
    Ok([RECONFIGURE_CONTEXT, &body].concat())
}

fn commit_payload(
    rack_id: RackId,
    epoch: Epoch,
    digest: ConfigDigest,
) -> Result<Vec<u8>, AuthorityError> {
    let body = codec::encode(&(rack_id, epoch, digest)).map_err(|_| AuthorityError::Encoding)?;
    Ok([COMMIT_CONTEXT, &body].concat())
}
