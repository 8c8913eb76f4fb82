//! The file watcher against a hostile project tree: links out of the
//! project (to `/`, to `/usr`) and folders the node cannot read, present
//! when `tandem up` starts and added while it runs. The node must start,
//! watch only the project's own folders (counted from the kernel's view
//! of its inotify descriptors) and still pick up edits in the project.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tandem_e2e::{TestNode, wait_for};

/// Folders a fresh project has outside `.git` and `untracked/`, plus the
/// projects folder, with room for the few this test adds.
const FEW: usize = 24;

const NETWORK: [&str; 4] = [
    "--p2p-listen",
    "/ip4/127.0.0.1/tcp/0",
    "--no-mdns",
    "--no-dht",
];

/// The inotify watches process `pid` holds, as the kernel lists them in
/// `/proc/PID/fdinfo` (one `inotify wd:` line per watch).
fn inotify_watches(pid: u32) -> usize {
    let mut count = 0;
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).expect("the node's descriptors") {
        let fd = fd.expect("descriptor entry");
        let is_inotify = fs::read_link(fd.path())
            .is_ok_and(|target| target.to_string_lossy() == "anon_inode:inotify");
        if !is_inotify {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        count += info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count();
    }
    count
}

/// Waits until an activity entry of `project` names `file`.
fn wait_for_entry(node: &TestNode, project: &str, file: &str) {
    let found = wait_for(Duration::from_secs(20), || {
        let run = node
            .run(&["activity", project, "--json", "--limit", "1000"])
            .expect_ok("tandem activity");
        run.json()
            .as_array()
            .is_some_and(|list| {
                list.iter()
                    .any(|e| e["message"].as_str().is_some_and(|m| m.contains(file)))
            })
            .then_some(())
    });
    assert!(
        found.is_some(),
        "the watcher never had {file} swept into {project}:\n{}",
        node.run(&["activity", project]).stdout
    );
}

#[test]
fn links_out_of_the_project_are_never_watched() {
    let mut node = TestNode::with_identity("Ada");
    node.run(&["project", "create", "survey"])
        .expect_ok("project create");
    let dir = node.project_dir("survey");
    symlink("/usr", dir.join("code/usr")).expect("link to /usr");
    symlink("/", dir.join("input/root")).expect("link to /");
    symlink(&dir, dir.join("output/loop")).expect("link to the project itself");

    node.start();
    let pid = node.pid().expect("running");
    let watches = inotify_watches(pid);
    assert!(
        (1..=FEW).contains(&watches),
        "the node holds {watches} inotify watches for one fresh project"
    );

    // Edits in the project are still picked up, in folders that existed
    // at start and in one made afterwards (watched once it appears).
    fs::write(dir.join("code/analysis.py"), "print('hello')\n").expect("edit");
    wait_for_entry(&node, "survey", "analysis.py");
    fs::create_dir(dir.join("code/models")).expect("mkdir");
    std::thread::sleep(Duration::from_secs(2));
    fs::write(dir.join("code/models/fit.py"), "fit()\n").expect("edit in new folder");
    wait_for_entry(&node, "survey", "fit.py");

    // Links made while the node runs, and a folder holding one moved in
    // from outside, add no watch beyond the moved folder itself.
    symlink("/usr", dir.join("code/models/usr")).expect("link");
    let outside = tempfile::tempdir_in(node.home()).expect("tempdir");
    fs::create_dir(outside.path().join("moved")).expect("mkdir");
    symlink("/usr", outside.path().join("moved/usr")).expect("link");
    fs::write(outside.path().join("moved/notes.txt"), "moved in\n").expect("write");
    fs::rename(outside.path().join("moved"), dir.join("input/moved")).expect("move in");
    wait_for_entry(&node, "survey", "notes.txt");
    let watches = inotify_watches(pid);
    assert!(
        watches <= FEW,
        "links added at run time raised the watches to {watches}"
    );

    // A project made while the node runs is watched too.
    node.run(&["project", "create", "second"])
        .expect_ok("project create");
    std::thread::sleep(Duration::from_secs(1));
    fs::write(
        node.project_dir("second").join("code/second.py"),
        "print(2)\n",
    )
    .expect("edit");
    wait_for_entry(&node, "second", "second.py");
    assert!(node.stop(), "the node exits cleanly");
}

/// What to run the node under so that a mode-000 folder is unreadable to
/// it as it is to a normal user: as root, `setpriv` without the
/// capabilities that let root read any folder; otherwise nothing.
fn without_read_override() -> Vec<&'static str> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return vec![];
    }
    let drop = "-dac_override,-dac_read_search";
    vec!["setpriv", "--inh-caps", drop, "--bounding-set", drop, "--"]
}

/// `command` (a [`TestNode::command`]) run under `prefix`.
fn wrapped(prefix: &[&str], command: Command) -> Command {
    let Some((program, args)) = prefix.split_first() else {
        return command;
    };
    let mut wrapped = Command::new(program);
    wrapped
        .args(args)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped.stdin(std::process::Stdio::null());
    wrapped
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn unreadable_folders_do_not_stop_the_node() {
    let mut node = TestNode::with_identity("Ada");
    node.run(&["project", "create", "survey"])
        .expect_ok("project create");
    let dir = node.project_dir("survey");
    let locked = dir.join("input/locked");
    fs::create_dir_all(locked.join("inner")).expect("mkdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret");
    fs::create_dir_all(secret.join("inner")).expect("mkdir");
    symlink(&secret, dir.join("code/secret")).expect("link to an unreadable folder");
    chmod(&locked, 0o000);
    chmod(&secret, 0o000);

    // The node really cannot read them (else this test proves nothing).
    let prefix = without_read_override();
    let mut ls = Command::new("ls");
    ls.arg(&locked);
    let listed = wrapped(&prefix, ls).output().expect("run ls");
    assert!(
        !listed.status.success(),
        "the folder is readable to the node's credentials"
    );

    let command = wrapped(&prefix, node.command());
    node.start_command(command, &NETWORK);
    let pid = node.pid().expect("running");
    let watches = inotify_watches(pid);
    assert!(
        (1..=FEW).contains(&watches),
        "the node holds {watches} inotify watches"
    );
    fs::write(dir.join("code/analysis.py"), "print('hello')\n").expect("edit");
    wait_for_entry(&node, "survey", "analysis.py");
    assert!(node.stop(), "the node exits cleanly");
    chmod(&locked, 0o755);
    chmod(&secret, 0o755);
}
