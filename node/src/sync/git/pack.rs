//! Objects out and in: full object ids, packs built for a peer (by Git or
//! libgit2), packs received.

use std::io::Write;

use git2::{Oid, Repository};

use tandem_protocol::wire::Oid as WireOid;

use crate::sync::git::error::GitSyncError;

/// A full object id, refusing abbreviations (libgit2 would pad them with
/// zeros, Git would resolve them).
pub fn parse_oid(text: &str) -> Result<Oid, GitSyncError> {
    to_git(&WireOid::parse(text)?)
}

fn to_git(oid: &WireOid) -> Result<Oid, GitSyncError> {
    Ok(Oid::from_str(oid.as_str())?)
}

/// The current branch head.
pub fn head(repo: &Repository) -> Option<Oid> {
    repo.head().ok().and_then(|h| h.target())
}

pub fn has_commit(repo: &Repository, oid: &str) -> bool {
    parse_oid(oid).is_ok_and(|oid| repo.find_commit(oid).is_ok())
}

/// Objects reachable from `want` but not from `have` (unknown haves are
/// ignored), as a pack. Every id must be a full one (see [`WireOid`]): the
/// request is refused otherwise, before Git sees any of it.
pub fn build_pack(
    repo: &Repository,
    want: &[String],
    have: &[String],
) -> Result<Vec<u8>, GitSyncError> {
    let want = WireOid::parse_all(want)?;
    let have = WireOid::parse_all(have)?;
    build_pack_of(repo, &want, &have)
}

/// [`build_pack`] of ids already parsed (as the serving code parses them).
///
/// Uses `git pack-objects` when Git is installed: it reuses the deltas and
/// compressed objects already on disk, as `git daemon` does, where
/// libgit2's packbuilder recomputes every delta (several times slower on a
/// long history). Without Git, or if it fails, libgit2 builds the pack.
pub fn build_pack_of(
    repo: &Repository,
    want: &[WireOid],
    have: &[WireOid],
) -> Result<Vec<u8>, GitSyncError> {
    if git_cli_enabled() {
        match pack_with_git_cli(repo, want, have) {
            Ok(pack) => return Ok(pack),
            Err(e) => tracing::debug!(error = %e, "git pack-objects unavailable; using libgit2"),
        }
    }
    build_pack_libgit2(repo, want, have)
}

/// `TANDEM_GIT_CLI=0` turns the Git command off (tests compare both paths).
fn git_cli_enabled() -> bool {
    std::env::var("TANDEM_GIT_CLI").map_or(true, |v| v != "0")
}

fn pack_with_git_cli(
    repo: &Repository,
    want: &[WireOid],
    have: &[WireOid],
) -> Result<Vec<u8>, String> {
    use std::process::Stdio;
    let mut input = String::new();
    for oid in want {
        input.push_str(oid.as_str());
        input.push('\n');
    }
    for oid in have {
        // Unknown haves are ignored, as in the libgit2 path.
        if let Ok(parsed) = to_git(oid)
            && repo.find_commit(parsed).is_ok()
        {
            input.push('^');
            input.push_str(oid.as_str());
            input.push('\n');
        }
    }
    // Deaf to repository config that runs programs (see `repo::git_command`).
    let mut child = crate::projects::repo::git_command(repo.path())
        .args([
            "pack-objects",
            "--stdout",
            "--revs",
            "--delta-base-offset",
            "--threads=0",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    // Written from a thread so a long list of haves cannot deadlock
    // against a full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "the writer thread panicked".to_owned())?
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(output.stdout)
}

fn build_pack_libgit2(
    repo: &Repository,
    want: &[WireOid],
    have: &[WireOid],
) -> Result<Vec<u8>, GitSyncError> {
    let mut walk = repo.revwalk()?;
    for oid in want {
        walk.push(to_git(oid)?)?;
    }
    for oid in have {
        if let Ok(oid) = to_git(oid)
            && repo.find_commit(oid).is_ok()
        {
            walk.hide(oid)?;
        }
    }
    let mut builder = repo.packbuilder()?;
    // Delta search is most of the cost of packing: use every core.
    builder.set_threads(0);
    builder.insert_walk(&mut walk)?;
    let mut buf = git2::Buf::new();
    builder.write_buf(&mut buf)?;
    Ok(buf.to_vec())
}

/// Stores a received pack in the object database (indexed and verified by
/// libgit2 while it is written).
pub fn ingest_pack(repo: &Repository, pack: &[u8]) -> Result<(), GitSyncError> {
    if pack.is_empty() {
        return Ok(());
    }
    let odb = repo.odb()?;
    let mut writer = odb.packwriter()?;
    writer
        .write_all(pack)
        .map_err(|e| GitSyncError::State(e.to_string()))?;
    writer.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::git::testing::repo_with_commits;

    #[test]
    fn packs_from_git_and_from_libgit2_both_carry_the_history() {
        let source = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(source.path(), 20);
        let want = [wire(head)];
        let mut packs = vec![build_pack_libgit2(&repo, &want, &[]).expect("libgit2 pack")];
        // Git may be missing on a user's machine, never in this workspace's CI.
        packs.push(pack_with_git_cli(&repo, &want, &[]).expect("git pack-objects"));
        for pack in packs {
            let target = tempfile::tempdir().expect("tempdir");
            let copy = crate::projects::repo::init(target.path()).expect("init");
            ingest_pack(&copy, &pack).expect("ingest");
            let mut walk = copy.revwalk().expect("walk");
            walk.push(head).expect("head is there");
            assert_eq!(walk.count(), 20);
        }
    }

    #[test]
    fn a_have_shrinks_the_pack_and_unknown_haves_are_ignored() {
        let source = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(source.path(), 10);
        let parent = repo
            .find_commit(head)
            .expect("head")
            .parent_id(0)
            .expect("parent");
        let want = [wire(head)];
        let full = pack_with_git_cli(&repo, &want, &[]).expect("full");
        let unknown = WireOid::parse("0123456789012345678901234567890123456789").expect("full id");
        let thin = pack_with_git_cli(&repo, &want, &[wire(parent), unknown]).expect("incremental");
        assert!(thin.len() < full.len(), "{} < {}", thin.len(), full.len());
        assert!(build_pack(&repo, &["nonsense".into()], &[]).is_err());
    }

    fn wire(oid: Oid) -> WireOid {
        WireOid::parse(&oid.to_string()).expect("git2 prints full ids")
    }

    #[test]
    fn abbreviated_ids_never_reach_git() {
        let source = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(source.path(), 3);
        let full = head.to_string();
        // `git pack-objects --revs` would resolve each of these (a prefix,
        // a name, a differently cased id) and pack what it matched.
        for bad in [
            &full[..7],
            &full[..39],
            "HEAD",
            "main",
            &full.to_uppercase(),
        ] {
            let err = build_pack(&repo, &[bad.to_owned()], &[]).expect_err(bad);
            assert!(
                matches!(err, GitSyncError::BadOid(_))
                    && err.to_string().contains("full Git object id"),
                "{bad}: {err}"
            );
            let err =
                build_pack(&repo, std::slice::from_ref(&full), &[bad.to_owned()]).expect_err(bad);
            assert!(matches!(err, GitSyncError::BadOid(_)), "{bad}: {err}");
            assert!(parse_oid(bad).is_err(), "{bad}");
        }
        assert!(!has_commit(&repo, &full[..12]));
        assert!(has_commit(&repo, &full));
        assert!(
            !build_pack(&repo, &[full], &[])
                .expect("full ids pack")
                .is_empty()
        );
    }
}
