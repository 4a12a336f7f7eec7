//! Choosing the state to use from what was found in the two copies, and which
//! copy to rewrite. Pure: no file-system access.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::error::{CopyFault, CopyProblem, StorageError};

/// What reading one copy found.
#[derive(Debug)]
pub(super) enum Found {
    /// No file.
    Missing,
    /// A file that cannot be used.
    Bad(CopyProblem),
    /// A valid file.
    Valid {
        /// Its generation.
        generation: u64,
        /// Its payload.
        payload: Zeroizing<Vec<u8>>,
    },
}

/// The outcome of [`select`].
#[derive(Debug)]
pub(super) struct Selection {
    /// The generation of the chosen state (0 for a new sled).
    pub(super) generation: u64,
    /// The chosen payload (`None` for a new sled).
    pub(super) payload: Option<Zeroizing<Vec<u8>>>,
    /// The copy to rewrite with the chosen state, and why.
    pub(super) rewrite: Option<CopyFault>,
}

/// Chooses the newest valid copy.
///
/// | first / second  | missing          | bad              | valid              |
/// |-----------------|------------------|------------------|--------------------|
/// | missing         | new sled         | error            | use 2nd, fix 1st   |
/// | bad             | error            | error            | use 2nd, fix 1st   |
/// | valid           | use 1st, fix 2nd | use 1st, fix 2nd | newest; fix older  |
///
/// Two valid copies of the same generation must hold the same payload
/// (otherwise [`StorageError::Conflict`]).
pub(super) fn select(paths: &[PathBuf; 2], found: [Found; 2]) -> Result<Selection, StorageError> {
    let [first_path, second_path] = paths;
    let fault = |path: &PathBuf, problem| CopyFault { path: path.clone(), problem };
    let [first, second] = found;
    match (first, second) {
        (Found::Missing, Found::Missing) => {
            Ok(Selection { generation: 0, payload: None, rewrite: None })
        }
        (Found::Bad(first), Found::Bad(second)) => Err(StorageError::NoUsableState {
            first: fault(first_path, first),
            second: fault(second_path, second),
        }),
        (Found::Missing, Found::Bad(problem)) => Err(StorageError::MissingAndDamaged {
            missing: first_path.clone(),
            damaged: fault(second_path, problem),
        }),
        (Found::Bad(problem), Found::Missing) => Err(StorageError::MissingAndDamaged {
            missing: second_path.clone(),
            damaged: fault(first_path, problem),
        }),
        (Found::Valid { generation, payload }, Found::Missing) => {
            Ok(use_one(generation, payload, fault(second_path, CopyProblem::Missing)))
        }
        (Found::Missing, Found::Valid { generation, payload }) => {
            Ok(use_one(generation, payload, fault(first_path, CopyProblem::Missing)))
        }
        (Found::Valid { generation, payload }, Found::Bad(problem)) => {
            Ok(use_one(generation, payload, fault(second_path, problem)))
        }
        (Found::Bad(problem), Found::Valid { generation, payload }) => {
            Ok(use_one(generation, payload, fault(first_path, problem)))
        }
        (
            Found::Valid { generation: first_gen, payload: first },
            Found::Valid { generation: second_gen, payload: second },
        ) => {
            if first_gen > second_gen {
                let older = CopyProblem::Older { generation: second_gen, newest: first_gen };
                Ok(use_one(first_gen, first, fault(second_path, older)))
            } else if second_gen > first_gen {
                let older = CopyProblem::Older { generation: first_gen, newest: second_gen };
                Ok(use_one(second_gen, second, fault(first_path, older)))
            } else if first == second {
                Ok(Selection { generation: first_gen, payload: Some(first), rewrite: None })
            } else {
                Err(StorageError::Conflict { paths: paths.clone(), generation: first_gen })
            }
        }
    }
}

/// Uses one valid copy and rewrites the other.
fn use_one(generation: u64, payload: Zeroizing<Vec<u8>>, rewrite: CopyFault) -> Selection {
    Selection { generation, payload: Some(payload), rewrite: Some(rewrite) }
}
