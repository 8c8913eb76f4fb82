//! Relative paths that cannot escape the folder they are joined to.
//!
//! Every path that arrives from outside (an archive entry, an HTTP request,
//! a manifest) becomes a [`SafePath`] before it touches the filesystem.

use std::fmt;

/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4_096;

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path {0:?} is absolute; only paths inside the project are allowed")]
    Absolute(String),
    #[error("path {0:?} climbs out of its folder with '..'")]
    Climbs(String),
    #[error("path {0:?} contains a control character or a backslash")]
    BadCharacter(String),
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
}

/// A normalised relative path with `/` separators and no `.`/`..` parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafePath(String);

impl SafePath {
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if raw.chars().any(|c| c.is_control() || c == '\\') {
            return Err(PathError::BadCharacter(raw.to_owned()));
        }
        let is_drive =
            raw.len() >= 2 && raw.as_bytes()[1] == b':' && raw.as_bytes()[0].is_ascii_alphabetic();
        if raw.starts_with('/') || is_drive {
            return Err(PathError::Absolute(raw.to_owned()));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::Climbs(raw.to_owned())),
                _ => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(Self(parts.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's parts, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The first part: for project files, the section (code, input, output).
    pub fn first(&self) -> &str {
        self.components().next().unwrap_or_default()
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normal_paths_are_normalised() {
        assert_eq!(
            SafePath::parse("a/./b//c/").map(|p| p.0),
            Ok("a/b/c".into())
        );
        assert_eq!(
            SafePath::parse("input/x.csv").map(|p| p.first().to_owned()),
            Ok("input".into())
        );
    }

    #[test]
    fn escapes_are_refused() {
        assert!(matches!(
            SafePath::parse("../evil"),
            Err(PathError::Climbs(_))
        ));
        assert!(matches!(
            SafePath::parse("a/../../evil"),
            Err(PathError::Climbs(_))
        ));
        assert!(matches!(
            SafePath::parse("/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            SafePath::parse("C:/x"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            SafePath::parse("a\\..\\b"),
            Err(PathError::BadCharacter(_))
        ));
        assert!(matches!(
            SafePath::parse("a\0b"),
            Err(PathError::BadCharacter(_))
        ));
        assert_eq!(SafePath::parse("./"), Err(PathError::Empty));
        assert_eq!(SafePath::parse(&"a".repeat(5000)), Err(PathError::TooLong));
    }

    proptest! {
        #[test]
        fn accepted_paths_never_climb(raw in "[a./\\\\]{0,12}") {
            if let Ok(path) = SafePath::parse(&raw) {
                prop_assert!(!path.as_str().starts_with('/'));
                prop_assert!(path.components().all(|c| c != ".." && c != "." && !c.is_empty()));
            }
        }
    }
}
