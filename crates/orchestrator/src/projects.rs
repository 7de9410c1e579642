//! Project administration: create and read project items.

use switchyard_aws::store::{project_pk, ProjectItem, META};
use switchyard_core::ids::{validate_slug, MAX_SLUG};
use switchyard_core::project::ProjectConfig;

use crate::{Orchestrator, Rejection, RouteError};

impl Orchestrator {
    /// Creates or replaces a project after validating its names and senders.
    pub async fn put_project(&self, mut config: ProjectConfig) -> Result<(), RouteError> {
        validate_slug("client", &config.client, MAX_SLUG).map_err(Rejection::from)?;
        validate_slug("project", &config.project, MAX_SLUG).map_err(Rejection::from)?;
        config.allowed_senders = config.allowed_senders.iter().map(|s| s.trim().to_lowercase()).collect();
        config.validate_secrets().map_err(Rejection::from)?;
        if config.max_concurrent_sessions == 0 {
            config.max_concurrent_sessions = 1;
        }
        let item = ProjectItem { pk: project_pk(&config.client, &config.project), sk: META.into(), config };
        self.store.put(&item).await?;
        Ok(())
    }

    /// Reads a project.
    pub async fn get_project(&self, client: &str, project: &str) -> Result<Option<ProjectConfig>, RouteError> {
        let item: Option<ProjectItem> = self.store.get(&project_pk(client, project), META).await?;
        Ok(item.map(|i| i.config))
    }
}
