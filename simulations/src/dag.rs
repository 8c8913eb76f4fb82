//! The commits of a run: stored once, held by peers as sets of numbers.

use std::collections::HashMap;

use tandem_protocol::PeerKey;

/// A set of commit numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub(crate) fn insert(&mut self, i: u32) {
        let word = i as usize / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (i % 64);
    }

    pub(crate) fn union_with(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    pub(crate) fn intersect_with(&mut self, other: &Bits) {
        self.0.truncate(other.0.len());
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    pub(crate) fn subtract(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
    }

    pub(crate) fn is_subset_of(&self, other: &Bits) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(i, w)| w & !other.0.get(i).copied().unwrap_or(0) == 0)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..64u32)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i as u32 * 64 + b)
        })
    }

    /// The words without trailing zeros: equal sets give equal slices.
    pub(crate) fn canonical(&self) -> &[u64] {
        let end = self.0.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1);
        &self.0[..end]
    }
}

/// Every commit made in a run, stored once.
///
/// A commit id names content, so a commit is the same object wherever it is
/// held: its parents, author and ancestry belong to the id and are worked
/// out once, when it is first made, instead of by walking string-keyed maps
/// in every peer on every merge. Peers record only which commits they hold.
/// Merges are named by their work, so peers that merge the same work make
/// the same commit; its parents are those of whoever made it first, and a
/// later maker takes that commit and its (same-work) history, as Git would
/// fast-forward to it.
#[derive(Default)]
pub(crate) struct Dag {
    pub(crate) ids: Vec<String>,
    pub(crate) index: HashMap<String, u32>,
    pub(crate) authors: Vec<PeerKey>,
    /// Each commit's strict ancestors (all numbered lower).
    pub(crate) ancestors: Vec<Bits>,
    /// Each commit's first parent, for landmarks offered as `have`.
    pub(crate) first_parent: Vec<Option<u32>>,
    /// The non-merge commits: the work a merge is named by.
    pub(crate) work: Bits,
    /// Each commit as a pack lists it: the JSON of `(id, parents, author)`,
    /// made once; a pack is counted as the JSON list of these.
    pub(crate) packed: Vec<Vec<u8>>,
}

impl Dag {
    pub(crate) fn lookup(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// Adds a commit, or returns the number of the one with that id.
    pub(crate) fn add(&mut self, id: String, parents: Vec<u32>, author: PeerKey) -> u32 {
        if let Some(c) = self.lookup(&id) {
            return c;
        }
        let c = self.ids.len() as u32;
        let mut ancestors = Bits::default();
        for &p in &parents {
            ancestors.union_with(&self.ancestors[p as usize]);
            ancestors.insert(p);
        }
        let parent_ids: Vec<&str> = parents
            .iter()
            .map(|&p| self.ids[p as usize].as_str())
            .collect();
        // Serialising strings and a key to a Vec cannot fail.
        let packed = serde_json::to_vec(&(&id, parent_ids, author)).unwrap_or_default();
        if parents.len() < 2 {
            self.work.insert(c);
        }
        self.index.insert(id.clone(), c);
        self.ids.push(id);
        self.authors.push(author);
        self.ancestors.push(ancestors);
        self.first_parent.push(parents.first().copied());
        self.packed.push(packed);
        c
    }

    /// The commit numbers a pack lists.
    pub(crate) fn unpack(pack: &[u8]) -> impl Iterator<Item = u32> + '_ {
        pack.chunks_exact(4)
            .filter_map(|n| <[u8; 4]>::try_from(n).ok())
            .map(u32::from_le_bytes)
    }

    /// The JSON list of `(id, parents, author)` a pack stands for.
    pub(crate) fn pack_json(&self, pack: &[u8]) -> Vec<u8> {
        let mut json = vec![b'['];
        for c in Self::unpack(pack) {
            if json.len() > 1 {
                json.push(b',');
            }
            json.extend_from_slice(&self.packed[c as usize]);
        }
        json.push(b']');
        json
    }

    pub(crate) fn is_ancestor(&self, a: u32, b: u32) -> bool {
        self.ancestors[b as usize].contains(a)
    }

    /// `c` and its ancestors.
    pub(crate) fn closure(&self, c: u32) -> Bits {
        let mut bits = self.ancestors[c as usize].clone();
        bits.insert(c);
        bits
    }
}

pub(crate) fn oid(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..40].to_owned()
}
