//! Rack key material: a rack certificate authority and one certificate per
//! sled, generated with rcgen and written as PEM files.
//!
//! # Certificate contents
//!
//! Every certificate is signed by the rack CA, and a peer's identity is read
//! from its certificate only:
//!
//! * a sled certificate carries the URI subject alternative name
//!   `urn:trust-quorum:sled:PART:SERIAL` (see [`sled_uri`]; bytes outside
//!   `A-Z a-z 0-9 - . _ ~ :` are percent-encoded), the common name
//!   `PART:SERIAL`, the DNS name [`SLED_DNS_NAME`] (shared by every sled: it
//!   only lets stock WebPKI server verification succeed, it identifies
//!   nobody), and both the server-auth and client-auth extended key usages;
//! * the control-plane certificate carries the URI [`CONTROL_PLANE_URI`] and
//!   the client-auth key usage only, so it can never act as a sled.
//!
//! # Directory layout written by [`generate_rack`]
//!
//! ```text
//! dir/ca.pem              rack CA certificate
//! dir/ca-key.pem          rack CA private key (0600), to issue more certificates
//! dir/<index>/cert.pem    sled <index> certificate (index 0, 1, ...)
//! dir/<index>/key.pem     sled <index> private key (0600)
//! dir/control/cert.pem    control-plane client certificate
//! dir/control/key.pem     control-plane client private key (0600)
//! dir/authority.key       the control plane's authority signing key (0600)
//! dir/authority.pub       its public key (see [`crate::authority`])
//! ```
//!
//! Existing files are never overwritten: writing a file that already exists
//! is an error.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tq_types::{BaseboardId, BaseboardIdError};
use zeroize::Zeroizing;

/// The URI prefix of a sled identity in a certificate's subject alternative
/// names; the (percent-encoded) `PART:SERIAL` follows.
pub const SLED_URI_PREFIX: &str = "urn:trust-quorum:sled:";

/// The URI subject alternative name of the control-plane client certificate.
pub const CONTROL_PLANE_URI: &str = "urn:trust-quorum:control-plane";

/// The DNS subject alternative name shared by every sled certificate, and the
/// server name peers dial with. It is not an identity.
pub const SLED_DNS_NAME: &str = "sled.trust-quorum.invalid";

/// The common name of the rack CA generated here.
pub const CA_COMMON_NAME: &str = "trust-quorum rack CA";

/// The part number of the sled ids made by [`generate_rack`].
pub const TEST_PART_NUMBER: &str = "PPP-PPPPPPP";

/// Why key material could not be generated, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A file could not be read, created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// rcgen refused to build a key or certificate.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A generated sled id is invalid.
    #[error("invalid sled id: {0}")]
    InvalidId(#[from] BaseboardIdError),
    /// The authority key could not be generated or written.
    #[error(transparent)]
    Authority(#[from] crate::authority::AuthorityFileError),
    /// A CA certificate and key do not form a rack CA made by [`RackCa`].
    #[error("not a usable rack CA: {0}")]
    NotRackCa(String),
}

/// The PEM files of one certificate and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PKCS#8 PEM, mode 0600 on unix).
    pub key: PathBuf,
}

/// One sled's identity and key files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SledKeys {
    /// The sled id carried by the certificate.
    pub id: BaseboardId,
    /// The certificate and key files.
    pub files: KeyFiles,
}

/// Everything [`generate_rack`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RackKeys {
    /// The rack CA certificate (`dir/ca.pem`).
    pub ca_cert: PathBuf,
    /// The rack CA private key (`dir/ca-key.pem`).
    pub ca_key: PathBuf,
    /// One entry per sled, in index order (which is also id order).
    pub sleds: Vec<SledKeys>,
    /// The control-plane client certificate and key (`dir/control/`).
    pub control: KeyFiles,
    /// The control plane's authority key files and public key.
    pub authority: crate::authority::AuthorityFiles,
}

impl RackKeys {
    /// The sled ids, in index order.
    pub fn sled_ids(&self) -> Vec<BaseboardId> {
        self.sleds.iter().map(|s| s.id.clone()).collect()
    }
}

/// The id of sled `index` in a generated rack: `PPP-PPPPPPP:<index, 11 digits>`.
pub fn test_sled_id(index: usize) -> Result<BaseboardId, KeysError> {
    Ok(BaseboardId::new(TEST_PART_NUMBER, format!("{index:011}"))?)
}

/// Generates a rack CA, `sleds` sled certificates, a control-plane client
/// certificate and the control plane's authority key under `dir` (created if missing), in the layout of the
/// [module documentation](self).
pub fn generate_rack(dir: &Path, sleds: usize) -> Result<RackKeys, KeysError> {
    create_dir(dir)?;
    let ca = RackCa::generate()?;
    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca-key.pem");
    write_file(&ca_cert, ca.cert_pem().as_bytes(), false)?;
    write_file(&ca_key, ca.key.serialize_pem().as_bytes(), true)?;
    let sleds = (0..sleds)
        .map(|i| {
            let id = test_sled_id(i)?;
            let files = ca.issue_sled(&id, &dir.join(i.to_string()))?;
            Ok(SledKeys { id, files })
        })
        .collect::<Result<Vec<_>, KeysError>>()?;
    let control = ca.issue_control_plane(&dir.join("control"))?;
    let authority = crate::authority::generate(dir)?;
    Ok(RackKeys { ca_cert, ca_key, sleds, control, authority })
}

/// A rack certificate authority: its certificate and signing key.
pub struct RackCa {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
}

impl std::fmt::Debug for RackCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RackCa").field("common_name", &CA_COMMON_NAME).finish_non_exhaustive()
    }
}

impl RackCa {
    /// Generates a new self-signed CA (P-256 key, CA basic constraint with
    /// path length 0). Each call makes an unrelated CA.
    pub fn generate() -> Result<Self, KeysError> {
        let key = KeyPair::generate()?;
        let params = ca_params();
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(RackCa { params, key, cert_pem })
    }

    /// Loads a CA written by [`generate_rack`] (`ca.pem` and `ca-key.pem`),
    /// checking that the key belongs to the certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, KeysError> {
        let cert_pem = read_string(cert)?;
        let key_pem = Zeroizing::new(read_string(key)?);
        let key = KeyPair::from_pem(&key_pem)?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| KeysError::NotRackCa(e.to_string()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| KeysError::NotRackCa(e.to_string()))?;
        let cn = parsed.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok());
        if !parsed.is_ca() || cn != Some(CA_COMMON_NAME) {
            return Err(KeysError::NotRackCa(format!("expected a CA named {CA_COMMON_NAME:?}")));
        }
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(KeysError::NotRackCa("the key does not match the certificate".into()));
        }
        Ok(RackCa { params: ca_params(), key, cert_pem })
    }

    /// The CA certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a sled certificate for `id` with a fresh key, written as
    /// `dir/cert.pem` and `dir/key.pem` (`dir` is created if missing).
    pub fn issue_sled(&self, id: &BaseboardId, dir: &Path) -> Result<KeyFiles, KeysError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(&id.to_string());
        params.subject_alt_names = vec![
            SanType::URI(sled_uri(id).try_into()?),
            SanType::DnsName(SLED_DNS_NAME.try_into()?),
        ];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, dir)
    }

    /// Issues the control-plane client certificate (URI
    /// [`CONTROL_PLANE_URI`], client auth only), written as `dir/cert.pem`
    /// and `dir/key.pem`.
    pub fn issue_control_plane(&self, dir: &Path) -> Result<KeyFiles, KeysError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name("trust-quorum control plane");
        params.subject_alt_names = vec![SanType::URI(CONTROL_PLANE_URI.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, dir)
    }

    fn issue(&self, mut params: CertificateParams, dir: &Path) -> Result<KeyFiles, KeysError> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        create_dir(dir)?;
        let files = KeyFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
        write_file(&files.cert, cert.pem().as_bytes(), false)?;
        write_file(&files.key, Zeroizing::new(key.serialize_pem()).as_bytes(), true)?;
        Ok(files)
    }
}

/// The URI naming sled `id` in its certificate.
pub fn sled_uri(id: &BaseboardId) -> String {
    let mut uri = String::from(SLED_URI_PREFIX);
    for b in id.to_string().bytes() {
        if is_unreserved(b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// The sled id named by a certificate URI, or `None` if `uri` is not a
/// canonical sled URI (see [`sled_uri`]).
pub fn parse_sled_uri(uri: &str) -> Option<BaseboardId> {
    let encoded = uri.strip_prefix(SLED_URI_PREFIX)?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            bytes.push(v);
            rest = tail.get(2..)?;
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let id: BaseboardId = String::from_utf8(bytes).ok()?.parse().ok()?;
    // One spelling per id: anything else (e.g. "%41" for "A") is refused.
    (sled_uri(&id) == uri).then_some(id)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':')
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn create_dir(dir: &Path) -> Result<(), KeysError> {
    fs::create_dir_all(dir).map_err(|source| KeysError::Io { path: dir.to_owned(), source })
}

fn read_string(path: &Path) -> Result<String, KeysError> {
    fs::read_to_string(path).map_err(|source| KeysError::Io { path: path.to_owned(), source })
}

/// Creates `path` (failing if it exists) and writes `contents`; a `secret`
/// file is created with mode 0600 on unix.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), KeysError> {
    crate::files::create_new(path, contents, secret)
        .map_err(|source| KeysError::Io { path: path.to_owned(), source })
}
