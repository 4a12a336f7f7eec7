//! The local secret-use API, for programs on the same machine (a
//! disk-unlock helper, say). It listens on loopback only and wants the
//! bearer token stored in the first data folder (`local-api.token`).
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/key` | `{"epoch": E, "context": "..."}` | `{"epoch": E, "key": "<64 hex>"}` |
//! | `GET /v1/commits?after=E` | | `{"latest_committed": E2}` once E2 > E, or after 30 s |
//!
//! The rack secret itself never leaves the agent: `/v1/key` answers a key
//! derived from it for the caller's context, and nothing secret is logged.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tq_types::Epoch;

use crate::agent::request::{KeyError, Request, Requester, Response};
use crate::unlock::Token;

/// Longest accepted caller context, in bytes.
pub const MAX_CONTEXT_LEN: usize = 256;
/// How long a commit long-poll waits before answering the current epoch.
pub const LONG_POLL: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct LocalState {
    agent: Requester,
    token: std::sync::Arc<Token>,
    committed: watch::Receiver<Option<Epoch>>,
}

/// The local API's routes.
pub(crate) fn router(
    agent: Requester,
    token: std::sync::Arc<Token>,
    committed: watch::Receiver<Option<Epoch>>,
) -> Router {
    let state = LocalState { agent, token, committed };
    Router::new().route("/v1/key", post(key)).route("/v1/commits", get(commits)).with_state(state)
}

/// A request for a derived key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    epoch: Epoch,
    context: String,
}

#[derive(Deserialize)]
struct CommitsQuery {
    after: Option<Epoch>,
}

#[derive(Serialize)]
struct Commits {
    latest_committed: Option<Epoch>,
}

/// Whether the request carries the bearer token.
fn authorized(state: &LocalState, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    presented.is_some_and(|token| state.token.matches(token))
}

fn unauthorized() -> HttpResponse {
    refuse(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    (status, Json(serde_json::json!({ "error": { kind: message }, "message": message })))
        .into_response()
}

async fn key(
    State(state): State<LocalState>,
    headers: HeaderMap,
    body: Result<Json<KeyRequest>, JsonRejection>,
) -> HttpResponse {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return refuse(rejection.status(), "bad_request", &rejection.body_text()),
    };
    if req.context.len() > MAX_CONTEXT_LEN {
        return refuse(StatusCode::BAD_REQUEST, "bad_request", "context longer than 256 bytes");
    }
    match state.agent.ask(Request::LoadKey { epoch: req.epoch, context: req.context }).await {
        Ok(Response::Key(Ok(key))) => Json(key).into_response(),
        Ok(Response::Key(Err(e))) => {
            let status = match &e {
                KeyError::TimedOut => StatusCode::SERVICE_UNAVAILABLE,
                KeyError::Load(_) => StatusCode::CONFLICT,
            };
            let message = e.to_string();
            (status, Json(serde_json::json!({ "error": e, "message": message }))).into_response()
        }
        Ok(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "unexpected answer"),
        Err(gone) => refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &gone.to_string()),
    }
}

async fn commits(
    State(mut state): State<LocalState>,
    headers: HeaderMap,
    Query(query): Query<CommitsQuery>,
) -> HttpResponse {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let after = query.after;
    let newer = |latest: &Option<Epoch>| *latest > after;
    let waited = tokio::time::timeout(LONG_POLL, state.committed.wait_for(newer))
        .await
        .ok()
        .and_then(|seen| seen.ok().map(|latest| *latest));
    // Timed out, or the agent stopped: answer what is known.
    let latest = waited.unwrap_or_else(|| *state.committed.borrow());
    Json(Commits { latest_committed: latest }).into_response()
}
