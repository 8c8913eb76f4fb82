//! Environment drift against the real engine: a `%pip install` in a cell
//! and a `pip install` typed in a terminal (a `docker exec` as the
//! container's user, with a JupyterLab terminal open) are caught, recorded
//! and shown; **Pin it** on the Overview page pins the exact version and
//! the rebuilt image has it; Ignore keeps a package out; removing a pinned
//! package in the container is drift too; what the base installed never is.
//!
//! Needs Docker (and PyPI, as every build here does). Never skips: without
//! an engine it fails, saying so.

use std::time::Duration;

use serde_json::Value;
use tandem_e2e::browser::Browser;
use tandem_e2e::docker::{docker, docker_node, entries, jupyter_of, quiet_env_project};
use tandem_e2e::{TestNode, wait_for};

const PROJECT: &str = "drifting";

fn drift(node: &TestNode) -> Value {
    node.run(&["env", "drift", PROJECT, "--json"])
        .expect_ok("env drift")
        .json()
}

/// The drift item for `name`, once a check has reported it.
fn wait_for_item(node: &TestNode, name: &str, what: &str) -> Value {
    wait_for(Duration::from_secs(60), || {
        drift(node)["items"]
            .as_array()?
            .iter()
            .find(|item| item["name"] == name)
            .cloned()
    })
    .unwrap_or_else(|| panic!("{what}: no drift for {name} in {}", drift(node)))
}

/// `pip install` as a terminal in the container runs it: a `docker exec`
/// as the container's user.
fn install_colorama(container: &str) {
    docker(&[
        "exec",
        container,
        "pip",
        "install",
        "--no-deps",
        "colorama==0.4.6",
    ]);
}

fn names(report: &Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn drift_from_a_cell_and_a_terminal_is_caught_pinned_ignored_and_rebuilt() {
    let (node, _cleanup) = docker_node("Ada");
    quiet_env_project(&node, PROJECT, "python3-minimal");
    let view = node
        .run(&["launch", PROJECT, "--json"])
        .expect_ok("launch")
        .json();
    let container = view["container"].as_str().expect("container").to_owned();
    let jupyter = jupyter_of(&view);
    let kernel = jupyter.start_kernel();

    // What the base installed (JupyterLab and its dependencies) is never
    // drift: a first cell is checked and finds nothing.
    let first = jupyter.execute(&kernel, "x = 1");
    assert_eq!(first.status, "ok", "{first:?}");
    let checked = wait_for(Duration::from_secs(30), || {
        let report = drift(&node);
        report["checked_ms"].as_i64().map(|_| report)
    })
    .expect("a first check after the first cell");
    assert_eq!(checked["items"], serde_json::json!([]), "{checked}");
    assert_eq!(checked["watching"], true, "{checked}");
    assert!(checked["problem"].is_null(), "{checked}");

    // A cell installs another version of a package the base has (six
    // comes with JupyterLab's dependencies): drift, in words, and in the
    // feed.
    let install = jupyter.execute(&kernel, "%pip install six==1.16.0");
    assert_eq!(install.status, "ok", "{install:?}");
    let six = wait_for_item(&node, "six", "after %pip install");
    assert_eq!(six["kind"], "changed", "{six}");
    assert_eq!(six["found"], "1.16.0");
    assert_eq!(six["pin"], "pin");
    let image_has = six["expected"]
        .as_str()
        .expect("the image's version")
        .to_owned();
    assert_ne!(image_has, "1.16.0");
    let said =
        format!("six 1.16.0 in the running container, {image_has} in the environment's image");
    assert_eq!(six["description"], said.as_str());
    let recorded = wait_for(Duration::from_secs(20), || {
        entries(&node, PROJECT, "environment")
            .into_iter()
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("drift:"))
            })
    })
    .expect("a drift entry in the feed");
    assert_eq!(recorded["message"], format!("drift: {said}").as_str());
    let listed = node
        .run(&["env", "drift", PROJECT])
        .expect_ok("env drift")
        .stdout;
    assert!(listed.contains(&said), "{listed}");

    // A terminal-style install: no cell runs, but a terminal is open, so
    // the node looks every few seconds.
    let terminal = jupyter.open_terminal();
    install_colorama(&container);
    let colorama = wait_for_item(&node, "colorama", "after pip install in a terminal");
    assert_eq!(colorama["found"], "0.4.6");
    assert_eq!(
        colorama["description"],
        "colorama 0.4.6 installed in the running container, not in the project's environment"
    );

    // Ignore keeps it out, even when later checks see it again.
    let ignored = node
        .run(&["env", "drift", PROJECT, "--ignore", "colorama", "--json"])
        .expect_ok("ignore")
        .json();
    assert!(
        !names(&ignored["report"], "items").contains(&"colorama".to_owned()),
        "{ignored}"
    );
    assert_eq!(names(&ignored["report"], "ignored"), ["colorama"]);
    let again = jupyter.execute(&kernel, "y = 2");
    assert_eq!(again.status, "ok");
    std::thread::sleep(Duration::from_secs(6));
    let report = drift(&node);
    assert!(
        !names(&report, "items").contains(&"colorama".to_owned()),
        "{report}"
    );
    assert!(
        names(&report, "items").contains(&"six".to_owned()),
        "{report}"
    );
    jupyter.close_terminal(&terminal);

    // Nothing was pinned on its own.
    let dir = node.project_dir(PROJECT);
    let pin_file = dir.join(".tandem/env/packages/pip_six.toml");
    assert!(
        !pin_file.exists(),
        "nothing is pinned without the user's word"
    );

    // Pin it, as a person does: the banner on the Overview page.
    let browser = Browser::start();
    browser.goto(&node.web_url());
    browser.goto(&format!("{}/p/{PROJECT}", node.base_url()));
    let banner = browser.wait_for_text("#drift", &said, Duration::from_secs(10));
    assert!(
        !banner.contains("colorama"),
        "ignored drift is not shown: {banner}"
    );
    browser
        .find("#drift li[data-drift='pip:six'] button")
        .click();
    wait_for(Duration::from_secs(30), || pin_file.exists().then_some(()))
        .expect("Pin it wrote the pin");
    let pin = std::fs::read_to_string(&pin_file).expect("pin");
    assert!(pin.contains("version = \"1.16.0\""), "{pin}");
    browser.wait_until(Duration::from_secs(10), "the banner gone", |b| {
        b.try_find("#drift").is_none()
    });
    let pinned = entries(&node, PROJECT, "environment");
    assert!(
        pinned
            .iter()
            .any(|e| e["message"] == "Pinned from the running container: six 1.16.0"),
        "{pinned:?}"
    );
    // The next check agrees: the container has what the spec pins.
    let settle = jupyter.execute(&kernel, "z = 3");
    assert_eq!(settle.status, "ok");
    std::thread::sleep(Duration::from_secs(5));
    assert!(!names(&drift(&node), "items").contains(&"six".to_owned()));

    // The next launch builds the pin in.
    node.run(&["stop", PROJECT]).expect_ok("stop");
    let relaunched = node
        .run(&["launch", PROJECT, "--json"])
        .expect_ok("relaunch")
        .json();
    assert_ne!(relaunched["image"], view["image"], "a rebuilt image");
    let container = relaunched["container"]
        .as_str()
        .expect("container")
        .to_owned();
    let jupyter = jupyter_of(&relaunched);
    let kernel = jupyter.start_kernel();
    let has = jupyter.execute(&kernel, "import six; print(six.__version__)");
    assert_eq!(has.stdout.trim(), "1.16.0", "{has:?}");

    // Removing the pinned package in the container is drift as well.
    let _terminal = jupyter.open_terminal();
    docker(&["exec", &container, "pip", "uninstall", "-y", "six"]);
    let removed = wait_for_item(&node, "six", "after pip uninstall");
    assert_eq!(removed["kind"], "removed", "{removed}");
    assert_eq!(removed["pinned"], true);
    assert_eq!(removed["pin"], "unpin");
    assert_eq!(
        removed["description"],
        "six 1.16.0 pinned in the project's environment, removed from the running container"
    );
    // The earlier ignore still holds in the new container.
    install_colorama(&container);
    std::thread::sleep(Duration::from_secs(8));
    let report = drift(&node);
    assert!(
        !names(&report, "items").contains(&"colorama".to_owned()),
        "{report}"
    );
    node.run(&["env", "drift", PROJECT, "--pin", "nosuchpackage"])
        .expect_err("a package that has not drifted", "has not drifted");
}
