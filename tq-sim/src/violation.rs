//! Broken rules, as the safety checks report them.

use serde::{Deserialize, Serialize};

/// One broken rule.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: String,
    /// What was seen.
    pub detail: String,
}

/// The violations found so far, each once, in the order first seen.
#[derive(Default)]
pub(crate) struct Violations(Vec<Violation>);

impl Violations {
    /// Records a violation (unless the same one was recorded before).
    pub(crate) fn record(&mut self, invariant: &str, detail: impl Into<String>) {
        let v = Violation { invariant: invariant.to_owned(), detail: detail.into() };
        if !self.0.contains(&v) {
            self.0.push(v);
        }
    }

    /// Everything recorded, in order.
    pub(crate) fn as_slice(&self) -> &[Violation] {
        &self.0
    }
}
