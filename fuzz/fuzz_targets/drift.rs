//! Arbitrary bytes as two package listings a container printed (what its
//! image had and what it has now): reading them and judging drift never
//! panics, and every version offered to pin is one the spec accepts as
//! it would a version typed by the user.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::drift::{ReadTo, find_drift, parse_listing};
use tandem_protocol::env::{BaseRef, EnvSpec, Package};

fuzz_target!(|data: &[u8]| {
    let (baseline, current) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (baseline, current) = (
        parse_listing(baseline, ReadTo::End),
        parse_listing(current, ReadTo::Bound),
    );
    let base = BaseRef::parse("id = \"python3-minimal\"\nrevision = 1\n").expect("base");
    let spec = EnvSpec::new(base, vec![], vec![]);
    for drift in find_drift(&baseline, &current, &spec) {
        let _ = drift.to_string();
        if let Some(pin) = drift.pin() {
            assert!(
                Package::new(pin.manager, pin.name.as_str(), &pin.version).is_ok(),
                "a pin the spec would refuse: {pin}"
            );
        }
    }
});
