//! Projects on disk: the folder, its Git repository, and the ways files get
//! in and out of it.
//!
//! - [`project`]: the folder layout, manifest, identity pin and open handles;
//! - [`repo`]: the Git repository (opened safely, change detection, commits);
//! - [`lifecycle`]: creating a project or dataset, and deleting one;
//! - [`summary`]: a project's summary, the list, and its files by section;
//! - [`sweep`]: recording what changed, and adding files from outside;
//! - [`watch`]: picking up changes made by any means and sweeping them;
//! - [`browse`]: reading, showing and uploading files for the web UI;
//! - [`archive`]: export to a zip and import back;
//! - [`versions`]: any version browsed, compared, restored or rerun.

pub mod archive;
pub mod browse;
pub mod lifecycle;
pub mod project;
pub mod repo;
pub mod summary;
pub mod sweep;
pub mod versions;
pub mod watch;
