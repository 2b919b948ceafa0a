//! Public disclosure (阳光慈善): the platform-wide summary the plan names, and organizations and
//! projects with their totals. Everything here is public; nothing personal is returned.

use cishan_store::{DisclosureSummary, FundRow, OrganizationSummary, ProjectSummary};

use crate::{App, AppError, Result, MAX_PAGE_SIZE};

/// A page request, clamped to sane bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

impl Page {
    /// Builds a page from optional user input: page numbers start at 1.
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Page> {
        let per_page = per_page.unwrap_or(20);
        if !(1..=MAX_PAGE_SIZE).contains(&per_page) {
            return Err(AppError::invalid(
                "per_page",
                "page.size_invalid",
                format!("每页条数应在 1 到 {MAX_PAGE_SIZE} 之间。"),
            ));
        }
        let page = page.unwrap_or(1);
        if page < 1 {
            return Err(AppError::invalid(
                "page",
                "page.number_invalid",
                "页码从 1 开始。",
            ));
        }
        let offset = (page - 1)
            .checked_mul(per_page)
            .ok_or_else(|| AppError::invalid("page", "page.number_invalid", "页码太大。"))?;
        Ok(Page {
            offset,
            limit: per_page,
        })
    }
}

/// An organization with its funds and projects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationDetail {
    pub organization: OrganizationSummary,
    pub funds: Vec<FundRow>,
    pub projects: Vec<ProjectSummary>,
}

impl App {
    pub async fn disclosure_summary(&self) -> Result<DisclosureSummary> {
        Ok(self.store().disclosure_summary().await?)
    }

    pub async fn organizations(&self, page: Page) -> Result<Vec<OrganizationSummary>> {
        Ok(self
            .store()
            .organizations_page(page.offset, page.limit)
            .await?)
    }

    pub async fn organization(&self, id: &str) -> Result<OrganizationDetail> {
        let organization = self
            .store()
            .organization(id)
            .await?
            .ok_or_else(|| AppError::not_found("organization"))?;
        let funds = self.store().funds_of(id).await?;
        let projects = self
            .store()
            .projects_page(Some(id), 0, MAX_PAGE_SIZE)
            .await?;
        Ok(OrganizationDetail {
            organization,
            funds,
            projects,
        })
    }

    pub async fn projects(&self, page: Page) -> Result<Vec<ProjectSummary>> {
        Ok(self
            .store()
            .projects_page(None, page.offset, page.limit)
            .await?)
    }

    pub async fn project(&self, id: &str) -> Result<ProjectSummary> {
        self.store()
            .project(id)
            .await?
            .ok_or_else(|| AppError::not_found("project"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded() {
        assert_eq!(
            Page::new(None, None).unwrap(),
            Page {
                offset: 0,
                limit: 20
            }
        );
        assert_eq!(
            Page::new(Some(3), Some(10)).unwrap(),
            Page {
                offset: 20,
                limit: 10
            }
        );
        assert_eq!(
            Page::new(Some(0), None).unwrap_err().field.as_deref(),
            Some("page")
        );
        assert_eq!(
            Page::new(None, Some(MAX_PAGE_SIZE + 1))
                .unwrap_err()
                .field
                .as_deref(),
            Some("per_page")
        );
        assert!(Page::new(Some(i64::MAX), Some(100)).is_err());
    }
}
