//! Arbitrary text as a dataset's version listing, a project's dataset link
//! and a `NAME@VERSION` reference: what a dataset's owner or a project's
//! writer commits. None may panic (sizes included); every file a listing
//! that parses names stays inside the dataset; what parses re-encodes to
//! the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::dataset::{Link, Version, parse_reference};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(version) = Version::from_toml(text) {
        assert!(version.files.iter().all(|f| f.safe_path().is_some()));
        let _ = version.bytes();
        assert_eq!(Version::from_toml(&version.to_toml()), Ok(version));
    }
    if let Ok(link) = Link::from_toml(text) {
        assert!(link.files.iter().all(|f| f.safe_path().is_some()));
        assert!(tandem_protocol::path::SafePath::parse(&link.folder()).is_ok());
        assert_eq!(Link::from_toml(&link.to_toml()), Ok(link));
    }
    if let Ok((name, _)) = parse_reference(text) {
        assert!(!name.contains('@'));
    }
});
