//! `cargo bench -p tandem-protocol --bench access`
//!
//! Evaluates 10,000 access statements (100 admins, a deep causal DAG) from
//! scratch, then times an incremental update after one new statement. The
//! baseline, from the same run, is verifying the same statements'
//! signatures: the work every peer does once per statement anyway.

use std::time::{Duration, Instant};

use tandem_protocol::access::{
    Access, Action, Role, SignedStatement, Statement, StatementId, Verified,
};
use tandem_protocol::project::Genesis;
use tandem_protocol::{ProjectId, SecretKey};

fn key(n: u32) -> SecretKey {
    let mut bytes = [9u8; 32];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    SecretKey::from_bytes(bytes)
}

/// A small deterministic generator, so every run builds the same DAG.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn build(project: ProjectId, owner: &SecretKey, total: usize, admins: u32) -> Vec<SignedStatement> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut statements: Vec<SignedStatement> = Vec::with_capacity(total);
    let mut heads: Vec<StatementId> = Vec::new();
    let admin_keys: Vec<SecretKey> = (1..=admins).map(key).collect();
    for (i, admin) in admin_keys.iter().enumerate() {
        let s = Statement::create(
            project,
            admin.public(),
            Action::Grant { role: Role::Admin },
            owner,
            heads.clone(),
            i as i64,
            None,
        )
        .expect("statement");
        heads = vec![StatementId::of(&s)];
        statements.push(s);
    }
    // The rest: admins grant and revoke among 1,000 subjects, each on top
    // of the latest statement and now and then a second, older parent, so
    // the DAG is about as deep as it is long.
    while statements.len() < total {
        let i = statements.len();
        let issuer = &admin_keys[rng.next(admins as u64) as usize];
        let subject = key(10_000 + rng.next(1_000) as u32).public();
        let action = match rng.next(10) {
            0 => Action::Revoke,
            1..=3 => Action::Grant { role: Role::Reader },
            _ => Action::Grant { role: Role::Writer },
        };
        let mut parents = heads.clone();
        if rng.next(4) == 0 {
            parents.push(StatementId::of(&statements[rng.next(i as u64) as usize]));
        }
        let s = Statement::create(project, subject, action, issuer, parents, i as i64, None)
            .expect("statement");
        heads = vec![StatementId::of(&s)];
        statements.push(s);
    }
    statements
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let owner = key(0);
    let project = Genesis::create(&"bench".parse().expect("name"), &owner, 0, [0; 16]).project_id();
    let total = 10_000;
    let statements = build(project, &owner, total, 100);

    let started = Instant::now();
    let verified: Vec<Verified> = statements
        .iter()
        .map(|s| Verified::check(s.clone(), &project).expect("valid"))
        .collect();
    let verify = started.elapsed();

    let mut best = Duration::MAX;
    let mut members = 0;
    let mut access = Access::new(project, owner.public());
    for _ in 0..5 {
        let started = Instant::now();
        access = Access::new(project, owner.public());
        for v in verified.iter().cloned() {
            access.insert(v);
        }
        let roles = access.roles(1_000_000);
        best = best.min(started.elapsed());
        members = roles.members.len();
    }
    println!(
        "evaluate {total} statements (100 admins, DAG depth ~{total}): {:.1} ms, {members} members (goal < 50 ms); baseline: verifying their signatures: {:.1} ms; ratio {:.2}x",
        ms(best),
        ms(verify),
        best.as_secs_f64() / verify.as_secs_f64()
    );

    // Incremental: one new statement on top, then the subject's new role.
    let admin = key(7);
    let mut times = Vec::new();
    let mut full = Vec::new();
    for n in 0..200u32 {
        let subject = key(20_000 + n).public();
        let s = Statement::create(
            project,
            subject,
            Action::Grant { role: Role::Writer },
            &admin,
            access.heads(),
            2_000_000 + n as i64,
            None,
        )
        .expect("statement");
        let v = Verified::check(s, &project).expect("valid");
        let started = Instant::now();
        access.insert(v);
        let role = access.role_of(&subject, 3_000_000);
        times.push(started.elapsed());
        assert!(role.is_some() || n > 0, "the new grant counts");
        let started = Instant::now();
        let _ = access.roles(3_000_000);
        full.push(started.elapsed());
    }
    times.sort();
    full.sort();
    println!(
        "incremental update after one new statement (insert + the subject's role): p50 {:.3} ms, p99 {:.3} ms (goal < 1 ms); all members' roles recomputed: p50 {:.2} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(full[full.len() / 2])
    );
}
