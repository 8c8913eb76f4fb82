//! Environment drift: packages installed, removed or changed in a running
//! container (`%pip install` in a cell, `pip install` in JupyterLab's
//! terminal) that the project's environment does not have, caught while
//! it runs so the next launch, or a collaborator's, is not silently
//! different.
//!
//! - [`listing`]: one bounded `docker exec` that lists the container's
//!   packages, or says nothing changed;
//! - [`store`]: the drift seen, ignored, and each image's own packages,
//!   kept in the node's home;
//! - [`watch`]: when a followed container is checked, and the entries a
//!   check adds to the feed;
//! - [`report`]: the report and the user's **Pin it** / **Ignore**.
//!
//! What counts as drift is decided in `tandem_protocol::drift`.

pub mod listing;
pub mod report;
pub mod store;
pub mod watch;
