//! The shape of the crates, kept so: no import circles between modules, and
//! the transport (`p2p/`, `blobs/`) never names the application.
//!
//! Each source file is one module. An edge A → B is any path in A (a `use`,
//! a type, a call) that names something in B: `crate::…`, `super::…`,
//! `self::…` or a child module's name. Every edge counts, a folder's
//! `mod.rs` re-exporting its parts included (declaring `pub mod x;` is not
//! a path), so a part must name its siblings directly, never through its
//! parent, and shared types live in a named part (`env/error.rs`), not in
//! `mod.rs`. Otherwise a re-export would hide a circle: `service` naming
//! `sync::auto::Event` while a part of `sync::auto` names `service`.
//! Code under `#[cfg(test)]` is left out: a test may look anywhere.
//!
//! Inside macro calls (`format!`, `json!`…) paths are read from the tokens.
//! Calls to methods defined in another module's `impl` block are not paths;
//! the check sees what the source names, which is what a reader follows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type ModulePath = Vec<String>;

/// The file modules of a crate, keyed by module path.
fn file_modules(src: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let mut modules = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("beneath src");
            let mut segments: ModulePath = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            let file = segments.pop().expect("file name");
            match file.as_str() {
                // The binary is its own crate, using the library by name.
                "main.rs" if segments.is_empty() => continue,
                "lib.rs" if segments.is_empty() => {}
                "mod.rs" => {}
                other => segments.push(other.trim_end_matches(".rs").to_string()),
            }
            modules.insert(segments, path);
        }
    }
    modules
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// Collects the module paths one file names.
struct Names<'a> {
    known: &'a BTreeMap<ModulePath, PathBuf>,
    file_module: ModulePath,
    /// The current module: the file's, plus any inline `mod x { … }`.
    current: ModulePath,
    named: BTreeMap<ModulePath, String>,
}

impl Names<'_> {
    fn resolve(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute: ModulePath = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "super" | "self" => {
                let mut base = self.current.clone();
                let mut rest = segments;
                while let Some(head) = rest.first() {
                    match head.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            }
            _ => {
                let mut child = self.current.clone();
                child.push(first.clone());
                if !self.known.contains_key(&child) {
                    return;
                }
                let mut path = self.current.clone();
                path.extend(segments.iter().cloned());
                path
            }
        };
        // The longest prefix that is a file module is what is named.
        let target = (0..=absolute.len())
            .rev()
            .map(|len| absolute[..len].to_vec())
            .find(|prefix| self.known.contains_key(prefix));
        let Some(target) = target else {
            return;
        };
        if target == self.file_module {
            return;
        }
        self.named
            .entry(target)
            .or_insert_with(|| segments.join("::"));
    }

    /// Paths written inside a macro call: `crate::a::b`, `super::a`,
    /// `self::a` as token runs of identifiers joined by `::`.
    fn tokens(&mut self, stream: proc_macro2::TokenStream) {
        use proc_macro2::TokenTree;
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident)
                    if matches!(ident.to_string().as_str(), "crate" | "super" | "self") =>
                {
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.resolve(&segments);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                prefix.push(name.ident.to_string());
                let full = prefix.clone();
                self.resolve(&full);
                prefix.pop();
            }
            syn::UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                let full = prefix.clone();
                self.resolve(&full);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                let full = prefix.clone();
                self.resolve(&full);
            }
            syn::UseTree::Group(group) => {
                for item in &group.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Names<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if is_test_only(&item.attrs) {
            return;
        }
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if is_test_only(&item.attrs) || item.content.is_none() {
            return;
        }
        self.current.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.current.pop();
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test_only(&item.attrs) {
            syn::visit::visit_item_fn(self, item);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !is_test_only(&item.attrs) {
            syn::visit::visit_item_impl(self, item);
        }
    }

    /// `pub(crate)`, `pub(super)`, `pub(in …)` say who may see an item;
    /// they name no module the item uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        self.resolve(&segments);
        syn::visit::visit_path(self, path);
    }
}

/// Every edge of a crate's module graph, with one path that makes it.
fn edges(src: &Path) -> BTreeMap<ModulePath, BTreeMap<ModulePath, String>> {
    let known = file_modules(src);
    let mut graph = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).expect("read source");
        let syntax = syn::parse_file(&text)
            .unwrap_or_else(|error| panic!("{} does not parse: {error}", file.display()));
        let mut names = Names {
            known: &known,
            file_module: module.clone(),
            current: module.clone(),
            named: BTreeMap::new(),
        };
        names.visit_file(&syntax);
        graph.insert(module.clone(), names.named);
    }
    graph
}

fn show(module: &ModulePath) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

/// The strongly connected components with more than one module (Tarjan).
fn circles(graph: &BTreeMap<ModulePath, BTreeMap<ModulePath, String>>) -> Vec<Vec<ModulePath>> {
    struct Search<'g> {
        graph: &'g BTreeMap<ModulePath, BTreeMap<ModulePath, String>>,
        index: BTreeMap<&'g ModulePath, usize>,
        low: BTreeMap<&'g ModulePath, usize>,
        on_stack: BTreeSet<&'g ModulePath>,
        stack: Vec<&'g ModulePath>,
        found: Vec<Vec<ModulePath>>,
    }
    impl<'g> Search<'g> {
        fn visit(&mut self, node: &'g ModulePath) {
            let next = self.index.len();
            self.index.insert(node, next);
            self.low.insert(node, next);
            self.stack.push(node);
            self.on_stack.insert(node);
            for target in self.graph[node].keys() {
                let target = self.graph.get_key_value(target).expect("known module").0;
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[node].min(self.low[target]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(target) {
                    let low = self.low[node].min(self.index[target]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !search.index.contains_key(node) {
            search.visit(node);
        }
    }
    search.found
}

fn describe(
    graph: &BTreeMap<ModulePath, BTreeMap<ModulePath, String>>,
    circle: &[ModulePath],
) -> String {
    let members: BTreeSet<&ModulePath> = circle.iter().collect();
    let mut lines = vec![format!(
        "circle: {}",
        circle.iter().map(show).collect::<Vec<_>>().join(", ")
    )];
    for from in circle {
        for (to, path) in &graph[from] {
            if members.contains(to) {
                lines.push(format!("  {} -> {} (names {path})", show(from), show(to)));
            }
        }
    }
    lines.join("\n")
}

/// The crate's sources; `MODULE_GRAPH_ROOT` points at another checkout of
/// the workspace (to see the circles of an older commit).
fn crate_src(name: &str) -> PathBuf {
    let root = std::env::var_os("MODULE_GRAPH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    root.join(name).join("src")
}

fn assert_acyclic(name: &str) {
    let graph = edges(&crate_src(name));
    assert!(
        graph.len() > 5,
        "{name}: too few modules found ({})",
        graph.len()
    );
    let found = circles(&graph);
    let report: Vec<String> = found
        .iter()
        .map(|circle| describe(&graph, circle))
        .collect();
    assert!(
        found.is_empty(),
        "{name} has import circles:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_node_has_no_import_circles() {
    assert_acyclic("node");
}

#[test]
fn the_protocol_has_no_import_circles() {
    assert_acyclic("protocol");
}

#[test]
fn the_web_ui_has_no_import_circles() {
    assert_acyclic("web-ui");
}

/// The transport asks traits (`p2p`'s host, `blobs`' gate); it never names
/// the service, the API, the CLI or the daemon that compose it.
#[test]
fn the_transport_never_names_the_application() {
    let graph = edges(&crate_src("node"));
    let application = ["service", "api", "cli", "daemon"];
    let mut offences = Vec::new();
    for (from, named) in &graph {
        if !matches!(from.first().map(String::as_str), Some("p2p" | "blobs")) {
            continue;
        }
        for (to, path) in named {
            if to
                .first()
                .is_some_and(|top| application.contains(&top.as_str()))
            {
                offences.push(format!("{} names {path}", show(from)));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

/// The checker itself finds a circle it is shown, and ignores a parent
/// composing its children.
#[test]
fn the_checker_finds_a_planted_circle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("env")).expect("mkdir");
    std::fs::create_dir_all(src.join("g")).expect("mkdir");
    let files = [
        (
            "lib.rs",
            "pub mod a; pub mod b; pub mod env; pub mod c; pub mod d; pub mod e;",
        ),
        ("a.rs", "use crate::b::Thing; pub struct A;"),
        (
            "b.rs",
            "pub struct Thing; fn f() -> super::a::A { super::a::A }",
        ),
        ("env/mod.rs", "pub mod inner; pub use inner::X;"),
        (
            "env/inner.rs",
            "pub(super) struct X; pub(in crate::env) fn f() {}",
        ),
        ("g/mod.rs", "pub mod part; pub use part::Event;"),
        ("g/part.rs", "pub struct Event; fn f(_: crate::h::H) {}"),
        ("h.rs", "pub struct H; fn f(_: crate::g::Event) {}"),
        ("c.rs", "#[cfg(test)] mod tests { use crate::d::D; }"),
        ("d.rs", "use crate::c; pub struct D;"),
        (
            "e.rs",
            "fn f() -> String { format!(\"{}\", crate::f::NAME) }",
        ),
        (
            "f.rs",
            "pub const NAME: &str = \"f\"; fn g() { println!(\"{}\", crate::e::f()); }",
        ),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("write");
    }
    let graph = edges(src);
    let mut found = circles(&graph);
    found.sort();
    assert_eq!(
        found,
        vec![
            vec![vec!["a".to_string()], vec!["b".to_string()]],
            vec![vec!["e".to_string()], vec!["f".to_string()]],
            vec![
                vec!["g".to_string()],
                vec!["g".to_string(), "part".to_string()],
                vec!["h".to_string()],
            ],
        ],
        "{found:?}"
    );
}
