//! The three-way merge of a notebook, cell by cell (see the module docs
//! of [`super`] for the rules). The result keeps every conflict apart,
//! so a person can settle each with its own choice, and [`Merged::resolve`]
//! then writes one notebook.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::align::keys;
use super::lines::merge_text;
use super::model::{Notebook, source_of, valid_id};

type Cell = Map<String, Value>;

/// What kind of disagreement a conflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// The same lines of a cell (or its type or metadata) changed
    /// differently on each side.
    BothEdited,
    /// We deleted a cell they edited.
    DeletedByUs,
    /// They deleted a cell we edited.
    DeletedByThem,
    /// Both added a cell under the same id, differently.
    BothAdded,
    /// A key of the notebook's own metadata changed differently.
    Metadata,
    /// Both sides moved cells, differently.
    Order,
}

/// One disagreement, with what each side has (`None`: the side has
/// none, e.g. it deleted the cell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Stable within one merge: `cell:<key>`, `metadata:<key>`, `order`.
    pub id: String,
    pub kind: ConflictKind,
    /// For people: "cell 3 (`df = load()`)", "metadata key kernelspec".
    pub label: String,
    pub base: Option<Value>,
    pub ours: Option<Value>,
    pub theirs: Option<Value>,
}

impl Conflict {
    /// The conflict as shown to people: cells without their outputs'
    /// bytes (summarised as `outputs_summary` instead) or attachments, so
    /// a page never carries a notebook's images.
    pub fn for_view(mut self) -> Self {
        for side in [&mut self.base, &mut self.ours, &mut self.theirs] {
            if let Some(Value::Object(cell)) = side {
                if cell.contains_key("outputs") {
                    let summary = super::diff::summarise_outputs(cell);
                    cell.remove("outputs");
                    cell.insert("outputs_summary".into(), Value::String(summary));
                }
                cell.remove("attachments");
            }
        }
        self
    }
}

/// How one conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Choice {
    Ours,
    Theirs,
    /// Both cells, ours first (for a cell; otherwise as `Ours`).
    Both,
}

#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Clean(Cell),
    /// Index into `conflicts`.
    Conflict(usize),
}

/// A three-way merge, before its conflicts are settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    top: Map<String, Value>,
    /// Top-level metadata keys in conflict: (key, index into conflicts).
    metadata_conflicts: Vec<(String, usize)>,
    slots: HashMap<String, Slot>,
    order_ours: Vec<String>,
    order_theirs: Vec<String>,
    order_conflict: Option<usize>,
    pub conflicts: Vec<Conflict>,
    /// What was decided without asking (outputs kept or cleared), for
    /// the activity entry.
    pub notes: Vec<String>,
}

/// Merges `ours` and `theirs`, both made from `base`.
pub fn merge(base: &Notebook, ours: &Notebook, theirs: &Notebook) -> Merged {
    let k = keys(&base.cells, &ours.cells, &theirs.cells);
    let index = |keys: &[String], cells: &[Cell]| -> HashMap<String, Cell> {
        keys.iter().cloned().zip(cells.iter().cloned()).collect()
    };
    let (b, o, t) = (
        index(&k.base, &base.cells),
        index(&k.ours, &ours.cells),
        index(&k.theirs, &theirs.cells),
    );
    let mut conflicts = Vec::new();
    let mut notes = Vec::new();
    if !k.by_id {
        notes.push(
            "cells matched by their content: not every cell has a unique id (nbformat 4.5)"
                .to_owned(),
        );
    }

    // The notebook's own keys; `metadata` key by key.
    let mut top = Map::new();
    let mut metadata_conflicts = Vec::new();
    let all_top: BTreeMap<&String, ()> = base
        .top
        .keys()
        .chain(ours.top.keys())
        .chain(theirs.top.keys())
        .map(|k| (k, ()))
        .collect();
    for key in all_top.keys() {
        let (bv, ov, tv) = (base.top.get(*key), ours.top.get(*key), theirs.top.get(*key));
        if key.as_str() == "metadata" {
            let as_map =
                |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
            let (merged, clashes) = merge_map(&as_map(bv), &as_map(ov), &as_map(tv));
            for (k, (cb, co, ct)) in clashes {
                metadata_conflicts.push((k.clone(), conflicts.len()));
                conflicts.push(Conflict {
                    id: format!("metadata:{k}"),
                    kind: ConflictKind::Metadata,
                    label: format!("the notebook's metadata key {k:?}"),
                    base: cb,
                    ours: co,
                    theirs: ct,
                });
            }
            top.insert("metadata".into(), Value::Object(merged));
            continue;
        }
        match pick3(bv, ov, tv) {
            Some(Some(v)) => {
                top.insert((*key).clone(), v.clone());
            }
            Some(None) => {}
            // nbformat_minor and the like: the newer number, whichever side.
            None => {
                let newer = [ov, tv]
                    .into_iter()
                    .flatten()
                    .max_by(|x, y| order_values(x, y))
                    .cloned();
                if let Some(v) = newer {
                    top.insert((*key).clone(), v);
                }
            }
        }
    }

    // Cells, by key.
    let mut slots = HashMap::new();
    let every: Vec<&String> = {
        let mut seen = HashSet::new();
        k.base
            .iter()
            .chain(&k.ours)
            .chain(&k.theirs)
            .filter(|key| seen.insert(*key))
            .collect()
    };
    for key in every {
        let label = |cell: &Cell| cell_label(cell, key);
        let slot = match (b.get(key), o.get(key), t.get(key)) {
            (_, None, None) => None,
            (Some(bc), Some(oc), Some(tc)) => match merge_cell(bc, oc, tc) {
                Ok((cell, note)) => {
                    if let Some(note) = note {
                        notes.push(format!("{}: {note}", label(&cell)));
                    }
                    Some(Slot::Clean(cell))
                }
                Err(()) => Some(conflict_slot(
                    &mut conflicts,
                    key,
                    ConflictKind::BothEdited,
                    label(oc),
                    (Some(bc), Some(oc), Some(tc)),
                )),
            },
            (Some(bc), Some(oc), None) => {
                if same_but_outputs(bc, oc) {
                    None
                } else {
                    Some(conflict_slot(
                        &mut conflicts,
                        key,
                        ConflictKind::DeletedByThem,
                        label(oc),
                        (Some(bc), Some(oc), None),
                    ))
                }
            }
            (Some(bc), None, Some(tc)) => {
                if same_but_outputs(bc, tc) {
                    None
                } else {
                    Some(conflict_slot(
                        &mut conflicts,
                        key,
                        ConflictKind::DeletedByUs,
                        label(tc),
                        (Some(bc), None, Some(tc)),
                    ))
                }
            }
            (None, Some(c), None) | (None, None, Some(c)) => Some(Slot::Clean(c.clone())),
            (None, Some(oc), Some(tc)) => {
                if oc == tc {
                    Some(Slot::Clean(oc.clone()))
                } else if same_but_outputs(oc, tc) {
                    notes.push(format!(
                        "{}: added on both sides with different outputs; outputs cleared (run it again)",
                        label(oc)
                    ));
                    Some(Slot::Clean(cleared(oc)))
                } else {
                    Some(conflict_slot(
                        &mut conflicts,
                        key,
                        ConflictKind::BothAdded,
                        label(oc),
                        (None, Some(oc), Some(tc)),
                    ))
                }
            }
        };
        if let Some(slot) = slot {
            slots.insert(key.clone(), slot);
        }
    }

    // Order: the cells all three have, as the side that moved them has
    // them; then the others where their side put them.
    let common: HashSet<&String> = k
        .base
        .iter()
        .filter(|key| o.contains_key(*key) && t.contains_key(*key))
        .collect();
    let only = |seq: &[String]| -> Vec<String> {
        seq.iter().filter(|k| common.contains(k)).cloned().collect()
    };
    let (bs, os, ts) = (only(&k.base), only(&k.ours), only(&k.theirs));
    let (skeleton_ours, skeleton_theirs, order_conflict) = if os == bs {
        (ts.clone(), ts, None)
    } else if ts == bs || os == ts {
        (os.clone(), os, None)
    } else {
        let n = conflicts.len();
        conflicts.push(Conflict {
            id: "order".into(),
            kind: ConflictKind::Order,
            label: "the order of the cells (both sides moved cells)".into(),
            base: Some(keys_value(&bs)),
            ours: Some(keys_value(&os)),
            theirs: Some(keys_value(&ts)),
        });
        (os, ts, Some(n))
    };
    let placed = |skeleton: &[String]| sequence(skeleton, &k.ours, &k.theirs, &slots);
    let order_ours = placed(&skeleton_ours);
    let order_theirs = placed(&skeleton_theirs);
    Merged {
        top,
        metadata_conflicts,
        slots,
        order_ours,
        order_theirs,
        order_conflict,
        conflicts,
        notes,
    }
}

impl Merged {
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }

    /// The notebook with every conflict settled by `choose`.
    pub fn resolve(&self, choose: impl Fn(&Conflict) -> Choice) -> Notebook {
        let mut top = self.top.clone();
        for (key, n) in &self.metadata_conflicts {
            let conflict = &self.conflicts[*n];
            let value = match choose(conflict) {
                Choice::Theirs => &conflict.theirs,
                Choice::Ours | Choice::Both => &conflict.ours,
            };
            if let Some(Value::Object(metadata)) = top.get_mut("metadata")
                && let Some(value) = value
            {
                metadata.insert(key.clone(), value.clone());
            }
        }
        let order = match self.order_conflict {
            Some(n) if choose(&self.conflicts[n]) == Choice::Theirs => &self.order_theirs,
            _ => &self.order_ours,
        };
        let mut cells = Vec::new();
        for key in order {
            match self.slots.get(key) {
                None => {}
                Some(Slot::Clean(cell)) => cells.push(cell.clone()),
                Some(Slot::Conflict(n)) => {
                    let conflict = &self.conflicts[*n];
                    let as_cell =
                        |v: &Option<Value>| v.as_ref().and_then(Value::as_object).cloned();
                    match choose(conflict) {
                        Choice::Ours => cells.extend(as_cell(&conflict.ours)),
                        Choice::Theirs => cells.extend(as_cell(&conflict.theirs)),
                        Choice::Both => {
                            cells.extend(as_cell(&conflict.ours));
                            cells.extend(as_cell(&conflict.theirs));
                        }
                    }
                }
            }
        }
        unique_ids(&mut cells);
        Notebook { top, cells }
    }

    /// The notebook, if nothing is in conflict.
    pub fn clean(&self) -> Option<Notebook> {
        self.is_clean().then(|| self.resolve(|_| Choice::Ours))
    }
}

fn conflict_slot(
    conflicts: &mut Vec<Conflict>,
    key: &str,
    kind: ConflictKind,
    label: String,
    (b, o, t): (Option<&Cell>, Option<&Cell>, Option<&Cell>),
) -> Slot {
    let value = |c: Option<&Cell>| c.map(|c| Value::Object(c.clone()));
    conflicts.push(Conflict {
        id: format!("cell:{key}"),
        kind,
        label,
        base: value(b),
        ours: value(o),
        theirs: value(t),
    });
    Slot::Conflict(conflicts.len() - 1)
}

fn keys_value(keys: &[String]) -> Value {
    Value::Array(keys.iter().cloned().map(Value::String).collect())
}

/// "cell `df = load()`": a cell named by its first line.
fn cell_label(cell: &Cell, key: &str) -> String {
    let source = source_of(cell);
    let first = source.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) => {
            let short: String = line.chars().take(60).collect();
            format!("cell `{short}`")
        }
        None => format!("empty cell {key}"),
    }
}

/// The three-way pick of one value: `Some(choice)` when at most one side
/// changed it (or both alike), `None` when both changed it differently.
fn pick3<'a>(
    b: Option<&'a Value>,
    o: Option<&'a Value>,
    t: Option<&'a Value>,
) -> Option<Option<&'a Value>> {
    if o == t || t == b {
        Some(o)
    } else if o == b {
        Some(t)
    } else {
        None
    }
}

/// A total order on JSON values for the rare "both changed a number"
/// case: numbers by value, anything else by its text.
fn order_values(x: &Value, y: &Value) -> std::cmp::Ordering {
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        _ => x.to_string().cmp(&y.to_string()),
    }
}

type Clashes = Vec<(String, (Option<Value>, Option<Value>, Option<Value>))>;

/// Key-by-key three-way merge of two objects; keys both changed
/// differently are left out of the result and returned.
fn merge_map(b: &Cell, o: &Cell, t: &Cell) -> (Cell, Clashes) {
    let mut out = Map::new();
    let mut clashes = Vec::new();
    let all: BTreeMap<&String, ()> = b
        .keys()
        .chain(o.keys())
        .chain(t.keys())
        .map(|k| (k, ()))
        .collect();
    for key in all.keys() {
        let (bv, ov, tv) = (b.get(*key), o.get(*key), t.get(*key));
        match pick3(bv, ov, tv) {
            Some(Some(v)) => {
                out.insert((*key).clone(), v.clone());
            }
            Some(None) => {}
            None => clashes.push(((*key).clone(), (bv.cloned(), ov.cloned(), tv.cloned()))),
        }
    }
    (out, clashes)
}

/// Keys that are the cell's outputs of a run: they follow the source.
const RUN_KEYS: [&str; 2] = ["outputs", "execution_count"];

fn without_run(cell: &Cell) -> Cell {
    let mut cell = cell.clone();
    for key in RUN_KEYS {
        cell.remove(key);
    }
    cell
}

/// Whether two cells differ only in what a run left (outputs, count).
fn same_but_outputs(a: &Cell, b: &Cell) -> bool {
    let (mut a, mut b) = (without_run(a), without_run(b));
    for cell in [&mut a, &mut b] {
        let source = source_of(cell);
        cell.insert("source".into(), Value::String(source));
    }
    a == b
}

fn run_of(cell: &Cell) -> (Option<&Value>, Option<&Value>) {
    (cell.get("outputs"), cell.get("execution_count"))
}

/// The cell with its outputs cleared, as a fresh cell has them.
fn cleared(cell: &Cell) -> Cell {
    let mut cell = cell.clone();
    if cell.contains_key("outputs") {
        cell.insert("outputs".into(), Value::Array(vec![]));
    }
    if cell.contains_key("execution_count") {
        cell.insert("execution_count".into(), Value::Null);
    }
    cell
}

/// Merges one cell present on all three sides; `Err` on a conflict. The
/// note says what was decided about its outputs, if anything was.
fn merge_cell(b: &Cell, o: &Cell, t: &Cell) -> Result<(Cell, Option<String>), ()> {
    let (sb, so, st) = (source_of(b), source_of(o), source_of(t));
    let source = merge_text(&sb, &so, &st).ok_or(())?;
    // Everything but the source, the outputs and the id: key by key,
    // `metadata` inside itself.
    let strip = |c: &Cell| {
        let mut c = without_run(c);
        c.remove("source");
        c.remove("id");
        let metadata = c.remove("metadata");
        (
            c,
            metadata
                .and_then(|m| m.as_object().cloned())
                .unwrap_or_default(),
        )
    };
    let ((rb, mb), (ro, mo), (rt, mt)) = (strip(b), strip(o), strip(t));
    let (mut cell, clashes) = merge_map(&rb, &ro, &rt);
    let (metadata, metadata_clashes) = merge_map(&mb, &mo, &mt);
    if !clashes.is_empty() || !metadata_clashes.is_empty() {
        return Err(());
    }
    let has_metadata = [b, o, t].iter().any(|c| c.contains_key("metadata"));
    if has_metadata {
        cell.insert("metadata".into(), Value::Object(metadata));
    }
    // Ids are arbitrary names: when both sides gave one (a notebook
    // upgraded to 4.5 on each side), the smaller, whichever side it is.
    let id = [o, t]
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        .filter(|id| valid_id(id))
        .min()
        .map(str::to_owned);
    if let Some(id) = id {
        cell.insert("id".into(), Value::String(id));
    }
    cell.insert("source".into(), Value::String(source.clone()));

    // Outputs follow the source they came from.
    let (ours_changed, theirs_changed) = (so != sb, st != sb);
    let mut note = None;
    let run = if ours_changed && !theirs_changed {
        run_of(o)
    } else if theirs_changed && !ours_changed {
        run_of(t)
    } else if !ours_changed || so == st {
        // The same source on both sides: outputs three-way.
        let (rb, ro, rt) = (run_of(b), run_of(o), run_of(t));
        if ro == rt || rt == rb {
            ro
        } else if ro == rb {
            rt
        } else {
            note = Some("both sides ran it; outputs cleared (run it again)".to_owned());
            (None, None)
        }
    } else {
        note = Some(
            "edited on both sides and merged line by line; outputs cleared (run it again)"
                .to_owned(),
        );
        (None, None)
    };
    let code = cell.get("cell_type").and_then(Value::as_str) == Some("code");
    if code {
        match run {
            (None, None) => {
                cell.insert("outputs".into(), Value::Array(vec![]));
                cell.insert("execution_count".into(), Value::Null);
            }
            (outputs, count) => {
                cell.insert(
                    "outputs".into(),
                    outputs.cloned().unwrap_or(Value::Array(vec![])),
                );
                cell.insert(
                    "execution_count".into(),
                    count.cloned().unwrap_or(Value::Null),
                );
            }
        }
    }
    Ok((cell, note))
}

/// The order of every cell in the result: the skeleton (cells all three
/// have), and each other cell after the skeleton cell its side had it
/// after. Two sides' cells at one place go in an order that does not
/// depend on which side is ours.
fn sequence(
    skeleton: &[String],
    ours: &[String],
    theirs: &[String],
    slots: &HashMap<String, Slot>,
) -> Vec<String> {
    let in_skeleton: HashSet<&String> = skeleton.iter().collect();
    let (go, gt) = (
        groups(ours, &in_skeleton, slots),
        groups(theirs, &in_skeleton, slots),
    );
    let mut out = Vec::new();
    let mut emitted = HashSet::new();
    let anchors = std::iter::once(None).chain(skeleton.iter().map(Some));
    for anchor in anchors {
        if let Some(key) = anchor
            && emitted.insert(key.clone())
        {
            out.push(key.clone());
        }
        let a = go.get(&anchor).map(Vec::as_slice).unwrap_or_default();
        let b = gt.get(&anchor).map(Vec::as_slice).unwrap_or_default();
        for key in interleave(a, b) {
            if emitted.insert(key.clone()) {
                out.push(key);
            }
        }
    }
    // Anything no group placed (none should be) goes last, in key order.
    let mut rest: Vec<&String> = slots.keys().filter(|k| !emitted.contains(*k)).collect();
    rest.sort();
    out.extend(rest.into_iter().cloned());
    out
}

/// Two sides' cells at one place, in an order that does not depend on
/// which side is which: the cells both added are meeting points (when both
/// have them in the same order), and between two of them each side's run
/// of its own cells goes in as a block, the smaller block (by keys) first.
fn interleave(a: &[String], b: &[String]) -> Vec<String> {
    let ordered = |x: Vec<String>, y: Vec<String>| if y < x { [y, x] } else { [x, y] };
    let shared: Vec<&String> = a.iter().filter(|k| b.contains(k)).collect();
    let shared_b: Vec<&String> = b.iter().filter(|k| a.contains(k)).collect();
    if shared != shared_b {
        return ordered(a.to_vec(), b.to_vec()).concat();
    }
    let runs = |side: &[String]| {
        let mut runs = vec![Vec::new()];
        for key in side {
            if shared.contains(&key) {
                runs.push(Vec::new());
            } else if let Some(run) = runs.last_mut() {
                run.push(key.clone());
            }
        }
        runs
    };
    let (ra, rb) = (runs(a), runs(b));
    let mut out = Vec::new();
    for (i, (x, y)) in ra.into_iter().zip(rb).enumerate() {
        out.extend(ordered(x, y).concat());
        if let Some(key) = shared.get(i) {
            out.push((*key).clone());
        }
    }
    out
}

/// A side's cells outside the skeleton that are in the result, grouped by
/// the skeleton cell they follow on that side (`None`: the start).
fn groups<'k>(
    side: &'k [String],
    in_skeleton: &HashSet<&String>,
    slots: &HashMap<String, Slot>,
) -> HashMap<Option<&'k String>, Vec<String>> {
    let mut groups: HashMap<Option<&String>, Vec<String>> = HashMap::new();
    let mut anchor = None;
    for key in side {
        if in_skeleton.contains(key) {
            anchor = Some(key);
        } else if slots.contains_key(key) {
            groups.entry(anchor).or_default().push(key.clone());
        }
    }
    groups
}

/// Makes cell ids unique (keep-both can repeat one): a repeated id gets
/// a suffix.
fn unique_ids(cells: &mut [Cell]) {
    let mut seen = HashSet::new();
    for cell in cells {
        let Some(id) = cell.get("id").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        if seen.insert(id.clone()) {
            continue;
        }
        let stem: String = id.chars().take(54).collect();
        let fresh = (1..)
            .map(|n| format!("{stem}-{n}"))
            .find(|candidate| !seen.contains(candidate))
            .unwrap_or_default();
        seen.insert(fresh.clone());
        cell.insert("id".into(), Value::String(fresh));
    }
}
