//! The packages a project's environment pins: named on the command line
//! or read from a `requirements.txt`, their versions looked up inside the
//! base image, removed again, and checked for newer versions.

use std::collections::BTreeMap;
use std::sync::Arc;

use tandem_protocol::api::{EnvChange, OutdatedPackage, PackageView};
use tandem_protocol::env::{Manager, Package, PackageName, parse_requirements, validate_version};

use super::docker;
use super::error::EnvError;
use super::spec::package_view;
use crate::error::ServiceError;
use crate::service::Service;

/// A package named on the command line: `name` or `name==version` (for
/// apt, `name=version` as well).
fn parse_wanted(manager: Manager, text: &str) -> Result<(PackageName, Option<String>), EnvError> {
    // `==` for both; apt's own spelling `=` too.
    let split = text.split_once("==").or_else(|| match manager {
        Manager::Apt => text.split_once('='),
        Manager::Pip => None,
    });
    let (name, version) = match split {
        Some((name, version)) => (name.trim(), Some(version.trim())),
        None => (text.trim(), None),
    };
    let name = PackageName::parse(manager, name)?;
    let version = version.map(|v| validate_version(manager, v)).transpose()?;
    Ok((name, version))
}

impl Service {
    /// Pins packages, looking up versions inside the base image: the newest
    /// when none is given, and a check that a given one exists.
    pub async fn env_add(
        self: &Arc<Self>,
        name: &str,
        manager: &str,
        wanted: &[String],
    ) -> Result<EnvChange, ServiceError> {
        let manager: Manager = manager.parse().map_err(EnvError::from)?;
        if wanted.is_empty() {
            return Err(ServiceError::BadRequest("name at least one package".into()));
        }
        let mut parsed = Vec::new();
        for text in wanted {
            parsed.push(parse_wanted(manager, text)?);
        }
        self.pin_packages(name, manager, parsed).await
    }

    /// Pins every package of a pip `requirements.txt`.
    pub async fn env_import(
        self: &Arc<Self>,
        name: &str,
        text: &str,
    ) -> Result<EnvChange, ServiceError> {
        let requirements = parse_requirements(text).map_err(EnvError::from)?;
        if requirements.is_empty() {
            return Err(ServiceError::BadRequest(
                "the requirements file names no package".into(),
            ));
        }
        let parsed = requirements
            .into_iter()
            .map(|r| (r.name, r.version))
            .collect();
        self.pin_packages(name, Manager::Pip, parsed).await
    }

    async fn pin_packages(
        self: &Arc<Self>,
        name: &str,
        manager: Manager,
        wanted: Vec<(PackageName, Option<String>)>,
    ) -> Result<EnvChange, ServiceError> {
        let (spec, _, _) = self.spec_of(name)?;
        let docker = docker::connect().await?;
        let base_image = self.ensure_base_for(name, &docker, &spec).await?;
        let names: Vec<PackageName> = wanted.iter().map(|(n, _)| n.clone()).collect();
        let found = super::resolve::versions(&docker, &base_image, manager, &names).await?;
        let mut packages = Vec::new();
        for (package, version) in wanted {
            let Some(Some(versions)) = found.get(&package) else {
                return Err(EnvError::UnknownPackage {
                    manager,
                    name: package.to_string(),
                    hint: match manager {
                        Manager::Pip => " in the package index".into(),
                        Manager::Apt => format!(" in the Debian release of base {}", spec.base.id),
                    },
                }
                .into());
            };
            let newest = super::resolve::newest(manager, versions).unwrap_or_default();
            let version = match version {
                Some(version) => {
                    if !versions.contains(&version) {
                        return Err(EnvError::UnknownVersion {
                            manager,
                            name: package.to_string(),
                            version,
                            newest,
                        }
                        .into());
                    }
                    version
                }
                None => newest,
            };
            packages.push(Package::new(manager, package.as_str(), &version)?);
        }
        let added: Vec<PackageView> = packages.iter().map(package_view).collect();
        let list = packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("Pinned {manager} packages: {list}");
        let writes = packages
            .iter()
            .map(|p| (p.path(), Some(p.to_toml())))
            .collect();
        let commit = {
            let (name, message) = (name.to_owned(), message.clone());
            self.blocking(move |service| service.commit_env(&name, writes, &message))
                .await?
        };
        Ok(EnvChange {
            added,
            removed: vec![],
            commit,
            message,
        })
    }

    pub fn env_remove(
        &self,
        name: &str,
        manager: &str,
        packages: &[String],
    ) -> Result<EnvChange, ServiceError> {
        let manager: Manager = manager.parse().map_err(EnvError::from)?;
        let (spec, _, _) = self.spec_of(name)?;
        let mut removed = Vec::new();
        for text in packages {
            let package = PackageName::parse(manager, text).map_err(EnvError::from)?;
            let Some(pinned) = spec
                .packages
                .iter()
                .find(|p| p.manager == manager && p.name == package)
            else {
                return Err(ServiceError::NoSuchFile(format!(
                    "{manager} package {package} is not in {name}'s environment (see `tandem env show {name}`)"
                )));
            };
            removed.push(pinned.clone());
        }
        if removed.is_empty() {
            return Err(ServiceError::BadRequest("name at least one package".into()));
        }
        let list = removed
            .iter()
            .map(|p| p.name.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("Removed {manager} packages: {list}");
        let writes = removed.iter().map(|p| (p.path(), None)).collect();
        let commit = self.commit_env(name, writes, &message)?;
        Ok(EnvChange {
            added: vec![],
            removed: removed.iter().map(package_view).collect(),
            commit,
            message,
        })
    }

    /// Newer versions of the pinned packages.
    pub async fn env_outdated(&self, name: &str) -> Result<Vec<OutdatedPackage>, ServiceError> {
        let (spec, _, _) = self.spec_of(name)?;
        let docker = docker::connect().await?;
        let base_image = self.ensure_base_for(name, &docker, &spec).await?;
        let mut out = Vec::new();
        for manager in [Manager::Apt, Manager::Pip] {
            let pinned: BTreeMap<&PackageName, &Package> = spec
                .packages
                .iter()
                .filter(|p| p.manager == manager)
                .map(|p| (&p.name, p))
                .collect();
            if pinned.is_empty() {
                continue;
            }
            let names: Vec<PackageName> = pinned.keys().map(|n| (*n).clone()).collect();
            let found = super::resolve::versions(&docker, &base_image, manager, &names).await?;
            for (name, package) in pinned {
                let Some(Some(versions)) = found.get(name) else {
                    continue;
                };
                let Some(newest) = super::resolve::newest(manager, versions) else {
                    continue;
                };
                let newer =
                    tandem_protocol::env::compare_versions(manager, &newest, &package.version)
                        == std::cmp::Ordering::Greater;
                if newer {
                    out.push(OutdatedPackage {
                        manager: manager.to_string(),
                        name: name.to_string(),
                        pinned: package.version.clone(),
                        newest,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_named_with_or_without_a_version() {
        let (name, version) = parse_wanted(Manager::Pip, "NumPy==2.4.6").expect("pip pin");
        assert_eq!(
            (name.as_str(), version.as_deref()),
            ("numpy", Some("2.4.6"))
        );
        assert_eq!(parse_wanted(Manager::Pip, "numpy").expect("name").1, None);
        for apt in ["jq==1.6-2.1", "jq=1.6-2.1"] {
            let (name, version) = parse_wanted(Manager::Apt, apt).expect("apt pin");
            assert_eq!((name.as_str(), version.as_deref()), ("jq", Some("1.6-2.1")));
        }
        assert!(
            parse_wanted(Manager::Pip, "numpy=2.4.6").is_err(),
            "pip pins use =="
        );
        assert!(parse_wanted(Manager::Pip, "numpy==latest").is_err());
    }
}
