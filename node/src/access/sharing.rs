//! Granting and revoking roles: `tandem share`, `revoke`, `members`.
//!
//! Each change is a signed statement (see `tandem_protocol::access`) stored
//! in the node and in the project, committed on its own, and recorded as an
//! access entry in the activity feed.

use std::collections::HashMap;

use tandem_protocol::PeerKey;
use tandem_protocol::access::{Action, Role};
use tandem_protocol::activity::{Details, Filter, Kind};
use tandem_protocol::api::{EntryView, MemberView, MembersView};

use crate::access::store::AccessStore;
use crate::activity::query::parse_date;
use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::projects::repo;
use crate::service::{Service, now_ms};

fn parse_peer(text: &str) -> Result<PeerKey, ServiceError> {
    text.parse::<PeerKey>()
        .map_err(|source| ServiceError::PeerKey { source })
}

/// Display names seen in the feed: labels only, latest wins.
fn names(project: &Project) -> HashMap<PeerKey, String> {
    let mut names = HashMap::new();
    for entry in project
        .feed
        .query(&Filter::default(), usize::MAX)
        .into_iter()
        .rev()
    {
        names.insert(entry.payload.author, entry.payload.author_name.clone());
    }
    names
}

fn label(names: &HashMap<PeerKey, String>, key: &PeerKey) -> String {
    match names.get(key) {
        Some(name) => format!("{name} ({})", key.short()),
        None => key.short(),
    }
}

impl Service {
    fn require_manager(&self, project: &Project) -> Result<(), ServiceError> {
        match project.access.role_of(&self.key().public(), now_ms()) {
            Some(role) if role.can_manage() => Ok(()),
            Some(role) => Err(ServiceError::BadRequest(format!(
                "you are a {role} of {}: only admins and the owner can change who has access",
                project.name
            ))),
            None => Err(ServiceError::BadRequest(format!(
                "you have no role in {}",
                project.name
            ))),
        }
    }

    /// Signs a statement on top of everything this node has seen (with
    /// merge statements first when there are more heads than one statement
    /// may name), stores it, commits its files alone, and records an access
    /// entry.
    fn issue(
        &self,
        project: &mut Project,
        subject: PeerKey,
        action: Action,
        expires_ms: Option<i64>,
        message: String,
    ) -> Result<EntryView, ServiceError> {
        let issued = project
            .access
            .issue(subject, action, self.key(), now_ms(), expires_ms)?;
        let mut files = Vec::new();
        for verified in issued {
            project
                .access_store
                .save(&verified)
                .map_err(crate::projects::project::ProjectOpenError::from)?;
            files.push(AccessStore::project_file(&verified.id));
            project.access.insert(verified);
        }
        let paths: Vec<&str> = files.iter().map(String::as_str).collect();
        let commit = repo::commit_paths(
            &project.repo,
            &self.signature()?,
            &format!("[tandem:access] {message}\n\n{}", self.trailer()),
            &paths,
        )?;
        self.append(
            project,
            Kind::Access,
            message,
            Some(commit.to_string()),
            Details::default(),
            vec![],
        )
    }

    pub fn share(
        &self,
        name: &str,
        peer: &str,
        role: &str,
        expires: Option<&str>,
    ) -> Result<EntryView, ServiceError> {
        let subject = parse_peer(peer)?;
        let role: Role = role.parse()?;
        let expires_ms = expires.map(parse_date).transpose()?;
        if expires_ms.is_some_and(|e| e <= now_ms()) {
            return Err(ServiceError::BadRequest(
                "the expiry date is in the past".into(),
            ));
        }
        let handle = self.project(name)?;
        let mut project = self.lock_project(&handle);
        if subject == self.key().public() {
            return Err(ServiceError::BadRequest(
                "you cannot share a project with yourself".into(),
            ));
        }
        if subject == project.access.owner() {
            return Err(ServiceError::BadRequest(
                "that key is the project's owner, who always has every right".into(),
            ));
        }
        self.require_manager(&project)?;
        // A hub keeps copies for a team and is reachable by anyone who can
        // reach the internet: it may read, never write or grant, so a
        // taken-over hub can withhold but never forge.
        if role != Role::Reader && self.hub_key() == Some(subject) {
            return Err(ServiceError::BadRequest(format!(
                "{} is this node's hub: a hub keeps a copy with the reader role only, never {role}",
                subject.short()
            )));
        }
        let current = project.access.role_of(&subject, now_ms());
        if current == Some(role) && expires_ms.is_none() {
            return Err(ServiceError::Conflict(format!(
                "{} is already a {role}",
                subject.short()
            )));
        }
        let names = names(&project);
        let mut message = format!("Granted {role} to {}", label(&names, &subject));
        if let Some(expires) = expires_ms {
            message.push_str(&format!(
                " until {}",
                chrono::DateTime::from_timestamp_millis(expires)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            ));
        }
        self.issue(
            &mut project,
            subject,
            Action::Grant { role },
            expires_ms,
            message,
        )
    }

    pub fn revoke(&self, name: &str, peer: &str) -> Result<EntryView, ServiceError> {
        let subject = parse_peer(peer)?;
        let handle = self.project(name)?;
        let mut project = self.lock_project(&handle);
        if subject == project.access.owner() {
            return Err(ServiceError::BadRequest(
                "the owner's access cannot be revoked".into(),
            ));
        }
        self.require_manager(&project)?;
        if project.access.role_of(&subject, now_ms()).is_none() {
            return Err(ServiceError::BadRequest(format!(
                "{} is not a member of {}; see `tandem members {}`",
                subject.to_did(),
                project.name,
                project.name
            )));
        }
        let message = format!("Revoked access of {}", label(&names(&project), &subject));
        self.issue(&mut project, subject, Action::Revoke, None, message)
    }

    pub fn set_visibility(&self, name: &str, public: bool) -> Result<EntryView, ServiceError> {
        let handle = self.project(name)?;
        let mut project = self.lock_project(&handle);
        self.require_manager(&project)?;
        let message = if public {
            "Made the project public: anyone may read it".to_owned()
        } else {
            "Made the project private: only members may read it".to_owned()
        };
        let me = self.key().public();
        self.issue(
            &mut project,
            me,
            Action::Visibility { public },
            None,
            message,
        )
    }

    pub fn members(&self, name: &str) -> Result<MembersView, ServiceError> {
        let handle = self.project(name)?;
        let project = self.lock_project(&handle);
        let roles = project.access.roles(now_ms());
        let names = names(&project);
        let mut members: Vec<MemberView> = roles
            .members
            .values()
            .map(|m| MemberView {
                did: m.key.to_did(),
                peer_id: m.key.to_peer_id(),
                name: names.get(&m.key).cloned(),
                role: m.role,
                granted_by: m.granted_by.to_did(),
                granted_by_name: names.get(&m.granted_by).cloned(),
                since_ms: if m.role == Role::Owner {
                    project.manifest.genesis.payload.created_ms
                } else {
                    m.since_ms
                },
                expires_ms: m.expires_ms,
            })
            .collect();
        members.sort_by(|a, b| b.role.cmp(&a.role).then(a.since_ms.cmp(&b.since_ms)));
        Ok(MembersView {
            members,
            public: roles.public,
        })
    }
}
