//! Large files as content-addressed blobs: the store that holds them, the
//! endpoint that moves them between peers, and each project's bookkeeping.

pub mod endpoint;
pub mod fetch;
pub mod history;
pub mod obtained;
pub mod store;
pub mod track;
pub mod transfers;

pub use endpoint::{BlobEndpoint, Gate};
pub use store::{BlobStore, BlobStoreError};
pub use track::Tracker;
