//! Using the rack secret locally without ever handing it out: keys derived
//! for a caller's context (as a disk-unlock helper would use them), and the
//! bearer token that guards the local API.

use std::io::Write as _;
use std::path::Path;

use tq_types::Epoch;
use trust_quorum::RackSecret;
use zeroize::Zeroizing;

/// The `blake3::derive_key` context of keys handed to local callers.
const KEY_CONTEXT: &str = "trust-quorum tq-node 2026-12 local key v1";

/// A 32-byte key derived from the rack secret of `epoch` for `context`,
/// lowercase hex. Different contexts or epochs give unrelated keys, and the
/// key reveals nothing about the secret.
pub fn derive_key(secret: &RackSecret, epoch: Epoch, context: &str) -> Zeroizing<String> {
    let mut hasher = blake3::Hasher::new_derive_key(KEY_CONTEXT);
    hasher.update(&epoch.0.to_be_bytes());
    hasher.update(&u64::try_from(context.len()).unwrap_or(u64::MAX).to_be_bytes());
    hasher.update(context.as_bytes());
    hasher.update(secret.expose());
    Zeroizing::new(hex::encode(hasher.finalize().as_bytes()))
}

/// The local API's bearer token, kept in `path` (mode 0600), created with
/// 32 random bytes on first start.
pub struct Token(Zeroizing<String>);

impl Token {
    /// Reads the token at `path`, or creates it.
    pub fn load_or_create(path: &Path) -> std::io::Result<Token> {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                return Ok(Token(Zeroizing::new(text.trim().to_owned())));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        let token = Zeroizing::new(hex::encode(*bytes));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(token.as_bytes())?;
        file.sync_all()?;
        Ok(Token(token))
    }

    /// The token text, for a client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        blake3::hash(presented.as_bytes()) == blake3::hash(self.0.as_bytes())
    }
}

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}
