//! The text report of one driver pass over a committing configuration: per
//! proxy client, which members acknowledged the commit, which are still
//! pending and which answered with an error. The layout is that of
//! `fixtures/manager-status-epoch2.txt`.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tq_types::{BaseboardId, Epoch, RackId};

use super::errors::MemberCommitError;

/// What the commit requests of one driver pass led to, per proxy client.
///
/// Its [`Display`](fmt::Display) form is the operator's text report:
///
/// ```text
/// Trust Quorum status for rack_id: <rack>, epoch: <epoch>:
///     Commit Status from client <proxy>:
///       acked: <member>, <member>
///       pending:
///       errors: <member> (<error>)
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PassReport {
    rack_id: RackId,
    epoch: Epoch,
    clients: Vec<ClientReport>,
}

/// The members one proxy client was asked to commit, by outcome.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ClientReport {
    client: BaseboardId,
    acked: BTreeSet<BaseboardId>,
    pending: BTreeSet<BaseboardId>,
    #[serde(serialize_with = "errors_as_text")]
    errors: BTreeMap<BaseboardId, MemberCommitError>,
}

fn errors_as_text<S: serde::Serializer>(
    errors: &BTreeMap<BaseboardId, MemberCommitError>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(errors.iter().map(|(m, e)| (m.to_string(), e.to_string())))
}

impl PassReport {
    /// An empty report; clients appear in the order they are added.
    pub(crate) fn new(rack_id: RackId, epoch: Epoch) -> Self {
        PassReport { rack_id, epoch, clients: Vec::new() }
    }

    /// Applies `f` to `client`'s entry, adding the entry first if needed.
    fn with_client(&mut self, client: &BaseboardId, f: impl FnOnce(&mut ClientReport)) {
        match self.clients.iter_mut().find(|c| c.client == *client) {
            Some(c) => f(c),
            None => {
                let mut c = ClientReport {
                    client: client.clone(),
                    acked: BTreeSet::new(),
                    pending: BTreeSet::new(),
                    errors: BTreeMap::new(),
                };
                f(&mut c);
                self.clients.push(c);
            }
        }
    }

    /// `member` was sent a request through `client`; no answer yet.
    pub(crate) fn sent(&mut self, client: &BaseboardId, member: &BaseboardId) {
        self.with_client(client, |c| {
            c.acked.remove(member);
            c.errors.remove(member);
            c.pending.insert(member.clone());
        });
    }

    /// `member` acknowledged the commit.
    pub(crate) fn acked(&mut self, client: &BaseboardId, member: &BaseboardId) {
        self.with_client(client, |c| {
            c.pending.remove(member);
            c.errors.remove(member);
            c.acked.insert(member.clone());
        });
    }

    /// `member` answered with an error.
    pub(crate) fn failed(
        &mut self,
        client: &BaseboardId,
        member: &BaseboardId,
        error: MemberCommitError,
    ) {
        self.with_client(client, |c| {
            c.pending.remove(member);
            c.acked.remove(member);
            c.errors.insert(member.clone(), error);
        });
    }

    /// The rack.
    pub fn rack_id(&self) -> RackId {
        self.rack_id
    }

    /// The committing epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The proxy clients, in the order the pass chose them.
    pub fn clients(&self) -> &[ClientReport] {
        &self.clients
    }
}

impl ClientReport {
    /// The proxy member that relayed the requests.
    pub fn client(&self) -> &BaseboardId {
        &self.client
    }

    /// Members that acknowledged the commit.
    pub fn acked(&self) -> &BTreeSet<BaseboardId> {
        &self.acked
    }

    /// Members with no answer yet, or that answered "pending".
    pub fn pending(&self) -> &BTreeSet<BaseboardId> {
        &self.pending
    }

    /// Members that answered with an error.
    pub fn errors(&self) -> &BTreeMap<BaseboardId, MemberCommitError> {
        &self.errors
    }
}

fn write_list<'a>(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    items: impl Iterator<Item = String> + 'a,
) -> fmt::Result {
    write!(f, "      {label}:")?;
    let mut first = true;
    for item in items {
        f.write_str(if first { " " } else { ", " })?;
        f.write_str(&item)?;
        first = false;
    }
    writeln!(f)
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Trust Quorum status for rack_id: {}, epoch: {}:", self.rack_id, self.epoch)?;
        for c in &self.clients {
            writeln!(f, "    Commit Status from client {}:", c.client)?;
            write_list(f, "acked", c.acked.iter().map(ToString::to_string))?;
            write_list(f, "pending", c.pending.iter().map(ToString::to_string))?;
            write_list(f, "errors", c.errors.iter().map(|(m, e)| format!("{m} ({e})")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tq_types::CommitError;

    fn id(serial: &str) -> BaseboardId {
        BaseboardId::new("PPP-PPPPPPP", serial).unwrap()
    }

    #[test]
    fn reproduces_the_fixture_byte_for_byte() {
        // Embedded at compile time: the library's tests do no file I/O either.
        let fixture = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/manager-status-epoch2.txt"
        ));
        let rack = RackId("3df0b7cd-50ed-498e-afa4-41f178d393f9".parse().unwrap());
        let mut report = PassReport::new(rack, Epoch(2));
        for (client, member) in [
            ("00000000003", "00000000000"),
            ("00000000001", "00000000001"),
            ("00000000000", "00000000002"),
            ("00000000000", "00000000003"),
        ] {
            report.sent(&id(client), &id(member));
        }
        for (client, member) in [
            ("00000000000", "00000000003"),
            ("00000000003", "00000000000"),
            ("00000000001", "00000000001"),
            ("00000000000", "00000000002"),
        ] {
            report.acked(&id(client), &id(member));
        }
        assert_eq!(report.to_string(), fixture);
    }

    #[test]
    fn pending_and_errors_are_listed() {
        let rack = RackId(uuid::Uuid::nil());
        let mut report = PassReport::new(rack, Epoch(5));
        report.sent(&id("1"), &id("2"));
        report.sent(&id("1"), &id("3"));
        report.sent(&id("1"), &id("4"));
        report.failed(&id("1"), &id("3"), CommitError::NotPrepared(Epoch(5)).into());
        let text = report.to_string();
        assert_eq!(
            text,
            "Trust Quorum status for rack_id: 00000000-0000-0000-0000-000000000000, epoch: 5:\n\
             \x20   Commit Status from client PPP-PPPPPPP:1:\n\
             \x20     acked:\n\
             \x20     pending: PPP-PPPPPPP:2, PPP-PPPPPPP:4\n\
             \x20     errors: PPP-PPPPPPP:3 (epoch 5 is not prepared on this node)\n"
        );
    }
}
