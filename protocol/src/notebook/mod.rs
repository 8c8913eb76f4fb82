//! Notebooks merged cell by cell, so two people editing different cells
//! of one notebook never meet a conflict and a real one is shown for the
//! cell it is in, not as a JSON diff.
//!
//! The rules (see [`merge::merge`]):
//! - cells are matched by their nbformat 4.5 id, or by content for
//!   notebooks without ids ([`align`]);
//! - cells added, deleted, moved or edited on one side only are merged;
//!   a source edited on both sides is merged line by line where the edits
//!   do not overlap ([`lines`]);
//! - outputs and execution counts never conflict: they follow the side
//!   whose source is kept, and are cleared when the kept source ran on
//!   neither side as it is (both edited it) or both sides ran it
//!   differently; every such decision is noted;
//! - metadata merges key by key;
//! - a real conflict (the same lines changed differently, a cell deleted
//!   on one side and edited on the other, both sides moving cells
//!   differently) is kept apart with both versions, to be settled per
//!   conflict ([`Choice`]).
//!
//! Everything here is pure and bounded: notebooks come from members and
//! from code in containers, so a notebook that is too large, too deep, or
//! not nbformat 4 is an error the caller answers with the whole-file
//! choice.

mod align;
mod diff;
mod error;
mod lines;
mod merge;
mod model;
#[cfg(test)]
mod properties;

pub use diff::{CellChange, CellDelta, diff, summarise_outputs};
pub use error::NotebookError;
pub use lines::merge_text;
pub use merge::{Choice, Conflict, ConflictKind, Merged, merge};
pub use model::{MAX_CELLS, MAX_NOTEBOOK_LEN, Notebook, id_of, source_of, valid_id};

/// Per notebook path, the choice for each of its cell conflicts (by
/// [`Conflict::id`]).
pub type CellChoices =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Choice>>;

/// Merges three notebook files; `Err` says why the whole-file choice is
/// needed instead.
pub fn merge_files(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Merged, NotebookError> {
    let base = if base.is_empty() {
        Notebook {
            top: Default::default(),
            cells: vec![],
        }
    } else {
        Notebook::parse(base)?
    };
    Ok(merge(
        &base,
        &Notebook::parse(ours)?,
        &Notebook::parse(theirs)?,
    ))
}
