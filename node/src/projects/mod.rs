//! Projects on disk: the folder, its Git repository, and the ways files get
//! in and out of it.
//!
//! - [`project`]: the folder layout, manifest, identity pin and open handles;
//! - [`repo`]: the Git repository (opened safely, change detection, commits);
//! - [`watch`]: picking up changes made by any means and sweeping them;
//! - [`browse`]: reading, showing and uploading files for the web UI;
//! - [`archive`]: export to a zip and import back.

pub mod archive;
pub mod browse;
pub mod project;
pub mod repo;
pub mod watch;
