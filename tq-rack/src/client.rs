//! HTTP clients: the operator API of the control plane (any replica will
//! do: each request goes to the first one that answers), and each sled's
//! control and local APIs.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tq_types::{
    AddSledsRequest, BaseboardId, Epoch, NodeStatus, RackMembershipStatus, TrustQuorumConfig,
};

use tq_node::api::client::ControlClient;

use crate::error::RackError;
use crate::layout::Rack;

/// The timeout of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain HTTP client with [`REQUEST_TIMEOUT`].
pub fn http() -> Result<reqwest::Client, RackError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| RackError::Failed(format!("HTTP client: {e}")))
}

/// An answer of the operator API: the body, or a refusal.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A 2xx answer's body.
    Ok(Value),
    /// A 4xx answer (the ledger is unchanged).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The typed error, as sent.
        error: Value,
        /// Its message.
        message: String,
    },
}

/// The operator API of the rack's control plane.
#[derive(Clone, Debug)]
pub struct Operator {
    http: reqwest::Client,
    base: Vec<String>,
}

impl Operator {
    /// A client of every replica of `rack`.
    pub fn new(rack: &Rack) -> Result<Operator, RackError> {
        let base = rack
            .layout
            .replicas
            .iter()
            .map(|r| {
                format!(
                    "http://{}/v1/system/hardware/racks/{}/membership",
                    r.listen, rack.layout.rack_id
                )
            })
            .collect();
        Ok(Operator { http: http()?, base })
    }

    /// Sends one request to the replicas in turn until one answers other
    /// than 503 (unavailable) or a connection failure.
    pub async fn call(
        &self,
        post: bool,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, RackError> {
        let mut failures = Vec::new();
        for base in &self.base {
            let url = format!("{base}{path}");
            let request = if post { self.http.post(&url) } else { self.http.get(&url) };
            let request = match &body {
                Some(body) => request.json(body),
                None => request,
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            };
            let status = response.status();
            let value: Value = match response.json().await {
                Ok(value) => value,
                Err(e) => {
                    failures.push(format!("{url}: HTTP {status}, unreadable body: {e}"));
                    continue;
                }
            };
            if status.is_success() {
                return Ok(Answer::Ok(value));
            }
            let message = value.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                failures.push(format!("{url}: HTTP 503: {message}"));
                continue;
            }
            let error = value.get("error").cloned().unwrap_or(Value::Null);
            return Ok(Answer::Refused { status: status.as_u16(), error, message });
        }
        Err(RackError::Unreachable(format!("no control-plane replica answered: {failures:?}")))
    }

    /// Sends a membership change (`initialize`, `add` or `remove`) and
    /// returns the new epoch's status, or the refusal.
    pub async fn change(
        &self,
        op: &str,
        sleds: &BTreeSet<BaseboardId>,
    ) -> Result<Result<RackMembershipStatus, RackError>, RackError> {
        let body = serde_json::to_value(AddSledsRequest { sled_ids: sleds.clone() })
            .map_err(|e| RackError::Failed(format!("request body: {e}")))?;
        match self.call(true, &format!("/{op}"), Some(body)).await? {
            Answer::Ok(value) => Ok(Ok(decode(value, "membership status")?)),
            Answer::Refused { status, message, .. } => {
                Ok(Err(RackError::Refused { what: op.to_owned(), status, message }))
            }
        }
    }

    /// The status of `epoch` (or the latest) as JSON; `None` if there is
    /// no such epoch (or no epoch at all).
    pub async fn status_json(&self, epoch: Option<Epoch>) -> Result<Option<Value>, RackError> {
        let path = epoch.map(|e| format!("?version={e}")).unwrap_or_default();
        match self.call(false, &path, None).await? {
            Answer::Ok(value) => Ok(Some(value)),
            Answer::Refused { status: 404, .. } => Ok(None),
            Answer::Refused { status, message, .. } => {
                Err(RackError::Refused { what: "status".into(), status, message })
            }
        }
    }

    /// The status of `epoch` (or the latest).
    pub async fn status(
        &self,
        epoch: Option<Epoch>,
    ) -> Result<Option<RackMembershipStatus>, RackError> {
        self.status_json(epoch).await?.map(|v| decode(v, "membership status")).transpose()
    }

    /// The detailed view of `epoch`.
    pub async fn config(&self, epoch: Epoch) -> Result<Option<TrustQuorumConfig>, RackError> {
        match self.call(false, &format!("/config/{epoch}"), None).await? {
            Answer::Ok(value) => Ok(Some(decode(value, "configuration view")?)),
            Answer::Refused { status: 404, .. } => Ok(None),
            Answer::Refused { status, message, .. } => {
                Err(RackError::Refused { what: format!("config/{epoch}"), status, message })
            }
        }
    }
}

fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, RackError> {
    serde_json::from_value(value).map_err(|e| RackError::Failed(format!("unexpected {what}: {e}")))
}

/// A client of sled `index`'s control API, presenting the control plane's
/// certificate from the rack's keys (mutual TLS).
pub fn control_client(rack: &Rack, index: usize) -> Result<ControlClient, RackError> {
    let keys = rack.dir.join("keys");
    let identity = tq_node::tls::Identity::load(
        &keys.join("ca.pem"),
        &keys.join("control").join("cert.pem"),
        &keys.join("control").join("key.pem"),
    )
    .map_err(|e| RackError::Failed(format!("the control plane's TLS identity: {e}")))?;
    let sled = rack.sled(index)?;
    ControlClient::new(&identity, sled.id.clone(), sled.control, REQUEST_TIMEOUT)
        .map_err(|e| RackError::Failed(format!("control client: {e}")))
}

/// A sled's status from its control API.
pub async fn sled_status(client: &ControlClient) -> Result<NodeStatus, RackError> {
    client
        .status()
        .await
        .map_err(|e| RackError::Unreachable(format!("sled {}: status: {e}", client.sled())))
}

/// The key a sled derives for `context` from the secret of `epoch`
/// through its local API: `Ok(hex)`, or the HTTP status and body.
pub async fn sled_key(
    http: &reqwest::Client,
    local: SocketAddr,
    token: &str,
    epoch: Epoch,
    context: &str,
) -> Result<Result<String, (u16, Value)>, RackError> {
    let url = format!("http://{local}/v1/key");
    let response = http
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "epoch": epoch, "context": context }))
        .send()
        .await
        .map_err(|e| RackError::Unreachable(format!("{url}: {e}")))?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body.get("key").and_then(Value::as_str) {
        Some(key) if status == 200 => Ok(Ok(key.to_owned())),
        _ => Ok(Err((status, body))),
    }
}
