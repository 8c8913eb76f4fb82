//! Turning a set of file changes into readable activity messages.
//!
//! A sweep may touch several parts of a project at once; each part gets its
//! own entry ("3 new files in input/: a.csv, b.csv, c.csv") so the feed can
//! be filtered by kind and the messages stay short.

use std::collections::BTreeMap;

use crate::activity::{FileAction, FileChange, Kind};

/// How many file names a message lists before "and N more".
const NAMES_SHOWN: usize = 5;

/// One entry's worth of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeGroup {
    pub kind: Kind,
    pub message: String,
    pub files: Vec<FileChange>,
}

/// The part of the project a path belongs to, and the kind it records as.
fn area(path: &str) -> (&'static str, Kind) {
    let first = path.split('/').next().unwrap_or_default();
    match first {
        "code" => ("code/", Kind::Code),
        "input" => ("input/", Kind::Input),
        "output" => ("output/", Kind::Output),
        "data" => ("data/", Kind::Dataset),
        ".tandem" => match path.split('/').nth(1) {
            Some("env") => ("the environment", Kind::Environment),
            Some("access") => ("access", Kind::Access),
            Some("datasets") => ("linked datasets", Kind::Dataset),
            Some("versions") => ("dataset versions", Kind::Dataset),
            _ => ("project settings", Kind::Milestone),
        },
        _ => ("the project root", Kind::Code),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Groups changes by area, in a fixed order, each with a message.
pub fn summarize(changes: &[FileChange]) -> Vec<ChangeGroup> {
    let mut groups: BTreeMap<(Kind, &'static str), Vec<FileChange>> = BTreeMap::new();
    for change in changes {
        let (label, kind) = area(&change.path);
        groups
            .entry((kind, label))
            .or_default()
            .push(change.clone());
    }
    groups
        .into_iter()
        .map(|((kind, label), files)| {
            let count = |a: FileAction| files.iter().filter(|f| f.action == a).count();
            let (added, modified, deleted) = (
                count(FileAction::Added),
                count(FileAction::Modified),
                count(FileAction::Deleted),
            );
            let mut parts = Vec::new();
            if added > 0 {
                parts.push(plural(added, "new file", "new files"));
            }
            if modified > 0 {
                parts.push(plural(modified, "file changed", "files changed"));
            }
            if deleted > 0 {
                parts.push(plural(deleted, "file deleted", "files deleted"));
            }
            let names: Vec<&str> = files
                .iter()
                .take(NAMES_SHOWN)
                .map(|f| f.path.rsplit('/').next().unwrap_or(&f.path))
                .collect();
            let mut message = format!("{} in {label}: {}", parts.join(", "), names.join(", "));
            if files.len() > NAMES_SHOWN {
                message.push_str(&format!(" and {} more", files.len() - NAMES_SHOWN));
            }
            ChangeGroup {
                kind,
                message,
                files,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, action: FileAction) -> FileChange {
        FileChange {
            path: path.into(),
            action,
        }
    }

    #[test]
    fn groups_by_area_with_counts_and_names() {
        let groups = summarize(&[
            change("input/a.csv", FileAction::Added),
            change("input/b.csv", FileAction::Added),
            change("input/sub/c.csv", FileAction::Added),
            change("code/run.py", FileAction::Modified),
            change(".tandem/env/packages/pip_numpy.toml", FileAction::Added),
        ]);
        let messages: Vec<(Kind, &str)> = groups
            .iter()
            .map(|g| (g.kind, g.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            vec![
                (Kind::Code, "1 file changed in code/: run.py"),
                (
                    Kind::Environment,
                    "1 new file in the environment: pip_numpy.toml"
                ),
                (Kind::Input, "3 new files in input/: a.csv, b.csv, c.csv"),
            ]
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let changes: Vec<FileChange> = (0..8)
            .map(|i| change(&format!("output/f{i}.png"), FileAction::Deleted))
            .collect();
        let groups = summarize(&changes);
        assert_eq!(
            groups[0].message,
            "8 files deleted in output/: f0.png, f1.png, f2.png, f3.png, f4.png and 3 more"
        );
        assert_eq!(groups[0].files.len(), 8);
    }
}
