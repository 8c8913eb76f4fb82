//! Arbitrary bytes as the three notebooks of a merge (a base and two
//! sides, as members' commits bring them): reading them and merging them
//! cell by cell may refuse, never panic; every merge, however its
//! conflicts are settled, writes a notebook that reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::notebook::{Choice, Notebook, merge_files};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(base), Some(ours), Some(theirs)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(merged) = merge_files(base, ours, theirs) else {
        return;
    };
    for choice in [Choice::Ours, Choice::Theirs, Choice::Both] {
        let written = merged.resolve(|_| choice).to_bytes();
        assert!(
            Notebook::parse(&written).is_ok(),
            "a merge wrote a notebook that does not read back"
        );
    }
});
