//! Writers' refs passed on by members that may not write: how a hub's
//! replica (a reader) serves a project's history when every writer is
//! offline, without being able to forge or roll back any of it.
//!
//! Every node keeps the latest refs it took from each writer, exactly as
//! that writer signed them, and relays them with its own in answer to
//! `Refs`. A receiver takes a relayed head only if:
//! - the refs are signed by the key they name, for this project;
//! - that key may write in the receiver's view of the project;
//! - they are newer (by the writer's own signed clock) than any refs the
//!   receiver already took from that writer: a relay that withholds can
//!   delay, never roll back.
//!
//! The history behind a head is pinned by the head's commit id, so the
//! relay's pack can only deliver exactly what the writer committed (or be
//! incomplete, which the merge then refuses).

use crate::identity::PeerKey;
use crate::project::ProjectId;
use crate::wire::SignedRefs;

/// A relayed head worth taking: the refs it came in, and the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub refs: SignedRefs,
    pub head: String,
}

impl Vouched {
    /// The writer whose signature vouches for the head.
    pub fn writer(&self) -> PeerKey {
        self.refs.payload.peer
    }
}

/// What the receiver knows, to judge relayed refs.
pub trait RelayJudge {
    /// Whether `writer` may write in this node's view now.
    fn may_write(&self, writer: &PeerKey) -> bool;
    /// The signed time of the latest refs already taken from `writer`.
    fn taken_time(&self, writer: &PeerKey) -> Option<i64>;
    /// Whether the commit is held here already (nothing to take).
    fn has_commit(&self, oid: &str) -> bool;
}

/// The newest relayed head of `branch` that counts (see the module doc),
/// if any. Refs that do not count are skipped, never an error: a relay may
/// hold refs of writers revoked since, or stale ones.
pub fn pick(
    project: &ProjectId,
    branch: &str,
    relayed: &[SignedRefs],
    judge: &dyn RelayJudge,
) -> Option<Vouched> {
    relayed
        .iter()
        .take(crate::wire::MAX_RELAYED)
        .filter(|refs| refs.check(project, &refs.payload.peer).is_ok())
        .filter(|refs| judge.may_write(&refs.payload.peer))
        .filter(|refs| {
            judge
                .taken_time(&refs.payload.peer)
                .is_none_or(|taken| refs.payload.time_ms > taken)
        })
        .filter_map(|refs| {
            Some(Vouched {
                head: refs.head(branch)?.to_owned(),
                refs: refs.clone(),
            })
        })
        .filter(|vouched| !judge.has_commit(&vouched.head))
        .max_by_key(|v| v.refs.payload.time_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;
    use crate::wire::Refs;
    use std::collections::HashMap;

    const BRANCH: &str = "main";

    fn key(n: u8) -> SecretKey {
        SecretKey::from_bytes([n; 32])
    }

    fn project() -> ProjectId {
        other_project(9)
    }

    fn other_project(n: u8) -> ProjectId {
        crate::project::Genesis::create(&"survey".parse().expect("name"), &key(n), 0, [n; 16])
            .project_id()
    }

    fn refs(signer: &SecretKey, project: ProjectId, head: char, time_ms: i64) -> SignedRefs {
        SignedRefs::sign(
            Refs {
                project,
                peer: signer.public(),
                heads: vec![(BRANCH.into(), head.to_string().repeat(40))],
                time_ms,
            },
            signer,
        )
        .expect("signed")
    }

    struct View {
        writers: Vec<PeerKey>,
        taken: HashMap<PeerKey, i64>,
    }

    impl RelayJudge for View {
        fn may_write(&self, writer: &PeerKey) -> bool {
            self.writers.contains(writer)
        }
        fn taken_time(&self, writer: &PeerKey) -> Option<i64> {
            self.taken.get(writer).copied()
        }
        fn has_commit(&self, oid: &str) -> bool {
            oid == "d".repeat(40)
        }
    }

    #[test]
    fn a_head_held_here_is_nothing_to_take() {
        let ada = key(1);
        let view = View {
            writers: vec![ada.public()],
            taken: HashMap::new(),
        };
        let held = [refs(&ada, project(), 'd', 5)];
        assert_eq!(pick(&project(), BRANCH, &held, &view), None);
    }

    #[test]
    fn the_newest_writer_head_is_taken() {
        let (ada, bob) = (key(1), key(2));
        let view = View {
            writers: vec![ada.public(), bob.public()],
            taken: HashMap::new(),
        };
        let relayed = [
            refs(&ada, project(), 'a', 10),
            refs(&bob, project(), 'b', 20),
        ];
        let picked = pick(&project(), BRANCH, &relayed, &view).expect("a head");
        assert_eq!(picked.head, "b".repeat(40));
        assert_eq!(picked.writer(), bob.public());
    }

    #[test]
    fn refs_of_readers_strangers_other_projects_or_forgers_are_skipped() {
        let (ada, reader, stranger) = (key(1), key(2), key(3));
        let view = View {
            writers: vec![ada.public()],
            taken: HashMap::new(),
        };
        let mut forged = refs(&ada, project(), 'f', 99);
        // The relay rewrites the head but cannot sign as Ada.
        forged.payload.heads[0].1 = "e".repeat(40);
        let relayed = [
            refs(&reader, project(), 'c', 50),
            refs(&stranger, project(), 'd', 60),
            refs(&ada, other_project(8), 'e', 70),
            forged,
        ];
        assert_eq!(pick(&project(), BRANCH, &relayed, &view), None);
        let honest = [relayed.to_vec(), vec![refs(&ada, project(), 'a', 1)]].concat();
        assert_eq!(
            pick(&project(), BRANCH, &honest, &view).map(|v| v.head),
            Some("a".repeat(40))
        );
    }

    #[test]
    fn a_relay_cannot_roll_a_writer_back() {
        let ada = key(1);
        let view = View {
            writers: vec![ada.public()],
            taken: HashMap::from([(ada.public(), 20)]),
        };
        for stale in [10, 20] {
            let relayed = [refs(&ada, project(), 'a', stale)];
            assert_eq!(
                pick(&project(), BRANCH, &relayed, &view),
                None,
                "time {stale}"
            );
        }
        let newer = [refs(&ada, project(), 'b', 21)];
        assert_eq!(
            pick(&project(), BRANCH, &newer, &view).map(|v| v.head),
            Some("b".repeat(40))
        );
    }
}
