//! The crate's layering, checked from its source: each top-level module uses only the
//! layers below it (see the stack in `src/lib.rs`), and no two files depend on each other in
//! a circle. A file depends on another when it names it in a `use` or a `crate::`/`super::`
//! path; the test parses every file under `src/` and resolves those paths to files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::common::repo_root;

/// The layers, lowest first. A module may use any module of a lower rank, never one of its
/// own rank or above; `server` and `contract` sit side by side on top of `compiled`.
const LAYERS: &[(&str, u8)] = &[
    ("hashing", 0),
    ("spec", 1),
    ("schema", 2),
    ("generate", 3),
    ("profile", 4),
    ("compiled", 5),
    ("state", 6),
    ("behaviours", 7),
    ("server", 8),
    ("contract", 8),
    ("cli", 9),
];

/// A module path (`["state", "engine"]`), relative to the crate root.
type ModPath = Vec<String>;

/// Every module file of the library and the module path it defines.
fn module_files(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src/");
            let mut parts: ModPath = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            match parts.last().map(String::as_str) {
                Some("main") if parts.len() == 1 => continue, // the binary, not the library
                Some("lib") if parts.len() == 1 => parts.clear(),
                Some("mod") => {
                    parts.pop();
                }
                _ => {}
            }
            out.insert(parts, path);
        }
    }
    out
}

/// Collects the module paths a file names, resolved against the module it is in.
struct Uses<'m> {
    /// The module being visited (the file's, plus inline modules such as `mod tests`).
    here: ModPath,
    found: Vec<ModPath>,
    modules: &'m BTreeMap<ModPath, PathBuf>,
}

impl Uses<'_> {
    /// `crate::a::b`, `super::a`, `self::a` or `child::a` (a module declared here) as an
    /// absolute path; other paths are relative to names a `use` brought in, and that `use`
    /// is already counted.
    fn absolute(&self, segments: &[String]) -> Option<ModPath> {
        let mut base = self.here.clone();
        let mut rest = segments;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("super" | "self") => {
                while let Some(first) = rest.first() {
                    match first.as_str() {
                        "super" => {
                            base.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
            }
            // `child::item`: a module declared here (a lone name is a local, not a module).
            Some(first) if rest.len() >= 2 => {
                let mut child = base.clone();
                child.push(first.to_owned());
                if !self.modules.contains_key(&child) {
                    return None;
                }
            }
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.add(&full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.add(&full);
            }
            syn::UseTree::Glob(_) => self.add(prefix),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.tree(prefix, t);
                }
            }
        }
    }

    fn add(&mut self, segments: &[String]) {
        if let Some(p) = self.absolute(segments) {
            self.found.push(p);
        }
    }
}

impl<'ast> Visit<'ast> for Uses<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(&segments);
        syn::visit::visit_path(self, p);
    }

    /// `pub(super)` names who may see an item, not what the item uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.here.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.here.pop();
        }
    }
}

/// The file a module path lands in: the longest prefix that is a module file.
fn file_of<'m>(modules: &'m BTreeMap<ModPath, PathBuf>, path: &[String]) -> Option<&'m ModPath> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// File -> the files it depends on.
fn dependencies(modules: &BTreeMap<ModPath, PathBuf>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut graph = BTreeMap::new();
    for (module, file) in modules {
        let text = std::fs::read_to_string(file).expect("source is readable");
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut uses = Uses {
            here: module.clone(),
            found: Vec::new(),
            modules,
        };
        uses.visit_file(&ast);
        let targets: BTreeSet<ModPath> = uses
            .found
            .iter()
            .filter_map(|p| file_of(modules, p))
            // A file's inline modules (tests) reading the file itself are not a dependency.
            .filter(|t| *t != module && !t.is_empty())
            .cloned()
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

fn rank(m: &ModPath) -> Option<u8> {
    let top = m.first()?;
    let found = LAYERS.iter().find(|(n, _)| n == top).map(|(_, r)| *r);
    assert!(
        found.is_some(),
        "module '{top}' is in no layer: add it to LAYERS and lib.rs"
    );
    found
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let modules = module_files(&repo_root().join("src"));
    let graph = dependencies(&modules);
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        let Some(r_from) = rank(from) else { continue };
        for to in targets {
            let Some(r_to) = rank(to) else { continue };
            if from.first() != to.first() && r_to >= r_from {
                wrong.push(format!("{} uses {}", name(from), name(to)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layering broken (each module may only use lower layers):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_depend_on_each_other_in_a_circle() {
    let modules = module_files(&repo_root().join("src"));
    let graph = dependencies(&modules);
    let circles = strongly_connected(&graph);
    let shown: Vec<String> = circles
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
}

/// The groups of more than one file that reach each other (Tarjan's algorithm).
fn strongly_connected(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.clone());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                s.out.push(group);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}
