//! Why a notebook could not be read for a cell-by-cell merge.

/// Why a notebook could not be merged cell by cell. Every case is the
/// notebook's (the sender's) fault, never the node's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotebookError {
    #[error("the notebook is {len} bytes, more than the {max} merged cell by cell")]
    TooLarge { len: usize, max: usize },
    #[error("the notebook has {cells} cells, more than the {max} merged cell by cell")]
    TooManyCells { cells: usize, max: usize },
    #[error("the notebook is not valid JSON: {why}")]
    Json { why: String },
    #[error("the notebook is nbformat {0}; only nbformat 4 is merged cell by cell")]
    Version(u64),
    #[error("the notebook is not an nbformat 4 notebook: {0}")]
    Shape(String),
}
