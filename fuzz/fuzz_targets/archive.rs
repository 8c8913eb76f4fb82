//! Arbitrary bytes as a zip handed to `tandem import`: the reader and the
//! checks made before anything is written. None may panic; every entry
//! that passes is a safe relative path, and the checks agree with a second
//! reading of the same archive.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tandem_node::archive::check_entries;

fuzz_target!(|data: &[u8]| {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(data)) else {
        return;
    };
    let Ok(plan) = check_entries(&mut zip, Path::new("fuzz.zip")) else {
        return;
    };
    assert_eq!(plan.len(), zip.len());
    for (index, path, _) in &plan {
        assert!(*index < zip.len());
        assert!(!path.as_str().starts_with('/'));
        assert!(
            path.components()
                .all(|c| c != ".." && c != "." && !c.is_empty())
        );
        let entry = zip
            .by_index_raw(*index)
            .expect("an entry that was just read");
        assert!(!entry.is_symlink(), "{path} is a link");
    }
});
