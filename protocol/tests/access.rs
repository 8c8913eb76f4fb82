//! The access model's rules, and property tests that evaluation depends on
//! the set of statements only: never on delivery order, never on invalid
//! statements.

use proptest::prelude::*;
use tandem_protocol::access::{
    Access, Action, Role, SignedStatement, Statement, StatementId, Verified, evaluate,
};
use tandem_protocol::project::Genesis;
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes([n + 1; 32])
}

struct World {
    project: ProjectId,
    owner: SecretKey,
}

impl World {
    fn new() -> Self {
        let owner = key(0);
        let project = Genesis::create(&"p".parse().expect("name"), &owner, 0, [0; 16]).project_id();
        Self { project, owner }
    }

    fn stmt(
        &self,
        issuer: &SecretKey,
        subject: &SecretKey,
        action: Action,
        parents: &[&SignedStatement],
        at: i64,
    ) -> SignedStatement {
        let parents = parents.iter().map(|p| id(p)).collect();
        Statement::create(
            self.project,
            subject.public(),
            action,
            issuer,
            parents,
            at,
            None,
        )
        .expect("valid statement")
    }

    fn roles(&self, statements: &[SignedStatement]) -> Vec<(PeerKey, Role)> {
        evaluate(
            self.project,
            self.owner.public(),
            statements.to_vec(),
            1_000_000,
        )
        .members
        .into_values()
        .map(|m| (m.key, m.role))
        .collect()
    }

    fn role(&self, statements: &[SignedStatement], who: &SecretKey) -> Option<Role> {
        self.roles(statements)
            .into_iter()
            .find(|(k, _)| k == &who.public())
            .map(|(_, r)| r)
    }
}

fn id(statement: &SignedStatement) -> StatementId {
    StatementId::of(statement)
}

const GRANT_ADMIN: Action = Action::Grant { role: Role::Admin };
const GRANT_WRITER: Action = Action::Grant { role: Role::Writer };
const GRANT_READER: Action = Action::Grant { role: Role::Reader };

#[test]
fn owner_and_admins_grant_others_do_not() {
    let w = World::new();
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let g1 = w.stmt(&w.owner, &alice, GRANT_ADMIN, &[], 1);
    let g2 = w.stmt(&alice, &bob, GRANT_WRITER, &[&g1], 2);
    let g3 = w.stmt(&bob, &carol, GRANT_WRITER, &[&g2], 3);
    let all = [g1, g2, g3];
    assert_eq!(w.role(&all, &w.owner), Some(Role::Owner));
    assert_eq!(w.role(&all, &alice), Some(Role::Admin));
    assert_eq!(w.role(&all, &bob), Some(Role::Writer));
    assert_eq!(w.role(&all, &carol), None, "a writer cannot grant");
}

#[test]
fn a_grant_needs_the_issuers_role_in_its_causal_past() {
    let w = World::new();
    let (alice, bob) = (key(1), key(2));
    let g1 = w.stmt(&w.owner, &alice, GRANT_ADMIN, &[], 1);
    // Alice grants without naming her own grant as a parent: in that
    // statement's causal past she is nobody.
    let g2 = w.stmt(&alice, &bob, GRANT_WRITER, &[], 2);
    assert_eq!(w.role(&[g1, g2], &bob), None);
}

#[test]
fn revoke_beats_a_concurrent_grant() {
    let w = World::new();
    let (alice, bob) = (key(1), key(2));
    let g1 = w.stmt(&w.owner, &alice, GRANT_ADMIN, &[], 1);
    let base = w.stmt(&w.owner, &bob, GRANT_READER, &[&g1], 2);
    let grant = w.stmt(&alice, &bob, GRANT_WRITER, &[&base], 3);
    let revoke = w.stmt(&w.owner, &bob, Action::Revoke, &[&base], 3);
    assert_eq!(
        w.role(
            &[g1.clone(), base.clone(), grant.clone(), revoke.clone()],
            &bob
        ),
        None
    );
    // A grant made after seeing the revoke restores access.
    let again = w.stmt(&alice, &bob, GRANT_READER, &[&grant, &revoke], 4);
    assert_eq!(
        w.role(&[g1, base, grant, revoke, again], &bob),
        Some(Role::Reader)
    );
}

#[test]
fn revoked_admins_later_and_concurrent_statements_stop_counting() {
    let w = World::new();
    let (mallory, bob, carol, dave) = (key(1), key(2), key(3), key(4));
    let g1 = w.stmt(&w.owner, &mallory, GRANT_ADMIN, &[], 1);
    let before = w.stmt(&mallory, &bob, GRANT_WRITER, &[&g1], 2);
    let g_dave = w.stmt(&w.owner, &dave, GRANT_ADMIN, &[&before], 3);
    let revoke = w.stmt(&w.owner, &mallory, Action::Revoke, &[&g_dave], 4);
    let concurrent = w.stmt(&mallory, &carol, GRANT_WRITER, &[&g_dave], 4);
    let sabotage = w.stmt(&mallory, &dave, Action::Revoke, &[&g_dave], 4);
    let after = w.stmt(&mallory, &carol, GRANT_ADMIN, &[&revoke], 5);
    let all = [g1, before, g_dave, revoke, concurrent, sabotage, after];
    assert_eq!(w.role(&all, &mallory), None);
    assert_eq!(
        w.role(&all, &bob),
        Some(Role::Writer),
        "grants in the revoke's past still count"
    );
    assert_eq!(
        w.role(&all, &carol),
        None,
        "concurrent and later grants do not"
    );
    assert_eq!(
        w.role(&all, &dave),
        Some(Role::Admin),
        "the revoked admin's concurrent revoke does not count"
    );
}

#[test]
fn admins_revoking_each_other_concurrently_both_lose_admin() {
    let w = World::new();
    let (a, b) = (key(1), key(2));
    let ga = w.stmt(&w.owner, &a, GRANT_ADMIN, &[], 1);
    let gb = w.stmt(&w.owner, &b, GRANT_ADMIN, &[&ga], 2);
    let ra = w.stmt(&a, &b, Action::Revoke, &[&gb], 3);
    let rb = w.stmt(&b, &a, Action::Revoke, &[&gb], 3);
    let all = [ga, gb, ra, rb];
    assert_eq!(w.role(&all, &a), None);
    assert_eq!(w.role(&all, &b), None);
}

#[test]
fn admins_cannot_touch_the_owner_and_owner_is_not_grantable() {
    let w = World::new();
    let alice = key(1);
    let g1 = w.stmt(&w.owner, &alice, GRANT_ADMIN, &[], 1);
    let coup = w.stmt(&alice, &w.owner, Action::Revoke, &[&g1], 2);
    assert_eq!(w.role(&[g1, coup], &w.owner), Some(Role::Owner));
    assert!(
        Statement::create(
            w.project,
            alice.public(),
            Action::Grant { role: Role::Owner },
            &w.owner,
            vec![],
            1,
            None
        )
        .is_err()
    );
    assert!("owner".parse::<Role>().is_err());
    assert!("superuser".parse::<Role>().is_err());
}

#[test]
fn expired_grants_stop_counting() {
    let w = World::new();
    let bob = key(2);
    let grant = Statement::create(
        w.project,
        bob.public(),
        GRANT_WRITER,
        &w.owner,
        vec![],
        1,
        Some(500),
    )
    .expect("valid");
    let roles = |now| {
        evaluate(w.project, w.owner.public(), vec![grant.clone()], now).role_of(&bob.public())
    };
    assert_eq!(roles(499), Some(Role::Writer));
    assert_eq!(roles(500), None);
}

#[test]
fn statements_wait_for_missing_parents() {
    let w = World::new();
    let (alice, bob) = (key(1), key(2));
    let g1 = w.stmt(&w.owner, &alice, GRANT_ADMIN, &[], 1);
    let g2 = w.stmt(&alice, &bob, GRANT_WRITER, &[&g1], 2);
    let mut access = Access::new(w.project, w.owner.public());
    access.insert(Verified::check(g2, &w.project).expect("valid"));
    assert_eq!(access.pending(), 1);
    assert_eq!(access.role_of(&bob.public(), 10), None);
    access.insert(Verified::check(g1, &w.project).expect("valid"));
    assert_eq!(access.pending(), 0);
    assert_eq!(access.role_of(&bob.public(), 10), Some(Role::Writer));
}

#[test]
fn forged_misdirected_and_replayed_statements_change_nothing() {
    let w = World::new();
    let (alice, bob) = (key(1), key(2));
    let g1 = w.stmt(&w.owner, &alice, GRANT_WRITER, &[], 1);
    let baseline = w.roles(std::slice::from_ref(&g1));

    let mut forged = w.stmt(&w.owner, &bob, GRANT_ADMIN, &[], 2);
    forged.payload.subject = alice.public();
    assert!(Verified::check(forged.clone(), &w.project).is_err());

    let other = World {
        project: Genesis::create(&"q".parse().expect("name"), &w.owner, 0, [1; 16]).project_id(),
        owner: key(0),
    };
    let replayed = other.stmt(&other.owner, &bob, GRANT_ADMIN, &[], 2);
    assert!(Verified::check(replayed.clone(), &w.project).is_err());

    let unauthorised = w.stmt(&bob, &bob, GRANT_ADMIN, &[&g1], 3);
    let by_stranger = w.stmt(&key(9), &alice, GRANT_ADMIN, &[&g1], 3);
    assert_eq!(
        w.roles(&[g1, forged, replayed, unauthorised, by_stranger]),
        baseline
    );
}

#[test]
fn decoding_garbage_is_an_error_not_a_panic() {
    let w = World::new();
    for bytes in [
        &b""[..],
        b"{}",
        b"null",
        b"{\"payload\":1}",
        &[0xff, 0xfe, 0x00],
    ] {
        assert!(Verified::decode(bytes, &w.project).is_err());
    }
}

#[test]
fn visibility_is_private_until_made_public_and_private_wins_ties() {
    let w = World::new();
    let alice = key(1);
    let admin = w.stmt(&w.owner, &alice, GRANT_ADMIN, &[], 1);
    let eval = |s: &[SignedStatement]| evaluate(w.project, w.owner.public(), s.to_vec(), 10);
    assert!(!eval(std::slice::from_ref(&admin)).public);
    let open = w.stmt(
        &alice,
        &alice,
        Action::Visibility { public: true },
        &[&admin],
        2,
    );
    assert!(eval(&[admin.clone(), open.clone()]).public);
    let close = w.stmt(
        &w.owner,
        &w.owner,
        Action::Visibility { public: false },
        &[&admin],
        2,
    );
    assert!(
        !eval(&[admin, open, close]).public,
        "concurrent disagreement is private"
    );
}

/// A random history: each step picks an issuer, a subject, an action and
/// some earlier statements as parents.
fn history() -> impl Strategy<Value = Vec<(u8, u8, u8, Vec<prop::sample::Index>, bool)>> {
    prop::collection::vec(
        (
            0u8..5,
            1u8..6,
            0u8..5,
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            any::<bool>(),
        ),
        1..40,
    )
}

fn build(
    w: &World,
    steps: &[(u8, u8, u8, Vec<prop::sample::Index>, bool)],
) -> Vec<SignedStatement> {
    let mut made: Vec<SignedStatement> = Vec::new();
    for (i, (issuer, subject, action, parents, expires)) in steps.iter().enumerate() {
        let action = match action {
            0 => GRANT_ADMIN,
            1 => GRANT_WRITER,
            2 => GRANT_READER,
            3 => Action::Revoke,
            _ => Action::Visibility { public: *expires },
        };
        let parent_ids: Vec<StatementId> = if made.is_empty() {
            vec![]
        } else {
            parents
                .iter()
                .map(|p| id(&made[p.index(made.len())]))
                .collect()
        };
        let expiry = expires.then_some(i as i64 * 10 + 500);
        let s = Statement::create(
            w.project,
            key(*subject).public(),
            action,
            &key(*issuer),
            parent_ids,
            i as i64 * 10,
            expiry,
        )
        .expect("valid statement");
        made.push(s);
    }
    made
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn delivery_order_never_matters(steps in history(), seed in any::<u64>()) {
        let w = World::new();
        let statements = build(&w, &steps);
        let expected = evaluate(w.project, w.owner.public(), statements.clone(), 300);
        let mut shuffled = statements.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(evaluate(w.project, w.owner.public(), shuffled.clone(), 300), expected.clone());
        shuffled.reverse();
        prop_assert_eq!(evaluate(w.project, w.owner.public(), shuffled, 300), expected);
    }

    /// What is kept (served and stored), what does not count and the heads
    /// are bookkept as statements arrive; whatever the order, they end the
    /// same, and every kept statement's parents are kept too.
    #[test]
    fn kept_statements_and_heads_never_depend_on_order(steps in history(), seed in any::<u64>()) {
        let w = World::new();
        let statements = build(&w, &steps);
        let bookkeeping = |order: &[SignedStatement]| {
            let mut access = Access::new(w.project, w.owner.public());
            for statement in order {
                if let Ok(verified) = Verified::check(statement.clone(), &w.project) {
                    access.insert(verified);
                }
            }
            let mut kept: Vec<StatementId> = access.statements().map(|(id, _)| *id).collect();
            kept.sort();
            for (_, statement) in access.statements() {
                for parent in &statement.parents {
                    assert!(kept.binary_search(parent).is_ok(), "a kept statement's parent is kept");
                }
            }
            let mut heads = access.heads();
            heads.sort();
            (kept, heads, access.uncounted())
        };
        let expected = bookkeeping(&statements);
        let mut shuffled = statements.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(bookkeeping(&shuffled), expected.clone());
        shuffled.reverse();
        prop_assert_eq!(bookkeeping(&shuffled), expected);
    }

    #[test]
    fn invalid_statements_change_nothing(steps in history(), victim in any::<prop::sample::Index>()) {
        let w = World::new();
        let statements = build(&w, &steps);
        let expected = evaluate(w.project, w.owner.public(), statements.clone(), 300);
        let target = statements[victim.index(statements.len())].clone();

        let mut forged = target.clone();
        forged.payload.issued_ms += 1;
        let other = Genesis::create(&"other".parse().expect("name"), &w.owner, 0, [7; 16]).project_id();
        let replayed = Statement::create(other, target.payload.subject, target.payload.action, &w.owner, vec![], 0, None).expect("valid");
        let stranger = Statement::create(w.project, key(1).public(), GRANT_ADMIN, &key(42), vec![], 0, None).expect("valid");

        let mut polluted = statements.clone();
        polluted.extend([forged, replayed, stranger]);
        prop_assert_eq!(evaluate(w.project, w.owner.public(), polluted, 300), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let w = World::new();
        let _ = Verified::decode(&bytes, &w.project);
    }
}
