//! A project's computing environment as tracked files, and the Dockerfile
//! derived from them.
//!
//! The environment lives in `.tandem/env/`, one small file per item, so two
//! people adding different packages never touch the same file and Git merges
//! them cleanly:
//!
//! ```text
//! .tandem/env/base.toml                   base id and revision
//! .tandem/env/packages/<mgr>_<name>.toml  manager, name, pinned version
//! .tandem/env/snippets/<name>.toml        custom Dockerfile lines
//! .tandem/env/limits.toml                 container memory and pids limits
//! ```
//!
//! Everything here is pure: the node reads the files, this module parses and
//! validates them and renders the Dockerfile, whose hash names the image.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where the environment's files live inside a project.
pub const ENV_DIR: &str = ".tandem/env";
pub const BASE_FILE: &str = ".tandem/env/base.toml";
pub const PACKAGES_DIR: &str = ".tandem/env/packages";
pub const SNIPPETS_DIR: &str = ".tandem/env/snippets";
pub const LIMITS_FILE: &str = ".tandem/env/limits.toml";

/// Least memory a project may give its container: JupyterLab and a kernel
/// need about this much to start.
pub const MIN_MEMORY: u64 = 256 * MIB;
/// Fewest processes (threads count too) a project may give its container.
pub const MIN_PIDS: u32 = 64;
/// Most processes a project may ask for: past this the limit protects
/// nothing (Linux's own default maximum is 4 194 304).
pub const MAX_PIDS: u32 = 1 << 20;
/// Processes a container may run when the project sets no limit: room for
/// JupyterLab, several kernels and their BLAS threads, while a fork bomb
/// stops here instead of taking the host down.
pub const DEFAULT_PIDS: u32 = 4096;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// Longest snippet accepted: custom lines are for a few commands, not a
/// second Dockerfile.
pub const MAX_SNIPPET_LEN: usize = 16 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("unknown package manager {0:?}: use pip or apt")]
    UnknownManager(String),
    #[error("{name:?} is not a valid {manager} package name")]
    BadName { manager: Manager, name: String },
    #[error("{version:?} is not a valid {manager} version")]
    BadVersion { manager: Manager, version: String },
    #[error("{0:?} is not a valid base id (lower-case letters, digits and '-')")]
    BadBaseId(String),
    #[error("{0:?} is not a valid snippet name (letters, digits, '-' and '_', up to 64)")]
    BadSnippetName(String),
    #[error("snippet {name}: {reason}")]
    BadSnippet { name: String, reason: String },
    #[error("{path}: {message}")]
    Malformed { path: String, message: String },
    #[error("requirements line {line}: {message}")]
    Requirement { line: usize, message: String },
    #[error("container limit {what} {given:?}: {reason}")]
    BadLimit {
        what: &'static str,
        given: String,
        reason: String,
    },
}

/// The package managers an environment can pin packages with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// Debian packages, installed first (system libraries, R packages).
    Apt,
    /// Python packages, installed into the base's virtual environment.
    Pip,
}

impl Manager {
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Pip => "pip",
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Manager {
    type Err = EnvError;

    fn from_str(text: &str) -> Result<Self, EnvError> {
        match text {
            "apt" => Ok(Manager::Apt),
            "pip" => Ok(Manager::Pip),
            other => Err(EnvError::UnknownManager(other.to_owned())),
        }
    }
}

/// A package name valid for its manager, normalised (pip names compare
/// case-insensitively with runs of `-_.` equal), so that `Scikit_Learn` and
/// `scikit-learn` are one package and one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName(String);

impl PackageName {
    pub fn parse(manager: Manager, text: &str) -> Result<Self, EnvError> {
        let bad = || EnvError::BadName {
            manager,
            name: text.to_owned(),
        };
        if text.is_empty() || text.len() > 100 {
            return Err(bad());
        }
        match manager {
            Manager::Pip => {
                // PEP 508: letters, digits, '.', '_', '-', alphanumeric at both ends.
                let bytes = text.as_bytes();
                let ends_ok = bytes[0].is_ascii_alphanumeric()
                    && bytes[bytes.len() - 1].is_ascii_alphanumeric();
                if !ends_ok
                    || !text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                {
                    return Err(bad());
                }
                let mut normal = String::with_capacity(text.len());
                let mut in_separator = false;
                for c in text.chars() {
                    if "._-".contains(c) {
                        if !in_separator {
                            normal.push('-');
                        }
                        in_separator = true;
                    } else {
                        normal.push(c.to_ascii_lowercase());
                        in_separator = false;
                    }
                }
                Ok(PackageName(normal))
            }
            Manager::Apt => {
                // Debian policy: lower-case letters, digits, '+', '-', '.';
                // at least two characters, starting alphanumeric.
                let first_ok = text
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
                if text.len() < 2
                    || !first_ok
                    || !text.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b)
                    })
                {
                    return Err(bad());
                }
                Ok(PackageName(text.to_owned()))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PackageName {
    type Error = EnvError;

    /// Deserialised names are re-checked against the strictest common rule;
    /// the file's manager field is checked again by [`Package::parse`].
    fn try_from(text: String) -> Result<Self, EnvError> {
        PackageName::parse(Manager::Pip, &text)
            .or_else(|_| PackageName::parse(Manager::Apt, &text))
            .map(|_| PackageName(text))
    }
}

impl From<PackageName> for String {
    fn from(name: PackageName) -> String {
        name.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A version string safe to put in a Dockerfile: it starts with a digit
/// and holds only the characters versions use, so no shell syntax can ride
/// along.
pub fn validate_version(manager: Manager, text: &str) -> Result<String, EnvError> {
    let allowed: &[u8] = match manager {
        Manager::Pip => b".!+_-",
        Manager::Apt => b".+:~-",
    };
    let ok = !text.is_empty()
        && text.len() <= 100
        && text.as_bytes()[0].is_ascii_digit()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || allowed.contains(&b));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(EnvError::BadVersion {
            manager,
            version: text.to_owned(),
        })
    }
}

/// One pinned package: the contents of `packages/<mgr>_<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub manager: Manager,
    pub name: PackageName,
    pub version: String,
}

impl Package {
    pub fn new(manager: Manager, name: &str, version: &str) -> Result<Self, EnvError> {
        Ok(Package {
            manager,
            name: PackageName::parse(manager, name)?,
            version: validate_version(manager, version)?,
        })
    }

    /// The project-relative path of this package's file.
    pub fn path(&self) -> String {
        package_path(self.manager, &self.name)
    }

    pub fn parse(text: &str, path: &str) -> Result<Self, EnvError> {
        let raw: Package = toml::from_str(text).map_err(|e| EnvError::Malformed {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        // Re-validate against the file's own manager.
        let package = Package::new(raw.manager, raw.name.as_str(), &raw.version)?;
        if package.path() != path {
            return Err(EnvError::Malformed {
                path: path.to_owned(),
                message: format!("describes {}, which belongs in {}", package, package.path()),
            });
        }
        Ok(package)
    }

    pub fn to_toml(&self) -> String {
        format!(
            "manager = \"{}\"\nname = \"{}\"\nversion = \"{}\"\n",
            self.manager, self.name, self.version
        )
    }

    /// How the package manager spells the pin.
    pub fn requirement(&self) -> String {
        match self.manager {
            Manager::Pip => format!("{}=={}", self.name, self.version),
            Manager::Apt => format!("{}={}", self.name, self.version),
        }
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.manager, self.name, self.version)
    }
}

pub fn package_path(manager: Manager, name: &PackageName) -> String {
    format!("{PACKAGES_DIR}/{manager}_{name}.toml")
}

/// A base's id: the folder name under `bases/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BaseId(String);

impl BaseId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BaseId {
    type Err = EnvError;

    fn from_str(text: &str) -> Result<Self, EnvError> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.as_bytes()[0].is_ascii_lowercase()
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(BaseId(text.to_owned()))
        } else {
            Err(EnvError::BadBaseId(text.to_owned()))
        }
    }
}

impl TryFrom<String> for BaseId {
    type Error = EnvError;
    fn try_from(text: String) -> Result<Self, EnvError> {
        text.parse()
    }
}

impl From<BaseId> for String {
    fn from(id: BaseId) -> String {
        id.0
    }
}

impl fmt::Display for BaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The project's chosen base: `.tandem/env/base.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    pub id: BaseId,
    pub revision: u32,
}

impl BaseRef {
    pub fn parse(text: &str) -> Result<Self, EnvError> {
        toml::from_str(text).map_err(|e| EnvError::Malformed {
            path: BASE_FILE.to_owned(),
            message: e.message().to_owned(),
        })
    }

    pub fn to_toml(&self) -> String {
        format!("id = \"{}\"\nrevision = {}\n", self.id, self.revision)
    }

    /// The local image tag of this base revision.
    pub fn image_tag(&self) -> String {
        base_image_tag(&self.id, self.revision)
    }
}

pub fn base_image_tag(id: &BaseId, revision: u32) -> String {
    format!("tandem-base/{id}:r{revision}")
}

/// GPU needs of a base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuNeeds {
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A package a base brings, as `base.toml` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preinstalled {
    pub manager: Manager,
    pub name: String,
    pub version: String,
}

/// A base definition: `bases/<id>/base.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseDef {
    pub id: BaseId,
    pub revision: u32,
    pub name: String,
    pub description: String,
    pub languages: Vec<String>,
    pub tools: Vec<String>,
    pub package_managers: Vec<Manager>,
    /// The image everything is built on, at the bottom of any parents.
    pub image: String,
    /// Another base this one is built on, to share its layers.
    #[serde(default)]
    pub parent: Option<BaseId>,
    /// Rough size of the built image, to help choose.
    #[serde(default)]
    pub size_mb: u64,
    #[serde(default)]
    pub packages: Vec<Preinstalled>,
    #[serde(default)]
    pub gpu: GpuNeeds,
}

impl BaseDef {
    pub fn parse(text: &str, path: &str) -> Result<Self, EnvError> {
        toml::from_str(text).map_err(|e| EnvError::Malformed {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    pub fn reference(&self) -> BaseRef {
        BaseRef {
            id: self.id.clone(),
            revision: self.revision,
        }
    }
}

/// Custom Dockerfile lines: `snippets/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    pub name: String,
    pub lines: String,
}

/// Instructions a snippet may use. `FROM` would replace the base, `COPY` and
/// `ADD` have no build context to read, and `CMD`/`ENTRYPOINT` would stop
/// JupyterLab from starting.
const SNIPPET_INSTRUCTIONS: [&str; 7] = ["RUN", "ENV", "ARG", "LABEL", "WORKDIR", "SHELL", "USER"];

impl Snippet {
    pub fn new(name: &str, lines: &str) -> Result<Self, EnvError> {
        validate_snippet_name(name)?;
        let snippet = Snippet {
            name: name.to_owned(),
            lines: lines.trim_end().to_owned() + "\n",
        };
        snippet.validate()?;
        Ok(snippet)
    }

    pub fn path(&self) -> String {
        snippet_path(&self.name)
    }

    pub fn parse(text: &str, path: &str) -> Result<Self, EnvError> {
        let raw: Snippet = toml::from_str(text).map_err(|e| EnvError::Malformed {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        let snippet = Snippet::new(&raw.name, &raw.lines)?;
        if snippet.path() != path {
            return Err(EnvError::Malformed {
                path: path.to_owned(),
                message: format!(
                    "names snippet {:?}, which belongs in {}",
                    raw.name,
                    snippet.path()
                ),
            });
        }
        Ok(snippet)
    }

    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            name: &'a str,
            lines: &'a str,
        }
        toml::to_string(&Out {
            name: &self.name,
            lines: &self.lines,
        })
        .unwrap_or_default()
    }

    fn validate(&self) -> Result<(), EnvError> {
        let bad = |reason: String| EnvError::BadSnippet {
            name: self.name.clone(),
            reason,
        };
        if self.lines.len() > MAX_SNIPPET_LEN {
            return Err(bad(format!("longer than {MAX_SNIPPET_LEN} bytes")));
        }
        if self
            .lines
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(bad("contains control characters".into()));
        }
        let mut continued = false;
        let mut instructions = 0;
        for (number, line) in self.lines.lines().enumerate() {
            let trimmed = line.trim();
            let was_continued = continued;
            continued = trimmed.ends_with('\\');
            if was_continued || trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let word = trimmed
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if !SNIPPET_INSTRUCTIONS.contains(&word.as_str()) {
                return Err(bad(format!(
                    "line {}: {word} is not allowed here; use one of {}",
                    number + 1,
                    SNIPPET_INSTRUCTIONS.join(", ")
                )));
            }
            instructions += 1;
        }
        if continued {
            return Err(bad("the last line ends with '\\'".into()));
        }
        if instructions == 0 {
            return Err(bad("holds no Dockerfile instruction".into()));
        }
        Ok(())
    }
}

pub fn validate_snippet_name(name: &str) -> Result<(), EnvError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EnvError::BadSnippetName(name.to_owned()))
    }
}

pub fn snippet_path(name: &str) -> String {
    format!("{SNIPPETS_DIR}/{name}.toml")
}

impl Snippet {
    /// Names exactly these lines under this name: what a user accepts
    /// before a snippet from someone else is built.
    pub fn hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"tandem snippet v1\0");
        hasher.update(self.name.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.lines.as_bytes());
        hasher.finalize().to_hex().to_string()
    }
}

/// A project's container limits: `.tandem/env/limits.toml`. Unset fields
/// take the node's defaults (half the engine's memory, [`DEFAULT_PIDS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory, at least [`MIN_MEMORY`].
    pub memory: Option<u64>,
    /// Processes and threads, [`MIN_PIDS`] to [`MAX_PIDS`].
    pub pids: Option<u32>,
}

impl Limits {
    pub fn parse(text: &str) -> Result<Self, EnvError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            memory: Option<String>,
            pids: Option<i64>,
        }
        let raw: Raw = toml::from_str(text).map_err(|e| EnvError::Malformed {
            path: LIMITS_FILE.to_owned(),
            message: e.message().to_owned(),
        })?;
        Ok(Limits {
            memory: raw.memory.as_deref().map(parse_memory).transpose()?,
            pids: raw
                .pids
                .map(|n| validate_pids(&n.to_string()))
                .transpose()?,
        })
    }

    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        if let Some(memory) = self.memory {
            out.push_str(&format!("memory = \"{}\"\n", format_size(memory)));
        }
        if let Some(pids) = self.pids {
            out.push_str(&format!("pids = {pids}\n"));
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none()
    }
}

/// Reads a memory size: a number (fractions allowed) and a unit, `B`,
/// `KiB`, `MiB`, `GiB`, `TiB` (or Docker's `k`, `m`, `g`, `t`, which mean
/// the same) or decimal `KB`, `MB`, `GB`, `TB`; case is ignored.
pub fn parse_memory(text: &str) -> Result<u64, EnvError> {
    let bad = |reason: &str| EnvError::BadLimit {
        what: "memory",
        given: text.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let scale: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        "t" | "tib" => TIB,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        _ => return Err(bad("use a unit such as MiB or GiB (e.g. 4GiB)")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || fraction.len() > 6 || text.len() > 32 {
        return Err(bad("write a number and a unit, e.g. 4GiB or 1.5GiB"));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| bad("write a number and a unit, e.g. 4GiB"))?;
    let fraction_value: u64 = if fraction.is_empty() {
        0
    } else {
        fraction
            .parse()
            .map_err(|_| bad("write a number and a unit, e.g. 1.5GiB"))?
    };
    let denominator = 10_u64.pow(fraction.len() as u32);
    let bytes = whole
        .checked_mul(scale)
        .and_then(|b| b.checked_add(fraction_value.checked_mul(scale)? / denominator))
        .ok_or_else(|| bad("too large"))?;
    if bytes < MIN_MEMORY {
        return Err(bad(&format!(
            "at least {} (JupyterLab needs it to start)",
            format_size(MIN_MEMORY)
        )));
    }
    // Docker takes the limit as a signed 64-bit count.
    if bytes > i64::MAX as u64 {
        return Err(bad("too large"));
    }
    Ok(bytes)
}

/// Reads a process limit.
pub fn validate_pids(text: &str) -> Result<u32, EnvError> {
    let bad = |reason: String| EnvError::BadLimit {
        what: "pids",
        given: text.to_owned(),
        reason,
    };
    let n: u32 = text
        .trim()
        .parse()
        .map_err(|_| bad("a whole number of processes".into()))?;
    if !(MIN_PIDS..=MAX_PIDS).contains(&n) {
        return Err(bad(format!("between {MIN_PIDS} and {MAX_PIDS}")));
    }
    Ok(n)
}

/// A size the way people write it: whole GiB or MiB when it is one.
pub fn format_size(bytes: u64) -> String {
    for (unit, scale) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{} {unit}", bytes / scale);
        }
    }
    if bytes >= GIB {
        return format!("{:.2} GiB", bytes as f64 / GIB as f64);
    }
    format!("{bytes} B")
}

/// A whole environment, as read from a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvSpec {
    pub base: BaseRef,
    /// Sorted by manager, then name.
    pub packages: Vec<Package>,
    /// Sorted by name: the order they are applied in.
    pub snippets: Vec<Snippet>,
}

impl EnvSpec {
    pub fn new(base: BaseRef, mut packages: Vec<Package>, mut snippets: Vec<Snippet>) -> Self {
        packages.sort_by(|a, b| (a.manager, &a.name).cmp(&(b.manager, &b.name)));
        packages.dedup_by(|a, b| a.manager == b.manager && a.name == b.name);
        snippets.sort_by(|a, b| a.name.cmp(&b.name));
        EnvSpec {
            base,
            packages,
            snippets,
        }
    }

    /// The Dockerfile for this environment on top of its base image. Apt
    /// packages, pip packages and each snippet get a layer of their own, so
    /// changing a pip package reuses the base and apt layers from cache.
    pub fn dockerfile(&self) -> String {
        let mut out = String::new();
        out.push_str("# Generated by tandem from .tandem/env; never edited, never tracked.\n");
        out.push_str(&format!("FROM {}\n", self.base.image_tag()));
        out.push_str("USER root\n");
        let apt: Vec<String> = self
            .packages
            .iter()
            .filter(|p| p.manager == Manager::Apt)
            .map(Package::requirement)
            .collect();
        if !apt.is_empty() {
            out.push_str(&format!(
                "RUN apt-get update && apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*\n",
                apt.join(" ")
            ));
        }
        let pip: Vec<String> = self
            .packages
            .iter()
            .filter(|p| p.manager == Manager::Pip)
            .map(Package::requirement)
            .collect();
        if !pip.is_empty() {
            // World-writable as the base's own venv is: the container runs
            // as the host's user, and `%pip install` there must work so
            // that drift can be seen and pinned (see `crate::drift`).
            out.push_str(&format!(
                "RUN umask 0000 && pip install {}\n",
                pip.join(" ")
            ));
        }
        for snippet in &self.snippets {
            out.push_str(&format!("# snippet: {}\n", snippet.name));
            out.push_str(&snippet.lines);
        }
        // Snippets may switch user or folder; the container's defaults win.
        out.push_str("USER root\nWORKDIR /mnt/project\n");
        out
    }

    /// Names the image: the same environment on the same base image always
    /// gets the same tag, so an unchanged environment never rebuilds.
    pub fn image_tag(&self, base_image_id: &str) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(base_image_id.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.dockerfile().as_bytes());
        let hash = hasher.finalize().to_hex();
        format!("tandem-env:{}", &hash[..20])
    }
}

/// One requirement from a `requirements.txt`: a name and maybe a pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub name: PackageName,
    pub version: Option<String>,
}

/// Reads a pip `requirements.txt`: one `name` or `name==version` per line,
/// comments and blank lines ignored. Anything richer (ranges, URLs, options,
/// markers) is refused by line, since Tandem pins exact versions.
pub fn parse_requirements(text: &str) -> Result<Vec<Requirement>, EnvError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fail = |message: String| EnvError::Requirement {
            line: line_number,
            message,
        };
        if line.starts_with('-') || line.contains("://") || line.contains(';') {
            return Err(fail(format!(
                "{line:?}: only `name` or `name==version` lines are supported"
            )));
        }
        let (name, version) = match line.split_once("==") {
            Some((name, version)) => (name.trim(), Some(version.trim())),
            None => {
                if line.contains(['<', '>', '=', '~', '!', '[', ' ']) {
                    return Err(fail(format!(
                        "{line:?}: pin an exact version with `==`, or give the name alone for the newest"
                    )));
                }
                (line, None)
            }
        };
        let name = PackageName::parse(Manager::Pip, name).map_err(|e| fail(e.to_string()))?;
        let version = version
            .map(|v| validate_version(Manager::Pip, v))
            .transpose()
            .map_err(|e| fail(e.to_string()))?;
        out.push(Requirement { name, version });
    }
    Ok(out)
}

/// Orders two version strings the way most schemes agree on: numeric runs
/// compare as numbers, other runs as text, and a pre-release tag (`rc`,
/// `a`, `b`, `dev`, `~`) sorts before the release. Used to find newer
/// versions; the package manager stays the judge of what installs.
pub fn compare_versions(manager: Manager, a: &str, b: &str) -> std::cmp::Ordering {
    // Text where the other version has ended: a pre-release (`rc1`, or
    // Debian's `~beta`) sorts before it, anything else (`post1`, Debian's
    // `+deb12u1`) after.
    let pre = |text: &str| match manager {
        Manager::Pip => text != "post",
        Manager::Apt => text.starts_with('~'),
    };
    fn parts(v: &str) -> Vec<Part> {
        let mut out = Vec::new();
        let mut chars = v.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                let mut n = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(d);
                    chars.next();
                }
                let trimmed = n.trim_start_matches('0');
                out.push(Part::Number(trimmed.len(), trimmed.to_owned()));
            } else if c.is_ascii_alphabetic() || c == '~' {
                let mut s = String::new();
                while let Some(&d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphabetic() || **d == '~')
                {
                    s.push(d.to_ascii_lowercase());
                    chars.next();
                }
                out.push(Part::Text(s));
            } else {
                chars.next();
            }
        }
        out
    }
    #[derive(PartialEq, Eq)]
    enum Part {
        Number(usize, String),
        Text(String),
    }
    let (a, b) = (parts(a), parts(b));
    for index in 0..a.len().max(b.len()) {
        let ordering = match (a.get(index), b.get(index)) {
            (Some(Part::Number(la, na)), Some(Part::Number(lb, nb))) => (la, na).cmp(&(lb, nb)),
            (Some(Part::Text(ta)), Some(Part::Text(tb))) => ta.cmp(tb),
            (Some(Part::Text(t)), None) if pre(t) => std::cmp::Ordering::Less,
            (Some(Part::Text(_)), None) => std::cmp::Ordering::Greater,
            (None, Some(Part::Text(t))) if pre(t) => std::cmp::Ordering::Greater,
            (None, Some(Part::Text(_))) => std::cmp::Ordering::Less,
            // ... and a number beats text (1.0.1 > 1.0rc1).
            (Some(Part::Number(..)), Some(Part::Text(_))) => std::cmp::Ordering::Greater,
            (Some(Part::Text(_)), Some(Part::Number(..))) => std::cmp::Ordering::Less,
            (Some(Part::Number(..)), None) => std::cmp::Ordering::Greater,
            (None, Some(Part::Number(..))) => std::cmp::Ordering::Less,
            (None, None) => std::cmp::Ordering::Equal,
        };
        if ordering != std::cmp::Ordering::Equal {
            return ordering;
        }
    }
    std::cmp::Ordering::Equal
}

/// Whether a version looks like a pre-release, which "newest" skips.
pub fn is_prerelease(version: &str) -> bool {
    let lower = version.to_ascii_lowercase();
    lower.contains('~')
        || ["a", "b", "rc", "dev", "alpha", "beta"].iter().any(|tag| {
            lower
                .split(|c: char| !c.is_ascii_alphabetic())
                .any(|word| word == *tag)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BaseRef {
        BaseRef {
            id: "python3-minimal".parse().expect("id"),
            revision: 1,
        }
    }

    #[test]
    fn pip_names_are_normalised_and_checked() {
        let name = PackageName::parse(Manager::Pip, "Scikit_Learn").expect("valid");
        assert_eq!(name.as_str(), "scikit-learn");
        for bad in ["", "-x", "x-", "a b", "a;rm", "numpy==1", "../x", "ä"] {
            assert!(PackageName::parse(Manager::Pip, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn apt_names_follow_debian_policy() {
        assert!(PackageName::parse(Manager::Apt, "libgdal-dev").is_ok());
        assert!(PackageName::parse(Manager::Apt, "g++").is_ok());
        for bad in ["Libfoo", "a", "-x", "x y", "x;y", "x/y"] {
            assert!(PackageName::parse(Manager::Apt, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_carry_no_shell_syntax() {
        assert!(validate_version(Manager::Pip, "2.4.6").is_ok());
        assert!(validate_version(Manager::Pip, "1!2.0.post1+local_1").is_ok());
        assert!(validate_version(Manager::Apt, "1:2.3~rc1-4+deb12u1").is_ok());
        for bad in [
            "",
            "latest",
            "1.0 && rm -rf /",
            "1;2",
            "1$(x)",
            "1.0\n",
            "v1",
        ] {
            assert!(validate_version(Manager::Pip, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_package_file_round_trips_and_must_sit_at_its_path() {
        let package = Package::new(Manager::Pip, "NumPy", "2.4.6").expect("valid");
        assert_eq!(package.path(), ".tandem/env/packages/pip_numpy.toml");
        let text = package.to_toml();
        assert_eq!(
            Package::parse(&text, &package.path()).expect("parses"),
            package
        );
        assert!(Package::parse(&text, ".tandem/env/packages/pip_pandas.toml").is_err());
        let evil = "manager = \"pip\"\nname = \"numpy\"\nversion = \"1; rm -rf /\"\n";
        assert!(Package::parse(evil, ".tandem/env/packages/pip_numpy.toml").is_err());
    }

    #[test]
    fn dockerfile_layers_apt_then_pip_then_snippets_in_a_stable_order() {
        let spec = EnvSpec::new(
            base(),
            vec![
                Package::new(Manager::Pip, "scipy", "1.17.1").expect("valid"),
                Package::new(Manager::Apt, "libgdal-dev", "3.6.2+dfsg-1").expect("valid"),
                Package::new(Manager::Pip, "numpy", "2.4.6").expect("valid"),
            ],
            vec![Snippet::new("zz", "RUN echo hi").expect("valid")],
        );
        let dockerfile = spec.dockerfile();
        let apt = dockerfile.find("apt-get install").expect("apt layer");
        let pip = dockerfile
            .find("pip install numpy==2.4.6 scipy==1.17.1")
            .expect("pip layer");
        let snippet = dockerfile.find("RUN echo hi").expect("snippet");
        assert!(dockerfile.starts_with("# Generated"));
        assert!(dockerfile.contains("FROM tandem-base/python3-minimal:r1\n"));
        assert!(apt < pip && pip < snippet);
    }

    #[test]
    fn the_image_tag_changes_with_the_spec_and_the_base_image_only() {
        let one = EnvSpec::new(base(), vec![], vec![]);
        let two = EnvSpec::new(
            base(),
            vec![Package::new(Manager::Pip, "numpy", "2.4.6").expect("valid")],
            vec![],
        );
        assert_eq!(one.image_tag("sha256:a"), one.clone().image_tag("sha256:a"));
        assert_ne!(one.image_tag("sha256:a"), two.image_tag("sha256:a"));
        assert_ne!(one.image_tag("sha256:a"), one.image_tag("sha256:b"));
        assert!(one.image_tag("sha256:a").starts_with("tandem-env:"));
    }

    #[test]
    fn snippets_allow_build_steps_but_not_a_new_base_or_entrypoint() {
        assert!(
            Snippet::new(
                "tools",
                "# a comment\nRUN apt-get update && \\\n  apt-get install -y jq\nENV A=1"
            )
            .is_ok()
        );
        for bad in [
            "FROM ubuntu",
            "COPY . /x",
            "CMD [\"bash\"]",
            "ENTRYPOINT x",
            "",
            "# only a comment",
            "RUN x \\",
            "echo not an instruction",
        ] {
            assert!(Snippet::new("x", bad).is_err(), "{bad:?}");
        }
        assert!(Snippet::new("../x", "RUN true").is_err());
        let snippet = Snippet::new("tools", "RUN echo \"quoted\" '''").expect("valid");
        assert_eq!(
            Snippet::parse(&snippet.to_toml(), &snippet.path()).expect("round trip"),
            snippet
        );
    }

    #[test]
    fn requirements_accept_names_and_exact_pins_only() {
        let parsed =
            parse_requirements("# data\nnumpy==2.4.6\n\nPandas  # newest\n").expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].version.as_deref(), Some("2.4.6"));
        assert_eq!(parsed[1].name.as_str(), "pandas");
        assert_eq!(parsed[1].version, None);
        let err = parse_requirements("numpy\nscipy>=1.0\n").expect_err("range");
        assert!(
            matches!(err, EnvError::Requirement { line: 2, .. }),
            "{err}"
        );
        assert!(parse_requirements("-r other.txt").is_err());
        assert!(parse_requirements("x @ https://example.invalid/x.whl").is_err());
    }

    #[test]
    fn versions_compare_numerically_with_prereleases_first() {
        use std::cmp::Ordering::*;
        let pip = |a, b| compare_versions(Manager::Pip, a, b);
        let apt = |a, b| compare_versions(Manager::Apt, a, b);
        assert_eq!(pip("1.10.0", "1.9.2"), Greater);
        assert_eq!(pip("2.0.0rc1", "2.0.0"), Less);
        assert_eq!(pip("1.0", "1.0"), Equal);
        assert_eq!(pip("1.0.1", "1.0rc1"), Greater);
        assert_eq!(pip("1.0.post1", "1.0"), Greater);
        assert_eq!(apt("3.6.2+dfsg-1", "3.6.2+dfsg-1+deb12u1"), Less);
        assert_eq!(apt("1.0~rc1-1", "1.0-1"), Less);
        assert!(is_prerelease("2.0.0rc1"));
        assert!(is_prerelease("1.0~beta1-1"));
        assert!(!is_prerelease("2.4.6"));
        assert!(!is_prerelease("1:2.3-4+deb12u1"));
    }

    #[test]
    fn memory_limits_read_units_and_refuse_nonsense() {
        assert_eq!(parse_memory("4GiB"), Ok(4 * GIB));
        assert_eq!(parse_memory("4 g"), Ok(4 * GIB));
        assert_eq!(parse_memory("1.5GiB"), Ok(GIB + GIB / 2));
        assert_eq!(parse_memory("512MiB"), Ok(512 * MIB));
        assert_eq!(parse_memory("2GB"), Ok(2_000_000_000));
        for bad in [
            "",
            "GiB",
            "4 parsecs",
            "-1GiB",
            "1.2.3GiB",
            "100MiB",
            "4",
            "1e9",
            "99999999999TiB",
        ] {
            assert!(parse_memory(bad).is_err(), "{bad:?}");
        }
        assert!(validate_pids("4096").is_ok());
        for bad in ["0", "10", "-5", "x", "99999999"] {
            assert!(validate_pids(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_limits_file_round_trips_and_unknown_fields_are_refused() {
        let limits = Limits {
            memory: Some(4 * GIB),
            pids: Some(2048),
        };
        assert_eq!(Limits::parse(&limits.to_toml()), Ok(limits));
        assert_eq!(Limits::parse(""), Ok(Limits::default()));
        assert!(Limits::parse("memory = \"4GiB\"\nprivileged = true\n").is_err());
        assert!(Limits::parse("pids = 1\n").is_err());
        assert_eq!(format_size(4 * GIB), "4 GiB");
        assert_eq!(format_size(1536 * MIB), "1536 MiB");
    }

    #[test]
    fn a_snippet_s_hash_names_its_name_and_lines() {
        let one = Snippet::new("tools", "RUN echo one").expect("valid");
        let two = Snippet::new("tools", "RUN echo two").expect("valid");
        let other = Snippet::new("other", "RUN echo one").expect("valid");
        assert_eq!(one.hash(), one.clone().hash());
        assert_ne!(one.hash(), two.hash());
        assert_ne!(one.hash(), other.hash());
    }
}
