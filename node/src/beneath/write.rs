//! Writing beneath the root: files replaced atomically through their
//! folder's descriptor, new files, staged files moved in, trees the user
//! named copied in from outside, removals.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::error::{BeneathError, io_err};
use super::root::Beneath;

/// How a new file is written by [`Beneath::write_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Permission bits set on the file (else the usual 0666 less umask).
    pub mode: Option<u32>,
    /// Flush the file and its folder, for state that must survive a crash.
    pub sync: bool,
}

/// A fresh name for a temporary file beside its target; dotted, so it is
/// not mistaken for the user's file while it exists.
fn temp_name() -> String {
    format!(
        ".tandem-tmp-{}",
        hex::encode(crate::home::random_bytes::<8>())
    )
}

impl Beneath {
    /// Creates or replaces `rel` atomically: a temporary file in the same
    /// folder (opened through the folder's descriptor), filled by `fill`,
    /// then renamed over the target. Readers see the old file or the new.
    pub fn write_with(
        &self,
        rel: &str,
        options: WriteOptions,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = self.create_parts(rel, &folders)?;
        let temp = temp_name();
        let fd = rustix::fs::openat(
            &*dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(options.mode.unwrap_or(0o666)),
        )
        .map_err(|e| io_err(rel, e))?;
        let mut file = File::from(fd);
        let filled = (|| {
            if let Some(mode) = options.mode {
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?;
            }
            fill(&mut file)?;
            if options.sync {
                file.sync_all()?;
            }
            Ok::<(), io::Error>(())
        })();
        drop(file);
        let renamed = filled.and_then(|()| {
            rustix::fs::renameat(&*dir, temp.as_str(), &*dir, name).map_err(io::Error::from)
        });
        if let Err(source) = renamed {
            let _ = rustix::fs::unlinkat(&*dir, temp.as_str(), AtFlags::empty());
            return Err(BeneathError::Io {
                path: rel.into(),
                source,
            });
        }
        if options.sync {
            let _ = rustix::fs::fsync(&*dir);
        }
        Ok(())
    }

    /// Creates a new file at `rel` (folders on the way too) and opens it
    /// for writing; an existing file or link there is an error, never
    /// opened or followed. For filling a staging folder of the node's own.
    pub fn create_new(&self, rel: &str) -> Result<File, BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = self.create_parts(rel, &folders)?;
        let fd = rustix::fs::openat(
            &*dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(|e| io_err(rel, e))?;
        Ok(File::from(fd))
    }

    /// [`Beneath::write_with`] for bytes in memory.
    pub fn write(
        &self,
        rel: &str,
        bytes: &[u8],
        options: WriteOptions,
    ) -> Result<(), BeneathError> {
        self.write_with(rel, options, |file| file.write_all(bytes))
    }

    /// Moves a finished file from outside the project (a staging file of
    /// the node's own) to `rel`, creating folders on the way; across
    /// filesystems it is copied beside the target and renamed.
    pub fn rename_into(&self, from: &Path, rel: &str) -> Result<(), BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = self.create_parts(rel, &folders)?;
        match rustix::fs::renameat(rustix::fs::CWD, from, &*dir, name) {
            Ok(()) => Ok(()),
            Err(Errno::XDEV) => {
                let mut source = File::open(from).map_err(|source| BeneathError::Io {
                    path: rel.into(),
                    source,
                })?;
                self.write_with(rel, WriteOptions::default(), |file| {
                    io::copy(&mut source, file).map(|_| ())
                })?;
                let _ = std::fs::remove_file(from);
                Ok(())
            }
            Err(e) => Err(io_err(rel, e)),
        }
    }

    /// Removes a file (or a link, which is itself removed, never what it
    /// points to); `false` when there was nothing to remove.
    pub fn remove_file(&self, rel: &str) -> Result<bool, BeneathError> {
        let (folders, name) = self.split(rel)?;
        let dir = match self.folder(rel, &folders) {
            Ok(Some(dir)) => dir,
            Ok(None) | Err(BeneathError::NotAFolder { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(&*dir, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err(rel, e)),
        }
    }

    /// Flushes a folder so renames into it are durable (best effort).
    pub fn sync_dir(&self, rel: &str) {
        if let Ok(Some(dir)) = self.open_dir(rel) {
            let _ = rustix::fs::fsync(&*dir);
        }
    }

    /// Copies a file or a folder tree (chosen by the user, outside the
    /// project) to `dest` beneath a project's folder. A source that is a link
    /// is refused, links inside a source folder are skipped (a copy never pulls
    /// in files from outside what the user named); on the project's side every
    /// folder is opened beneath the root without following links (a link made
    /// in the working tree, by the container say, is refused, not written
    /// through), and each file is written to a temporary name and renamed.
    pub fn copy_tree_in(&self, src: &Path, dest: &str) -> io::Result<u64> {
        let meta = fs::symlink_metadata(src)?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::other(format!(
                "{} is a symbolic link; copy the file it points to instead",
                src.display()
            )));
        }
        let copy_one = |from: &Path, to: &str| -> io::Result<()> {
            let mut source = File::open(from)?;
            self.write_with(to, WriteOptions::default(), |file| {
                io::copy(&mut source, file).map(|_| ())
            })
            .map_err(io::Error::other)
        };
        if meta.is_file() {
            copy_one(src, dest)?;
            return Ok(1);
        }
        let mut copied = 0;
        for item in walkdir::WalkDir::new(src).follow_links(false) {
            let item = item.map_err(io::Error::other)?;
            let relative = item.path().strip_prefix(src).map_err(io::Error::other)?;
            let relative = relative.to_str().ok_or_else(|| {
                io::Error::other(format!("{} is not UTF-8", item.path().display()))
            })?;
            let target = if relative.is_empty() {
                dest.to_owned()
            } else {
                format!("{dest}/{relative}")
            };
            let kind = item.file_type();
            if kind.is_dir() {
                self.create_dir_all(&target).map_err(io::Error::other)?;
            } else if kind.is_file() {
                copy_one(item.path(), &target)?;
                copied += 1;
            }
            // Links and special files inside a folder are skipped on purpose.
        }
        Ok(copied)
    }
}
