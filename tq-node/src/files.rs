//! Writing key files: created new (never overwriting), synced, and readable
//! by the owner only when secret.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Creates `path` (failing if it exists) and writes `contents`; a `secret`
/// file is created with mode 0600 on unix.
pub(crate) fn create_new(path: &Path, contents: &[u8], secret: bool) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
