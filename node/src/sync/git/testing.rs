//! A repository with some history, for the tests of this folder.

use git2::{Oid, Repository, Signature};

pub(crate) fn repo_with_commits(dir: &std::path::Path, count: usize) -> (Repository, Oid) {
    let repo = crate::projects::repo::init(dir).expect("init");
    let author = Signature::now("T", "t@example.org").expect("signature");
    let mut last = None;
    for n in 0..count {
        std::fs::write(dir.join("file.txt"), format!("version {n}\n").repeat(50)).expect("write");
        last = crate::projects::repo::commit_all(&repo, &author, &format!("commit {n}"))
            .expect("commit");
    }
    let head = last.expect("a commit");
    (repo, head)
}
