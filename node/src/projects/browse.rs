//! A project's files as the web UI reaches them: read a file, show the
//! README, and put an uploaded file in place. Every path is checked to
//! stay inside the project's code, input or output folder, and never to
//! pass through a symbolic link that could lead outside it.

use std::fs::File;
use std::path::{Path, PathBuf};

use tandem_protocol::api::{Section, SweepResult};
use tandem_protocol::path::SafePath;

use crate::beneath::{Beneath, BeneathError, Kind};
use crate::error::ServiceError;
use crate::service::{Service, lock};

/// Where the README may live, first match wins.
const README_PLACES: [&str; 4] = ["README.md", "code/README.md", "readme.md", "code/readme.md"];
/// Largest README shown.
const README_LIMIT: u64 = 1024 * 1024;

/// `section/relative/path`, checked to name something inside the code,
/// input or output folder.
fn checked(raw: &str) -> Result<SafePath, ServiceError> {
    let path = SafePath::parse(raw)?;
    if path.first().parse::<Section>().is_err() || path.components().count() < 2 {
        return Err(ServiceError::BadRequest(format!(
            "{raw:?} is not inside code/, input/ or output/"
        )));
    }
    Ok(path)
}

/// A refused path as the web UI reports it.
fn refused(raw: &str, e: BeneathError) -> ServiceError {
    match e {
        BeneathError::Symlink { .. } | BeneathError::Leaves { .. } => ServiceError::BadRequest(
            format!("{raw:?} goes through a symbolic link or out of the project: {e}"),
        ),
        BeneathError::NotAFolder { .. } | BeneathError::NotAFile { .. } => {
            ServiceError::NoSuchFile(raw.to_owned())
        }
        BeneathError::TooLarge { size, limit, .. } => ServiceError::BadRequest(format!(
            "{raw} is {size} bytes, more than the {limit} shown here; download it instead"
        )),
        other => other.into(),
    }
}

/// `section/relative/path` checked and joined under the project folder;
/// a symbolic link on the way is refused (each later read or write is
/// made beneath the folder again, so a link swapped in afterwards is
/// refused then too).
pub fn resolve(project_dir: &Path, raw: &str) -> Result<(SafePath, PathBuf), ServiceError> {
    let path = checked(raw)?;
    let root = Beneath::open(project_dir)?;
    match root.lstat(path.as_str()) {
        Ok(Some(entry)) if entry.kind == Kind::Symlink => {
            return Err(refused(
                raw,
                BeneathError::Symlink {
                    path: path.to_string(),
                    link: path.to_string(),
                },
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(refused(raw, e)),
    }
    Ok((path.clone(), project_dir.join(path.as_str())))
}

/// Opens a project file for download: beneath the project folder, never
/// through a link, and only a regular file.
pub fn open_for_download(project_dir: &Path, raw: &str) -> Result<File, ServiceError> {
    let path = checked(raw)?;
    let root = Beneath::open(project_dir)?;
    match root.open_file(path.as_str()) {
        Ok(Some((file, _))) => Ok(file),
        Ok(None) | Err(BeneathError::NotAFile { .. } | BeneathError::NotAFolder { .. }) => {
            Err(ServiceError::NoSuchFile(format!(
                "{raw} is not here (a large file still on peers? fetch it first)"
            )))
        }
        Err(e) => Err(refused(raw, e)),
    }
}

impl Service {
    /// Up to `limit` bytes of a project file; larger files are an error
    /// rather than silently cut.
    pub fn read_file(&self, name: &str, raw: &str, limit: u64) -> Result<Vec<u8>, ServiceError> {
        let dir = lock(&*self.project(name)?).dir.clone();
        let path = checked(raw)?;
        match Beneath::open(&dir)?.read(path.as_str(), limit) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(ServiceError::NoSuchFile(raw.to_owned())),
            Err(e) => Err(refused(raw, e)),
        }
    }

    /// The project's README text, if it has one. A README that is a link,
    /// or inside a `code/` that is one, is not shown.
    pub fn readme(&self, name: &str) -> Result<Option<String>, ServiceError> {
        let dir = lock(&*self.project(name)?).dir.clone();
        let root = Beneath::open(&dir)?;
        for place in README_PLACES {
            match root.read(place, README_LIMIT) {
                Ok(Some(bytes)) => return Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
                Ok(None) => {}
                Err(e @ BeneathError::TooLarge { .. }) => return Err(refused(place, e)),
                Err(e @ BeneathError::Io { .. }) => return Err(e.into()),
                // A link, a folder: not a README.
                Err(_) => {}
            }
        }
        Ok(None)
    }

    /// Moves a received upload (a complete temporary file) to `raw` in the
    /// project and records it. The move is a rename into the folder opened
    /// beneath the project (never through a link), so the project never
    /// holds a half-written file and nothing lands outside it.
    pub fn place_upload(
        &self,
        name: &str,
        raw: &str,
        received: &Path,
    ) -> Result<SweepResult, ServiceError> {
        let handle = self.project(name)?;
        let mut project = lock(&handle);
        let path = checked(raw)?;
        let root = Beneath::open(&project.dir)?;
        if let Ok(Some(entry)) = root.lstat(path.as_str())
            && entry.kind == Kind::Dir
        {
            return Err(ServiceError::BadRequest(format!(
                "{raw:?} is a folder in the project; pick another name"
            )));
        }
        if let Err(e) = root.rename_into(received, path.as_str()) {
            let _ = std::fs::remove_file(received);
            return Err(refused(raw, e));
        }
        self.sweep_project(&mut project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_project_sections() {
        let dir = tempfile::tempdir().expect("test fixture");
        assert!(resolve(dir.path(), "input/a.csv").is_ok());
        assert!(resolve(dir.path(), "input/sub/a.csv").is_ok());
        for bad in [
            "../x",
            "input/../../x",
            "/etc/passwd",
            ".git/config",
            "input",
            "other/a",
            "input/\u{0}x",
        ] {
            assert!(resolve(dir.path(), bad).is_err(), "{bad} was accepted");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_not_followed() {
        let dir = tempfile::tempdir().expect("test fixture");
        let outside = tempfile::tempdir().expect("test fixture");
        std::fs::create_dir(dir.path().join("input")).expect("test fixture");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("input/escape"))
            .expect("test fixture");
        assert!(resolve(dir.path(), "input/escape/secret").is_err());
        assert!(resolve(dir.path(), "input/escape").is_err());
    }
}
