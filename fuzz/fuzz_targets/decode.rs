//! Arbitrary bytes as every untrusted input the protocol core parses:
//! access statements, activity entries, keys, project ids and paths. None
//! may panic; whatever decodes must re-encode and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::access::Verified;
use tandem_protocol::activity::SignedEntry;
use tandem_protocol::path::SafePath;
use tandem_protocol::project::Genesis;
use tandem_protocol::{PeerKey, ProjectId, SecretKey};

fuzz_target!(|data: &[u8]| {
    let owner = SecretKey::from_bytes([1; 32]);
    let project = Genesis::create(&"fuzz".parse().expect("name"), &owner, 0, [0; 16]).project_id();
    if let Ok(verified) = Verified::decode(data, &project) {
        let again = Verified::decode(verified.statement.to_json().as_bytes(), &project)
            .expect("round trip");
        assert_eq!(again.id, verified.id);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entry) = SignedEntry::from_json_verified(text) {
            let _ = entry.accept(&project);
        }
        if let Ok(key) = text.parse::<PeerKey>() {
            assert_eq!(key.to_did().parse::<PeerKey>().ok(), Some(key));
        }
        if let Ok(id) = text.parse::<ProjectId>() {
            assert_eq!(id.to_string().parse::<ProjectId>().ok(), Some(id));
        }
        if let Ok(path) = SafePath::parse(text) {
            assert!(!path.as_str().starts_with('/'));
            assert!(path.components().all(|c| c != ".." && !c.is_empty()));
        }
    }
});
