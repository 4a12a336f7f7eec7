//! The control API, for the control plane: HTTP/JSON over mutual TLS.
//!
//! Only a client presenting the control plane's certificate, issued by the
//! rack CA, is served (see the `listener` module); [`client::ControlClient`] is the
//! matching client, which also checks that the server is the sled it meant.
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/reconfigure` | `SignedReconfigure` | `{}` |
//! | `POST /v1/commit` | `CommitRequest` | `CommitStatus` |
//! | `POST /v1/prepare-and-commit` | `PrepareAndCommitRequest` | `CommitStatus` |
//! | `GET /v1/coordinator` | | `CoordinatorStatus` or `null` |
//! | `GET /v1/status` | | `NodeStatus` |
//!
//! Every answer is sent only after the state it reports is durable. A
//! refusal is a typed JSON body `{"error": <the node's error>, "message":
//! "..."}` with a 4xx status; a stopped agent answers 503.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tq_types::{
    CommitError, CommitRequest, NodeRefusal, PrepareAndCommitError, PrepareAndCommitRequest,
    ReconfigurationError, SignedReconfigure,
};

use crate::agent::request::{AgentGone, Request, Requester, Response};

pub mod client;
pub(crate) mod listener;

/// The control API's routes.
pub(crate) fn router(requester: Requester) -> Router {
    Router::new()
        .route("/v1/reconfigure", post(reconfigure))
        .route("/v1/commit", post(commit))
        .route("/v1/prepare-and-commit", post(prepare_and_commit))
        .route("/v1/coordinator", get(coordinator))
        .route("/v1/status", get(status))
        .with_state(requester)
}

/// A typed error body.
#[derive(Serialize)]
struct ErrorBody<E: Serialize> {
    error: E,
    message: String,
}

fn error<E: Serialize + core::fmt::Display>(status: StatusCode, error: E) -> HttpResponse {
    let message = error.to_string();
    (status, Json(ErrorBody { error, message })).into_response()
}

fn unavailable(gone: AgentGone) -> HttpResponse {
    error(StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "unavailable": gone.to_string() }))
        .into_response()
}

fn bad_body(rejection: JsonRejection) -> HttpResponse {
    error(rejection.status(), serde_json::json!({ "bad_request": rejection.body_text() }))
}

fn unexpected() -> HttpResponse {
    (StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer").into_response()
}

fn refusal_status(r: &NodeRefusal) -> StatusCode {
    match r {
        NodeRefusal::RackIdMismatch(_) => StatusCode::CONFLICT,
        NodeRefusal::Expunged { .. } => StatusCode::GONE,
        NodeRefusal::Unauthorized(_) => StatusCode::FORBIDDEN,
    }
}

async fn reconfigure(
    State(agent): State<Requester>,
    body: Result<Json<SignedReconfigure>, JsonRejection>,
) -> HttpResponse {
    let Json(msg) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_body(rejection),
    };
    match agent.ask(Request::Reconfigure(msg)).await {
        Ok(Response::Reconfigure(Ok(()))) => Json(serde_json::json!({})).into_response(),
        Ok(Response::Reconfigure(Err(e))) => {
            let status = match &e {
                ReconfigurationError::Refused(r) => refusal_status(r),
                ReconfigurationError::CoordinatorNotMember { .. }
                | ReconfigurationError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                ReconfigurationError::CoordinationFailed { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::CONFLICT,
            };
            error(status, e)
        }
        Ok(_) => unexpected(),
        Err(gone) => unavailable(gone),
    }
}

async fn commit(
    State(agent): State<Requester>,
    body: Result<Json<CommitRequest>, JsonRejection>,
) -> HttpResponse {
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_body(rejection),
    };
    match agent.ask(Request::Commit(req)).await {
        Ok(Response::Commit(Ok(status))) => Json(status).into_response(),
        Ok(Response::Commit(Err(e))) => {
            let status = match &e {
                CommitError::Refused(r) => refusal_status(r),
                CommitError::NotPrepared(_) => StatusCode::CONFLICT,
            };
            error(status, e)
        }
        Ok(_) => unexpected(),
        Err(gone) => unavailable(gone),
    }
}

async fn prepare_and_commit(
    State(agent): State<Requester>,
    body: Result<Json<PrepareAndCommitRequest>, JsonRejection>,
) -> HttpResponse {
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_body(rejection),
    };
    match agent.ask(Request::PrepareAndCommit(req)).await {
        Ok(Response::PrepareAndCommit(Ok(status))) => Json(status).into_response(),
        Ok(Response::PrepareAndCommit(Err(e))) => {
            let status = match &e {
                PrepareAndCommitError::Refused(r) => refusal_status(r),
                PrepareAndCommitError::Invalid(_) | PrepareAndCommitError::NotAMember(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                PrepareAndCommitError::ConflictingConfiguration(_) => StatusCode::CONFLICT,
            };
            error(status, e)
        }
        Ok(_) => unexpected(),
        Err(gone) => unavailable(gone),
    }
}

async fn coordinator(State(agent): State<Requester>) -> HttpResponse {
    match agent.ask(Request::CoordinatorStatus).await {
        Ok(Response::CoordinatorStatus(status)) => Json(status).into_response(),
        Ok(_) => unexpected(),
        Err(gone) => unavailable(gone),
    }
}

async fn status(State(agent): State<Requester>) -> HttpResponse {
    match agent.ask(Request::Status).await {
        Ok(Response::Status(status)) => Json(status).into_response(),
        Ok(_) => unexpected(),
        Err(gone) => unavailable(gone),
    }
}
