//! Arbitrary text as a blob pointer, a pointer's path, a blob hash and a
//! blob policy: what a peer's commit puts under `.tandem/blobs/`. None may
//! panic; a pointer path that parses names a file inside the project (never
//! under `.tandem/` or `.git/`) and maps back to itself once made canonical; what parses
//! re-encodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_protocol::blob::{BlobHash, BlobPolicy, Pointer, file_for_pointer, pointer_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pointer) = Pointer::from_toml(text) {
        assert_eq!(Pointer::from_toml(&pointer.to_toml()), Ok(pointer));
    }
    if let Ok(file) = file_for_pointer(text) {
        // `a//b` and `a/./b` name `a/b`: the mapping is canonical.
        assert_eq!(file_for_pointer(&pointer_path(&file)), Ok(file.clone()));
        assert!(file.first() != ".tandem" && file.first() != ".git");
        assert!(!file.as_str().starts_with('/'));
        assert!(
            file.components()
                .all(|c| c != ".." && c != "." && !c.is_empty())
        );
    }
    if let Ok(hash) = text.parse::<BlobHash>() {
        assert_eq!(hash.to_string().parse::<BlobHash>().ok(), Some(hash));
    }
    if let Ok(policy) = BlobPolicy::from_toml(text) {
        for (path, size) in [
            ("input/a.csv", u64::MAX),
            (".tandem/x", u64::MAX),
            ("code/a.py", 0),
        ] {
            if let Ok(path) = tandem_protocol::path::SafePath::parse(path) {
                let _ = policy.is_large(&path, size);
            }
        }
    }
});
