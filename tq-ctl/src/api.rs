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
//! status (503 when the ledger cannot be reached), and the ledger is
//! unchanged. A malformed body, path or query is a 400 `bad_request`.
//!
//! [`routes`] lists what the router serves; the OpenAPI document
//! ([`crate::openapi::openapi`]) describes the same routes, and a test
//! checks that the two agree.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tq_types::{AddSledsRequest, Epoch, RackId, RackMembershipStatus, TrustQuorumConfig};

use crate::errors::{ErrorBody, OpError};
use crate::replica::{Command, Op};

/// A path under the membership prefix, as a literal (for `concat!`).
macro_rules! membership {
    ($rest:literal) => {
        concat!("/v1/system/hardware/racks/{rack_id}/membership", $rest)
    };
}

const STATUS: &str = membership!("");
const ADD: &str = membership!("/add");
const ABORT: &str = membership!("/abort");
const INITIALIZE: &str = membership!("/initialize");
const REMOVE: &str = membership!("/remove");
const CONFIG: &str = membership!("/config/{epoch}");
const REPORT: &str = membership!("/report");

/// The HTTP methods the API serves.
#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
}

/// Registers a handler for a method.
type Serve = fn(MethodFilter) -> MethodRouter<Api>;

/// Every route: the one list that [`router`] registers and [`routes`]
/// shows.
const ROUTES: [(Method, &str, Serve); 7] = [
    (Method::Get, STATUS, |m| on(m, status)),
    (Method::Post, ADD, |m| on(m, add)),
    (Method::Post, ABORT, |m| on(m, abort)),
    (Method::Post, INITIALIZE, |m| on(m, initialize)),
    (Method::Post, REMOVE, |m| on(m, remove)),
    (Method::Get, CONFIG, |m| on(m, config)),
    (Method::Get, REPORT, |m| on(m, report)),
];

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
        }
    }
}

/// The routes the operator API serves, as `(method, path)`: the method in
/// lowercase and the path with `{name}` for its parameters, both as an
/// OpenAPI document spells them. Exactly these are registered by the
/// router and described by [`crate::openapi::openapi`].
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().map(|(method, path, _)| (method.as_str(), *path))
}

#[derive(Clone)]
struct Api {
    rack_id: RackId,
    replica: mpsc::Sender<Command>,
}

/// The operator API's routes ([`routes`]), answered by the replica behind
/// `replica`.
pub(crate) fn router(rack_id: RackId, replica: mpsc::Sender<Command>) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, (method, path, serve)| {
            router.route(path, serve(method.filter()))
        })
        .with_state(Api { rack_id, replica })
}

fn refuse(error: OpError) -> Response {
    (error.status(), Json(ErrorBody::from(error))).into_response()
}

fn answer<T: serde::Serialize>(result: Result<T, OpError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => refuse(e),
    }
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
        answer(result)
    }

    /// Runs the operation `op` builds from a well-formed body.
    async fn operate_on(
        &self,
        rack: &str,
        body: Result<Json<AddSledsRequest>, JsonRejection>,
        op: fn(AddSledsRequest) -> Op,
    ) -> Response {
        match body {
            Ok(Json(request)) => self.operate(rack, op(request)).await,
            Err(rejection) => refuse(OpError::BadRequest(rejection.body_text())),
        }
    }
}

/// Add sleds to the rack.
///
/// Proposes a new epoch whose membership is the current one plus the
/// sleds, and answers its status (state `in_progress`).
#[utoipa::path(
    post,
    path = ADD,
    tag = "membership",
    operation_id = "membership_add",
    params(("rack_id" = RackId, Path, description = "The rack this control plane manages")),
    request_body = AddSledsRequest,
    responses(
        (status = 200, description = "The new epoch's status", body = RackMembershipStatus),
        (status = 400, description = "Malformed body (`bad_request`) or sleds not in the inventory (`unknown_sleds`)", body = ErrorBody),
        (status = 404, description = "Another rack (`wrong_rack`)", body = ErrorBody),
        (status = 409, description = "The change is refused now (`add`)", body = ErrorBody),
        (status = 503, description = "Ledger unreachable, busy or shutting down", body = ErrorBody),
    )
)]
async fn add(
    State(api): State<Api>,
    Path(rack): Path<String>,
    body: Result<Json<AddSledsRequest>, JsonRejection>,
) -> Response {
    api.operate_on(&rack, body, |req| Op::Add(req.sled_ids)).await
}

/// Remove sleds from the rack.
///
/// Proposes a new epoch whose membership is the current one less the
/// sleds, and answers its status.
#[utoipa::path(
    post,
    path = REMOVE,
    tag = "membership",
    operation_id = "membership_remove",
    params(("rack_id" = RackId, Path, description = "The rack this control plane manages")),
    request_body = AddSledsRequest,
    responses(
        (status = 200, description = "The new epoch's status", body = RackMembershipStatus),
        (status = 400, description = "Malformed body (`bad_request`)", body = ErrorBody),
        (status = 404, description = "Another rack (`wrong_rack`)", body = ErrorBody),
        (status = 409, description = "The change is refused now (`remove`)", body = ErrorBody),
        (status = 503, description = "Ledger unreachable, busy or shutting down", body = ErrorBody),
    )
)]
async fn remove(
    State(api): State<Api>,
    Path(rack): Path<String>,
    body: Result<Json<AddSledsRequest>, JsonRejection>,
) -> Response {
    api.operate_on(&rack, body, |req| Op::Remove(req.sled_ids)).await
}

/// Initialize the rack.
///
/// Proposes the rack's first epoch with the sleds as its membership, and
/// answers its status.
#[utoipa::path(
    post,
    path = INITIALIZE,
    tag = "membership",
    operation_id = "membership_initialize",
    params(("rack_id" = RackId, Path, description = "The rack this control plane manages")),
    request_body = AddSledsRequest,
    responses(
        (status = 200, description = "The first epoch's status", body = RackMembershipStatus),
        (status = 400, description = "Malformed body (`bad_request`) or sleds not in the inventory (`unknown_sleds`)", body = ErrorBody),
        (status = 404, description = "Another rack (`wrong_rack`)", body = ErrorBody),
        (status = 409, description = "Initialization is refused (`initialize`)", body = ErrorBody),
        (status = 503, description = "Ledger unreachable, busy or shutting down", body = ErrorBody),
    )
)]
async fn initialize(
    State(api): State<Api>,
    Path(rack): Path<String>,
    body: Result<Json<AddSledsRequest>, JsonRejection>,
) -> Response {
    api.operate_on(&rack, body, |req| Op::Initialize(req.sled_ids)).await
}

/// Abort the latest change.
///
/// Aborts the latest epoch while it is still preparing, and answers its
/// status (state `aborted`).
#[utoipa::path(
    post,
    path = ABORT,
    tag = "membership",
    operation_id = "membership_abort",
    params(("rack_id" = RackId, Path, description = "The rack this control plane manages")),
    responses(
        (status = 200, description = "The aborted epoch's status", body = RackMembershipStatus),
        (status = 404, description = "Another rack (`wrong_rack`)", body = ErrorBody),
        (status = 409, description = "Nothing to abort (`abort`)", body = ErrorBody),
        (status = 503, description = "Ledger unreachable, busy or shutting down", body = ErrorBody),
    )
)]
async fn abort(State(api): State<Api>, Path(rack): Path<String>) -> Response {
    api.operate(&rack, Op::Abort).await
}

#[derive(Deserialize)]
struct Version {
    version: Option<u64>,
}

/// The status of a membership change.
///
/// The status of epoch `version`, or of the latest epoch without it.
#[utoipa::path(
    get,
    path = STATUS,
    tag = "membership",
    operation_id = "membership_status",
    params(
        ("rack_id" = RackId, Path, description = "The rack this control plane manages"),
        ("version" = Option<u64>, Query, description = "The epoch; the latest without it"),
    ),
    responses(
        (status = 200, description = "The epoch's status", body = RackMembershipStatus),
        (status = 400, description = "Malformed query (`bad_request`)", body = ErrorBody),
        (status = 404, description = "Another rack (`wrong_rack`) or no such epoch (`no_such_epoch`)", body = ErrorBody),
        (status = 503, description = "Shutting down", body = ErrorBody),
    )
)]
async fn status(
    State(api): State<Api>,
    Path(rack): Path<String>,
    query: Result<Query<Version>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(version) = query.map_err(|r| OpError::BadRequest(r.body_text()))?;
        api.check_rack(&rack)?;
        let epoch = version.version.map(Epoch);
        api.ask(|tx| Command::Status(epoch, tx))
            .await?
            .ok_or(OpError::NoSuchEpoch(version.version.unwrap_or(0)))
    }
    .await;
    answer(result)
}

/// The detailed configuration view of an epoch.
#[utoipa::path(
    get,
    path = CONFIG,
    tag = "membership",
    operation_id = "membership_config",
    params(
        ("rack_id" = RackId, Path, description = "The rack this control plane manages"),
        ("epoch" = u64, Path, description = "The epoch"),
    ),
    responses(
        (status = 200, description = "The configuration", body = TrustQuorumConfig),
        (status = 400, description = "Malformed epoch (`bad_request`)", body = ErrorBody),
        (status = 404, description = "Another rack (`wrong_rack`) or no such epoch (`no_such_epoch`)", body = ErrorBody),
        (status = 503, description = "Shutting down", body = ErrorBody),
    )
)]
async fn config(
    State(api): State<Api>,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Response {
    let result = async {
        let Path((rack, epoch)) = path.map_err(|r| OpError::BadRequest(r.body_text()))?;
        api.check_rack(&rack)?;
        api.ask(|tx| Command::Config(Epoch(epoch), tx)).await?.ok_or(OpError::NoSuchEpoch(epoch))
    }
    .await;
    answer(result)
}

/// The driver's last pass.
///
/// The report of the driver's latest commit pass, as text.
#[utoipa::path(
    get,
    path = REPORT,
    tag = "membership",
    operation_id = "membership_report",
    params(("rack_id" = RackId, Path, description = "The rack this control plane manages")),
    responses(
        (status = 200, description = "The report", body = String, content_type = "text/plain"),
        (status = 204, description = "No pass has run yet"),
        (status = 404, description = "Another rack (`wrong_rack`)", body = ErrorBody),
        (status = 503, description = "Shutting down", body = ErrorBody),
    )
)]
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

#[cfg(test)]
mod tests {
    //! Bad requests against the router, with a stand-in replica: each gets
    //! the documented 4xx and error body, and none reaches the replica as an
    //! operation, so the ledger cannot change.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    const RACK: &str = "3df0b7cd-50ed-498e-afa4-41f178d393f9";
    const OTHER: &str = "0dbef452-a6dd-4831-bbdc-769ea3353f28";

    /// A router over a replica that knows no epoch and answers every
    /// operation `busy`, counting them.
    fn stand_in() -> (Router, Arc<AtomicUsize>) {
        let (tx, mut rx) = mpsc::channel(8);
        let ops = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ops);
        tokio::spawn(async move {
            while let Some(command) = rx.recv().await {
                let _gone = match command {
                    Command::Op(_, reply) => {
                        counted.fetch_add(1, Ordering::SeqCst);
                        reply.send(Err(OpError::Busy)).is_err()
                    }
                    Command::Status(_, reply) => reply.send(None).is_err(),
                    Command::Config(_, reply) => reply.send(None).is_err(),
                    Command::Report(reply) => reply.send(None).is_err(),
                };
            }
        });
        (router(RackId(RACK.parse().unwrap()), tx), ops)
    }

    /// The error body's shape: exactly `error` and `message`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Refusal {
        error: Value,
        #[allow(dead_code)]
        message: String,
    }

    /// Sends `method` to `template` (with `{rack_id}` and `{epoch}` filled
    /// in from `at`, with the query and body) and checks the answer against
    /// the document: the status is one the operation documents with an
    /// `ErrorBody`, and the body has that shape with an `error` the
    /// `OpError` schema lists. Returns the status and the error's variant.
    async fn refused(app: &Router, method: &str, template: &str, at: [&str; 4]) -> (u16, String) {
        let [rack, epoch, query, body] = at;
        let uri =
            format!("{}{query}", template.replace("{rack_id}", rack).replace("{epoch}", epoch));
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let refusal: Refusal = serde_json::from_slice(&bytes).unwrap();
        let variant = match &refusal.error {
            Value::String(s) => s.clone(),
            Value::Object(m) if m.len() == 1 => m.keys().next().unwrap().clone(),
            other => panic!("error {other} is neither a string nor a one-key object"),
        };
        let doc = serde_json::to_value(crate::openapi::openapi()).unwrap();
        let documented = &doc["paths"][template][method.to_ascii_lowercase()]["responses"]
            [status.as_str()]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(documented, "#/components/schemas/ErrorBody", "{method} {template} {status}");
        let listed =
            doc["components"]["schemas"]["OpError"]["oneOf"].as_array().unwrap().iter().any(|s| {
                s["enum"][0] == variant.as_str() || s["properties"].get(&variant).is_some()
            });
        assert!(listed, "{variant} is not an OpError variant in the document");
        (status.as_u16(), variant)
    }

    #[tokio::test]
    async fn bad_requests_get_a_typed_4xx_and_never_reach_the_ledger() {
        let (app, ops) = stand_in();
        let sled = r#"{"sled_ids": [{"part": "P", "serial": "1"}]}"#;
        let twice = r#"{"sled_ids": [{"part": "P", "serial": "1"}, {"part": "P", "serial": "1"}]}"#;
        let cases = [
            ("POST", ADD, [RACK, "", "", r#"{"sled_ids": ["#], 400, "bad_request"),
            ("POST", ADD, [RACK, "", "", twice], 400, "bad_request"),
            ("POST", INITIALIZE, [RACK, "", "", r#"{"sleds": []}"#], 400, "bad_request"),
            ("POST", REMOVE, [RACK, "", "", ""], 400, "bad_request"),
            ("POST", ADD, [OTHER, "", "", sled], 404, "wrong_rack"),
            ("POST", ABORT, ["not-a-rack", "", "", ""], 404, "wrong_rack"),
            ("GET", REPORT, [OTHER, "", "", ""], 404, "wrong_rack"),
            ("GET", CONFIG, [RACK, "99", "", ""], 404, "no_such_epoch"),
            ("GET", CONFIG, [RACK, "latest", "", ""], 400, "bad_request"),
            ("GET", STATUS, [RACK, "", "?version=5", ""], 404, "no_such_epoch"),
            ("GET", STATUS, [RACK, "", "?version=five", ""], 400, "bad_request"),
            ("GET", STATUS, [RACK, "", "", ""], 404, "no_such_epoch"),
        ];
        for (method, template, at, status, variant) in cases {
            let got = refused(&app, method, template, at).await;
            assert_eq!(got, (status, variant.to_owned()), "{method} {template} {at:?}");
        }
        assert_eq!(ops.load(Ordering::SeqCst), 0, "a bad request reached the replica");
        // A good request does reach it (and the stand-in refuses it).
        let good = refused(&app, "POST", ADD, [RACK, "", "", sled]).await;
        assert_eq!(good, (503, "busy".to_owned()));
        assert_eq!(ops.load(Ordering::SeqCst), 1);
    }
}
