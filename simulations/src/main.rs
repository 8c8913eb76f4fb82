//! `cargo run --release -p tandem-simulations -- [PEERS] [SEEDS]`
//!
//! Runs the simulator and prints, per seed, the quiet rounds, messages and
//! bytes until every member agreed. Defaults: 1,000 peers, 1 seed.

use tandem_simulations::{Config, run};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let peers = args.first().copied().unwrap_or(1_000) as usize;
    let seeds = args.get(1).copied().unwrap_or(1);
    let mut failed = false;
    for seed in 0..seeds {
        let started = std::time::Instant::now();
        let outcome = run(&Config::new(peers, seed));
        println!(
            "peers {peers} seed {seed}: converged {} after {} quiet rounds, {} messages, {:.1} MB, {} commits, {} violations, {:.1} s",
            outcome.converged,
            outcome.rounds,
            outcome.messages,
            outcome.bytes as f64 / 1e6,
            outcome.commits,
            outcome.violations.len(),
            started.elapsed().as_secs_f64()
        );
        let mut kinds: Vec<_> = outcome.bytes_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        let shares: Vec<String> = kinds
            .iter()
            .take(4)
            .map(|(kind, bytes)| {
                format!(
                    "{kind} {:.0}%",
                    **bytes as f64 * 100.0 / outcome.bytes.max(1) as f64
                )
            })
            .collect();
        println!("  bytes by kind: {}", shares.join(", "));
        failed |= !outcome.converged || !outcome.violations.is_empty();
    }
    if failed {
        std::process::exit(1);
    }
}
