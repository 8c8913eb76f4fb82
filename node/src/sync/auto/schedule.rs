//! When to announce and when to sync, as a state machine with no I/O and
//! no clock of its own: it is told what happened and what time it is, and
//! answers with what it wishes done ([`Wish`]). The task in `run` turns
//! wishes into network calls; tests drive it with any `now` they like.
//!
//! - A local change is announced [`ANNOUNCE_AFTER`] later; changes come in
//!   bursts, so each new one moves the announcement back.
//! - An accepted announcement, or a new connection (for every project),
//!   asks for a sync [`SYNC_AFTER`] later; a sync already asked for keeps
//!   its time.
//! - Every [`PERIODIC`], every project is synced anyway, and the gossip
//!   topics are refreshed (access changes move a project's topic).
//! - One sync of a project at a time: one that falls due while another is
//!   running is put back by [`SYNC_AFTER`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Wait after a local change before announcing (changes come in bursts).
pub const ANNOUNCE_AFTER: Duration = Duration::from_millis(500);
/// Wait after an announcement or a new connection before syncing.
pub const SYNC_AFTER: Duration = Duration::from_millis(300);
/// Every project is synced at least this often while the node runs.
pub const PERIODIC: Duration = Duration::from_secs(60);

/// Something that happened, as the node tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A project changed here (a sweep committed, an entry was added).
    LocalChange(String),
    /// A member told us a project changed there.
    Announced(String),
    /// A connection to a peer was established.
    PeerConnected,
}

/// What the scheduler wants done now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wish {
    /// Tell the project's members that it changed.
    Announce(String),
    /// Sync the project with its connected members, then report
    /// [`Scheduler::synced`].
    Sync(String),
    /// Subscribe to the current gossip topic of every project.
    RefreshTopics,
}

/// The pending announcements and syncs, each with the time it is due.
#[derive(Debug)]
pub struct Scheduler {
    announce: HashMap<String, Instant>,
    sync: HashMap<String, Instant>,
    running: HashSet<String>,
    periodic: Instant,
}

impl Scheduler {
    /// A scheduler started at `now`; its first wish is to subscribe.
    pub fn new(now: Instant) -> (Self, Vec<Wish>) {
        let scheduler = Self {
            announce: HashMap::new(),
            sync: HashMap::new(),
            running: HashSet::new(),
            periodic: now + PERIODIC,
        };
        (scheduler, vec![Wish::RefreshTopics])
    }

    /// Takes note of `event`. `projects` lists every project this node
    /// keeps; it is called only when the event concerns them all.
    pub fn on_event(
        &mut self,
        event: Event,
        now: Instant,
        projects: impl FnOnce() -> Vec<String>,
    ) -> Vec<Wish> {
        match event {
            Event::LocalChange(name) => {
                self.announce.insert(name, now + ANNOUNCE_AFTER);
                vec![]
            }
            Event::Announced(name) => {
                self.sync.entry(name).or_insert(now + SYNC_AFTER);
                vec![]
            }
            Event::PeerConnected => {
                for name in projects() {
                    self.sync.entry(name).or_insert(now + SYNC_AFTER);
                }
                vec![Wish::RefreshTopics]
            }
        }
    }

    /// When [`Scheduler::tick`] next has something to do.
    pub fn next_due(&self) -> Instant {
        self.announce
            .values()
            .chain(self.sync.values())
            .copied()
            .fold(self.periodic, Instant::min)
    }

    /// Everything due at `now`: the periodic round if its time has come,
    /// then each announcement and sync whose time has come.
    pub fn tick(&mut self, now: Instant, projects: impl FnOnce() -> Vec<String>) -> Vec<Wish> {
        let mut wishes = Vec::new();
        if self.periodic <= now {
            // A round missed (the node was busy or asleep) is not made up.
            while self.periodic <= now {
                self.periodic += PERIODIC;
            }
            wishes.push(Wish::RefreshTopics);
            for name in projects() {
                self.sync.entry(name).or_insert(now);
            }
        }
        let mut ready: Vec<String> = due(&self.announce, now);
        ready.sort();
        for name in ready {
            self.announce.remove(&name);
            wishes.push(Wish::Announce(name));
        }
        let mut ready: Vec<String> = due(&self.sync, now);
        ready.sort();
        for name in ready {
            if self.running.contains(&name) {
                // One sync of a project at a time; try again shortly.
                self.sync.insert(name, now + SYNC_AFTER);
                continue;
            }
            self.sync.remove(&name);
            self.running.insert(name.clone());
            wishes.push(Wish::Sync(name));
        }
        wishes
    }

    /// A sync asked for by [`Wish::Sync`] is over (done, failed or
    /// skipped). It may have brought new access statements, which move the
    /// project's topic.
    pub fn synced(&mut self, name: &str) -> Vec<Wish> {
        self.running.remove(name);
        vec![Wish::RefreshTopics]
    }
}

fn due(pending: &HashMap<String, Instant>, now: Instant) -> Vec<String> {
    pending
        .iter()
        .filter(|(_, at)| **at <= now)
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn none() -> Vec<String> {
        vec![]
    }

    fn both() -> Vec<String> {
        vec!["alpha".into(), "beta".into()]
    }

    #[test]
    fn it_subscribes_first_and_then_waits_for_the_periodic_round() {
        let t0 = Instant::now();
        let (scheduler, wishes) = Scheduler::new(t0);
        assert_eq!(wishes, vec![Wish::RefreshTopics]);
        assert_eq!(scheduler.next_due(), t0 + PERIODIC);
    }

    #[test]
    fn a_burst_of_local_changes_is_announced_once_after_the_last() {
        let t0 = Instant::now();
        let (mut s, _) = Scheduler::new(t0);
        let change = || Event::LocalChange("alpha".into());
        assert!(s.on_event(change(), t0, none).is_empty());
        assert!(s.on_event(change(), t0 + ms(400), none).is_empty());
        assert_eq!(s.next_due(), t0 + ms(900), "each change moves it back");
        assert!(s.tick(t0 + ms(600), none).is_empty(), "not yet");
        assert_eq!(
            s.tick(t0 + ms(900), none),
            vec![Wish::Announce("alpha".into())]
        );
        assert!(s.tick(t0 + ms(2_000), none).is_empty(), "announced once");
    }

    #[test]
    fn an_announcement_asks_for_one_sync_and_a_repeat_keeps_its_time() {
        let t0 = Instant::now();
        let (mut s, _) = Scheduler::new(t0);
        let heard = || Event::Announced("alpha".into());
        assert!(s.on_event(heard(), t0, none).is_empty());
        s.on_event(heard(), t0 + ms(200), none);
        assert_eq!(s.next_due(), t0 + SYNC_AFTER, "the first time holds");
        assert!(s.tick(t0 + ms(299), none).is_empty());
        assert_eq!(s.tick(t0 + ms(300), none), vec![Wish::Sync("alpha".into())]);
    }

    #[test]
    fn a_new_connection_syncs_every_project_and_refreshes_topics() {
        let t0 = Instant::now();
        let (mut s, _) = Scheduler::new(t0);
        assert_eq!(
            s.on_event(Event::PeerConnected, t0, both),
            vec![Wish::RefreshTopics]
        );
        assert_eq!(
            s.tick(t0 + SYNC_AFTER, none),
            vec![Wish::Sync("alpha".into()), Wish::Sync("beta".into())]
        );
    }

    #[test]
    fn one_sync_of_a_project_at_a_time() {
        let t0 = Instant::now();
        let (mut s, _) = Scheduler::new(t0);
        s.on_event(Event::Announced("alpha".into()), t0, none);
        assert_eq!(s.tick(t0 + ms(300), none), vec![Wish::Sync("alpha".into())]);
        // News again while the first sync runs: it waits its turn.
        s.on_event(Event::Announced("alpha".into()), t0 + ms(350), none);
        assert!(s.tick(t0 + ms(650), none).is_empty(), "still running");
        assert_eq!(s.next_due(), t0 + ms(950), "put back by SYNC_AFTER");
        assert_eq!(s.synced("alpha"), vec![Wish::RefreshTopics]);
        assert_eq!(s.tick(t0 + ms(950), none), vec![Wish::Sync("alpha".into())]);
    }

    #[test]
    fn every_project_is_synced_each_round_and_a_missed_round_is_not_made_up() {
        let t0 = Instant::now();
        let (mut s, _) = Scheduler::new(t0);
        assert!(s.tick(t0 + PERIODIC - ms(1), both).is_empty());
        assert_eq!(
            s.tick(t0 + PERIODIC, both),
            vec![
                Wish::RefreshTopics,
                Wish::Sync("alpha".into()),
                Wish::Sync("beta".into())
            ]
        );
        s.synced("alpha");
        s.synced("beta");
        // Asleep for three rounds: one round on waking, the next one a
        // full period later.
        let late = t0 + PERIODIC * 4 + ms(10);
        assert_eq!(s.tick(late, none), vec![Wish::RefreshTopics]);
        assert_eq!(s.next_due(), t0 + PERIODIC * 5);
    }
}
