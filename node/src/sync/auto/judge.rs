//! Judging what members say about a project: a gossip announcement must
//! arrive on the project's current topic, open with its current key, be
//! signed by the key that published it and come from a key that may read
//! the project; a direct `Announce` must come from such a key. Either way
//! only a member's news leads to a sync, and nothing is revealed to the
//! sender.

use tandem_protocol::{PeerKey, ProjectId, gossip};

use super::schedule::Event;
use crate::p2p::host::{Gossip, Verdict};
use crate::service::{Service, now_ms};

/// A project and the topic its announcements travel on now.
pub(super) struct ProjectTopic {
    pub name: String,
    pub id: ProjectId,
    pub secret: gossip::Secret,
    pub access_heads: Vec<tandem_protocol::access::StatementId>,
    pub topic: String,
}

impl Service {
    /// Judges a gossip announcement; only an accepted one is relayed and
    /// leads to a sync of the project.
    pub fn on_gossip(&self, gossip: &Gossip) -> Verdict {
        let Some(on_topic) = self
            .project_topics()
            .into_iter()
            .find(|t| t.topic == gossip.topic)
        else {
            // Not (or no longer) a topic of ours: someone on an older or
            // newer access view. Harmless, but not ours to relay.
            return Verdict::Ignore;
        };
        let refs = match gossip::decode(
            &gossip.data,
            gossip.source.as_ref(),
            &on_topic.id,
            &on_topic.secret,
            &on_topic.access_heads,
        ) {
            Ok(refs) => refs,
            Err(e) => {
                tracing::debug!(error = %e, "gossip refused");
                return Verdict::Reject;
            }
        };
        let may_read = self
            .project(&on_topic.name)
            .map(|handle| {
                let roles = self.lock_project(&handle).access.roles(now_ms());
                tandem_protocol::sync::may_read(&roles, &refs.peer)
            })
            .unwrap_or(false);
        if !may_read {
            return Verdict::Reject;
        }
        self.auto_event(Event::Announced(on_topic.name));
        Verdict::Accept
    }

    /// Every project this node keeps, with its current gossip topic.
    pub(super) fn project_topics(&self) -> Vec<ProjectTopic> {
        let mut topics = Vec::new();
        for name in self.project_names().unwrap_or_default() {
            let Ok(handle) = self.project(name.as_str()) else {
                continue;
            };
            let project = self.lock_project(&handle);
            let access_heads = project.access.heads();
            let secret = gossip::Secret::of(&project.manifest.genesis);
            topics.push(ProjectTopic {
                topic: gossip::topic(&secret, &access_heads),
                id: project.id(),
                secret,
                access_heads,
                name: name.to_string(),
            });
        }
        topics
    }

    /// The gossip topic of every project this node keeps.
    pub fn gossip_topics(&self) -> Vec<String> {
        self.project_topics().into_iter().map(|t| t.topic).collect()
    }

    /// A peer says it has news for a project: sync it, if the peer is a
    /// member and we have the project. Nothing is revealed either way.
    pub fn on_announce(&self, peer: &PeerKey, id: &ProjectId) {
        let Ok(Some(name)) = self.find_by_id(id) else {
            self.hub_heard_of(peer, id); // a hub looks for a new grant (hub::replica)
            return;
        };
        let Ok(handle) = self.project(name.as_str()) else {
            return;
        };
        let roles = self.lock_project(&handle).access.roles(now_ms());
        let may_read = tandem_protocol::sync::may_read(&roles, peer);
        if may_read {
            self.auto_event(Event::Announced(name.to_string()));
        }
    }
}
