//! The inviter's side of a join, decided purely: what the node stores of
//! an invite, which stored invite a secret presents ([`find`]), and
//! whether to accept ([`decide`]).

use serde::{Deserialize, Serialize};

use super::ticket::{InviteSecret, SecretHash};
use crate::access::Role;
use crate::identity::PeerKey;
use crate::project::ProjectId;

/// An invite as the inviter's node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub project: ProjectId,
    pub secret_hash: SecretHash,
    /// The role a joiner is granted.
    pub role: Role,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// Set once a joiner was granted the role: the invite then works for
    /// nobody else.
    #[serde(default)]
    pub used: Option<Use>,
}

/// Who used an invite, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    pub by: PeerKey,
    pub at_ms: i64,
}

impl Invite {
    pub fn new(
        project: ProjectId,
        secret: &InviteSecret,
        role: Role,
        created_ms: i64,
        expires_ms: i64,
    ) -> Self {
        Self {
            project,
            secret_hash: secret.hash(),
            role,
            created_ms,
            expires_ms,
            used: None,
        }
    }
}

/// The stored invite a `Join { project, secret }` presents, if any. Only
/// the secret and the project it was made for are looked at, so a wrong
/// secret and a project not held here come out the same (`None`), before
/// the node looks anything up about the project.
pub fn find(invites: &[Invite], project: &ProjectId, secret: &InviteSecret) -> Option<usize> {
    invites
        .iter()
        .position(|invite| invite.secret_hash.matches(secret) && &invite.project == project)
}

/// What the inviter's node knows of the project an invite is for, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The inviter node's own role.
    pub inviter: Option<Role>,
    /// The joiner's role already, if any.
    pub joiner: Option<Role>,
}

/// The answer to a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Take the invite: mark it used by the joiner, then grant `role`
    /// unless `grant` is false (the joiner already holds it or more: a
    /// grant would change nothing, or lower an admin).
    Accept {
        role: Role,
        grant: bool,
    },
    Refuse(Refusal),
}

/// Why a join is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such invite, or the project is not held here: answered exactly
    /// as a request about an unknown project, so a prober learns nothing.
    Unknown,
    Used,
    Expired,
    /// The inviter's node may no longer grant the role (it was demoted or
    /// removed since it made the invite).
    InviterCannotGrant,
}

/// Decides a join by `joiner` presenting `invite` (found with [`find`]),
/// at `now_ms`; `standing` is `None` when the project is no longer held.
/// Used before expired: a used ticket says so even once it has expired.
/// The joiner who used the invite may present it again and is answered
/// with acceptance without a grant while it still holds the role, so a
/// join whose answer was lost can be retried; a joiner whose role was
/// since taken away is not given it back this way.
pub fn decide(
    invite: &Invite,
    joiner: &PeerKey,
    now_ms: i64,
    standing: Option<Standing>,
) -> Decision {
    let Some(standing) = standing else {
        return Decision::Refuse(Refusal::Unknown);
    };
    let holds_it = standing.joiner.is_some_and(|held| held >= invite.role);
    if let Some(used) = &invite.used {
        return if &used.by == joiner && holds_it {
            Decision::Accept {
                role: invite.role,
                grant: false,
            }
        } else {
            Decision::Refuse(Refusal::Used)
        };
    }
    if now_ms >= invite.expires_ms {
        return Decision::Refuse(Refusal::Expired);
    }
    let may_grant = invite.role != Role::Owner && standing.inviter.is_some_and(Role::can_manage);
    if !may_grant {
        return Decision::Refuse(Refusal::InviterCannotGrant);
    }
    Decision::Accept {
        role: invite.role,
        grant: !holds_it,
    }
}

/// Why the inviter's node refused a join whose secret was right: the joiner
/// holds the ticket, so it may be told (a wrong secret gets `Denied`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum JoinRefusal {
    #[error("this invite was already used; ask the inviter for a new one")]
    Used,
    #[error("this invite has expired; ask the inviter for a new one")]
    Expired,
    #[error(
        "the inviter can no longer grant this role (only the owner and admins can); ask the project's owner for a new invite"
    )]
    InviterCannotGrant,
}

impl Refusal {
    /// What the joiner is told: `None` for [`Refusal::Unknown`], which is
    /// answered as an unknown project is.
    pub fn told(self) -> Option<JoinRefusal> {
        match self {
            Refusal::Unknown => None,
            Refusal::Used => Some(JoinRefusal::Used),
            Refusal::Expired => Some(JoinRefusal::Expired),
            Refusal::InviterCannotGrant => Some(JoinRefusal::InviterCannotGrant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{key, project};

    fn invite(role: Role) -> Invite {
        Invite::new(
            project(1),
            &InviteSecret::from_bytes([7; 32]),
            role,
            1_000,
            2_000,
        )
    }

    fn admin_inviter() -> Option<Standing> {
        Some(Standing {
            inviter: Some(Role::Owner),
            joiner: None,
        })
    }

    #[test]
    fn only_the_right_secret_for_the_right_project_finds_an_invite() {
        let stored = vec![invite(Role::Writer), invite(Role::Reader)];
        let right = InviteSecret::from_bytes([7; 32]);
        assert_eq!(find(&stored, &project(1), &right), Some(0));
        assert_eq!(find(&stored, &project(2), &right), None, "other project");
        let mut wrong = [7; 32];
        wrong[31] ^= 1;
        assert_eq!(
            find(&stored, &project(1), &InviteSecret::from_bytes(wrong)),
            None
        );
        assert_eq!(find(&[], &project(1), &right), None);
        let text = serde_json::to_string(&stored[0]).expect("encode");
        assert!(!text.contains(&"07".repeat(32)), "the secret is not stored");
        assert_eq!(
            serde_json::from_str::<Invite>(&text).expect("decode"),
            stored[0]
        );
    }

    #[test]
    fn decisions() {
        let joiner = key(5);
        let writer = invite(Role::Writer);
        let accept = Decision::Accept {
            role: Role::Writer,
            grant: true,
        };
        assert_eq!(decide(&writer, &joiner, 1_500, admin_inviter()), accept);
        assert_eq!(
            decide(&writer, &joiner, 1_500, None),
            Decision::Refuse(Refusal::Unknown),
            "the project is gone"
        );
        assert_eq!(
            decide(&writer, &joiner, 2_000, admin_inviter()),
            Decision::Refuse(Refusal::Expired),
            "expiry is exclusive"
        );
        for demoted in [None, Some(Role::Reader), Some(Role::Writer)] {
            let standing = Some(Standing {
                inviter: demoted,
                joiner: None,
            });
            assert_eq!(
                decide(&writer, &joiner, 1_500, standing),
                Decision::Refuse(Refusal::InviterCannotGrant),
                "{demoted:?}"
            );
        }
        let admin = Some(Standing {
            inviter: Some(Role::Admin),
            joiner: None,
        });
        assert_eq!(
            decide(&invite(Role::Admin), &joiner, 1_500, admin),
            Decision::Accept {
                role: Role::Admin,
                grant: true
            }
        );
        assert_eq!(
            decide(&invite(Role::Owner), &joiner, 1_500, admin_inviter()),
            Decision::Refuse(Refusal::InviterCannotGrant),
            "ownership is never granted"
        );
        // A member who holds as much already is not granted (an admin is
        // not lowered to reader); one with less is raised.
        let member = |role| {
            Some(Standing {
                inviter: Some(Role::Owner),
                joiner: Some(role),
            })
        };
        assert_eq!(
            decide(&invite(Role::Reader), &joiner, 1_500, member(Role::Admin)),
            Decision::Accept {
                role: Role::Reader,
                grant: false
            }
        );
        assert_eq!(
            decide(&writer, &joiner, 1_500, member(Role::Reader)),
            accept
        );
    }

    #[test]
    fn a_used_invite_works_for_nobody_else() {
        let joiner = key(5);
        let mut used = invite(Role::Writer);
        used.used = Some(Use {
            by: joiner,
            at_ms: 1_200,
        });
        assert_eq!(
            decide(&used, &key(6), 1_500, admin_inviter()),
            Decision::Refuse(Refusal::Used)
        );
        assert_eq!(
            decide(&used, &key(6), 5_000, admin_inviter()),
            Decision::Refuse(Refusal::Used),
            "used is said before expired"
        );
        // The joiner retrying (its answer was lost) is answered again,
        // with no second grant, while it holds the role...
        let holding = Some(Standing {
            inviter: Some(Role::Owner),
            joiner: Some(Role::Writer),
        });
        assert_eq!(
            decide(&used, &joiner, 5_000, holding),
            Decision::Accept {
                role: Role::Writer,
                grant: false
            }
        );
        // ...but a revoked joiner does not get its role back.
        assert_eq!(
            decide(&used, &joiner, 1_500, admin_inviter()),
            Decision::Refuse(Refusal::Used)
        );
    }

    #[test]
    fn only_an_unknown_invite_is_left_untold() {
        assert_eq!(Refusal::Unknown.told(), None);
        assert_eq!(Refusal::Used.told(), Some(JoinRefusal::Used));
        assert!(JoinRefusal::Expired.to_string().contains("expired"));
        assert_eq!(
            serde_json::to_string(&JoinRefusal::InviterCannotGrant).expect("encode"),
            "\"inviter_cannot_grant\""
        );
    }
}
