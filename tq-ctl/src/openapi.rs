//! The OpenAPI document of the operator API ([`crate::api`]).
//!
//! [`openapi`] builds it from the handlers' annotations and the schemas of
//! the types they carry (the `openapi` features of `tq-types` and
//! `trust-quorum`). It is checked
//! in as `tq-ctl/openapi.json`, and `tests/openapi.rs` fails when the code
//! and that file drift apart; regenerate the file with
//! `TQ_UPDATE_OPENAPI=1 cargo test -p tq-ctl --test openapi`.

use utoipa::OpenApi;

/// The document, as the derive assembles it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tq-ctl operator API",
        version = env!("CARGO_PKG_VERSION"),
        description = "The trust-quorum control plane's operator API: the rack's membership \
            (initialize, add and remove sleds, abort), its status by epoch, the detailed \
            configuration view and the driver's report. A refused request answers a 4xx (503 \
            when the ledger cannot be reached) with an `ErrorBody`, and the ledger is unchanged."
    ),
    paths(
        crate::api::status,
        crate::api::add,
        crate::api::abort,
        crate::api::initialize,
        crate::api::remove,
        crate::api::config,
        crate::api::report,
    ),
    components(schemas(crate::errors::ErrorBody, crate::errors::OpError)),
    tags((name = "membership", description = "The rack's trust-quorum membership"))
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the whole operator API: every route of
/// [`crate::api::routes`], the request and answer bodies, and the error body
/// of every refusal. Its version is this crate's version.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
