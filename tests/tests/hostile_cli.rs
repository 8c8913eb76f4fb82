//! The CLI and its home on the user's own machine: a reader that closes
//! the output pipe early (`tandem … | head -1`), and other users of the
//! machine, who must not be able to enter `$TANDEM_HOME`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tandem_e2e::TestNode;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_closed_stdout_ends_the_cli_quietly_with_exit_code_0() {
    let node = TestNode::with_identity("Ada");
    node.run(&["project", "create", "survey"])
        .expect_ok("project create");
    for i in 0..30 {
        node.run(&["note", "survey", &format!("note {i}")])
            .expect_ok("note");
    }
    for args in [
        &["id"][..],
        &["project", "show", "survey"],
        &["project", "show", "survey", "--json"],
        &["activity", "survey", "--limit", "1000"],
    ] {
        // The pipe's reading end is closed before the CLI starts, so its
        // first write fails, as behind `head -1` once head has exited.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = node
            .command()
            .args(args)
            .stdout(writer)
            .output()
            .expect("run tandem");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(0),
            "tandem {args:?} with a closed stdout: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "tandem {args:?} with a closed stdout wrote: {stderr}"
        );
    }
}

#[test]
fn the_home_is_private_to_its_user() {
    // A home that does not exist yet is made 0700, whatever the umask.
    let outside = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let fresh = outside.path().join("nested/home");
    let node = TestNode::new();
    let init = node
        .command()
        .env("TANDEM_HOME", &fresh)
        .args(["init", "--name", "Ada", "--email", "ada@example.org"])
        .output()
        .expect("run tandem");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert_eq!(mode(&fresh), 0o700, "a new home");

    // One that other users may enter is tightened, and the user is told.
    let node = TestNode::with_identity("Bob");
    fs::set_permissions(node.home(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let id = node.run(&["id"]).expect_ok("tandem id");
    assert_eq!(mode(node.home()), 0o700, "an existing home");
    assert!(
        id.stderr.contains("now mode 0700"),
        "the user is told: {}",
        id.stderr
    );
    let again = node.run(&["id"]).expect_ok("tandem id");
    assert!(
        !again.stderr.contains("0700"),
        "told only once: {}",
        again.stderr
    );
}
