//! The bases this node knows: the `bases/` folder of the source tree,
//! carried inside the binary so an installed node needs no other files.

use std::collections::BTreeMap;

use tandem_protocol::env::{BaseDef, BaseId};

use super::error::EnvError;

/// One base as shipped: its definition and its Dockerfile.
#[derive(Debug, Clone)]
pub struct Base {
    pub def: BaseDef,
    pub dockerfile: String,
}

macro_rules! shipped {
    ($($id:literal),* $(,)?) => {
        [$(
            (
                $id,
                include_str!(concat!("../../../bases/", $id, "/base.toml")),
                include_str!(concat!("../../../bases/", $id, "/Dockerfile")),
            ),
        )*]
    };
}

const SHIPPED: [(&str, &str, &str); 4] = shipped!(
    "python3-minimal",
    "python3-data-science",
    "r-tidyverse",
    "python3-cuda",
);

/// Builds `debian:bookworm-slim` from Debian's packages (see the script).
pub const BOOTSTRAP_SCRIPT: &str = include_str!("../../../bases/bootstrap-debian.sh");

/// The base a project gets when its creator names none.
pub const DEFAULT_BASE: &str = "python3-minimal";

/// All known bases, by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    bases: BTreeMap<BaseId, Base>,
}

impl Catalog {
    /// The bases shipped in the binary. A malformed shipped base is a bug
    /// caught by this module's tests, so it is skipped with an error log
    /// rather than taking the node down.
    pub fn shipped() -> Self {
        let mut bases = BTreeMap::new();
        for (id, toml, dockerfile) in SHIPPED {
            match BaseDef::parse(toml, &format!("bases/{id}/base.toml")) {
                Ok(def) => {
                    bases.insert(
                        def.id.clone(),
                        Base {
                            def,
                            dockerfile: dockerfile.to_owned(),
                        },
                    );
                }
                Err(e) => tracing::error!(base = id, error = %e, "skipping a malformed base"),
            }
        }
        Catalog { bases }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Base> {
        self.bases.values()
    }

    pub fn get(&self, id: &str) -> Result<&Base, EnvError> {
        let unknown = || EnvError::UnknownBase {
            id: id.to_owned(),
            known: self
                .bases
                .keys()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let id: BaseId = id.parse().map_err(|_| unknown())?;
        self.bases.get(&id).ok_or_else(unknown)
    }

    /// The chain from the root base down to `id`: what must be built, in
    /// order, before `id` can be.
    pub fn lineage(&self, id: &str) -> Result<Vec<&Base>, EnvError> {
        let mut chain = vec![self.get(id)?];
        while let Some(parent) = &chain[chain.len() - 1].def.parent {
            if chain.len() > 8 {
                return Err(EnvError::Docker(format!("base {id} has a parent cycle")));
            }
            chain.push(self.get(parent.as_str())?);
        }
        chain.reverse();
        Ok(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_protocol::env::{Manager, base_image_tag};

    #[test]
    fn every_shipped_base_parses_and_is_complete() {
        let catalog = Catalog::shipped();
        assert_eq!(catalog.iter().count(), SHIPPED.len());
        for base in catalog.iter() {
            assert!(!base.def.name.is_empty() && !base.def.description.is_empty());
            assert!(!base.def.languages.is_empty(), "{}", base.def.id);
            assert!(
                base.def.tools.contains(&"jupyterlab".to_owned()),
                "{}",
                base.def.id
            );
            assert_eq!(base.def.image, "debian:bookworm-slim");
        }
        assert!(catalog.get(DEFAULT_BASE).is_ok());
        assert!(catalog.get("python3-cuda").expect("cuda").def.gpu.required);
    }

    #[test]
    fn dockerfiles_build_on_their_parent_or_on_debian() {
        let catalog = Catalog::shipped();
        for base in catalog.iter() {
            let from = base
                .dockerfile
                .lines()
                .find(|l| l.starts_with("FROM "))
                .expect("a FROM line");
            let expected = match &base.def.parent {
                Some(parent) => {
                    let parent = catalog.get(parent.as_str()).expect("parent exists");
                    base_image_tag(&parent.def.id, parent.def.revision)
                }
                None => base.def.image.clone(),
            };
            assert_eq!(from, format!("FROM {expected}"), "{}", base.def.id);
            let lineage = catalog.lineage(base.def.id.as_str()).expect("lineage");
            assert_eq!(lineage.last().map(|b| &b.def.id), Some(&base.def.id));
            assert!(lineage[0].def.parent.is_none());
        }
    }

    #[test]
    fn pip_packages_listed_in_base_toml_are_the_ones_the_dockerfile_pins() {
        for base in Catalog::shipped().iter() {
            for package in base
                .def
                .packages
                .iter()
                .filter(|p| p.manager == Manager::Pip)
            {
                let pin = format!("{}=={}", package.name, package.version);
                assert!(
                    base.dockerfile.contains(&pin),
                    "{}: base.toml lists {pin} but the Dockerfile does not install it",
                    base.def.id
                );
            }
        }
    }

    #[test]
    fn unknown_bases_name_the_known_ones() {
        let err = Catalog::shipped().get("python2").expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("python2") && text.contains("python3-minimal"),
            "{text}"
        );
        assert!(Catalog::shipped().get("../etc").is_err());
    }
}
