//! Why an operator request was refused, as the operator API answers it:
//! the [`OpError`], inside the JSON body every refusal carries.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde::Serialize;
use tq_types::BaseboardId;
use trust_quorum::control::{AbortError, AddSledsError, InitializeError, RemoveSledsError};

use crate::store::StoreError;

/// A refused operator request. Serialized as the `error` of the JSON body.
#[derive(Debug, thiserror::Error, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpError {
    /// The rack cannot be initialized.
    #[error(transparent)]
    Initialize(InitializeError),
    /// The sleds cannot be added.
    #[error(transparent)]
    Add(AddSledsError),
    /// The sleds cannot be removed.
    #[error(transparent)]
    Remove(RemoveSledsError),
    /// Nothing to abort.
    #[error(transparent)]
    Abort(AbortError),
    /// Sleds that are not in this control plane's inventory.
    #[error("sleds not in the inventory: {sleds:?}")]
    UnknownSleds {
        /// The sleds.
        sleds: BTreeSet<BaseboardId>,
    },
    /// The request names another rack.
    #[error("this control plane manages rack {managed}, not {requested}")]
    WrongRack {
        /// The rack managed here.
        managed: tq_types::RackId,
        /// The rack in the request.
        requested: String,
    },
    /// No such epoch.
    #[error("no configuration at epoch {0}")]
    NoSuchEpoch(u64),
    /// The request body or query is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The ledger's database failed.
    #[error("ledger store: {0}")]
    Store(String),
    /// Other replicas kept winning the compare-and-set race.
    #[error("the ledger kept changing under this request; try again")]
    Busy,
    /// The replica task is gone.
    #[error("the control plane is shutting down")]
    Unavailable,
}

impl OpError {
    pub(crate) fn store(e: StoreError) -> OpError {
        OpError::Store(e.to_string())
    }

    /// The HTTP status for this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            OpError::Initialize(_) | OpError::Add(_) | OpError::Remove(_) | OpError::Abort(_) => {
                StatusCode::CONFLICT
            }
            OpError::UnknownSleds { .. } | OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpError::WrongRack { .. } | OpError::NoSuchEpoch(_) => StatusCode::NOT_FOUND,
            OpError::Store(_) | OpError::Busy | OpError::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// The JSON body of every refusal: `{"error": <OpError>, "message": "..."}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// Why the request was refused, typed.
    error: OpError,
    /// The same, for people.
    message: String,
}

impl From<OpError> for ErrorBody {
    fn from(error: OpError) -> ErrorBody {
        ErrorBody { message: error.to_string(), error }
    }
}
