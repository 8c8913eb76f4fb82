//! What a project looks like from outside: its summary (files, commits,
//! latest activity, this node's role), the list of them, and its files by
//! section.

use tandem_protocol::api::{
    EntryView, FileInfo, ProjectDetail, ProjectSummary, Section, SectionFiles,
};

use crate::error::ServiceError;
use crate::projects::project::Project;
use crate::projects::repo;
use crate::service::{Service, lock, now_ms};

impl Service {
    pub fn summary(&self, project: &Project) -> Result<ProjectSummary, ServiceError> {
        let files = repo::tracked_files(&project.repo)?
            .into_iter()
            .filter(|(path, _)| {
                !path.ends_with(".gitkeep")
                    && path
                        .split('/')
                        .next()
                        .is_some_and(|s| s.parse::<Section>().is_ok())
            })
            .count()
            + crate::blobs::Tracker::new(&project.dir)
                .pointers()
                .map(|p| p.len())
                .unwrap_or(0);
        Ok(ProjectSummary {
            name: project.name.to_string(),
            id: project.id().to_string(),
            owner: project.manifest.genesis.payload.owner.to_did(),
            description: project.manifest.description.clone(),
            path: project.dir.display().to_string(),
            created_ms: project.manifest.genesis.payload.created_ms,
            commits: repo::commit_count(&project.repo)?,
            files,
            entries: project.feed.len(),
            last_activity: project.feed.latest().map(EntryView::from),
            role: project.access.role_of(&self.key().public(), now_ms()),
            public: project.access.roles(now_ms()).public,
            problems: project.problems.clone(),
        })
    }

    pub fn list_projects(&self) -> Result<Vec<ProjectSummary>, ServiceError> {
        let mut out = Vec::new();
        for name in self.project_names()? {
            match self.project(name.as_str()) {
                Ok(project) => out.push(self.summary(&lock(&project))?),
                Err(e) => {
                    tracing::warn!(project = %name, error = %e, "skipping unreadable project")
                }
            }
        }
        Ok(out)
    }

    pub fn show_project(&self, name: &str) -> Result<ProjectDetail, ServiceError> {
        let project = self.project(name)?;
        let project = lock(&project);
        let summary = self.summary(&project)?;
        let tracked = repo::tracked_files(&project.repo)?
            .into_iter()
            .filter(|(path, _)| !path.ends_with(".gitkeep"))
            .map(|(path, size)| FileInfo {
                path,
                size,
                blob: None,
            });
        let large = self
            .blob_files(&project)?
            .into_iter()
            .map(|(path, (pointer, info))| FileInfo {
                path,
                size: pointer.size,
                blob: Some(info),
            });
        let sections = by_section(tracked.chain(large));
        Ok(ProjectDetail { summary, sections })
    }
}

/// Files grouped by the section their path starts with, each group sorted
/// by path; files outside the sections are left out.
pub(crate) fn by_section(files: impl Iterator<Item = FileInfo>) -> Vec<SectionFiles> {
    let mut sections: Vec<SectionFiles> = Section::ALL
        .into_iter()
        .map(|section| SectionFiles {
            section,
            files: vec![],
        })
        .collect();
    for file in files {
        let section = file
            .path
            .split('/')
            .next()
            .and_then(|s| s.parse::<Section>().ok());
        if let Some(section) = section
            && let Some(group) = sections.iter_mut().find(|g| g.section == section)
        {
            group.files.push(file);
        }
    }
    for group in &mut sections {
        group.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    sections
}
