//! The operator API, HTTP/JSON. The membership endpoints use the reference
//! system's paths and shapes; the project's own endpoints sit beside them.
//!
//! | method and path (under `/v1/system/hardware/racks/{rack_id}/membership`) | body | answer |
//! | --- | --- | --- |
//! | `POST /add` | `{"sled_ids": [{"part": .., "serial": ..}]}` | the new epoch's status |
//! | `POST /abort` | | the aborted epoch's status |
//! | `GET ?version=E` (or without) | | the status of epoch E (or the latest) |
//! | `POST /initialize` | `{"sled_ids": [...]}` | the first epoch's status |
//! | `POST /remove` | `{"sled_ids": [...]}` | the new epoch's status |
//! | `GET /config/{epoch}` | | the detailed configuration view |
//! | `GET /report` | | the driver's last pass, as text |
//!
//! A refusal is `{"error": <typed error>, "message": "..."}` with a 4xx
//! status, and the ledger is unchanged.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tq_types::{AddSledsRequest, Epoch, RackId};

use crate::errors::OpError;
use crate::replica::{Command, Op};

#[derive(Clone)]
struct Api {
    rack_id: RackId,
    replica: mpsc::Sender<Command>,
}

/// The operator API's routes.
/// The routes, answered by the replica behind `replica`.
pub(crate) fn router(rack_id: RackId, replica: mpsc::Sender<Command>) -> Router {
    let base = "/v1/system/hardware/racks/{rack_id}/membership";
    Router::new()
        .route(base, get(status))
        .route(&format!("{base}/add"), post(add))
        .route(&format!("{base}/abort"), post(abort))
        .route(&format!("{base}/initialize"), post(initialize))
        .route(&format!("{base}/remove"), post(remove))
        .route(&format!("{base}/config/{{epoch}}"), get(config))
        .route(&format!("{base}/report"), get(report))
        .with_state(Api { rack_id, replica })
}

fn refuse(error: OpError) -> Response {
    let message = error.to_string();
    (error.status(), Json(serde_json::json!({ "error": error, "message": message })))
        .into_response()
}

impl Api {
    fn check_rack(&self, requested: &str) -> Result<(), OpError> {
        match requested.parse::<uuid::Uuid>() {
            Ok(id) if RackId(id) == self.rack_id => Ok(()),
            _ => Err(OpError::WrongRack { managed: self.rack_id, requested: requested.to_owned() }),
        }
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, OpError> {
        let (tx, rx) = oneshot::channel();
        self.replica.send(command(tx)).await.map_err(|_| OpError::Unavailable)?;
        rx.await.map_err(|_| OpError::Unavailable)
    }

    /// Runs `op` and answers the status of the epoch it returned.
    async fn operate(&self, rack: &str, op: Op) -> Response {
        let result = async {
            self.check_rack(rack)?;
            let epoch = self.ask(|tx| Command::Op(op, tx)).await??;
            self.ask(|tx| Command::Status(Some(epoch), tx))
                .await?
                .ok_or(OpError::NoSuchEpoch(epoch.0))
        }
        .await;
        match result {
            Ok(status) => Json(status).into_response(),
            Err(e) => refuse(e),
        }
    }
}

fn sleds(body: Result<Json<AddSledsRequest>, JsonRejection>) -> Result<AddSledsRequest, OpError> {
    body.map(|Json(b)| b).map_err(|r| OpError::BadRequest(r.body_text()))
}

async fn add(
    State(api): State<Api>,
    Path(rack): Path<String>,
    body: Result<Json<AddSledsRequest>, JsonRejection>,
) -> Response {
    match sleds(body) {
        Ok(req) => api.operate(&rack, Op::Add(req.sled_ids)).await,
        Err(e) => refuse(e),
    }
}

async fn remove(
    State(api): State<Api>,
    Path(rack): Path<String>,
    body: Result<Json<AddSledsRequest>, JsonRejection>,
) -> Response {
    match sleds(body) {
        Ok(req) => api.operate(&rack, Op::Remove(req.sled_ids)).await,
        Err(e) => refuse(e),
    }
}

async fn initialize(
    State(api): State<Api>,
    Path(rack): Path<String>,
    body: Result<Json<AddSledsRequest>, JsonRejection>,
) -> Response {
    match sleds(body) {
        Ok(req) => api.operate(&rack, Op::Initialize(req.sled_ids)).await,
        Err(e) => refuse(e),
    }
}

async fn abort(State(api): State<Api>, Path(rack): Path<String>) -> Response {
    api.operate(&rack, Op::Abort).await
}

#[derive(Deserialize)]
struct Version {
    version: Option<u64>,
}

async fn status(
    State(api): State<Api>,
    Path(rack): Path<String>,
    Query(version): Query<Version>,
) -> Response {
    let result = async {
        api.check_rack(&rack)?;
        let epoch = version.version.map(Epoch);
        api.ask(|tx| Command::Status(epoch, tx))
            .await?
            .ok_or(OpError::NoSuchEpoch(version.version.unwrap_or(0)))
    }
    .await;
    match result {
        Ok(status) => Json(status).into_response(),
        Err(e) => refuse(e),
    }
}

async fn config(State(api): State<Api>, Path((rack, epoch)): Path<(String, u64)>) -> Response {
    let result = async {
        api.check_rack(&rack)?;
        api.ask(|tx| Command::Config(Epoch(epoch), tx)).await?.ok_or(OpError::NoSuchEpoch(epoch))
    }
    .await;
    match result {
        Ok(view) => Json(view).into_response(),
        Err(e) => refuse(e),
    }
}

async fn report(State(api): State<Api>, Path(rack): Path<String>) -> Response {
    let result = async {
        api.check_rack(&rack)?;
        api.ask(Command::Report).await
    }
    .await;
    match result {
        Ok(Some(text)) => text.into_response(),
        Ok(None) => (StatusCode::NO_CONTENT, "").into_response(),
        Err(e) => refuse(e),
    }
}
