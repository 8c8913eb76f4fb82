//! Finding which versions of a package exist, by asking the package manager
//! inside the base image itself: `pip index versions` answers for the
//! base's own Python, and `apt-cache madison` for its own Debian release,
//! so "newest" always means newest that installs there.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::WaitContainerOptions;
use futures::StreamExt;
use tandem_protocol::env::{Manager, PackageName, compare_versions, is_prerelease};

use super::docker::engine;
use super::error::EnvError;

/// A look-up that takes longer than this has lost its network.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(180);
const MARK: &str = "@@tandem ";

/// Versions of one package, newest first; `None` when no such package exists.
pub type Versions = Option<Vec<String>>;

/// Looks up every name in one helper container.
pub async fn versions(
    docker: &Docker,
    image: &str,
    manager: Manager,
    names: &[PackageName],
) -> Result<BTreeMap<PackageName, Versions>, EnvError> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let script = match manager {
        Manager::Pip => concat!(
            "for p in \"$@\"; do echo \"@@tandem $p\"; ",
            "pip index versions --disable-pip-version-check --retries 1 --timeout 20 \"$p\" 2>&1; done"
        ),
        Manager::Apt => concat!(
            "apt-get update -qq >/dev/null 2>&1 || echo '@@tandem-offline'; ",
            "for p in \"$@\"; do echo \"@@tandem $p\"; apt-cache madison \"$p\" 2>&1; done"
        ),
    };
    let args: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let output = tokio::time::timeout(LOOKUP_TIMEOUT, run_script(docker, image, script, &args))
        .await
        .map_err(|_| EnvError::Lookup {
            manager,
            detail: format!("no answer within {}s", LOOKUP_TIMEOUT.as_secs()),
        })??;
    parse_output(manager, &output, names)
}

/// Splits the helper's output into one section per package and reads each.
fn parse_output(
    manager: Manager,
    output: &str,
    names: &[PackageName],
) -> Result<BTreeMap<PackageName, Versions>, EnvError> {
    if output.contains("@@tandem-offline") {
        return Err(EnvError::Lookup {
            manager,
            detail: "the base image could not reach Debian's package mirror".into(),
        });
    }
    let mut sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut current = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix(MARK) {
            current = Some(name.trim());
            sections.entry(name.trim()).or_default();
        } else if let Some(name) = current {
            sections.entry(name).or_default().push(line);
        }
    }
    let mut out = BTreeMap::new();
    for name in names {
        let Some(lines) = sections.get(name.as_str()) else {
            return Err(EnvError::Lookup {
                manager,
                detail: format!("no answer for {name}: {}", tail(output)),
            });
        };
        let found = match manager {
            Manager::Pip => {
                parse_pip(lines).map_err(|detail| EnvError::Lookup { manager, detail })?
            }
            Manager::Apt => parse_madison(lines),
        };
        out.insert(name.clone(), found);
    }
    Ok(out)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// `pip index versions` prints `Available versions: 2.4.6, 2.4.5, ...`,
/// or `ERROR: No matching distribution found` for an unknown name. Network
/// trouble shows as retries or connection errors before that.
fn parse_pip(lines: &[&str]) -> Result<Versions, String> {
    if let Some(list) = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("Available versions:"))
    {
        let versions = list
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        return Ok(Some(versions));
    }
    let text = lines.join("\n");
    let network = [
        "NewConnectionError",
        "Retrying",
        "ConnectTimeout",
        "SSLError",
        "ProxyError",
    ];
    if network.iter().any(|n| text.contains(n)) {
        return Err(format!(
            "the package index could not be reached: {}",
            tail(&text)
        ));
    }
    if text.contains("No matching distribution") || text.contains("Could not find a version") {
        return Ok(None);
    }
    Err(format!("unexpected answer from pip: {}", tail(&text)))
}

/// `apt-cache madison NAME` prints ` NAME | VERSION | SOURCE Packages` per
/// version and nothing for an unknown name.
fn parse_madison(lines: &[&str]) -> Versions {
    let mut versions: Vec<String> = lines
        .iter()
        .filter(|l| l.contains(" Packages"))
        .filter_map(|l| l.split('|').nth(1))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    versions.sort_by(|a, b| compare_versions(Manager::Apt, b, a));
    versions.dedup();
    (!versions.is_empty()).then_some(versions)
}

/// The newest stable version in a list (newest first for pip; sorted here
/// anyway), or the newest pre-release when there is nothing else.
pub fn newest(manager: Manager, versions: &[String]) -> Option<String> {
    let mut sorted: Vec<&String> = versions.iter().collect();
    sorted.sort_by(|a, b| compare_versions(manager, b, a));
    sorted
        .iter()
        .find(|v| !is_prerelease(v))
        .or_else(|| sorted.first())
        .map(|v| (*v).clone())
}

/// Runs `sh -c script` with `args` in a throwaway container of `image` and
/// returns what it printed.
async fn run_script(
    docker: &Docker,
    image: &str,
    script: &str,
    args: &[String],
) -> Result<String, EnvError> {
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "sh".to_owned(),
    ];
    cmd.extend(args.iter().cloned());
    let name = format!(
        "tandem-lookup-{}",
        hex::encode(crate::home::random_bytes::<6>())
    );
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(cmd),
        user: Some("0:0".to_owned()),
        labels: Some(std::collections::HashMap::from([(
            "tandem.helper".to_owned(),
            "lookup".to_owned(),
        )])),
        host_config: Some(HostConfig::default()),
        ..Default::default()
    };
    super::docker::create_named(docker, &name, body).await?;
    let result = async {
        docker.start_container(&name, None).await.map_err(engine)?;
        let mut wait = docker.wait_container(&name, None::<WaitContainerOptions>);
        while let Some(item) = wait.next().await {
            // A non-zero exit still printed what we need.
            if let Err(e) = item
                && !matches!(e, bollard::errors::Error::DockerContainerWaitError { .. })
            {
                return Err(engine(e));
            }
        }
        super::docker::output(docker, &name, None).await
    }
    .await;
    let _ = super::docker::remove(docker, &name).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<PackageName> {
        list.iter()
            .map(|n| PackageName::parse(Manager::Pip, n).expect("valid"))
            .collect()
    }

    #[test]
    fn pip_answers_are_read_per_package() {
        let output = "@@tandem numpy\nWARNING: pip index is currently an experimental command.\nnumpy (2.4.6)\nAvailable versions: 2.4.6, 2.4.5, 2.5.0rc1\n  INSTALLED: \n@@tandem nosuchpkg\nERROR: No matching distribution found for nosuchpkg\n";
        let found =
            parse_output(Manager::Pip, output, &names(&["numpy", "nosuchpkg"])).expect("parsed");
        let numpy = found[&names(&["numpy"])[0]].clone().expect("exists");
        assert_eq!(numpy, ["2.4.6", "2.4.5", "2.5.0rc1"]);
        assert_eq!(newest(Manager::Pip, &numpy).as_deref(), Some("2.4.6"));
        assert_eq!(found[&names(&["nosuchpkg"])[0]], None);
    }

    #[test]
    fn network_trouble_is_not_mistaken_for_a_missing_package() {
        let output = "@@tandem numpy\nWARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError'\nERROR: No matching distribution found for numpy\n";
        let err = parse_output(Manager::Pip, output, &names(&["numpy"])).expect_err("network");
        assert!(err.to_string().contains("could not be reached"), "{err}");
    }

    #[test]
    fn madison_lists_versions_newest_first() {
        let output = "@@tandem jq\n        jq | 1.6-2.1 | http://mirror bookworm/main amd64 Packages\n        jq | 1.6-2.1+deb12u1 | http://mirror bookworm-updates/main amd64 Packages\n@@tandem nope\n";
        let apt = [
            PackageName::parse(Manager::Apt, "jq").expect("valid"),
            PackageName::parse(Manager::Apt, "nope").expect("valid"),
        ];
        let found = parse_output(Manager::Apt, output, &apt).expect("parsed");
        assert_eq!(
            found[&apt[0]].as_deref(),
            Some(&["1.6-2.1+deb12u1".to_owned(), "1.6-2.1".to_owned()][..])
        );
        assert_eq!(found[&apt[1]], None);
        assert!(parse_output(Manager::Apt, "@@tandem-offline\n", &apt).is_err());
    }
}
