//! The control plane's authority key on disk (docs/protocol.md section 8.4).
//!
//! The secret key is a file of 64 lowercase hex characters (mode 0600),
//! read by every control-plane replica; nodes are given only the public key,
//! in their configuration. [`generate`] writes both:
//!
//! ```text
//! dir/authority.key   the authority's ed25519 secret key (0600)
//! dir/authority.pub   its public key, as the sleds' configurations carry it
//! ```

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::AuthorityKey;
use trust_quorum::crypto::authority::Authority;
use zeroize::Zeroizing;

use crate::files::create_new;

/// The secret key's file name in a keys folder.
pub const SECRET_FILE: &str = "authority.key";
/// The public key's file name in a keys folder.
pub const PUBLIC_FILE: &str = "authority.pub";

/// Why an authority key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityFileError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold exactly 32 hex-encoded bytes (its contents
    /// are never printed).
    #[error("{path}: not a 32-byte hex key")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityFiles {
    /// The secret key file.
    pub secret: PathBuf,
    /// The public key file.
    pub public: PathBuf,
    /// The public key.
    pub key: AuthorityKey,
}

/// Generates an authority key from OS randomness and writes its two files
/// under `dir` (never overwriting).
pub fn generate(dir: &Path) -> Result<AuthorityFiles, AuthorityFileError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| AuthorityFileError::Io { path, source }
    };
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| std::io::Error::other(e.to_string()))
        .map_err(io(dir))?;
    let authority = Authority::generate(&mut ChaCha20Rng::from_seed(*seed));
    let secret = dir.join(SECRET_FILE);
    let public = dir.join(PUBLIC_FILE);
    let hex = Zeroizing::new(hex::encode(authority.secret_bytes().as_slice()));
    create_new(&secret, hex.as_bytes(), true).map_err(io(&secret))?;
    let key = authority.public_key();
    create_new(&public, format!("{key}\n").as_bytes(), false).map_err(io(&public))?;
    Ok(AuthorityFiles { secret, public, key })
}

/// Loads the authority (the secret key) from `path`.
pub fn load(path: &Path) -> Result<Authority, AuthorityFileError> {
    let bytes = read_key(path)?;
    Ok(Authority::from_secret_bytes(&bytes))
}

/// Loads a public key file (as [`generate`] writes it).
pub fn load_public(path: &Path) -> Result<AuthorityKey, AuthorityFileError> {
    Ok(AuthorityKey(*read_key(path)?))
}

fn read_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, AuthorityFileError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|source| AuthorityFileError::Io { path: path.to_owned(), source })?,
    );
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), bytes.as_mut_slice())
        .map_err(|_| AuthorityFileError::Malformed { path: path.to_owned() })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_files_load_back_and_agree() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path()).unwrap();
        assert_eq!(load(&files.secret).unwrap().public_key(), files.key);
        assert_eq!(load_public(&files.public).unwrap(), files.key);
        // Never overwritten.
        assert!(generate(dir.path()).is_err());
        std::fs::write(dir.path().join("bad.key"), "zz").unwrap();
        let err = load(&dir.path().join("bad.key")).unwrap_err().to_string();
        assert!(err.contains("not a 32-byte hex key"), "{err}");
    }
}
