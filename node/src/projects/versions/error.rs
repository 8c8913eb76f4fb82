//! What can go wrong naming, reading or bringing back a version.

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The text names no entry, commit or date this project knows.
    #[error(
        "{given:?} names no version of {project}: give an activity entry id, a commit (at least 4 hex digits) or a date like 2026-12-02 or 2026-12-02T06:14 (UTC); `tandem activity {project}` lists entries with their ids"
    )]
    Unknown { project: String, given: String },
    /// A commit prefix that several commits share.
    #[error("{given:?} is the start of more than one commit; give more of it")]
    Ambiguous { given: String },
    /// A date before the first version.
    #[error("{given} is before {project} existed (its first version is of {first})")]
    BeforeProject {
        project: String,
        given: String,
        first: String,
    },
    /// An entry that recorded no version of the files (a note, a grant).
    #[error("activity entry {entry} recorded no version of the files (it is a {kind} entry)")]
    EntryWithoutVersion { entry: String, kind: String },
    /// A commit this copy has but that is not in the project's history
    /// (a peer's branch not merged), or one it lacks.
    #[error(
        "commit {commit} is not in the history of this copy of {project}; sync first, or settle a pending conflict"
    )]
    NotInHistory { project: String, commit: String },
    #[error("{project} has no versions yet")]
    Empty { project: String },
    /// A file the version does not have.
    #[error("{path} is not in the version {short}")]
    NoSuchFile { path: String, short: String },
    /// The restore would change files a running container writes.
    #[error(
        "JupyterLab is running on {project}; stop it first (`tandem stop {project}` or the Stop button), so nothing it writes is lost, then restore"
    )]
    ContainerRunning { project: String },
    /// A sync conflict waits to be settled.
    #[error(
        "{project} has a sync conflict waiting; settle it on the Sync page (or `tandem sync {project} --resolve …`) before restoring"
    )]
    ConflictPending { project: String },
    /// Files changed while the restore checked the working tree out.
    #[error(
        "files of {project} changed while the restore ran ({message}); nothing was restored, try again"
    )]
    ChangedMeanwhile { project: String, message: String },
    /// The repository could not be read or written.
    #[error("{doing}: {source}")]
    Git {
        doing: String,
        #[source]
        source: git2::Error,
    },
}

impl VersionError {
    pub fn git(doing: impl Into<String>) -> impl FnOnce(git2::Error) -> Self {
        let doing = doing.into();
        move |source| VersionError::Git { doing, source }
    }

    /// A version or file that is not there (the user named it).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Unknown { .. }
                | Self::Ambiguous { .. }
                | Self::BeforeProject { .. }
                | Self::EntryWithoutVersion { .. }
                | Self::Empty { .. }
                | Self::NoSuchFile { .. }
        )
    }

    /// A request that clashes with the project's state now (a running
    /// container, a pending conflict, files changing meanwhile).
    pub fn is_clash(&self) -> bool {
        matches!(
            self,
            Self::NotInHistory { .. }
                | Self::ContainerRunning { .. }
                | Self::ConflictPending { .. }
                | Self::ChangedMeanwhile { .. }
        )
    }
}
