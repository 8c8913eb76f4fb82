//! Links and submodules in incoming history: never checked out.

use git2::Repository;

/// Symbolic links (git mode 120000) and submodules (160000) that a tree
/// would bring into a working tree. Checked out, a link in a project lets
/// whoever committed it aim the node's later writes and reads anywhere on
/// this machine (`input/evil -> ../../..`), so incoming history that holds
/// one anywhere is refused, naming the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingLinks {
    /// Path and what it is, in tree order.
    pub paths: Vec<(String, &'static str)>,
}

impl std::fmt::Display for IncomingLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 5;
        let named: Vec<String> = self
            .paths
            .iter()
            .take(SHOWN)
            .map(|(path, what)| format!("{path} is {what}"))
            .collect();
        write!(f, "{}", named.join(", "))?;
        if self.paths.len() > SHOWN {
            write!(f, " (and {} more)", self.paths.len() - SHOWN)?;
        }
        write!(
            f,
            "; refused: Tandem never checks out links or submodules from another copy"
        )
    }
}

impl std::error::Error for IncomingLinks {}

/// The links and submodules `to` holds that `from` does not hold the same
/// (`from` = `None`: all of `to`). Only what differs is walked, so a sync
/// costs in proportion to what changed.
pub fn incoming_links(
    repo: &Repository,
    from: Option<&git2::Tree<'_>>,
    to: &git2::Tree<'_>,
) -> Result<Option<IncomingLinks>, git2::Error> {
    let mut options = git2::DiffOptions::new();
    options.include_typechange(true);
    let diff = repo.diff_tree_to_tree(from, Some(to), Some(&mut options))?;
    let mut paths = Vec::new();
    for delta in diff.deltas() {
        if delta.status() == git2::Delta::Deleted {
            continue;
        }
        let file = delta.new_file();
        let what = match file.mode() {
            git2::FileMode::Link => "a symbolic link (git mode 120000)",
            git2::FileMode::Commit => "a submodule (git mode 160000)",
            _ => continue,
        };
        let path = file
            .path_bytes()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        paths.push((path, what));
    }
    Ok((!paths.is_empty()).then_some(IncomingLinks { paths }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::git::testing::repo_with_commits;

    #[test]
    fn incoming_links_and_submodules_are_found_anywhere_and_only_when_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (repo, head) = repo_with_commits(dir.path(), 1);
        let base = repo.find_commit(head).expect("head").tree().expect("tree");
        let link = repo.blob(b"../../..").expect("blob");
        let mut deep = repo.treebuilder(None).expect("builder");
        deep.insert("evil", link, 0o120000).expect("insert");
        deep.insert("sub", head, 0o160000).expect("insert");
        let deep = deep.write().expect("tree");
        let mut input = repo.treebuilder(None).expect("builder");
        input.insert("deep", deep, 0o040000).expect("insert");
        let input = input.write().expect("tree");
        let mut top = repo.treebuilder(Some(&base)).expect("builder");
        top.insert("input", input, 0o040000).expect("insert");
        let hostile = repo.find_tree(top.write().expect("tree")).expect("tree");
        let found = incoming_links(&repo, Some(&base), &hostile)
            .expect("diff")
            .expect("links found");
        let paths: Vec<&str> = found.paths.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["input/deep/evil", "input/deep/sub"]);
        let text = found.to_string();
        assert!(
            text.contains("input/deep/evil is a symbolic link"),
            "{text}"
        );
        assert!(text.contains("submodule"), "{text}");
        // The whole tree when nothing is here yet; nothing when nothing new.
        assert!(
            incoming_links(&repo, None, &hostile)
                .expect("diff")
                .is_some()
        );
        assert!(
            incoming_links(&repo, Some(&hostile), &hostile)
                .expect("diff")
                .is_none()
        );
        assert!(incoming_links(&repo, None, &base).expect("diff").is_none());
    }
}
