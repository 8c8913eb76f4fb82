//! Building base and environment images through the engine's build API.
//!
//! Images are named by content: a base by its id and revision (with a label
//! holding the hash of what built it), an environment by the hash of its
//! generated Dockerfile and its base image. So an unchanged environment is
//! a single image lookup, and a changed package rebuilds only the layers
//! after it, the engine's cache supplying the rest.

use std::collections::HashMap;
use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion, CreateImageOptions};
use futures::StreamExt;
use tandem_protocol::api::BuildResult;
use tandem_protocol::env::{EnvSpec, base_image_tag};

use super::bases::{Base, Catalog};
use super::docker::image_id;
use super::error::EnvError;

/// Label on base images: the hash of the Dockerfile and CA bundle that
/// built them, so a changed definition is rebuilt even at the same tag.
const BASE_DIGEST_LABEL: &str = "tandem.base.digest";
/// Lines of build output kept for an error message or a progress view.
pub const LOG_TAIL: usize = 60;

/// What a build reports while it runs.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// Building `image` (a base or the environment) started.
    Image { image: String },
    /// Step `step` of `total` started.
    Step { step: u32, total: u32, text: String },
    /// The step just started came from the cache.
    Cached,
    /// A line of output.
    Line(String),
}

pub struct Builder<'a> {
    docker: &'a Docker,
    catalog: &'a Catalog,
    /// The host's CA bundle, copied into base images so that package
    /// managers inside trust what the host trusts.
    ca_bundle: Vec<u8>,
}

/// Where the host keeps its CA bundle; `SSL_CERT_FILE` wins when set.
fn host_ca_bundle() -> Vec<u8> {
    let candidates = [
        std::env::var("SSL_CERT_FILE").ok(),
        Some("/etc/ssl/certs/ca-certificates.crt".to_owned()),
        Some("/etc/pki/tls/certs/ca-bundle.crt".to_owned()),
        Some("/etc/ssl/cert.pem".to_owned()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|path| std::fs::read(path).ok())
        .unwrap_or_default()
}

impl<'a> Builder<'a> {
    pub fn new(docker: &'a Docker, catalog: &'a Catalog) -> Self {
        Builder {
            docker,
            catalog,
            ca_bundle: host_ca_bundle(),
        }
    }

    /// Builds the environment's image unless an image of the same spec is
    /// already here.
    pub async fn build_env(
        &self,
        spec: &EnvSpec,
        report: &(dyn Fn(BuildEvent) + Send + Sync),
    ) -> Result<BuildResult, EnvError> {
        let started = Instant::now();
        let mut bases_built = Vec::new();
        let base_id = self
            .ensure_base(
                spec.base.id.as_str(),
                spec.base.revision,
                report,
                &mut bases_built,
            )
            .await?;
        let tag = spec.image_tag(&base_id);
        if image_id(self.docker, &tag).await?.is_some() {
            return Ok(BuildResult {
                image: tag,
                rebuilt: false,
                bases_built,
                steps: 0,
                cached_steps: 0,
                seconds: started.elapsed().as_secs_f64(),
                log: vec![],
            });
        }
        let context = context(&[("Dockerfile", spec.dockerfile().as_bytes())])?;
        let labels = HashMap::from([("tandem.env", "1")]);
        let run = self.run_build(&tag, context, &labels, report).await?;
        Ok(BuildResult {
            image: tag,
            rebuilt: true,
            bases_built,
            steps: run.steps,
            cached_steps: run.cached,
            seconds: started.elapsed().as_secs_f64(),
            log: run.log,
        })
    }

    /// Makes sure the base (and its parents) exist at the current
    /// definition; returns the base image's id.
    pub async fn ensure_base(
        &self,
        id: &str,
        revision: u32,
        report: &(dyn Fn(BuildEvent) + Send + Sync),
        built: &mut Vec<String>,
    ) -> Result<String, EnvError> {
        let lineage = self.catalog.lineage(id)?;
        let wanted = lineage[lineage.len() - 1];
        if wanted.def.revision != revision {
            return Err(EnvError::BaseRevision {
                id: id.to_owned(),
                wanted: revision,
                have: wanted.def.revision,
            });
        }
        self.ensure_root(&lineage[0].def.image, report).await?;
        let mut last_id = String::new();
        for base in lineage {
            last_id = self.ensure_one_base(base, report, built).await?;
        }
        Ok(last_id)
    }

    async fn ensure_one_base(
        &self,
        base: &Base,
        report: &(dyn Fn(BuildEvent) + Send + Sync),
        built: &mut Vec<String>,
    ) -> Result<String, EnvError> {
        let tag = base_image_tag(&base.def.id, base.def.revision);
        let digest = {
            let mut hasher = blake3::Hasher::new();
            hasher.update(base.dockerfile.as_bytes());
            hasher.update(&self.ca_bundle);
            hasher.finalize().to_hex().to_string()
        };
        if let Ok(info) = self.docker.inspect_image(&tag).await {
            let same = info
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(BASE_DIGEST_LABEL))
                .is_some_and(|d| *d == digest);
            if same && let Some(id) = info.id {
                return Ok(id);
            }
        }
        let context = context(&[
            ("Dockerfile", base.dockerfile.as_bytes()),
            ("host-ca.crt", &self.ca_bundle),
        ])?;
        let labels = HashMap::from([
            (BASE_DIGEST_LABEL, digest.as_str()),
            ("tandem.base", base.def.id.as_str()),
        ]);
        self.run_build(&tag, context, &labels, report).await?;
        built.push(tag.clone());
        image_id(self.docker, &tag)
            .await?
            .ok_or_else(|| EnvError::Docker(format!("{tag} vanished right after its build")))
    }

    /// The image everything starts from: present, pulled, or an error that
    /// says how to make it without a registry.
    async fn ensure_root(
        &self,
        image: &str,
        report: &(dyn Fn(BuildEvent) + Send + Sync),
    ) -> Result<(), EnvError> {
        if image_id(self.docker, image).await?.is_some() {
            return Ok(());
        }
        report(BuildEvent::Line(format!("pulling {image}")));
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let mut pull = self.docker.create_image(Some(options), None, None);
        let mut failure = None;
        while let Some(item) = pull.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        report(BuildEvent::Line(status));
                    }
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        match failure {
            None if image_id(self.docker, image).await?.is_some() => Ok(()),
            other => Err(EnvError::MissingRootImage {
                image: image.to_owned(),
                detail: other.unwrap_or_else(|| "the pull ended without the image".into()),
            }),
        }
    }

    async fn run_build(
        &self,
        tag: &str,
        context: Vec<u8>,
        labels: &HashMap<&str, &str>,
        report: &(dyn Fn(BuildEvent) + Send + Sync),
    ) -> Result<BuildRun, EnvError> {
        report(BuildEvent::Image {
            image: tag.to_owned(),
        });
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(labels)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut run = BuildRun::default();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    run.push(error.clone());
                    return Err(EnvError::BuildFailed {
                        image: tag.to_owned(),
                        log: run.log,
                    });
                }
                Err(e) => {
                    run.push(e.to_string());
                    return Err(EnvError::BuildFailed {
                        image: tag.to_owned(),
                        log: run.log,
                    });
                }
            };
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                run.push(message);
                return Err(EnvError::BuildFailed {
                    image: tag.to_owned(),
                    log: run.log,
                });
            }
            let Some(text) = info.stream else { continue };
            for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                run.push(line.to_owned());
                if let Some((step, total)) = parse_step(line) {
                    run.steps = total;
                    report(BuildEvent::Step {
                        step,
                        total,
                        text: line.to_owned(),
                    });
                } else if line.trim() == "---> Using cache" {
                    run.cached += 1;
                    report(BuildEvent::Cached);
                } else {
                    report(BuildEvent::Line(line.to_owned()));
                }
            }
        }
        if image_id(self.docker, tag).await?.is_none() {
            return Err(EnvError::BuildFailed {
                image: tag.to_owned(),
                log: run.log,
            });
        }
        Ok(run)
    }
}

#[derive(Default)]
struct BuildRun {
    steps: u32,
    cached: u32,
    log: Vec<String>,
}

impl BuildRun {
    fn push(&mut self, line: String) {
        if self.log.len() == LOG_TAIL {
            self.log.remove(0);
        }
        self.log.push(line);
    }
}

/// `Step 3/9 : RUN ...` → (3, 9).
fn parse_step(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("Step ")?;
    let (numbers, _) = rest.split_once(' ')?;
    let (step, total) = numbers.split_once('/')?;
    Some((step.parse().ok()?, total.parse().ok()?))
}

/// A build context: a tar of the given files.
fn context(files: &[(&str, &[u8])]) -> Result<Vec<u8>, EnvError> {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        archive
            .append_data(&mut header, name, *bytes)
            .map_err(|e| EnvError::Docker(format!("writing the build context: {e}")))?;
    }
    archive
        .into_inner()
        .map_err(|e| EnvError::Docker(format!("writing the build context: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_are_read() {
        assert_eq!(parse_step("Step 3/9 : RUN pip install x"), Some((3, 9)));
        assert_eq!(parse_step("Step x/9 : RUN"), None);
        assert_eq!(parse_step(" ---> Using cache"), None);
    }

    #[test]
    fn a_context_holds_the_files() {
        let bytes = context(&[("Dockerfile", b"FROM x\n"), ("a.crt", b"")]).expect("tar");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["Dockerfile", "a.crt"]);
    }
}
