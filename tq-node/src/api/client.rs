//! A client of one sled's control API, for the control plane (and tools
//! that hold its certificate).
//!
//! Every request goes over mutual TLS: the client presents the control
//! plane's certificate and verifies the server's chain against the rack CA,
//! and every answer is accepted only if the server's certificate names the
//! sled this client was made for. Sleds share one DNS name
//! ([`crate::keys::SLED_DNS_NAME`]), which the client resolves to the
//! sled's configured address itself.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tq_types::{
    BaseboardId, CommitError, CommitRequest, CommitStatus, CoordinatorStatus, NodeStatus,
    PrepareAndCommitError, PrepareAndCommitRequest, ReconfigurationError, SignedReconfigure,
};

use crate::keys::SLED_DNS_NAME;
use crate::tls::{self, CertIdentity, Identity};

/// Why a call got no answer from the node role.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The HTTPS client could not be built.
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
    /// No connection, a failed handshake, or a timeout.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The server proved to be another sled (or not a sled).
    #[error("expected sled {expected}, but the server's certificate is {found}")]
    WrongSled {
        /// The sled this client was made for.
        expected: BaseboardId,
        /// Whom the certificate names, or why it names nobody.
        found: String,
    },
    /// An answer that is not the documented shape, or a status without a
    /// typed error (the agent is stopping, the request was malformed).
    #[error("HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's message, if it sent one.
        message: String,
    },
}

/// The answer of a call: the node's typed refusal inside, transport
/// failures outside.
pub type Answer<T, E> = Result<Result<T, E>, CallError>;

/// A client of one sled's control API. Cloning is cheap (connections are
/// pooled and shared).
#[derive(Clone, Debug)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    sled: BaseboardId,
}

impl ControlClient {
    /// A client of `sled`'s control API at `addr`, presenting `identity`
    /// (the control plane's); each request gives up after `timeout`.
    pub fn new(
        identity: &Identity,
        sled: BaseboardId,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<ControlClient, CallError> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*identity.client_config()).clone())
            .resolve(SLED_DNS_NAME, addr)
            .https_only(true)
            .tls_info(true)
            .timeout(timeout)
            .build()
            .map_err(|e| CallError::Client(e.to_string()))?;
        let base = format!("https://{SLED_DNS_NAME}:{}", addr.port());
        Ok(ControlClient { http, base, sled })
    }

    /// The sled this client talks to.
    pub fn sled(&self) -> &BaseboardId {
        &self.sled
    }

    /// `POST /v1/reconfigure`.
    pub async fn reconfigure(&self, msg: &SignedReconfigure) -> Answer<(), ReconfigurationError> {
        let answer: Answer<serde_json::Value, _> = self.post("/v1/reconfigure", msg).await;
        answer.map(|r| r.map(|_| ()))
    }

    /// `POST /v1/commit`.
    pub async fn commit(&self, req: &CommitRequest) -> Answer<CommitStatus, CommitError> {
        self.post("/v1/commit", req).await
    }

    /// `POST /v1/prepare-and-commit`.
    pub async fn prepare_and_commit(
        &self,
        req: &PrepareAndCommitRequest,
    ) -> Answer<CommitStatus, PrepareAndCommitError> {
        self.post("/v1/prepare-and-commit", req).await
    }

    /// `GET /v1/coordinator`: what the node is coordinating, if anything.
    pub async fn coordinator(&self) -> Result<Option<CoordinatorStatus>, CallError> {
        self.get("/v1/coordinator").await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<NodeStatus, CallError> {
        self.get("/v1/status").await
    }

    async fn post<B: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Answer<T, E> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        let response = self.send(request).await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|e| bad(status, e))?;
        if status.is_success() {
            return serde_json::from_value(body).map(Ok).map_err(|e| bad(status, e));
        }
        let message = body.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
        match body.get("error").map(|e| serde_json::from_value::<E>(e.clone())) {
            Some(Ok(refusal)) => Ok(Err(refusal)),
            _ => Err(CallError::Status { status: status.as_u16(), message }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        let response = self.send(self.http.get(format!("{}{path}", self.base))).await?;
        let status = response.status();
        if !status.is_success() {
            let message = response.text().await.unwrap_or_default();
            return Err(CallError::Status { status: status.as_u16(), message });
        }
        response.json().await.map_err(|e| bad(status, e))
    }

    /// Sends `request` and checks whom the server's certificate names.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let response = request.send().await.map_err(|e| CallError::Unreachable(chain(&e)))?;
        let cert = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(|der| CertificateDer::from(der.to_vec()));
        let found = match cert.as_ref().map(tls::cert_identity) {
            Some(Ok(CertIdentity::Sled(id))) if id == self.sled => return Ok(response),
            Some(Ok(CertIdentity::Sled(other))) => format!("sled {other}'s"),
            Some(Ok(CertIdentity::ControlPlane)) => "the control plane's".to_owned(),
            Some(Err(e)) => e.to_string(),
            None => "missing".to_owned(),
        };
        Err(CallError::WrongSled { expected: self.sled.clone(), found })
    }
}

fn bad(status: reqwest::StatusCode, e: impl std::fmt::Display) -> CallError {
    CallError::Status { status: status.as_u16(), message: format!("unexpected answer: {e}") }
}

/// An error with its sources (reqwest's own message is terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
