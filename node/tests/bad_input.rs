//! Bad input through the real binary: a clear error, a non-zero exit code,
//! and nothing half-written.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn tandem(home: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .env("TANDEM_HOME", home)
        .args(args)
        .output()
        .expect("run tandem");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn init(home: &Path) {
    let (ok, err) = tandem(
        home,
        &["init", "--name", "Tess", "--email", "tess@example.org"],
    );
    assert!(ok, "{err}");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walk(dir);
    names.sort();
    names
}

fn walk(dir: &Path) -> Vec<String> {
    let Ok(items) = fs::read_dir(dir) else {
        return vec![];
    };
    items
        .flatten()
        .flat_map(|item| {
            let path = item.path();
            let mut out = vec![path.display().to_string()];
            if path.is_dir() {
                out.extend(walk(&path));
            }
            out
        })
        .collect()
}

#[test]
fn init_with_a_bad_name_writes_no_key() {
    let home = tempfile::tempdir().expect("tempdir");
    let (ok, err) = tandem(home.path(), &["init", "--name", "<b>Ada</b>"]);
    assert!(!ok && err.contains("angle brackets"), "{err}");
    assert!(!home.path().join("identity.key").exists());
}

#[test]
fn commands_without_identity_say_how_to_make_one() {
    let home = tempfile::tempdir().expect("tempdir");
    let (ok, err) = tandem(home.path(), &["project", "list"]);
    assert!(!ok);
    assert!(err.contains("tandem init"), "{err}");
}

#[test]
fn bad_project_names_are_refused_and_create_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    init(home.path());
    let long = "x".repeat(101);
    for (name, needle) in [
        ("my project", "not allowed"),
        ("..", "not allowed"),
        ("", "empty"),
        (long.as_str(), "limit is 100"),
        ("../escape", "not allowed"),
    ] {
        let (ok, err) = tandem(home.path(), &["project", "create", name]);
        assert!(!ok, "{name:?} was accepted");
        assert!(err.contains(needle), "{name:?}: {err}");
    }
    assert!(listing(&home.path().join("projects")).is_empty());
    assert!(
        !home
            .path()
            .parent()
            .expect("parent")
            .join("escape")
            .exists()
    );
}

#[test]
fn missing_files_add_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    init(home.path());
    assert!(tandem(home.path(), &["project", "create", "p"]).0);
    let real = home.path().join("real.csv");
    fs::write(&real, "a").expect("write");
    let (ok, err) = tandem(
        home.path(),
        &[
            "add",
            "p",
            "input",
            real.to_str().expect("utf8"),
            "/no/such/file.csv",
        ],
    );
    assert!(!ok);
    assert!(err.contains("/no/such/file.csv: no such file"), "{err}");
    assert!(
        !home.path().join("projects/p/input/real.csv").exists(),
        "nothing copied"
    );
    let (ok, err) = tandem(
        home.path(),
        &["add", "p", "elsewhere", real.to_str().expect("utf8")],
    );
    assert!(!ok && err.contains("unknown section"), "{err}");
    let (ok, err) = tandem(
        home.path(),
        &["add", "nope", "input", real.to_str().expect("utf8")],
    );
    assert!(!ok && err.contains("no project named"), "{err}");
}

#[test]
fn corrupt_key_is_reported_not_replaced() {
    let home = tempfile::tempdir().expect("tempdir");
    init(home.path());
    fs::write(home.path().join("identity.key"), "garbage").expect("corrupt");
    let (ok, err) = tandem(home.path(), &["project", "list"]);
    assert!(!ok);
    assert!(err.contains("corrupt"), "{err}");
    let (ok, _) = tandem(home.path(), &["init"]);
    assert!(!ok, "init must not paper over a corrupt key");
    assert_eq!(
        fs::read_to_string(home.path().join("identity.key")).expect("key"),
        "garbage"
    );
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])], link: Option<(&str, &str)>) {
    let file = fs::File::create(path).expect("zip file");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("start");
        zip.write_all(bytes).expect("write");
    }
    if let Some((name, target)) = link {
        zip.add_symlink(name, target, options).expect("symlink");
    }
    zip.finish().expect("finish");
}

#[test]
fn unsafe_archives_are_refused_with_nothing_written() {
    let home = tempfile::tempdir().expect("tempdir");
    init(home.path());
    let work = tempfile::tempdir().expect("tempdir");
    let manifest: &[u8] =
        br#"{"format":1,"project":"tp11111111111111111111111111111111","name":"evil"}"#;
    let cases = [
        (
            "dotdot.zip",
            vec![
                ("tandem-export.json", manifest),
                ("../evil", b"x".as_slice()),
            ],
            None,
            "climbs out",
        ),
        (
            "absolute.zip",
            vec![("/tmp/evil-abs", b"x".as_slice())],
            None,
            "absolute",
        ),
        (
            "link.zip",
            vec![("tandem-export.json", manifest)],
            Some(("repo.git/objects", "/etc")),
            "link",
        ),
    ];
    for (file, entries, link, needle) in cases {
        let path = work.path().join(file);
        write_zip(&path, &entries, link);
        let before = listing(home.path());
        let (ok, err) = tandem(
            home.path(),
            &["project", "import", path.to_str().expect("utf8")],
        );
        assert!(!ok, "{file} was imported");
        assert!(
            err.contains("unsafe archive") && err.contains(needle),
            "{file}: {err}"
        );
        assert_eq!(listing(home.path()), before, "{file} left something behind");
    }
    assert!(!work.path().parent().expect("parent").join("evil").exists());
    assert!(!Path::new("/tmp/evil-abs").exists());

    let junk = work.path().join("junk.zip");
    fs::write(&junk, "not a zip").expect("write");
    let (ok, err) = tandem(
        home.path(),
        &["project", "import", junk.to_str().expect("utf8")],
    );
    assert!(!ok && err.contains("not a readable zip"), "{err}");

    let fake = work.path().join("fake.zip");
    write_zip(&fake, &[("tandem-export.json", manifest)], None);
    let (ok, err) = tandem(
        home.path(),
        &["project", "import", fake.to_str().expect("utf8")],
    );
    assert!(!ok && err.contains("invalid Tandem archive"), "{err}");
    assert!(listing(&home.path().join("projects")).is_empty());
}

#[test]
fn tampered_activity_in_an_archive_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    init(home.path());
    assert!(tandem(home.path(), &["project", "create", "p"]).0);
    assert!(tandem(home.path(), &["note", "p", "original note"]).0);
    let work = tempfile::tempdir().expect("tempdir");
    let zip_path = work.path().join("p.zip");
    let (ok, err) = tandem(
        home.path(),
        &[
            "project",
            "export",
            "p",
            "-o",
            zip_path.to_str().expect("utf8"),
        ],
    );
    assert!(ok, "{err}");

    // Rewrite the archive with the signed heads of the feed swapped for
    // heads signed by a different key.
    let mut archive = zip::ZipArchive::new(fs::File::open(&zip_path).expect("open")).expect("zip");
    let tampered = work.path().join("tampered.zip");
    let mut out = zip::ZipWriter::new(fs::File::create(&tampered).expect("create"));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().to_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        if name.ends_with(".heads") {
            let text = String::from_utf8(bytes).expect("utf8");
            let sig_at = text.find("\"signature\":\"").expect("signature field") + 13;
            let mut chars: Vec<char> = text.chars().collect();
            chars[sig_at] = if chars[sig_at] == '0' { '1' } else { '0' };
            bytes = chars.into_iter().collect::<String>().into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("start");
        out.write_all(&bytes).expect("write");
    }
    out.finish().expect("finish");
    let other = tempfile::tempdir().expect("tempdir");
    init(other.path());
    let (ok, err) = tandem(
        other.path(),
        &["project", "import", tampered.to_str().expect("utf8")],
    );
    assert!(!ok, "tampered archive was imported");
    assert!(err.contains("signature"), "{err}");
    assert!(listing(&other.path().join("projects")).is_empty());
    assert!(listing(&other.path().join("feeds")).is_empty());
}
