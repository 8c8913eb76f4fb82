//! Any version of a project, exactly: looked at, compared, brought back
//! as a new commit, or opened read-only in its own environment. A version
//! is a commit of the project's own history; everything here reads Git
//! objects, never the working tree, so what is shown is what was
//! recorded.
//!
//! - [`pick`]: naming a version (entry, commit, date) and finding it;
//! - [`tree`]: a version's files, README, environment and links;
//! - [`show`]: a version for the API and the web UI, and one file of it;
//! - [`diff`]: two versions compared;
//! - [`history`]: when one file last changed;
//! - [`restore`]: a version made current again, as a new commit;
//! - [`checkout`]: a read-only copy of a version, for rerunning it.

pub mod checkout;
pub mod diff;
pub mod error;
pub mod history;
pub mod pick;
pub mod restore;
pub mod show;
pub mod tree;

pub use error::VersionError;
