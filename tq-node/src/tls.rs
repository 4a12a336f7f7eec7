//! Mutual TLS between sleds: configurations that require and verify the
//! peer's certificate against the rack CA only, and identity extraction from
//! a verified certificate.
//!
//! # Identity and server names
//!
//! A peer's identity is read from its end-entity certificate only (the URI
//! subject alternative name, see [`crate::keys`]), after the handshake has
//! verified the chain against the rack CA; [`peer_identity`] does this for a
//! live connection. Hostnames identify nobody: every sled certificate carries
//! the same DNS name [`SLED_DNS_NAME`] and clients dial with that name
//! ([`server_name`]), so the stock WebPKI verifiers apply unchanged (chain to
//! the rack CA, validity, key usages) and no custom verifier is needed. A
//! dialer then compares the identity in the server's certificate with the
//! sled it meant to reach.
//!
//! Both sides speak TLS 1.3 only, never resume sessions (every connection
//! verifies both certificates), and use the ring provider explicitly, so no
//! process-wide provider has to be installed.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, CommonState, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tq_types::BaseboardId;
use x509_parser::extensions::GeneralName;

use crate::keys::{CONTROL_PLANE_URI, SLED_DNS_NAME, SLED_URI_PREFIX, parse_sled_uri};

/// Why TLS material could not be loaded or a certificate carries no usable
/// identity.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// PEM input is malformed.
    #[error("bad PEM ({what}): {source}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// The parse error.
        source: rustls::pki_types::pem::Error,
    },
    /// PEM input holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(&'static str),
    /// rustls refused the configuration (e.g. key and certificate differ).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The rack CA cannot be used to verify peers.
    #[error("TLS verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    /// A certificate is not valid X.509.
    #[error("unparsable certificate: {0}")]
    BadCertificate(String),
    /// A certificate has no trust-quorum identity URI.
    #[error("certificate carries no trust-quorum identity")]
    NoIdentity,
    /// A certificate has more than one trust-quorum identity URI.
    #[error("certificate carries more than one trust-quorum identity")]
    AmbiguousIdentity,
    /// A certificate's sled URI does not name a valid sled id.
    #[error("malformed sled identity URI {0:?}")]
    BadIdentity(String),
    /// The certificate identifies the control plane, not a sled.
    #[error("certificate identifies the control plane, not a sled")]
    NotASled,
    /// The connection has no peer certificate (handshake not complete).
    #[error("peer presented no certificate")]
    NoPeerCertificate,
}

/// Who a certificate identifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertIdentity {
    /// A sled.
    Sled(BaseboardId),
    /// The control-plane client.
    ControlPlane,
}

/// A loaded identity: own certificate chain and key plus the rack CA, as
/// ready-made server and client configurations. Cloning is cheap.
#[derive(Clone)]
pub struct Identity {
    identity: CertIdentity,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the rack CA certificate, own certificate chain (end-entity
    /// first) and own private key from PEM files.
    pub fn load(ca: &Path, cert_chain: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map(zeroize::Zeroizing::new)
                .map_err(|source| TlsError::Io { path: path.to_owned(), source })
        };
        Self::from_pem(&read(ca)?, &read(cert_chain)?, &read(key)?)
    }

    /// Builds an identity from PEM bytes: the rack CA certificate(s), own
    /// certificate chain (end-entity first) and own private key.
    pub fn from_pem(ca_pem: &[u8], chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in certs(ca_pem, "CA certificate")? {
            roots.add(ca)?;
        }
        let roots = Arc::new(roots);
        let chain = certs(chain_pem, "certificate chain")?;
        let identity = chain
            .first()
            .ok_or(TlsError::NoCertificate("certificate chain"))
            .and_then(cert_identity)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|source| TlsError::Pem { what: "private key", source })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        // No session resumption: every connection verifies both certificates.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(Identity { identity, server: Arc::new(server), client: Arc::new(client) })
    }

    /// Whom this identity's own certificate identifies.
    pub fn identity(&self) -> &CertIdentity {
        &self.identity
    }

    /// The sled id of this identity, if it is a sled's.
    pub fn sled_id(&self) -> Option<&BaseboardId> {
        match &self.identity {
            CertIdentity::Sled(id) => Some(id),
            CertIdentity::ControlPlane => None,
        }
    }

    /// The server configuration: requires a client certificate chaining to
    /// the rack CA.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The client configuration: presents this identity and verifies the
    /// server chain against the rack CA (dial with [`server_name`]).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// A tokio acceptor over [`Self::server_config`].
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server_config())
    }

    /// A tokio connector over [`Self::client_config`].
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.client_config())
    }
}

/// The server name every sled is dialed with ([`SLED_DNS_NAME`]).
pub fn server_name() -> ServerName<'static> {
    // The constant is a valid DNS name (unit-tested); were it not, an IP
    // name would only make every handshake fail, never succeed wrongly.
    ServerName::try_from(SLED_DNS_NAME)
        .unwrap_or_else(|_| ServerName::from(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The sled identified by a certificate (its sled URI subject alternative
/// name). Call only on certificates whose chain has been verified.
pub fn peer_id(cert: &CertificateDer<'_>) -> Result<BaseboardId, TlsError> {
    match cert_identity(cert)? {
        CertIdentity::Sled(id) => Ok(id),
        CertIdentity::ControlPlane => Err(TlsError::NotASled),
    }
}

/// Whom a certificate identifies: exactly one trust-quorum URI subject
/// alternative name is required.
pub fn cert_identity(cert: &CertificateDer<'_>) -> Result<CertIdentity, TlsError> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    let san = x509
        .subject_alternative_name()
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?
        .ok_or(TlsError::NoIdentity)?;
    let mut found = None;
    for name in &san.value.general_names {
        let GeneralName::URI(uri) = name else { continue };
        let identity = if *uri == CONTROL_PLANE_URI {
            CertIdentity::ControlPlane
        } else if uri.starts_with(SLED_URI_PREFIX) {
            let id = parse_sled_uri(uri).ok_or_else(|| TlsError::BadIdentity(uri.to_string()))?;
            CertIdentity::Sled(id)
        } else {
            continue;
        };
        if found.replace(identity).is_some() {
            return Err(TlsError::AmbiguousIdentity);
        }
    }
    found.ok_or(TlsError::NoIdentity)
}

/// The sled at the other end of a completed handshake, from its verified
/// end-entity certificate. This is the only source of a peer's identity.
pub fn peer_identity(conn: &CommonState) -> Result<BaseboardId, TlsError> {
    let cert =
        conn.peer_certificates().and_then(|c| c.first()).ok_or(TlsError::NoPeerCertificate)?;
    peer_id(cert)
}

fn certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_is_the_sled_dns_name() {
        match server_name() {
            ServerName::DnsName(name) => assert_eq!(name.as_ref(), SLED_DNS_NAME),
            other => panic!("unexpected {other:?}"),
        }
    }
}
