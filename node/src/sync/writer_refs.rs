//! The latest refs taken from each writer of a project, exactly as that
//! writer signed them, kept in the project's Git folder (never in the
//! working tree or the history). They are relayed to members that ask
//! (`tandem_protocol::sync::relay`: how a hub's replica, a reader, serves
//! what writers did), and they are the floor below which relayed refs are
//! refused, so a relay can delay a writer's work but never roll it back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tandem_protocol::PeerKey;
use tandem_protocol::wire::{MAX_RELAYED, SignedRefs};

use crate::fsutil::atomic_write;

/// The file, beside Git's own state.
fn path(git_dir: &Path) -> PathBuf {
    git_dir.join("tandem-writer-refs.json")
}

/// Most bytes read back: far above what [`MAX_RELAYED`] writers' refs
/// take, far below what would hurt.
const MAX_FILE: u64 = 4 << 20;

/// The refs kept, by writer. A missing or unreadable file is an empty
/// record: the worst that does is take an older relayed head once more,
/// and merging an ancestor changes nothing.
pub fn load(git_dir: &Path) -> BTreeMap<PeerKey, SignedRefs> {
    let file = path(git_dir);
    let small = std::fs::metadata(&file).is_ok_and(|m| m.len() <= MAX_FILE);
    if !small {
        return BTreeMap::new();
    }
    std::fs::read(&file)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Vec<SignedRefs>>(&bytes).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|refs| (refs.payload.peer, refs))
        .collect()
}

/// Keeps `refs` as the latest taken from its writer, if newer than what
/// is kept. The caller has checked them (signed by that writer, for this
/// project, the writer may write).
pub fn keep(git_dir: &Path, refs: &SignedRefs) -> std::io::Result<()> {
    let mut kept = load(git_dir);
    let writer = refs.payload.peer;
    if kept
        .get(&writer)
        .is_some_and(|old| old.payload.time_ms >= refs.payload.time_ms)
    {
        return Ok(());
    }
    kept.insert(writer, refs.clone());
    // The newest first, so a cap keeps the writers who are active.
    let mut list: Vec<SignedRefs> = kept.into_values().collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.payload.time_ms));
    list.truncate(MAX_RELAYED);
    let bytes = serde_json::to_vec(&list).map_err(std::io::Error::other)?;
    atomic_write(&path(git_dir), &bytes, None)
}

/// The signed time of the latest refs taken from `writer`.
pub fn taken_time(git_dir: &Path, writer: &PeerKey) -> Option<i64> {
    load(git_dir).get(writer).map(|r| r.payload.time_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::SecretKey;
    use tandem_protocol::signed::Signed;
    use tandem_protocol::wire::Refs;

    fn refs(signer: &SecretKey, time_ms: i64) -> SignedRefs {
        let project = tandem_protocol::project::Genesis::create(
            &"survey".parse().expect("name"),
            signer,
            0,
            [1; 16],
        )
        .project_id();
        Signed::sign(
            Refs {
                project,
                peer: signer.public(),
                heads: vec![("main".into(), "a".repeat(40))],
                time_ms,
            },
            signer,
        )
        .expect("signed")
    }

    #[test]
    fn only_newer_refs_replace_what_is_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ada = SecretKey::from_bytes([1; 32]);
        assert_eq!(taken_time(dir.path(), &ada.public()), None);
        keep(dir.path(), &refs(&ada, 20)).expect("kept");
        keep(dir.path(), &refs(&ada, 10)).expect("older ignored");
        assert_eq!(taken_time(dir.path(), &ada.public()), Some(20));
        keep(dir.path(), &refs(&ada, 30)).expect("newer kept");
        assert_eq!(taken_time(dir.path(), &ada.public()), Some(30));
    }

    #[test]
    fn a_corrupt_or_huge_file_reads_as_nothing_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(path(dir.path()), b"{not json").expect("write");
        assert!(load(dir.path()).is_empty());
        let file = std::fs::File::create(path(dir.path())).expect("create");
        file.set_len(MAX_FILE + 1).expect("grow");
        assert!(load(dir.path()).is_empty());
    }
}
