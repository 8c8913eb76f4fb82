//! Two versions compared: user files added, removed and changed (text
//! files with a unified diff), large files by size and hash, packages
//! added, removed or re-pinned, the base, snippets and dataset links.
//! Everything is read from Git objects of the project's own history.

use std::collections::BTreeMap;

use git2::{Delta, DiffOptions, Patch};
use tandem_protocol::activity::FileAction;
use tandem_protocol::api::{
    FileDelta, FileSide, LinkDelta, MAX_PATCH_LEN, PackageDelta, VersionDiff,
};
use tandem_protocol::blob::{POINTER_DIR, Pointer, file_for_pointer};
use tandem_protocol::env::EnvSpec;

use super::error::VersionError;
use super::pick;
use super::tree::Snapshot;
use crate::error::ServiceError;
use crate::service::{Service, lock};

/// Text diffs made for one comparison; files beyond get none (their
/// sizes still show), so a sweeping change stays quick to compare.
const MAX_PATCHES: usize = 500;

impl Service {
    /// What changed from version `from` to version `to`.
    pub fn version_diff(
        &self,
        name: &str,
        from: &str,
        to: &str,
    ) -> Result<VersionDiff, ServiceError> {
        let handle = self.project(name)?;
        let project = lock(&handle);
        let repo = &project.repo;
        let a = pick::resolve(repo, &project.feed, name, from)?;
        let b = pick::resolve(repo, &project.feed, name, to)?;
        let head = pick::head(repo);
        let (a, b) = (Snapshot::open(repo, a)?, Snapshot::open(repo, b)?);
        let mut diff = VersionDiff {
            project: name.to_owned(),
            from: a.summary(head),
            to: b.summary(head),
            files: vec![],
            base: None,
            packages: vec![],
            snippets: vec![],
            datasets: vec![],
        };
        files(repo, &a, &b, &mut diff)?;
        let mut ignored = Vec::new();
        if let (Some(before), Some(after)) = (a.env(&mut ignored), b.env(&mut ignored)) {
            environment(&before, &after, &mut diff);
        }
        let before: BTreeMap<String, u32> = a
            .links(&mut ignored)
            .into_iter()
            .map(|l| (l.name, l.version))
            .collect();
        let after: BTreeMap<String, u32> = b
            .links(&mut ignored)
            .into_iter()
            .map(|l| (l.name, l.version))
            .collect();
        diff.datasets = changed(&before, &after)
            .into_iter()
            .map(|(name, before, after)| LinkDelta {
                name,
                before,
                after,
            })
            .collect();
        Ok(diff)
    }
}

/// User files and large files, from Git's own tree diff.
fn files(
    repo: &git2::Repository,
    a: &Snapshot<'_>,
    b: &Snapshot<'_>,
    out: &mut VersionDiff,
) -> Result<(), ServiceError> {
    let mut options = DiffOptions::new();
    options.context_lines(3);
    let diff = repo
        .diff_tree_to_tree(Some(a.tree()), Some(b.tree()), Some(&mut options))
        .map_err(VersionError::git("comparing the versions"))?;
    let pointer_root = format!("{POINTER_DIR}/");
    let mut patches = 0;
    for (index, delta) in diff.deltas().enumerate() {
        let old = delta.old_file();
        let new = delta.new_file();
        let Some(path) = new.path().or(old.path()).and_then(|p| p.to_str()) else {
            continue;
        };
        let action = match delta.status() {
            Delta::Added => FileAction::Added,
            Delta::Deleted => FileAction::Deleted,
            _ => FileAction::Modified,
        };
        let side = |file: &git2::DiffFile<'_>, present: bool| {
            present.then(|| FileSide {
                size: file.size(),
                hash: None,
            })
        };
        let has_old = action != FileAction::Added;
        let has_new = action != FileAction::Deleted;
        if path.starts_with(&pointer_root) {
            let Ok(file) = file_for_pointer(path) else {
                continue;
            };
            let pointer = |id: git2::Oid, present: bool| {
                present
                    .then(|| repo.find_blob(id).ok())
                    .flatten()
                    .and_then(|blob| std::str::from_utf8(blob.content()).ok().map(str::to_owned))
                    .and_then(|text| Pointer::from_toml(&text).ok())
                    .map(|p| FileSide {
                        size: p.size,
                        hash: Some(p.hash),
                    })
            };
            out.files.push(FileDelta {
                path: file.to_string(),
                action,
                before: pointer(old.id(), has_old),
                after: pointer(new.id(), has_new),
                large: true,
                patch: None,
                patch_cut: false,
                binary: true,
                cells: vec![],
            });
            continue;
        }
        if path.starts_with(".tandem/") || path.ends_with("/.gitkeep") {
            continue;
        }
        let binary = delta.flags().is_binary() || old.is_binary() || new.is_binary();
        let mut file = FileDelta {
            path: path.to_owned(),
            action,
            before: side(&old, has_old),
            after: side(&new, has_new),
            large: false,
            patch: None,
            patch_cut: false,
            binary,
            cells: vec![],
        };
        if path.ends_with(".ipynb")
            && !binary
            && let Some(cells) = notebook_cells(repo, (old.id(), has_old), (new.id(), has_new))
        {
            file.cells = cells;
            out.files.push(file);
            continue;
        }
        if !binary && patches < MAX_PATCHES {
            patches += 1;
            if let Ok(Some(mut patch)) = Patch::from_diff(&diff, index)
                && let Ok(buf) = patch.to_buf()
            {
                match std::str::from_utf8(&buf) {
                    Ok(text) => {
                        let (text, cut) = cut_at(text, MAX_PATCH_LEN);
                        file.patch = Some(text.to_owned());
                        file.patch_cut = cut;
                    }
                    Err(_) => file.binary = true,
                }
            }
            file.binary |= patch_is_binary(&file);
        }
        out.files.push(file);
    }
    // Large files moved in and out of Git count once, by their own path.
    out.files
        .sort_by(|x, y| x.path.cmp(&y.path).then(x.large.cmp(&y.large)));
    Ok(())
}

/// A notebook's change cell by cell, if both sides (those present) read as
/// nbformat 4 notebooks; `None` leaves it to the text diff.
fn notebook_cells(
    repo: &git2::Repository,
    (old, has_old): (git2::Oid, bool),
    (new, has_new): (git2::Oid, bool),
) -> Option<Vec<tandem_protocol::notebook::CellDelta>> {
    use tandem_protocol::notebook::{MAX_NOTEBOOK_LEN, Notebook, diff};
    let read = |id: git2::Oid, present: bool| -> Option<Notebook> {
        if !present {
            return Some(Notebook {
                top: Default::default(),
                cells: vec![],
            });
        }
        let odb = repo.odb().ok()?;
        let (size, _) = odb.read_header(id).ok()?;
        if size > MAX_NOTEBOOK_LEN {
            return None;
        }
        Notebook::parse(repo.find_blob(id).ok()?.content()).ok()
    };
    Some(diff(&read(old, has_old)?, &read(new, has_new)?))
}

/// A file whose diff Git could only call binary.
fn patch_is_binary(file: &FileDelta) -> bool {
    file.patch
        .as_deref()
        .is_some_and(|p| p.contains("\nBinary files ") || p.starts_with("Binary files "))
}

/// `text` cut at a character boundary no later than `limit`.
fn cut_at(text: &str, limit: usize) -> (&str, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

fn environment(before: &EnvSpec, after: &EnvSpec, out: &mut VersionDiff) {
    if before.base != after.base {
        out.base = Some((
            format!("{} {}", before.base.id, before.base.revision),
            format!("{} {}", after.base.id, after.base.revision),
        ));
    }
    let pins = |spec: &EnvSpec| -> BTreeMap<(String, String), String> {
        spec.packages
            .iter()
            .map(|p| {
                (
                    (p.manager.as_str().to_owned(), p.name.to_string()),
                    p.version.clone(),
                )
            })
            .collect()
    };
    out.packages = changed(&pins(before), &pins(after))
        .into_iter()
        .map(|((manager, name), before, after)| PackageDelta {
            manager,
            name,
            before,
            after,
        })
        .collect();
    let snippets = |spec: &EnvSpec| -> BTreeMap<String, String> {
        spec.snippets
            .iter()
            .map(|s| (s.name.clone(), s.hash()[..8].to_owned()))
            .collect()
    };
    out.snippets = changed(&snippets(before), &snippets(after))
        .into_iter()
        .map(|(name, before, after)| PackageDelta {
            manager: "snippet".into(),
            name,
            before,
            after,
        })
        .collect();
}

/// Keys whose values differ between two maps, with both values.
fn changed<K: Ord + Clone, V: PartialEq + Clone>(
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
) -> Vec<(K, Option<V>, Option<V>)> {
    let mut keys: Vec<&K> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (before.get(k), after.get(k));
            (x != y).then(|| (k.clone(), x.cloned(), y.cloned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_say_both_sides() {
        let a = BTreeMap::from([("x", 1), ("y", 2), ("z", 3)]);
        let b = BTreeMap::from([("x", 1), ("y", 5), ("w", 4)]);
        assert_eq!(
            changed(&a, &b),
            vec![
                ("w", None, Some(4)),
                ("y", Some(2), Some(5)),
                ("z", Some(3), None)
            ]
        );
        assert!(changed(&a, &a).is_empty());
    }

    #[test]
    fn patches_are_cut_on_a_character() {
        let text = "é".repeat(10);
        let (cut, was) = cut_at(&text, 5);
        assert!(was && cut == "éé", "{cut}");
        assert_eq!(cut_at("abc", 5), ("abc", false));
    }
}
