//! A story's world: nodes on one in-memory network and one virtual clock.
//! Time moves only when the story says so, and jumps from one thing due to
//! the next, so a minute of automatic sync takes milliseconds.

use std::ops::{Index, IndexMut};
use std::time::{Duration, Instant};

use super::network::Network;
use super::peer::Peer;

/// Rounds of work at one instant before a world is declared restless
/// (two nodes answering each other forever is a bug worth a failure).
const MAX_ROUNDS: usize = 50;

pub struct World {
    pub network: Network,
    peers: Vec<Peer>,
    started: Instant,
    now: Instant,
}

/// Which node of the world (see [`World::add`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(usize);

impl World {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            network: Network::default(),
            peers: Vec::new(),
            started: now,
            now,
        }
    }

    /// Starts a node called `name`.
    pub fn add(&mut self, name: &str) -> Id {
        let peer = Peer::start(name, &self.network, self.now);
        self.peers.push(peer);
        Id(self.peers.len() - 1)
    }

    pub fn connect(&self, a: Id, b: Id) {
        self.network.connect(&self[a].key(), &self[b].key());
    }

    pub fn disconnect(&self, a: Id, b: Id) {
        self.network.disconnect(&self[a].key(), &self[b].key());
    }

    /// Virtual time since the world began.
    pub fn elapsed(&self) -> Duration {
        self.now - self.started
    }

    /// Lets every node do what is due now, until none has anything left.
    pub async fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut acted = false;
            for peer in &mut self.peers {
                acted |= peer.step(self.now).await;
            }
            if !acted && !self.peers.iter().any(Peer::busy) {
                return;
            }
        }
        panic!("the world does not settle at {:?}", self.elapsed());
    }

    /// Moves the clock on by `by`, stopping at every moment something is
    /// due on some node and letting it happen.
    pub async fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            self.settle().await;
            let next = self.peers.iter().map(Peer::next_due).min();
            match next {
                Some(next) if next <= until => self.now = self.now.max(next),
                _ => break,
            }
        }
        self.now = until;
        self.settle().await;
    }
}

impl Index<Id> for World {
    type Output = Peer;

    fn index(&self, id: Id) -> &Peer {
        &self.peers[id.0]
    }
}

impl IndexMut<Id> for World {
    fn index_mut(&mut self, id: Id) -> &mut Peer {
        &mut self.peers[id.0]
    }
}
