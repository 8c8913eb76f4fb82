//! Arbitrary bytes as a zip handed to `tandem import`: the reader and the
//! checks made before anything is written. Half the inputs are read as a
//! zip as they are; the other half describe entries (a kind, a Unix mode
//! and a name per line) that are written into a well-formed zip first, so
//! the checks see hostile names and links, not only broken
//! headers. None may panic; every entry that passes is a safe relative
//! path that is not a link; an archive holding a link is refused.
#![no_main]

use std::io::{Cursor, Write};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tandem_node::projects::archive::check_entries;
use zip::write::SimpleFileOptions;

/// Writes the entries `data` describes; returns the zip and whether any
/// entry is a link. (The writer keeps only a mode's permission bits, so
/// special files come from the raw half of the inputs.)
fn build(data: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut hostile = false;
    for line in data.split(|b| *b == b'\n').take(64) {
        let [kind, high, low, name @ ..] = line else {
            continue;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let mode = u32::from(u16::from_be_bytes([*high, *low]));
        let options = SimpleFileOptions::default().unix_permissions(mode);
        let written = match kind % 3 {
            0 => zip
                .start_file(name, options)
                .and_then(|()| zip.write_all(b"x").map_err(zip::result::ZipError::from)),
            1 => zip.add_directory(name, options),
            _ => {
                hostile = true;
                zip.add_symlink(name, "../../..", options)
            }
        };
        if written.is_err() {
            return None;
        }
    }
    let bytes = zip.finish().ok()?.into_inner();
    Some((bytes, hostile))
}

fuzz_target!(|data: &[u8]| {
    let (bytes, hostile) = match data.split_first() {
        Some((first, rest)) if first & 1 == 1 => match build(rest) {
            Some(built) => built,
            None => return,
        },
        _ => (data.to_vec(), false),
    };
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(&bytes[..])) else {
        return;
    };
    let Ok(plan) = check_entries(&mut zip, Path::new("fuzz.zip")) else {
        return;
    };
    assert!(!hostile, "an archive with a link passed the checks");
    assert_eq!(plan.len(), zip.len());
    for (index, path, _) in &plan {
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
