//! Environments against the real Docker engine: bases built offline, pinned
//! packages, cached images, JupyterLab launched as the host user, and cell
//! executions recorded in the activity feed.
//!
//! These tests need Docker. They never skip: without an engine they fail,
//! saying so (CI installs and starts one).

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_e2e::docker::{
    Cleanup, docker_is_running, docker_node, entries, image_exists, jupyter_of, quiet_env_project,
};
use tandem_e2e::jupyter::Jupyter;
use tandem_e2e::{TestNode, git, wait_for};

#[test]
fn build_launch_record_cells_and_rebuild_from_cache() {
    docker_is_running();
    let mut node = TestNode::with_identity("Ada");
    node.run(&["bases", "bootstrap"])
        .expect_ok("bootstrap the Debian image");
    node.start();
    let _cleanup = Cleanup(node.did());

    // Bases are listed with what a person needs to choose one.
    let bases = node.run(&["bases", "--json"]).expect_ok("bases").json();
    let ids: Vec<&str> = bases
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    for id in [
        "python3-minimal",
        "python3-data-science",
        "r-tidyverse",
        "python3-cuda",
    ] {
        assert!(ids.contains(&id), "{id} listed: {ids:?}");
    }

    node.run(&["project", "create", "lab", "--base", "python3-minimal"])
        .expect_ok("create");
    node.run(&["sync", "lab", "--auto", "off"])
        .expect_ok("auto off");
    let dir = node.project_dir("lab");
    assert!(
        git(&dir, &["show", "HEAD:.tandem/env/base.toml"]).contains("python3-minimal"),
        "the base is tracked"
    );

    // First build: the base (unless an earlier run left it) and the env.
    let first = node
        .run(&["build", "lab", "--json"])
        .expect_ok("first build")
        .json();
    let first_image = first["image"].as_str().expect("image").to_owned();
    assert!(image_exists(&first_image));
    assert!(image_exists("tandem-base/python3-minimal:r1"));

    // Unchanged: nothing runs.
    let started = Instant::now();
    let again = node
        .run(&["build", "lab", "--json"])
        .expect_ok("rebuild")
        .json();
    assert_eq!(again["rebuilt"], false, "{again}");
    assert_eq!(again["image"], first_image.as_str());
    assert!(started.elapsed() < Duration::from_secs(5));

    // Bad input, with the base now here to ask.
    node.run(&["env", "add", "lab", "pip", "tandem-no-such-package-x7q"])
        .expect_err("unknown package", "no pip package named");
    node.run(&["env", "add", "lab", "pip", "matplotlib==0.0.0.1"])
        .expect_err("missing version", "has no version");
    node.run(&["env", "add", "lab", "pip", "matplotlib==1.0; rm -rf /"])
        .expect_err("bad version", "not a valid pip version");
    node.run(&["env", "add", "lab", "conda", "numpy"])
        .expect_err("bad manager", "use pip or apt");

    // Pin matplotlib at its newest version: one file, one commit, one entry.
    node.run(&["env", "add", "lab", "pip", "matplotlib"])
        .expect_ok("add matplotlib");
    let pinned = std::fs::read_to_string(dir.join(".tandem/env/packages/pip_matplotlib.toml"))
        .expect("package file");
    assert!(pinned.contains("name = \"matplotlib\""), "{pinned}");
    let version = pinned
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a pinned version")
        .to_owned();
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()),
        "{version}"
    );
    assert!(git(&dir, &["log", "-1", "--format=%s"]).contains("[tandem:environment]"));
    let environment = entries(&node, "lab", "environment");
    assert!(
        environment.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("matplotlib")),
        "{environment:?}"
    );
    let show = node
        .run(&["env", "show", "lab", "--json"])
        .expect_ok("show")
        .json();
    assert_eq!(show["packages"][0]["version"], version.as_str());
    let wanted = show["image"].as_str().expect("image tag").to_owned();
    assert_ne!(
        wanted, first_image,
        "a changed environment is another image"
    );
    // An earlier run on this engine may have built it: start clean.
    let _ = Command::new("docker").args(["rmi", "-f", &wanted]).output();

    // Only the package layer builds; the base comes from cache.
    let second = node
        .run(&["build", "lab", "--json"])
        .expect_ok("build with matplotlib")
        .json();
    assert_eq!(second["rebuilt"], true);
    assert_eq!(second["bases_built"], serde_json::json!([]), "{second}");
    assert_eq!(second["image"], wanted.as_str());
    let log = second["log"].to_string();
    assert!(log.contains("pip install matplotlib=="), "{log}");
    assert!(image_exists(&first_image), "the earlier image is kept");

    // Launch: JupyterLab on loopback with a token, as the folder's owner.
    let launched = node
        .run(&["launch", "lab", "--json"])
        .expect_ok("launch")
        .json();
    let url = launched["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("token="),
        "{url}"
    );
    let jupyter = Jupyter::from_url(&url);
    let kernel = jupyter.start_kernel();
    wait_for(Duration::from_secs(20), || {
        let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
        (ps[0]["kernels_followed"].as_u64() >= Some(1)).then_some(())
    })
    .expect("the node follows the new kernel");

    // A cell that is not to be recorded, then one that is.
    let ignored = jupyter.execute(&kernel, "# tandem: ignore\nprint('secret scratch')");
    assert_eq!(ignored.status, "ok");
    let code = "import matplotlib.pyplot as plt\nprint('hello from the cell')\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.savefig('output/plot.png')\nplt.show()";
    let reply = jupyter.execute(&kernel, code);
    assert_eq!(reply.status, "ok", "{reply:?}");
    assert!(reply.stdout.contains("hello from the cell"));

    let entry = wait_for(Duration::from_secs(20), || {
        entries(&node, "lab", "code")
            .into_iter()
            .find(|e| e["details"]["code"].as_str() == Some(code))
    })
    .expect("the cell is recorded");
    let details = &entry["details"];
    assert!(
        details["output"]
            .as_str()
            .unwrap_or_default()
            .contains("hello from the cell")
    );
    let figures = details["figures"].as_array().expect("figures");
    assert_eq!(figures.len(), 1, "{entry}");
    let token = format!("Bearer {}", node.token.as_deref().expect("token"));
    let (status, body) = node.http(
        "GET",
        &format!("/api/figures/{}", figures[0].as_str().expect("hash")),
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(status, 200);
    assert!(body.starts_with("\u{fffd}PNG"), "a PNG comes back");
    // The file the cell wrote is committed with the entry, and is the user's.
    let commit = entry["commit"].as_str().expect("a linked commit");
    let changed = git(&dir, &["show", "--name-only", "--format=", commit]);
    assert!(changed.contains("output/plot.png"), "{changed}");
    let owner = std::fs::metadata(dir.join("output/plot.png"))
        .expect("plot")
        .uid();
    assert_eq!(owner, std::fs::metadata(&dir).expect("dir").uid());
    // A collaborator who clones sees the cell and its figure.
    let bob = TestNode::started("Bob");
    bob.connect(&node);
    node.run(&["share", "lab", &bob.did(), "--role", "reader"])
        .expect_ok("share");
    bob.run(&["project", "clone", &node.project_id("lab")])
        .expect_ok("clone");
    let figure = figures[0].as_str().expect("hash");
    let bob_token = format!("Bearer {}", bob.token.as_deref().expect("token"));
    let (status, body) = bob.http(
        "GET",
        &format!("/api/figures/{figure}"),
        &[("Authorization", &bob_token)],
        "",
    );
    assert_eq!(status, 200, "the figure came along with the feed: {body}");
    assert!(body.starts_with("\u{fffd}PNG"));
    drop(bob);

    let all_code = entries(&node, "lab", "code");
    assert!(
        !all_code
            .iter()
            .any(|e| e.to_string().contains("secret scratch")),
        "ignored cells stay out of the feed: {all_code:?}"
    );

    // Stop, then launch again from the cached image.
    node.run(&["stop", "lab"]).expect_ok("stop");
    let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
    assert_eq!(ps, serde_json::json!([]));
    let relaunched = node
        .run(&["launch", "lab", "--json"])
        .expect_ok("relaunch")
        .json();
    assert_eq!(relaunched["image"], second["image"]);
    assert_eq!(relaunched["started_now"], true);

    // A node that dies finds its running JupyterLab again, and records it.
    node.kill();
    node.start();
    let found = wait_for(Duration::from_secs(20), || {
        let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
        (ps[0]["container"] == relaunched["container"]).then_some(ps)
    });
    assert!(
        found.is_some(),
        "the restarted node lists the old container"
    );
    let after = jupyter_of(&relaunched);
    let kernel = after.start_kernel();
    wait_for(Duration::from_secs(20), || {
        let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
        (ps[0]["kernels_followed"].as_u64() >= Some(1)).then_some(())
    })
    .expect("followed");
    let marker = "print('after the restart')";
    assert_eq!(after.execute(&kernel, marker).status, "ok");
    wait_for(Duration::from_secs(20), || {
        entries(&node, "lab", "code")
            .into_iter()
            .find(|e| e["details"]["code"].as_str() == Some(marker))
    })
    .expect("recorded after the restart");

    // A snippet that fails to build: the log says why, and the previous
    // image still serves once the snippet is gone.
    let snippet = node.home().join("broken.docker");
    std::fs::write(&snippet, "RUN echo about to fail && exit 3\n").expect("snippet");
    node.run(&[
        "env",
        "snippet",
        "add",
        "lab",
        snippet.to_str().expect("path"),
    ])
    .expect_ok("snippet add");
    let failed = node
        .run(&["build", "lab"])
        .expect_err("broken snippet", "about to fail");
    assert!(failed.stderr.contains("non-zero code"), "{}", failed.stderr);
    node.run(&["env", "snippet", "remove", "lab", "broken"])
        .expect_ok("snippet remove");
    let back = node
        .run(&["build", "lab", "--json"])
        .expect_ok("build")
        .json();
    assert_eq!(back["rebuilt"], false);
    assert_eq!(back["image"], second["image"]);

    // requirements.txt, apt pins, outdated versions, removal.
    let requirements = node.home().join("requirements.txt");
    std::fs::write(&requirements, "# pinned on purpose\nsix==1.16.0\n").expect("requirements");
    node.run(&["env", "import", "lab", requirements.to_str().expect("path")])
        .expect_ok("import");
    node.run(&["env", "add", "lab", "apt", "jq"])
        .expect_ok("apt add");
    let show = node
        .run(&["env", "show", "lab", "--json"])
        .expect_ok("show")
        .json();
    let pins: Vec<(String, String)> = show["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                format!(
                    "{} {}",
                    p["manager"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("")
                ),
                p["version"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        pins.contains(&("pip six".to_owned(), "1.16.0".to_owned())),
        "{pins:?}"
    );
    assert!(
        pins.iter()
            .any(|(p, v)| p == "apt jq" && v.starts_with('1')),
        "{pins:?}"
    );
    assert!(
        show["dockerfile"].as_str().unwrap_or("").contains("jq=1"),
        "{show}"
    );
    let outdated = node
        .run(&["env", "outdated", "lab", "--json"])
        .expect_ok("outdated")
        .json();
    assert!(
        outdated
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["name"] == "six" && p["pinned"] == "1.16.0"),
        "six 1.16.0 has newer versions: {outdated}"
    );
    node.run(&["env", "remove", "lab", "pip", "six"])
        .expect_ok("remove");
    assert!(!dir.join(".tandem/env/packages/pip_six.toml").exists());
    node.run(&["env", "remove", "lab", "pip", "six"])
        .expect_err("twice", "not in lab's environment");

    // The node stops its containers when it stops.
    assert!(node.stop(), "clean shutdown");
    let left = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=tandem.node={}", node.did()),
        ])
        .output()
        .expect("docker ps");
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
}

#[test]
fn bad_input_gets_clear_errors_without_docker_being_asked() {
    let node = TestNode::with_identity("Bo");
    node.run(&["project", "create", "p", "--base", "python2"])
        .expect_err("unknown base", "python3-minimal");
    assert!(!node.project_dir("p").exists(), "nothing is half-created");
    node.run(&["project", "create", "p"])
        .expect_ok("default base");
    node.run(&["env", "add", "p", "pip", "numpy==latest"])
        .expect_err("bad version", "not a valid pip version");
    node.run(&["env", "add", "p", "pip", "numpy;rm"])
        .expect_err("bad name", "not a valid pip package name");
    let broken = node.home().join("evil.docker");
    std::fs::write(&broken, "FROM ubuntu\n").expect("snippet");
    node.run(&["env", "snippet", "add", "p", broken.to_str().expect("path")])
        .expect_err("FROM refused", "FROM is not allowed");

    // Docker not running: say so and say how to start it.
    let out = node
        .command()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["build", "p"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Docker is not running"), "{stderr}");
    assert!(stderr.contains("systemctl start docker"), "{stderr}");
}

/// What `import six` says in a kernel of this JupyterLab.
fn six_version(view: &serde_json::Value, marker: &str) -> (String, Jupyter, String) {
    let jupyter = jupyter_of(view);
    let kernel = jupyter.start_kernel();
    let reply = jupyter.execute(
        &kernel,
        &format!("import six\nprint('{marker}', six.__version__)"),
    );
    assert_eq!(reply.status, "ok", "{reply:?}");
    let version = reply
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (version, jupyter, kernel)
}

#[test]
fn an_old_version_reruns_read_only_in_the_environment_it_pinned() {
    let (node, _cleanup) = docker_node("Ada");
    quiet_env_project(&node, "rerun", "python3-minimal");
    let dir = node.project_dir("rerun");
    node.run(&["env", "add", "rerun", "pip", "six==1.16.0"])
        .expect_ok("pin six 1.16.0");
    std::fs::write(dir.join("code/result.py"), "answer = 1\n").expect("write");
    node.run(&["sweep", "rerun"]).expect_ok("sweep");
    let v1 = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();
    node.run(&["env", "add", "rerun", "pip", "six==1.17.0"])
        .expect_ok("re-pin six 1.17.0");
    std::fs::write(dir.join("code/result.py"), "answer = 2\n").expect("write");
    node.run(&["sweep", "rerun"]).expect_ok("sweep");
    let head = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();

    // The working tree's JupyterLab has today's pin.
    let now = node
        .run(&["launch", "rerun", "--json"])
        .expect_ok("launch")
        .json();
    let (today, _, _) = six_version(&now, "now");
    assert_eq!(today, "1.17.0");

    // A restore while it runs is refused, and changes nothing.
    node.run(&["restore", "rerun", &v1])
        .expect_err("restore while running", "JupyterLab is running on rerun");
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]).trim(), head);

    // The old version in its own environment: the pin of then.
    let old = node
        .run(&["launch", "rerun", "--at", &v1[..8], "--json"])
        .expect_ok("launch --at")
        .json();
    assert_eq!(old["version"], v1.as_str(), "{old}");
    assert_ne!(old["container"], now["container"]);
    assert_ne!(old["image"], now["image"], "built from that version's spec");
    let (then, jupyter, kernel) = six_version(&old, "at-version");
    assert_eq!(then, "1.16.0");
    let read = jupyter.execute(&kernel, "print(open('/mnt/project/code/result.py').read())");
    assert!(read.stdout.contains("answer = 1"), "{read:?}");
    // Read-only: nothing run there can change that copy or the project.
    let write = jupyter.execute(
        &kernel,
        "open('/mnt/project/code/result.py', 'w').write('answer = 3')",
    );
    assert_eq!(write.status, "error", "{write:?}");
    std::thread::sleep(Duration::from_secs(3));
    let recorded = entries(&node, "rerun", "code");
    assert!(
        !recorded
            .iter()
            .any(|e| e.to_string().contains("at-version")),
        "cells on an old version are not recorded: {recorded:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("code/result.py")).expect("read"),
        "answer = 2\n"
    );
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]).trim(), head);
    assert_eq!(git(&dir, &["status", "--porcelain"]).trim(), "");
    let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
    assert_eq!(ps.as_array().map(Vec::len), Some(2), "{ps}");

    // Stopped, the project can go back to that version.
    node.run(&["stop", "rerun"]).expect_ok("stop");
    node.run(&["restore", "rerun", &v1])
        .expect_ok("restore once stopped");
    assert_eq!(
        std::fs::read_to_string(dir.join(".tandem/env/packages/pip_six.toml")).expect("pin"),
        git(
            &dir,
            &["show", &format!("{v1}:.tandem/env/packages/pip_six.toml")]
        )
    );
}

/// R in JupyterLab is Tandem's R workflow (RStudio Server is not packaged
/// for Debian): a cell run in the IRkernel is recorded with its code, text
/// output and ggplot figure exactly as a Python cell is.
#[test]
fn an_r_cell_is_recorded_with_its_output_and_ggplot_figure() {
    let (node, _cleanup) = docker_node("Ada");
    quiet_env_project(&node, "rlab", "r-tidyverse");
    let built = node
        .run(&["build", "rlab", "--json"])
        .expect_ok("build the R base")
        .json();
    assert!(image_exists("tandem-base/r-tidyverse:r1"), "{built}");
    let launched = node
        .run(&["launch", "rlab", "--json"])
        .expect_ok("launch")
        .json();
    let jupyter = jupyter_of(&launched);
    let kernel = jupyter.start_kernel_named("ir");
    wait_for(Duration::from_secs(30), || {
        let ps = node.run(&["ps", "--json"]).expect_ok("ps").json();
        (ps[0]["kernels_followed"].as_u64() >= Some(1)).then_some(())
    })
    .expect("the node follows the R kernel");

    let code = "library(ggplot2)\ncat('hello from R', R.version$major, '\\n')\nggplot(mtcars, aes(wt, mpg)) + geom_point()";
    let reply = jupyter.execute(&kernel, code);
    assert_eq!(reply.status, "ok", "{reply:?}");
    assert!(reply.stdout.contains("hello from R 4"), "{reply:?}");
    let entry = wait_for(Duration::from_secs(30), || {
        entries(&node, "rlab", "code")
            .into_iter()
            .find(|e| e["details"]["code"].as_str() == Some(code))
    })
    .expect("the R cell is recorded");
    let details = &entry["details"];
    assert!(
        details["output"]
            .as_str()
            .unwrap_or_default()
            .contains("hello from R 4"),
        "{entry}"
    );
    let figures = details["figures"].as_array().expect("figures");
    assert_eq!(figures.len(), 1, "the ggplot figure: {entry}");
    let token = format!("Bearer {}", node.token.as_deref().expect("token"));
    let (status, body) = node.http(
        "GET",
        &format!("/api/figures/{}", figures[0].as_str().expect("hash")),
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(status, 200);
    assert!(body.starts_with("\u{fffd}PNG"), "a PNG comes back");

    // An R error is recorded as the cell's error, like a Python one.
    let failing = "stop('no such site')";
    assert_eq!(jupyter.execute(&kernel, failing).status, "error");
    let entry = wait_for(Duration::from_secs(30), || {
        entries(&node, "rlab", "code")
            .into_iter()
            .find(|e| e["details"]["code"].as_str() == Some(failing))
    })
    .expect("the failing R cell is recorded");
    assert!(
        entry.to_string().contains("no such site"),
        "the error is kept: {entry}"
    );
}

/// nbformat's own verdict on a notebook, asked inside the container.
fn nbformat_validates(container: &str, path: &str) {
    let out = Command::new("docker")
        .args([
            "exec",
            container,
            "python",
            "-c",
            "import sys, nbformat; nbformat.validate(nbformat.read(sys.argv[1], as_version=4)); print('valid')",
            path,
        ])
        .output()
        .expect("docker exec");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid"),
        "nbformat rejects {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cell_source(notebook: &serde_json::Value, n: usize) -> String {
    match &notebook["cells"][n]["source"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(lines) => lines.iter().filter_map(|l| l.as_str()).collect(),
        other => panic!("cell {n} has no source: {other}"),
    }
}

/// A notebook written by JupyterLab on two nodes, edited in different
/// cells, merges cell by cell into a notebook nbformat accepts and
/// JupyterLab opens; the same cell edited on both is settled per cell.
#[test]
fn a_notebook_saved_by_jupyterlab_on_two_nodes_merges_cell_by_cell() {
    let (ada, _ada_cleanup) = docker_node("Ada");
    let bob = TestNode::started("Bob");
    let _bob_cleanup = Cleanup(bob.did());
    bob.connect(&ada);
    quiet_env_project(&ada, "merge", "python3-minimal");
    let ada_lab = ada
        .run(&["launch", "merge", "--json"])
        .expect_ok("launch")
        .json();
    let lab = jupyter_of(&ada_lab);
    let path = "code/analysis.ipynb";
    let cells: Vec<serde_json::Value> = ["a = 1\n", "b = 2\nprint(a + b)\n", "c = 3\n"]
        .iter()
        .enumerate()
        .map(|(n, source)| {
            serde_json::json!({"id": format!("cell-{n}"), "cell_type": "code", "metadata": {},
                "execution_count": null, "outputs": [], "source": source})
        })
        .collect();
    lab.save_notebook(
        path,
        &serde_json::json!({"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}),
    );
    // Run the cells, and save their outputs as the notebook editor does.
    let kernel = lab.start_kernel();
    let mut notebook = lab.get_notebook(path);
    for n in 0..3 {
        let reply = lab.execute(&kernel, &cell_source(&notebook, n));
        assert_eq!(reply.status, "ok");
        notebook["cells"][n]["execution_count"] = serde_json::json!(n + 1);
        notebook["cells"][n]["outputs"] =
            serde_json::json!([{"output_type": "stream", "name": "stdout", "text": reply.stdout}]);
    }
    lab.save_notebook(path, &notebook);
    ada.run(&["sweep", "merge"]).expect_ok("sweep");
    ada.run(&["share", "merge", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("merge")])
        .expect_ok("clone");
    bob.run(&["sync", "merge", "--auto", "off"])
        .expect_ok("auto off");
    let bob_view = bob
        .run(&["launch", "merge", "--json"])
        .expect_ok("bob launches from the cached image")
        .json();
    let bob_lab = jupyter_of(&bob_view);

    // Different cells, each saved by its own JupyterLab.
    let mut mine = lab.get_notebook(path);
    mine["cells"][0]["source"] = serde_json::json!("a = 10\n");
    lab.save_notebook(path, &mine);
    let mut theirs = bob_lab.get_notebook(path);
    theirs["cells"][2]["source"] = serde_json::json!("c = 30\n");
    bob_lab.save_notebook(path, &theirs);
    ada.run(&["sweep", "merge"]).expect_ok("sweep");
    bob.run(&["sweep", "merge"]).expect_ok("sweep");
    let merged = ada.run(&["sync", "merge"]);
    assert_eq!(merged.code, Some(0), "{}{}", merged.stdout, merged.stderr);
    let container = ada_lab["container"].as_str().expect("container");
    nbformat_validates(container, &format!("/mnt/project/{path}"));
    let opened = lab.get_notebook(path);
    assert_eq!(cell_source(&opened, 0), "a = 10\n");
    assert_eq!(cell_source(&opened, 2), "c = 30\n");
    assert_eq!(
        opened["cells"][1]["outputs"][0]["text"], notebook["cells"][1]["outputs"][0]["text"],
        "an untouched cell keeps its output"
    );
    bob.run(&["sync", "merge"]).expect_ok("bob gets the merge");

    // The same line of one cell: settled per cell, still a valid notebook.
    let mut mine = lab.get_notebook(path);
    mine["cells"][1]["source"] = serde_json::json!("b = 20\nprint(a + b)\n");
    lab.save_notebook(path, &mine);
    let mut theirs = bob_lab.get_notebook(path);
    theirs["cells"][1]["source"] = serde_json::json!("b = 200\nprint(a + b)\n");
    bob_lab.save_notebook(path, &theirs);
    ada.run(&["sweep", "merge"]).expect_ok("sweep");
    bob.run(&["sweep", "merge"]).expect_ok("sweep");
    assert_eq!(ada.run(&["sync", "merge"]).code, Some(3));
    let shown = ada
        .run(&["sync", "merge", "--show-conflicts", "--json"])
        .expect_ok("show")
        .json();
    assert_eq!(
        shown["files"][0]["cells"][0]["id"], "cell:cell-1",
        "{shown}"
    );
    ada.run(&[
        "sync",
        "merge",
        "--resolve",
        "ours",
        "--cell",
        &format!("{path}:cell:cell-1=theirs"),
    ])
    .expect_ok("take theirs for that cell");
    nbformat_validates(container, &format!("/mnt/project/{path}"));
    assert_eq!(
        cell_source(&lab.get_notebook(path), 1),
        "b = 200\nprint(a + b)\n"
    );
}
