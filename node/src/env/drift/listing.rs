//! Asking a running container which packages it has: one `docker exec`
//! of a short shell script, as the container's own user.
//!
//! The script first prints a fingerprint of what package installs touch
//! (the virtual environment's `site-packages` folder and dpkg's status
//! file, with their nanosecond times). When that matches the last check's,
//! it stops there: a check after a cell that installed nothing costs one
//! `stat`, not a Python start. Whatever it prints is the container's word,
//! so the output is bounded in bytes and time and read by
//! [`tandem_protocol::drift::parse_listing`], which trusts nothing.

use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use tandem_protocol::drift::{Listing, MAX_LISTING_BYTES, ReadTo, parse_listing};

use crate::env::error::EnvError;

/// How long a listing may take; a container that stalls it is reported,
/// and the next check tries again. Inside, each lister is killed after
/// 20 s, so a stalled one does not stay behind in the container.
const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

/// `$1`: the last fingerprint; `$2`: the Python that lists distributions.
const SCRIPT: &str = r#"fp=$( { stat -c '%n %y %z' "${VIRTUAL_ENV:-/opt/venv}"/lib/python3*/site-packages /var/lib/dpkg/status; } 2>/dev/null | cksum)
if [ "$fp" = "${1:-}" ]; then echo same; exit 0; fi
printf 'fingerprint\t%s\n' "$fp"
if command -v python3 >/dev/null 2>&1; then timeout -s KILL 20 python3 -I -c "$2" 2>/dev/null && printf 'end\tpip\n'; fi
timeout -s KILL 20 dpkg-query -W -f='apt\t${Package}\t${Version}\t${db:Status-Abbrev}\n' 2>/dev/null && printf 'end\tapt\n'
exit 0
"#;

/// Every distribution Python would import, name and version; a broken
/// one is skipped rather than failing the list.
const PYTHON: &str = r#"import importlib.metadata as m, sys
out = []
for d in m.distributions():
    try:
        n, v = d.metadata["Name"], d.version
    except Exception:
        continue
    if n and v:
        out.append("pip\t%s\t%s\n" % (n, v))
sys.stdout.write("".join(out))
"#;

/// What one check found.
#[derive(Debug)]
pub enum Checked {
    /// Nothing package installs touch changed since `fingerprint`.
    Same,
    /// A fresh listing, and the fingerprint to pass next time.
    Listed {
        fingerprint: String,
        listing: Listing,
    },
}

/// Lists the container's packages unless its fingerprint is still
/// `previous`.
pub async fn list(
    docker: &Docker,
    container: &str,
    previous: Option<&str>,
) -> Result<Checked, EnvError> {
    let failed = |reason: String| EnvError::DriftListing {
        container: container.chars().take(12).collect(),
        reason,
    };
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(false),
                cmd: Some(vec![
                    "sh",
                    "-c",
                    SCRIPT,
                    "tandem-drift",
                    previous.unwrap_or(""),
                    PYTHON,
                ]),
                // Not the project folder: `*.dist-info` folders among its
                // files are not installed packages (and `-I` keeps the
                // working folder and PYTHONPATH off Python's path).
                working_dir: Some("/"),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
    let started = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let StartExecResults::Attached { mut output, .. } = started else {
        return Err(failed("the engine detached the listing".into()));
    };
    let mut bytes = Vec::new();
    let read = async {
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(|e| failed(e.to_string()))?;
            bytes.extend_from_slice(&chunk.into_bytes());
            if bytes.len() > MAX_LISTING_BYTES {
                // The rest is dropped, and the listing read as cut.
                return Ok(ReadTo::Bound);
            }
        }
        Ok::<ReadTo, EnvError>(ReadTo::End)
    };
    let read_to = tokio::time::timeout(LISTING_TIMEOUT, read)
        .await
        .map_err(|_| failed(format!("no answer within {LISTING_TIMEOUT:?}")))??;
    Ok(read_output(&bytes, read_to))
}

/// Splits the script's output into its fingerprint and listing.
fn read_output(bytes: &[u8], read_to: ReadTo) -> Checked {
    if bytes.trim_ascii() == b"same" {
        return Checked::Same;
    }
    let (first, rest) = match bytes.iter().position(|b| *b == b'\n') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let fingerprint = std::str::from_utf8(first)
        .ok()
        .and_then(|line| line.strip_prefix("fingerprint\t"))
        .filter(|fp| fp.len() <= 64)
        .unwrap_or_default()
        .to_owned();
    // Without a fingerprint the first line is a listing line like the rest.
    let listing = if fingerprint.is_empty() {
        parse_listing(bytes, read_to)
    } else {
        parse_listing(rest, read_to)
    };
    Checked::Listed {
        fingerprint,
        listing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_splits_into_fingerprint_and_listing_whatever_the_container_prints() {
        assert!(matches!(read_output(b"same\n", ReadTo::End), Checked::Same));
        let Checked::Listed {
            fingerprint,
            listing,
        } = read_output(
            b"fingerprint\t123 456\npip\tsix\t1.16.0\nend\tpip\n",
            ReadTo::End,
        )
        else {
            panic!("listed");
        };
        assert_eq!(fingerprint, "123 456");
        assert_eq!(listing.installed.len(), 1);
        // A fingerprint line that is not one is never passed back as one.
        let Checked::Listed { fingerprint, .. } = read_output(
            format!("fingerprint\t{}\n", "9".repeat(10_000)).as_bytes(),
            ReadTo::End,
        ) else {
            panic!("listed");
        };
        assert!(fingerprint.is_empty());
        let Checked::Listed { fingerprint, .. } = read_output(b"", ReadTo::End) else {
            panic!("listed");
        };
        assert!(fingerprint.is_empty());
    }

    /// What a CI failure fits: a flood handed over in 4 KiB writes stops
    /// the read at the fingerprint line plus exactly 4 MiB, so the listing
    /// after that first line is not longer than the bound.
    #[test]
    fn a_read_stopped_at_the_bound_is_cut_whatever_is_left_after_the_first_line() {
        let first = b"fingerprint\t123 456\n";
        let mut bytes = first.to_vec();
        while bytes.len() < first.len() + MAX_LISTING_BYTES {
            bytes.extend_from_slice(b"pip\tflood\t1.0\n");
        }
        bytes.truncate(first.len() + MAX_LISTING_BYTES);
        let Checked::Listed { listing, .. } = read_output(&bytes, ReadTo::Bound) else {
            panic!("listed");
        };
        assert!(listing.truncated, "{:?}", listing.complete);
    }
}
