//! Environment drift: what a running container has installed, against
//! what its image came with and what the project's environment pins.
//!
//! A `pip install` in a cell or a terminal changes the running container
//! but not `.tandem/env`, so the next launch (or a collaborator's) silently
//! lacks it. The node lists the container's packages; this module reads
//! that listing (which code in the container wrote, so it is bounded and
//! every name and version is checked) and decides what drifted. It does no
//! I/O, so the node, the tests and the fuzz target all drive the same code.
//!
//! The rule, per package: what is expected is the spec's pin when there is
//! one, else what the image had when the container started (so packages
//! the base or the build installed are never drift). A container that
//! simply predates a pin (it still has what its image had) has not
//! drifted: the next launch gets the pin.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::env::{EnvSpec, Manager, Package, PackageName, validate_version};

/// Bytes of listing read from a container; the rest is not looked at.
pub const MAX_LISTING_BYTES: usize = 4 << 20;
/// Packages kept from one listing (a large data-science image has ~1,500
/// Debian and ~400 Python packages).
pub const MAX_PACKAGES: usize = 20_000;

/// One package as `(manager, name)`: how drift is keyed.
pub type PackageKey = (Manager, PackageName);

/// The packages installed in a container (or an image), by manager and
/// normalised name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Package>", into = "Vec<Package>")]
pub struct Installed {
    packages: BTreeMap<PackageKey, String>,
}

impl Installed {
    pub fn get(&self, manager: Manager, name: &PackageName) -> Option<&str> {
        self.packages
            .get(&(manager, name.clone()))
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Adds a package unless one of that name is there already (the first
    /// on Python's path is the one imported).
    pub fn insert(&mut self, package: Package) {
        self.packages
            .entry((package.manager, package.name))
            .or_insert(package.version);
    }
}

impl From<Vec<Package>> for Installed {
    fn from(list: Vec<Package>) -> Self {
        let mut installed = Installed::default();
        for package in list {
            installed.insert(package);
        }
        installed
    }
}

impl From<Installed> for Vec<Package> {
    fn from(installed: Installed) -> Self {
        installed
            .packages
            .into_iter()
            .map(|((manager, name), version)| Package {
                manager,
                name,
                version,
            })
            .collect()
    }
}

/// A container's listing, read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub installed: Installed,
    /// The managers whose listing ran to its end (an `end<TAB>manager`
    /// line). Only those are judged: a listing that failed half-way must
    /// not read as every package removed.
    pub complete: BTreeSet<Manager>,
    /// Lines that named no valid package or version (skipped, counted).
    #[serde(default)]
    pub unreadable: usize,
    /// Whether the listing was cut at [`MAX_LISTING_BYTES`] or
    /// [`MAX_PACKAGES`]: nothing is judged then, since what is missing
    /// from a cut listing is not missing from the container.
    #[serde(default)]
    pub truncated: bool,
}

impl Listing {
    /// The managers this listing can be judged on.
    fn judged(&self) -> BTreeSet<Manager> {
        if self.truncated {
            BTreeSet::new()
        } else {
            self.complete.clone()
        }
    }
}

/// The managers whose drift [`find_drift`] judges: those listed whole on
/// both sides. Drift of the others is unknown, not absent.
pub fn judged_managers(baseline: &Listing, current: &Listing) -> BTreeSet<Manager> {
    baseline
        .judged()
        .intersection(&current.judged())
        .copied()
        .collect()
}

/// Where the reader of a listing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadTo {
    /// The container's output ended by itself.
    End,
    /// The reader stopped at its bound; more was coming.
    Bound,
}

/// Reads the lines the node's listing script prints:
/// `pip<TAB>name<TAB>version`, `apt<TAB>name<TAB>version<TAB>status`
/// (dpkg's abbreviated status; only installed packages count) and
/// `end<TAB>manager` once a manager's list is whole. Anything else is
/// counted as unreadable, never trusted.
///
/// `read_to` says where the reader stopped: a listing the reader cut at
/// its bound is cut whatever its length here (the bytes kept may be
/// exactly [`MAX_LISTING_BYTES`] once a first line is split off).
pub fn parse_listing(bytes: &[u8], read_to: ReadTo) -> Listing {
    let mut listing = Listing::default();
    let bytes = if bytes.len() > MAX_LISTING_BYTES {
        listing.truncated = true;
        &bytes[..MAX_LISTING_BYTES]
    } else {
        listing.truncated = read_to == ReadTo::Bound;
        bytes
    };
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines().peekable();
    // A cut listing's last line may be half a line.
    let cut_last = listing.truncated;
    while let Some(line) = lines.next() {
        if cut_last && lines.peek().is_none() {
            break;
        }
        if line.is_empty() {
            continue;
        }
        if let Some(manager) = line.strip_prefix("end\t") {
            match manager.parse() {
                Ok(manager) => {
                    listing.complete.insert(manager);
                }
                Err(_) => listing.unreadable += 1,
            }
            continue;
        }
        if listing.installed.len() >= MAX_PACKAGES {
            listing.truncated = true;
            break;
        }
        match parse_line(line) {
            Some(Some(package)) => listing.installed.insert(package),
            Some(None) => {}
            None => listing.unreadable += 1,
        }
    }
    listing
}

/// `None`: unreadable; `Some(None)`: a package that is not installed
/// (dpkg remembers removed ones).
fn parse_line(line: &str) -> Option<Option<Package>> {
    let mut fields = line.split('\t');
    let manager: Manager = fields.next()?.parse().ok()?;
    let name = fields.next()?;
    let version = fields.next()?;
    if manager == Manager::Apt {
        // `ii `, `hi `: wanted (or held) and installed.
        let status = fields.next()?;
        if status.as_bytes().get(1) != Some(&b'i') {
            return Some(None);
        }
    }
    if fields.next().is_some() {
        return None;
    }
    let name = PackageName::parse(manager, name).ok()?;
    let version = validate_version(manager, version).ok()?;
    Some(Some(Package {
        manager,
        name,
        version,
    }))
}

/// How a package differs from what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    /// In the container, not in the image nor the spec.
    Installed,
    /// In the image or the spec, gone from the container.
    Removed,
    /// Another version than expected.
    Changed,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Installed => "installed",
            DriftKind::Removed => "removed",
            DriftKind::Changed => "changed",
        }
    }
}

/// One package that drifted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Drift {
    pub manager: Manager,
    pub name: PackageName,
    /// What the spec pins, or else what the image had.
    pub expected: Option<String>,
    /// What the running container has.
    pub found: Option<String>,
    /// Whether `expected` is the spec's pin.
    pub pinned: bool,
}

impl Drift {
    pub fn key(&self) -> PackageKey {
        (self.manager, self.name.clone())
    }

    pub fn kind(&self) -> DriftKind {
        match (&self.expected, &self.found) {
            (None, _) => DriftKind::Installed,
            (Some(_), None) => DriftKind::Removed,
            (Some(_), Some(_)) => DriftKind::Changed,
        }
    }

    /// What pinning it writes: the exact version the container has. A
    /// package removed from the container has nothing to pin (pinning it
    /// means taking its pin out, see [`Drift::unpin`]).
    pub fn pin(&self) -> Option<Package> {
        let found = self.found.as_ref()?;
        Some(Package {
            manager: self.manager,
            name: self.name.clone(),
            version: found.clone(),
        })
    }

    /// Whether making the spec match the container means removing a pin.
    pub fn unpin(&self) -> bool {
        self.found.is_none() && self.pinned
    }

    /// The name as a user reads it: pip packages bare, Debian ones marked.
    fn label(&self) -> String {
        match self.manager {
            Manager::Pip => self.name.to_string(),
            Manager::Apt => format!("{} (apt)", self.name),
        }
    }
}

impl fmt::Display for Drift {
    /// "requests 2.32.3 installed in the running container, not in the
    /// project's environment", and the like for the other kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.label();
        let source = if self.pinned {
            "pinned in the project's environment"
        } else {
            "in the environment's image"
        };
        match (&self.expected, &self.found) {
            (None, Some(found)) => write!(
                f,
                "{label} {found} installed in the running container, not in the project's environment"
            ),
            (Some(expected), None) => {
                write!(
                    f,
                    "{label} {expected} {source}, removed from the running container"
                )
            }
            (Some(expected), Some(found)) => write!(
                f,
                "{label} {found} in the running container, {expected} {source}"
            ),
            (None, None) => write!(f, "{label}: no difference"),
        }
    }
}

/// What drifted in `current` (the running container) against `baseline`
/// (its image when it started) and `spec` (the project's environment now),
/// sorted by manager and name. Only managers whose listing is whole on
/// both sides are judged (see [`Listing::complete`]).
pub fn find_drift(baseline: &Listing, current: &Listing, spec: &EnvSpec) -> Vec<Drift> {
    let judged = judged_managers(baseline, current);
    let pins: BTreeMap<PackageKey, &str> = spec
        .packages
        .iter()
        .map(|p| ((p.manager, p.name.clone()), p.version.as_str()))
        .collect();
    let (baseline, current) = (&baseline.installed.packages, &current.installed.packages);
    let keys: BTreeSet<&PackageKey> = baseline
        .keys()
        .chain(current.keys())
        .filter(|(manager, _)| judged.contains(manager))
        .collect();
    let mut drift = Vec::new();
    for key in keys {
        let had = baseline.get(key).map(String::as_str);
        let has = current.get(key).map(String::as_str);
        let pin = pins.get(key).copied();
        let expected = pin.or(had);
        if has == expected {
            continue;
        }
        // Still as its image made it: the container predates the pin.
        if pin.is_some() && has == had {
            continue;
        }
        drift.push(Drift {
            manager: key.0,
            name: key.1.clone(),
            expected: expected.map(str::to_owned),
            found: has.map(str::to_owned),
            pinned: pin.is_some(),
        });
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::BaseRef;

    /// A whole listing of `lines` (both managers ran to their end).
    fn installed(lines: &str) -> Listing {
        let listing = parse_listing(
            format!("{lines}end\tpip\nend\tapt\n").as_bytes(),
            ReadTo::End,
        );
        assert_eq!(listing.unreadable, 0, "{lines}");
        listing
    }

    fn spec(pins: &[(Manager, &str, &str)]) -> EnvSpec {
        let base = BaseRef::parse("id = \"python3-minimal\"\nrevision = 1\n").expect("base");
        let packages = pins
            .iter()
            .map(|(m, n, v)| Package::new(*m, n, v).expect("package"))
            .collect();
        EnvSpec::new(base, packages, vec![])
    }

    const IMAGE: &str =
        "pip\tjupyterlab\t4.6.6\npip\tipykernel\t7.4.0\napt\tpython3\t3.11.2-1+b1\tii \n";

    #[test]
    fn what_the_image_came_with_is_never_drift() {
        let image = installed(IMAGE);
        assert!(find_drift(&image, &image, &spec(&[])).is_empty());
    }

    #[test]
    fn an_installed_package_is_drift_with_the_words_users_read() {
        let image = installed(IMAGE);
        let now = installed(&format!("{IMAGE}pip\tSix\t1.16.0\n"));
        let drift = find_drift(&image, &now, &spec(&[]));
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].kind(), DriftKind::Installed);
        assert_eq!(
            drift[0].to_string(),
            "six 1.16.0 installed in the running container, not in the project's environment"
        );
        assert_eq!(drift[0].pin().expect("pin").requirement(), "six==1.16.0");
    }

    #[test]
    fn a_pinned_package_removed_or_changed_in_the_container_is_drift() {
        let pins = spec(&[(Manager::Pip, "six", "1.16.0")]);
        let image = installed(&format!("{IMAGE}pip\tsix\t1.16.0\n"));
        let removed = find_drift(&image, &installed(IMAGE), &pins);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].kind(), DriftKind::Removed);
        assert!(removed[0].unpin());
        assert!(removed[0].pin().is_none());
        assert!(
            removed[0]
                .to_string()
                .contains("pinned in the project's environment")
        );
        let changed = find_drift(
            &image,
            &installed(&format!("{IMAGE}pip\tsix\t1.17.0\n")),
            &pins,
        );
        assert_eq!(changed[0].kind(), DriftKind::Changed);
        assert_eq!(changed[0].expected.as_deref(), Some("1.16.0"));
        assert_eq!(changed[0].found.as_deref(), Some("1.17.0"));
    }

    #[test]
    fn a_container_that_predates_a_pin_has_not_drifted_and_a_pinned_install_settles_it() {
        let image = installed(IMAGE);
        // Pinned after launch, not installed here: the next launch has it.
        assert!(find_drift(&image, &image, &spec(&[(Manager::Pip, "six", "1.16.0")])).is_empty());
        // Installed in the container, then pinned with the same version.
        let now = installed(&format!("{IMAGE}pip\tsix\t1.16.0\n"));
        assert!(find_drift(&image, &now, &spec(&[(Manager::Pip, "six", "1.16.0")])).is_empty());
        // Pinned at another version than the container holds: still drift.
        let other = find_drift(&image, &now, &spec(&[(Manager::Pip, "six", "1.15.0")]));
        assert_eq!(other[0].kind(), DriftKind::Changed);
    }

    #[test]
    fn removed_debian_packages_and_their_status_are_read() {
        let image = installed(IMAGE);
        let now = installed(
            "pip\tjupyterlab\t4.6.6\npip\tipykernel\t7.4.0\napt\tpython3\t3.11.2-1+b1\tii \napt\tcurl\t7.88.1-10\tii \napt\tgone\t1.0\trc \n",
        );
        let drift = find_drift(&image, &now, &spec(&[]));
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].manager, Manager::Apt);
        assert!(
            drift[0]
                .to_string()
                .starts_with("curl (apt) 7.88.1-10 installed")
        );
    }

    #[test]
    fn a_hostile_listing_is_read_only_as_far_as_it_is_valid() {
        let hostile = "pip\t../../etc\t1.0\n\
                       pip\tok\t1.0; rm -rf /\n\
                       pip\tsix\t1.16.0\textra\n\
                       rm -rf /\n\
                       apt\tcurl\t7.88\n\
                       pip\tgood\t2.0\n\
                       \u{0}\u{ff}garbage\n";
        let listing = parse_listing(
            format!("{hostile}end\tnpm\nend\tpip\n").as_bytes(),
            ReadTo::End,
        );
        assert_eq!(listing.installed.len(), 1);
        assert_eq!(listing.unreadable, 7);
        assert_eq!(listing.complete, BTreeSet::from([Manager::Pip]));
        assert!(!listing.truncated);
        let mut flood = String::new();
        for i in 0..(MAX_PACKAGES + 10) {
            flood.push_str(&format!("pip\tp{i}\t1.0\n"));
        }
        let listing = parse_listing(flood.as_bytes(), ReadTo::End);
        assert!(listing.truncated);
        assert_eq!(listing.installed.len(), MAX_PACKAGES);
        let huge = vec![b'x'; MAX_LISTING_BYTES + 1];
        let listing = parse_listing(&huge, ReadTo::End);
        assert!(listing.truncated);
        assert!(listing.installed.is_empty());
        // Cut by the reader at a line's end, with end lines still to
        // come: cut, not "pip and apt half-listed".
        let line = "pip\tflood\t1.0\n";
        let exact = line.repeat(MAX_LISTING_BYTES / line.len());
        assert!(!parse_listing(exact.as_bytes(), ReadTo::End).truncated);
        let cut = parse_listing(exact.as_bytes(), ReadTo::Bound);
        assert!(cut.truncated);
        assert!(judged_managers(&installed(IMAGE), &cut).is_empty());
    }

    #[test]
    fn the_installed_set_survives_a_round_trip_through_json() {
        let image = installed(IMAGE);
        let json = serde_json::to_string(&image).expect("json");
        let back: Listing = serde_json::from_str(&json).expect("back");
        assert_eq!(back, image);
    }

    #[test]
    fn a_listing_that_stopped_half_way_judges_nothing_of_that_manager() {
        let image = installed(IMAGE);
        // Python failed (or was killed) before its end line: its packages
        // are not all "removed", they are unknown.
        let broken = parse_listing(
            b"apt\tpython3\t3.11.2-1+b1\tii \napt\tcurl\t1.0\tii \nend\tapt\n",
            ReadTo::End,
        );
        let drift = find_drift(&image, &broken, &spec(&[]));
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].manager, Manager::Apt);
        let mut cut = installed(IMAGE);
        cut.truncated = true;
        assert!(find_drift(&image, &cut, &spec(&[])).is_empty());
    }
}
