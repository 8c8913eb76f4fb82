//! The web UI in a real headless Chromium, against real `tandem up`
//! processes: the workflow a researcher follows without a terminal, and
//! hostile names and text that must render as text.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them these
//! tests fail, saying so. Screenshots of every page are saved under the
//! test's target directory (`web-ui-screenshots/`).

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tandem_e2e::TestNode;
use tandem_e2e::browser::Browser;

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-ui-screenshots");
    fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Waits for the page to have navigated to a path ending in `suffix`.
fn wait_for_path(browser: &Browser, suffix: &str) {
    browser.wait_until(
        Duration::from_secs(20),
        &format!("a page ending in {suffix}"),
        |b| {
            b.current_url()
                .split('?')
                .next()
                .unwrap_or_default()
                .ends_with(suffix)
        },
    );
}

/// Whether the page's text (including collapsed details) contains `needle`.
fn page_text_has(browser: &Browser, css: &str, needle: &str) -> bool {
    browser
        .execute(
            "const el = document.querySelector(arguments[0]); return !!el && el.textContent.includes(arguments[1]);",
            vec![json!(css), json!(needle)],
        )
        .as_bool()
        .unwrap_or(false)
}

#[test]
fn a_researcher_works_through_the_whole_workflow_in_the_browser() {
    let shots = screenshots();
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    // Adding a package looks its versions up in the base image; with no
    // registry in reach, its Debian base comes from Debian's packages.
    ada.run(&["bases", "bootstrap"])
        .expect_ok("bases bootstrap");
    let browser = Browser::start();

    // Projects: create one from the form, with a description and a base.
    browser.goto(&ada.web_url());
    browser.screenshot(&shots.join("01-projects-empty.png"));
    browser
        .find("#new-project input[name=name]")
        .type_text("soil-survey");
    browser
        .find("#new-project input[name=description]")
        .type_text("pH along the river transect");
    browser.find("#new-project button[type=submit]").click();
    wait_for_path(&browser, "/p/soil-survey");
    browser.wait_for_text("h1", "soil-survey", Duration::from_secs(10));
    browser.screenshot(&shots.join("02-overview.png"));

    // Files: upload a file through the file picker; it appears in the tree
    // and in the activity feed.
    let upload_dir = tempfile::tempdir().expect("temp dir");
    let upload = upload_dir.path().join("ph-readings.csv");
    fs::write(&upload, "site,ph\nA,6.8\nB,5.9\n").expect("write upload");
    browser.goto(&format!("{}/p/soil-survey/files", ada.base_url()));
    browser.find("#upload input[type=file]").upload(&upload);
    browser.wait_until(
        Duration::from_secs(20),
        "the uploaded file in the tree",
        |b| {
            b.try_find(r#"li[data-path="input/ph-readings.csv"]"#)
                .is_some()
        },
    );
    assert!(
        ada.project_dir("soil-survey")
            .join("input/ph-readings.csv")
            .is_file(),
        "the upload landed in the project folder"
    );
    browser.screenshot(&shots.join("03-files.png"));
    browser.goto(&format!("{}/p/soil-survey/activity", ada.base_url()));
    browser.wait_until(Duration::from_secs(10), "the upload in the feed", |b| {
        page_text_has(b, "#feed", "input/ph-readings.csv")
    });

    // A note with tags, from the Activity page.
    browser
        .find("#add-note textarea[name=text]")
        .type_text("Site B is more acidic than expected");
    browser
        .find("#add-note input[name=tags]")
        .type_text("ph, site-b");
    browser.find("#add-note button[type=submit]").click();
    browser.wait_for_text(
        "#feed .entry .message",
        "more acidic",
        Duration::from_secs(10),
    );
    browser.screenshot(&shots.join("04-activity.png"));

    // Environment: add a pinned package (the lookup runs in the base image,
    // built here if this machine has not built it yet).
    browser.goto(&format!("{}/p/soil-survey/env", ada.base_url()));
    browser.find("#packages select[name=manager]").click();
    browser
        .find("#packages input[name=packages]")
        .type_text("six==1.16.0");
    browser.find("#packages button[type=submit]").click();
    browser.wait_until(Duration::from_secs(600), "the package pinned", |b| {
        let failed = b
            .find_all("#packages .status.bad")
            .iter()
            .map(|s| s.text())
            .find(|t| !t.is_empty());
        assert_eq!(failed, None, "adding the package failed");
        b.try_find(r#"tr[data-package="six"]"#).is_some()
    });
    browser.wait_for_text(
        r#"tr[data-package="six"]"#,
        "1.16.0",
        Duration::from_secs(5),
    );
    browser.screenshot(&shots.join("05-environment.png"));

    // Members: grant Bob the writer role, confirming the dialog.
    browser.goto(&format!("{}/p/soil-survey/members", ada.base_url()));
    browser
        .find("#grant input[name=peer]")
        .type_text(&bob.did());
    browser.find("#grant button[type=submit]").click();
    browser.wait_until(Duration::from_secs(5), "the confirmation dialog", |b| {
        b.alert_text().is_some()
    });
    browser.accept_alert();
    browser.wait_until(Duration::from_secs(20), "Bob listed as a member", |b| {
        b.try_find(&format!(r#"tr[data-member="{}"]"#, bob.did()))
            .is_some()
    });
    browser.screenshot(&shots.join("06-members.png"));

    // Bob's browser: the project is offered to him; he clones it.
    let bob_browser = Browser::start();
    bob_browser.goto(&bob.web_url());
    bob_browser.wait_until(Duration::from_secs(30), "Ada's offer on Bob's page", |b| {
        if b.try_find("#offers")
            .is_some_and(|o| o.text().contains("soil-survey"))
        {
            return true;
        }
        b.goto(&format!("{}/", bob.base_url()));
        false
    });
    bob_browser.screenshot(&shots.join("07-offered.png"));
    bob_browser.find("#offers button[data-api]").click();
    wait_for_path(&bob_browser, "/p/soil-survey");
    assert!(
        bob.project_dir("soil-survey")
            .join("input/ph-readings.csv")
            .is_file(),
        "the clone brought Ada's file"
    );

    // Bob watches the activity page; Ada adds a note; it appears on Bob's
    // page without a reload (Server-Sent Events).
    bob_browser.goto(&format!("{}/p/soil-survey/activity", bob.base_url()));
    bob_browser.find("#feed");
    bob_browser.execute("window.__stayed = true; return true;", vec![]);
    browser.goto(&format!("{}/p/soil-survey/activity", ada.base_url()));
    browser
        .find("#add-note textarea[name=text]")
        .type_text("Resampled site B today");
    browser.find("#add-note button[type=submit]").click();
    bob_browser.wait_for_text(
        "#feed .entry .message",
        "Resampled site B",
        Duration::from_secs(30),
    );
    let stayed = bob_browser.execute("return window.__stayed === true;", vec![]);
    assert_eq!(
        stayed,
        json!(true),
        "the entry arrived live, without a reload"
    );
    bob_browser.screenshot(&shots.join("08-live-entry.png"));

    // Bob syncs by hand from the Sync page and sees where he stands.
    bob_browser.goto(&format!("{}/p/soil-survey/sync", bob.base_url()));
    bob_browser.find("#sync-now button[data-api]").click();
    bob_browser.wait_until(Duration::from_secs(30), "the sync result", |b| {
        b.find_all("#sync-now .status.ok")
            .iter()
            .any(|s| !s.text().is_empty())
    });
    bob_browser.screenshot(&shots.join("09-sync.png"));

    // The remaining pages render, on a laptop and on a phone.
    for (page, file) in [
        ("/peers", "10-peers.png"),
        ("/datasets", "11-datasets.png"),
        ("/settings", "12-settings.png"),
    ] {
        browser.goto(&format!("{}{page}", ada.base_url()));
        browser.find("main section.card");
        browser.screenshot(&shots.join(file));
    }
    assert_eq!(
        browser.find("#identity input[name=name]").property("value"),
        json!("Ada"),
        "the settings show the node's name"
    );
    browser.set_window_size(360, 800);
    for (page, file) in [
        ("/", "13-phone-projects.png"),
        ("/p/soil-survey/activity", "14-phone-activity.png"),
    ] {
        browser.goto(&format!("{}{page}", ada.base_url()));
        browser.find("main section.card");
        let overflow = browser.execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        );
        assert_eq!(
            overflow,
            json!(true),
            "{page} fits 360 px without sideways scrolling"
        );
        browser.screenshot(&shots.join(file));
    }
}

#[test]
fn hostile_names_notes_files_and_notebooks_render_inert() {
    let shots = screenshots();
    let ada = TestNode::started("Ada");
    let attack = |n: u32| {
        format!("<script>window.__xss={n}</script><img src=x onerror=\"window.__xss={n}\">")
    };
    ada.run(&["project", "create", "lab", "--description", &attack(1)])
        .expect_ok("create");
    ada.run(&["note", "lab", &attack(2), "--tag", "x"])
        .expect_ok("note");
    let dir = ada.project_dir("lab");
    fs::write(
        dir.join("input")
            .join("<img src=x onerror=window.__xss=3>.csv"),
        "a\n1\n",
    )
    .expect("hostile file name");
    fs::write(
        dir.join("code/README.md"),
        format!("# Lab\n\n{}\n\n[x](javascript:window.__xss=5)\n", attack(4)),
    )
    .expect("README");
    let notebook = json!({
        "cells": [
            {"cell_type": "markdown", "source": attack(6)},
            {"cell_type": "code", "source": "x", "execution_count": 1, "outputs": [
                {"output_type": "display_data", "data": {"text/html": attack(7)}},
                {"output_type": "display_data", "data": {"image/svg+xml": "<svg onload=\"window.__xss=8\"></svg>"}}
            ]}
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5
    });
    fs::write(dir.join("code/analysis.ipynb"), notebook.to_string()).expect("notebook");
    ada.run(&["sweep", "lab"]).expect_ok("sweep");

    let browser = Browser::start();
    browser.goto(&ada.web_url());
    for (page, file) in [
        ("/", "xss-projects.png"),
        ("/p/lab", "xss-overview.png"),
        ("/p/lab/files", "xss-files.png"),
        ("/p/lab/activity", "xss-activity.png"),
        ("/p/lab/notebook/code/analysis.ipynb", "xss-notebook.png"),
    ] {
        browser.goto(&format!("{}{page}", ada.base_url()));
        browser.find("main section.card");
        // Give images a moment to fail and handlers a chance to run.
        std::thread::sleep(Duration::from_millis(300));
        let ran = browser.execute(
            "return window.__xss === undefined ? null : window.__xss;",
            vec![],
        );
        assert_eq!(ran, json!(null), "script ran on {page}");
        browser.screenshot(&shots.join(file));
    }
    // The text is shown as text, not dropped.
    browser.goto(&format!("{}/p/lab/activity", ada.base_url()));
    browser.wait_for_text(
        "#feed .entry .message",
        "<script>window.__xss=2</script>",
        Duration::from_secs(5),
    );
    browser.goto(&format!("{}/p/lab/files", ada.base_url()));
    browser.wait_for_text(
        "[data-section=input]",
        "<img src=x onerror=window.__xss=3>.csv",
        Duration::from_secs(5),
    );
    browser.goto(&format!("{}/", ada.base_url()));
    browser.wait_for_text(
        "#projects",
        "<script>window.__xss=1</script>",
        Duration::from_secs(5),
    );

    // An API call riding on the cookie without the page's CSRF token is
    // refused, even from the right origin.
    let cookie = format!("tandem_token={}", ada.token.as_deref().expect("token"));
    let origin = ada.base_url();
    let host = origin.trim_start_matches("http://").to_owned();
    let (status, body) = ada.http(
        "POST",
        "/api/projects/lab/notes",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Host", &host),
            ("Content-Type", "application/json"),
        ],
        r#"{"text":"forged"}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");

    // Uploads and downloads stay inside the project's folders.
    let bearer = format!("Bearer {}", ada.token.as_deref().expect("token"));
    for path in [
        "/api/projects/lab/upload/input/../../escape.txt",
        "/api/projects/lab/upload/.git/hooks/post-commit",
        "/api/projects/lab/upload/input",
        "/api/projects/lab/raw/input/../../../identity.key",
        "/api/projects/lab/raw/.tandem/project.toml",
    ] {
        let method = if path.contains("/upload/") {
            "PUT"
        } else {
            "GET"
        };
        let (status, body) = ada.http(method, path, &[("Authorization", &bearer)], "x");
        assert_eq!(status, 400, "{method} {path}: {body}");
    }
    assert!(!ada.home().join("projects/escape.txt").exists());
    assert!(!dir.join(".git/hooks/post-commit").exists());
}

#[test]
fn a_researcher_browses_compares_and_restores_a_version_in_the_browser() {
    let shots = screenshots();
    let ada = TestNode::started("Ada");
    tandem_e2e::quiet_project(&ada, "transect");
    let dir = ada.project_dir("transect");
    fs::write(dir.join("code/plot.py"), "print('first')\n").expect("write");
    ada.run(&["sweep", "transect"]).expect_ok("sweep v1");
    let v1 = tandem_e2e::git(&dir, &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    fs::write(dir.join("code/plot.py"), "print('second')\n").expect("write");
    fs::write(dir.join("code/extra.py"), "x = 2\n").expect("write");
    ada.run(&["sweep", "transect"]).expect_ok("sweep v2");
    let browser = Browser::start();

    // From the activity entry of the first version to that version's page.
    // The first visit carries the token; the cookie does from then on.
    browser.goto(&ada.web_url());
    browser.goto(&format!("{}/p/transect/activity", ada.base_url()));
    browser
        .find(&format!(r#"a[href="/p/transect/v/{v1}"]"#))
        .click();
    wait_for_path(&browser, &format!("/v/{v1}"));
    browser.wait_for_text("#version h2", &v1[..7], Duration::from_secs(10));
    assert!(
        browser
            .try_find(r#"li[data-path="code/plot.py"]"#)
            .is_some(),
        "the version's files are listed"
    );
    assert!(
        browser
            .try_find(r#"li[data-path="code/extra.py"]"#)
            .is_none(),
        "a file added later is not"
    );
    browser.screenshot(&shots.join("20-version.png"));

    // Compare it with now: the text diff and the added file.
    browser.find("#version a[href*=\"/compare?from=\"]").click();
    wait_for_path(&browser, "/compare");
    browser.wait_until(Duration::from_secs(10), "the diff", |b| {
        page_text_has(b, "#compare-files", "-print('first')")
            && page_text_has(b, "#compare-files", "+print('second')")
    });
    assert!(
        browser
            .try_find(r#"#compare-files [data-path="code/extra.py"][data-action="added"]"#)
            .is_some(),
        "the added file is shown"
    );
    browser.screenshot(&shots.join("21-compare.png"));

    // Restore it: the button says what it will do, then the feed shows it.
    browser.back();
    wait_for_path(&browser, &format!("/v/{v1}"));
    browser
        .find("#version button[data-api$=\"/restore\"]")
        .click();
    browser.wait_until(Duration::from_secs(5), "the confirmation dialog", |b| {
        b.alert_text().is_some()
    });
    let question = browser.alert_text().unwrap_or_default();
    assert!(
        question.contains("as a new version") && question.contains("Nothing is lost"),
        "{question}"
    );
    browser.accept_alert();
    wait_for_path(&browser, "/p/transect/activity");
    browser.wait_until(Duration::from_secs(10), "the restore in the feed", |b| {
        page_text_has(b, "#feed", "Restored the version of")
    });
    browser.screenshot(&shots.join("22-restored.png"));
    assert_eq!(
        fs::read_to_string(dir.join("code/plot.py")).expect("read"),
        "print('first')\n"
    );
    assert!(!dir.join("code/extra.py").exists());
}

/// A notebook cell in conflict is shown on the Sync page with both
/// versions side by side, and settled there per cell.
#[test]
fn a_notebook_cell_conflict_is_settled_per_cell_on_the_sync_page() {
    let shots = screenshots();
    let ada = TestNode::started("Ada");
    let bob = TestNode::started("Bob");
    bob.connect(&ada);
    tandem_e2e::quiet_project(&ada, "nb");
    let notebook = |sources: [&str; 2]| {
        json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
            "cells": sources.iter().enumerate().map(|(n, s)| json!({
                "id": format!("c{n}"), "cell_type": "code", "metadata": {},
                "execution_count": null, "outputs": [], "source": s})).collect::<Vec<_>>()})
        .to_string()
    };
    let path = "code/fit.ipynb";
    fs::write(
        ada.project_dir("nb").join(path),
        notebook(["a = 1\n", "fit(a)\n"]),
    )
    .expect("write");
    ada.run(&["sweep", "nb"]).expect_ok("sweep");
    ada.run(&["share", "nb", &bob.did(), "--role", "writer"])
        .expect_ok("share");
    bob.run(&["project", "clone", &ada.project_id("nb")])
        .expect_ok("clone");
    bob.run(&["sync", "nb", "--auto", "off"])
        .expect_ok("auto off");
    fs::write(
        ada.project_dir("nb").join(path),
        notebook(["a = 2\n", "fit(a)\n"]),
    )
    .expect("write");
    fs::write(
        bob.project_dir("nb").join(path),
        notebook(["a = 3\n", "fit(a, robust=True)\n"]),
    )
    .expect("write");
    ada.run(&["sweep", "nb"]).expect_ok("sweep");
    bob.run(&["sweep", "nb"]).expect_ok("sweep");
    assert_eq!(ada.run(&["sync", "nb"]).code, Some(3));

    let browser = Browser::start();
    browser.goto(&ada.web_url());
    browser.goto(&format!("{}/p/nb/sync", ada.base_url()));
    let conflict = r#"#cell-choices .cells-conflict[data-conflict="cell:c0"]"#;
    browser.wait_for_text(conflict, "a = 3", Duration::from_secs(10));
    assert!(
        page_text_has(&browser, conflict, "a = 2"),
        "mine beside theirs"
    );
    assert!(
        browser
            .try_find(r#"#cell-choices .cells-conflict[data-conflict="cell:c1"]"#)
            .is_none(),
        "the cell only Bob changed is merged, not asked about"
    );
    browser.screenshot(&shots.join("30-cell-conflict.png"));
    browser
        .find(&format!(r#"{conflict} input[value="theirs"]"#))
        .click();
    browser.find("#cell-choices button[type=submit]").click();
    browser.wait_until(Duration::from_secs(5), "the confirmation dialog", |b| {
        b.alert_text().is_some()
    });
    browser.accept_alert();
    browser.wait_until(Duration::from_secs(15), "the merge", |_| {
        fs::read_to_string(ada.project_dir("nb").join(path))
            .is_ok_and(|t| t.contains("a = 3") && t.contains("robust=True"))
    });
    let merged: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(ada.project_dir("nb").join(path)).expect("read"))
            .expect("a notebook");
    assert_eq!(merged["cells"].as_array().map(Vec::len), Some(2));

    // The Files view links the notebook to its last change, as cells.
    browser.goto(&format!("{}/p/nb/notebook/{path}", ada.base_url()));
    browser.find("#last-change").click();
    let changed = browser.wait_for_text("ol.cell-deltas", "robust=True", Duration::from_secs(10));
    assert!(changed.contains("changed"), "a cell-level diff: {changed}");
    assert!(
        !browser.source().contains("\"nbformat\""),
        "cells, not the notebook's JSON"
    );
}
