use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;

/// A project folder beside a folder outside it holding a secret.
struct Fixture {
    _top: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let top = tempfile::tempdir().expect("tempdir");
    let root = top.path().join("project");
    let outside = top.path().join("outside");
    std::fs::create_dir_all(root.join("input/sub")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("secret"), b"secret").expect("write");
    std::fs::write(root.join("input/sub/file.txt"), b"inside").expect("write");
    Fixture {
        _top: top,
        root,
        outside,
    }
}

fn both(root: &Path) -> [Beneath; 2] {
    [
        Beneath::open(root).expect("open"),
        Beneath::open_walking(root).expect("open"),
    ]
}

fn outside_untouched(f: &Fixture) {
    let names: Vec<_> = std::fs::read_dir(&f.outside)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    assert_eq!(
        std::fs::read(f.outside.join("secret")).expect("read"),
        b"secret"
    );
}

#[test]
fn ordinary_paths_work() {
    let f = fixture();
    for b in both(&f.root) {
        let (mut file, entry) = b
            .open_file("input/sub/file.txt")
            .expect("open")
            .expect("exists");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read");
        assert_eq!(text, "inside");
        assert_eq!(entry.size, 6);
        assert!(b.lstat("input/nothing").expect("lstat").is_none());
        assert!(b.lstat("nothing/at/all").expect("lstat").is_none());
        b.write("output/new/deep/a.txt", b"a", WriteOptions::default())
            .expect("write");
        b.write(
            "output/new/deep/a.txt",
            b"b",
            WriteOptions {
                mode: Some(0o444),
                sync: true,
            },
        )
        .expect("replace");
        assert_eq!(
            std::fs::read(f.root.join("output/new/deep/a.txt")).expect("read"),
            b"b"
        );
        assert!(b.remove_file("output/new/deep/a.txt").expect("remove"));
        assert!(!b.remove_file("output/new/deep/a.txt").expect("remove"));
        let tree = b.read_tree("input", 100).expect("tree");
        assert_eq!(
            tree.files,
            vec![("input/sub/file.txt".to_owned(), Some(b"inside".to_vec()))]
        );
        // No temporary file is left behind.
        let left: Vec<_> = b.list("output/new/deep").expect("list");
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn climbing_and_absolute_paths_leave_the_project() {
    let f = fixture();
    let absolute = f.outside.join("secret").display().to_string();
    for b in both(&f.root) {
        for bad in [
            "../outside/secret",
            "input/../../outside/secret",
            "..",
            absolute.as_str(),
        ] {
            for result in [
                b.lstat(bad).map(|_| ()),
                b.open_file(bad).map(|_| ()),
                b.write(bad, b"x", WriteOptions::default()),
                b.remove_file(bad).map(|_| ()),
                b.create_dir_all(bad).map(|_| ()),
            ] {
                let e = result.expect_err(bad);
                assert!(matches!(e, BeneathError::Leaves { .. }), "{bad}: {e}");
                assert!(e.to_string().contains("leaves the project"), "{e}");
            }
        }
    }
    outside_untouched(&f);
}

#[test]
fn a_link_at_any_position_is_refused() {
    let f = fixture();
    // input/evil -> outside (a folder link), input/sub/key -> the
    // secret (a file link), and an absolute and a relative variant.
    symlink(&f.outside, f.root.join("input/evil")).expect("link");
    symlink("../../outside", f.root.join("input/sub/up")).expect("link");
    symlink(f.outside.join("secret"), f.root.join("input/sub/key")).expect("link");
    symlink(&f.outside, f.root.join("top")).expect("link");
    for b in both(&f.root) {
        for (path, link) in [
            ("input/evil/secret", "input/evil"),
            ("input/evil/new/deeper", "input/evil"),
            ("input/sub/up/secret", "input/sub/up"),
            ("input/sub/key", "input/sub/key"),
            ("top/secret", "top"),
        ] {
            let e = b.open_file(path).expect_err(path);
            assert!(
                matches!(&e, BeneathError::Symlink { link: l, .. } if l == link),
                "{path}: {e}"
            );
            assert!(e.to_string().contains("is a symbolic link"), "{e}");
            assert!(e.is_refusal());
            // A link as the last component is not followed either: it
            // is seen (lstat), replaced or removed itself (below).
            if path != "input/sub/key" {
                let e = b
                    .write(path, b"pwned", WriteOptions::default())
                    .expect_err(path);
                assert!(e.is_refusal(), "{path}: {e}");
                let e = b.lstat(path).expect_err(path);
                assert!(e.is_refusal(), "{path}: {e}");
                let e = b.remove_file(path).expect_err(path);
                assert!(e.is_refusal(), "{path}: {e}");
            }
            let e = b.create_dir_all(path).expect_err(path);
            assert!(e.is_refusal(), "{path}: {e}");
        }
        // The link itself is seen as a link, and removing it removes
        // only the link.
        assert_eq!(
            b.lstat("input/sub/key").expect("lstat").map(|e| e.kind),
            Some(Kind::Symlink)
        );
        let tree = b.read_tree("input", 1 << 20).expect("tree");
        assert_eq!(
            tree.links,
            vec!["input/evil", "input/sub/key", "input/sub/up"]
        );
        assert_eq!(tree.files.len(), 1);
        // Writing over a link replaces the link, never its target.
        b.write("input/sub/key", b"mine", WriteOptions::default())
            .expect("replace");
        assert_eq!(
            b.lstat("input/sub/key").expect("lstat").map(|e| e.kind),
            Some(Kind::File)
        );
        symlink(f.outside.join("secret"), f.root.join("input/sub/key2")).expect("link");
        let (staging_dir, staging) = {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("staged");
            std::fs::write(&path, b"staged").expect("write");
            (dir, path)
        };
        b.rename_into(&staging, "input/sub/key2")
            .expect("rename over a link");
        drop(staging_dir);
        std::fs::remove_file(f.root.join("input/sub/key")).expect("rm");
        std::fs::remove_file(f.root.join("input/sub/key2")).expect("rm");
        symlink(f.outside.join("secret"), f.root.join("input/sub/key")).expect("link");
        assert!(b.remove_file("input/sub/key").expect("remove the link"));
        symlink(f.outside.join("secret"), f.root.join("input/sub/key")).expect("link");
    }
    outside_untouched(&f);
}

#[test]
fn a_link_swapped_in_after_the_folder_was_opened_is_not_followed() {
    let f = fixture();
    for b in both(&f.root) {
        // The folder is opened (and cached) while it is a real folder…
        b.create_dir_all("input/swap").expect("mkdir");
        assert!(b.lstat("input/swap/x").expect("lstat").is_none());
        // …then an attacker moves it away and puts a link in its place.
        std::fs::rename(f.root.join("input/swap"), f.root.join("input/moved")).expect("mv");
        symlink(&f.outside, f.root.join("input/swap")).expect("link");
        b.write("input/swap/planted", b"x", WriteOptions::default())
            .expect("written into the folder that was opened");
        assert!(f.root.join("input/moved/planted").is_file());
        // A fresh lookup sees the link and refuses it.
        let fresh = Beneath::open(&f.root).expect("open");
        let e = fresh
            .write("input/swap/planted", b"x", WriteOptions::default())
            .expect_err("link");
        assert!(
            e.to_string().contains("input/swap is a symbolic link"),
            "{e}"
        );
        std::fs::remove_file(f.root.join("input/swap")).expect("rm");
        std::fs::remove_dir_all(f.root.join("input/moved")).expect("rm");
    }
    outside_untouched(&f);
}

#[test]
fn a_file_opened_for_reading_stays_the_file_that_was_checked() {
    let f = fixture();
    let b = Beneath::open(&f.root).expect("open");
    let (mut file, _) = b
        .open_file("input/sub/file.txt")
        .expect("open")
        .expect("exists");
    std::fs::remove_file(f.root.join("input/sub/file.txt")).expect("rm");
    symlink(f.outside.join("secret"), f.root.join("input/sub/file.txt")).expect("link");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("read");
    assert_eq!(text, "inside");
    assert!(
        b.open_file("input/sub/file.txt")
            .expect_err("link now")
            .is_refusal()
    );
}

#[test]
fn special_files_and_oversized_reads_are_refused() {
    let f = fixture();
    let b = Beneath::open(&f.root).expect("open");
    assert!(matches!(
        b.open_file("input/sub"),
        Err(BeneathError::NotAFile { .. })
    ));
    assert!(matches!(
        b.read("input/sub/file.txt", 3),
        Err(BeneathError::TooLarge { .. })
    ));
    assert!(matches!(
        b.write("input/sub/file.txt/x", b"x", WriteOptions::default()),
        Err(BeneathError::NotAFolder { .. })
    ));
}
