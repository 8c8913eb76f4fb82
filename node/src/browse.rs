//! A project's files as the web UI reaches them: read a file, show the
//! README, and put an uploaded file in place. Every path is checked to
//! stay inside the project's code, input or output folder, and never to
//! pass through a symbolic link that could lead outside it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use tandem_protocol::api::{Section, SweepResult};
use tandem_protocol::path::SafePath;

use crate::service::{Service, ServiceError, io_context, lock};

/// Where the README may live, first match wins.
const README_PLACES: [&str; 4] = ["README.md", "code/README.md", "readme.md", "code/readme.md"];
/// Largest README shown.
const README_LIMIT: u64 = 1024 * 1024;

/// `section/relative/path` checked and joined under the project folder.
pub fn resolve(project_dir: &Path, raw: &str) -> Result<(SafePath, PathBuf), ServiceError> {
    let path = SafePath::parse(raw).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if path.first().parse::<Section>().is_err() || path.components().count() < 2 {
        return Err(ServiceError::BadRequest(format!(
            "{raw:?} is not inside code/, input/ or output/"
        )));
    }
    let mut at = project_dir.to_path_buf();
    for part in path.components() {
        at.push(part);
        if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ServiceError::BadRequest(format!(
                "{raw:?} goes through a symbolic link; refusing to follow it"
            )));
        }
    }
    Ok((path, at))
}

impl Service {
    /// Up to `limit` bytes of a project file; larger files are an error
    /// rather than silently cut.
    pub fn read_file(&self, name: &str, raw: &str, limit: u64) -> Result<Vec<u8>, ServiceError> {
        let dir = lock(&*self.project(name)?).dir.clone();
        let (_, path) = resolve(&dir, raw)?;
        read_limited(&path, limit, raw)
    }

    /// The project's README text, if it has one.
    pub fn readme(&self, name: &str) -> Result<Option<String>, ServiceError> {
        let dir = lock(&*self.project(name)?).dir.clone();
        for place in README_PLACES {
            let path = dir.join(place);
            let is_file = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
            // `code/` itself must not be a link leading elsewhere either.
            let folder_is_link = place.split_once('/').is_some_and(|(folder, _)| {
                fs::symlink_metadata(dir.join(folder)).is_ok_and(|m| m.file_type().is_symlink())
            });
            if is_file && !folder_is_link {
                let bytes = read_limited(&path, README_LIMIT, place)?;
                return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        Ok(None)
    }

    /// Moves a received upload (a complete temporary file) to `raw` in the
    /// project and records it. The move is a rename, so the project never
    /// holds a half-written file.
    pub fn place_upload(
        &self,
        name: &str,
        raw: &str,
        received: &Path,
    ) -> Result<SweepResult, ServiceError> {
        let handle = self.project(name)?;
        let mut project = lock(&handle);
        let (_, dest) = resolve(&project.dir, raw)?;
        if dest.is_dir() {
            return Err(ServiceError::BadRequest(format!(
                "{raw:?} is a folder in the project; pick another name"
            )));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_context(format!("creating {raw}'s folder")))?;
        }
        if fs::rename(received, &dest).is_err() {
            // Another filesystem: copy beside the target, then rename.
            let beside = dest.with_file_name(format!(
                ".tandem-upload-{}",
                hex::encode(crate::store::random_bytes::<6>())
            ));
            fs::copy(received, &beside).map_err(io_context(format!("saving {raw}")))?;
            fs::rename(&beside, &dest).map_err(io_context(format!("saving {raw}")))?;
            let _ = fs::remove_file(received);
        }
        self.sweep_project(&mut project)
    }
}

fn read_limited(path: &Path, limit: u64, shown: &str) -> Result<Vec<u8>, ServiceError> {
    let file = fs::File::open(path).map_err(|_| ServiceError::NoSuchFile(shown.to_owned()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(ServiceError::BadRequest(format!(
            "{shown} is {size} bytes, more than the {limit} shown here; download it instead"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(io_context(format!("reading {shown}")))?;
    Ok(bytes)
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
        fs::create_dir(dir.path().join("input")).expect("test fixture");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("input/escape"))
            .expect("test fixture");
        assert!(resolve(dir.path(), "input/escape/secret").is_err());
        assert!(resolve(dir.path(), "input/escape").is_err());
    }
}
