//! Arbitrary bytes as a history of access statements among a few keys,
//! delivered in an order the bytes also choose. Evaluation must never
//! panic, and must give the same roles as delivery in creation order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::SecretKey;
use tandem_protocol::access::{Access, Action, Role, Statement, StatementId, Verified};
use tandem_protocol::project::Genesis;

fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes([n % 6 + 1; 32])
}

fuzz_target!(|data: &[u8]| {
    let owner = key(0);
    let project = Genesis::create(&"fuzz".parse().expect("name"), &owner, 0, [0; 16]).project_id();
    let mut made: Vec<Verified> = Vec::new();
    for (i, step) in data.chunks_exact(5).take(48).enumerate() {
        let action = match step[2] % 6 {
            0 => Action::Grant { role: Role::Admin },
            1 => Action::Grant { role: Role::Writer },
            2 => Action::Grant { role: Role::Reader },
            3 => Action::Revoke,
            4 => Action::Visibility {
                public: step[3] & 1 == 1,
            },
            _ => Action::Grant { role: Role::Owner },
        };
        let parents: Vec<StatementId> = if made.is_empty() {
            vec![]
        } else {
            [step[3], step[4]]
                .iter()
                .map(|b| made[*b as usize % made.len()].id)
                .collect()
        };
        let expires = (step[4] & 0x80 != 0).then_some(i64::from(step[4]) * 3);
        let Ok(statement) = Statement::create(
            project,
            key(step[1]).public(),
            action,
            &key(step[0]),
            parents,
            i as i64,
            expires,
        ) else {
            continue;
        };
        made.push(Verified::check(statement, &project).expect("freshly signed statements verify"));
    }
    let mut in_order = Access::new(project, owner.public());
    for v in made.iter().cloned() {
        in_order.insert(v);
    }
    let mut shuffled = Access::new(project, owner.public());
    let mut order: Vec<usize> = (0..made.len()).collect();
    order.sort_by_key(|i| data.get(i * 7 % data.len().max(1)).copied().unwrap_or(0) as usize ^ i);
    for i in order.into_iter().rev() {
        shuffled.insert(made[i].clone());
    }
    assert_eq!(in_order.roles(200), shuffled.roles(200));
});
