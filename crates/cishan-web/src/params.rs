//! Query parameters shared by the API and the pages. Fields are read as text and parsed one by
//! one, so an error names its field.

use cishan_app::disclosure::Page;
use cishan_app::AppError;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{parse_int_param, parse_year};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Page number, from 1.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub(crate) page: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub(crate) per_page: Option<String>,
}

/// The requested page, and one extra row to learn whether a next page exists.
pub(crate) struct PageRequest {
    pub(crate) number: i64,
    pub(crate) size: i64,
    pub(crate) probe: Page,
}

impl PageParams {
    pub(crate) fn parse(&self) -> Result<PageRequest, AppError> {
        let number = parse_int_param("page", self.page.as_deref(), "页码")?;
        let size = parse_int_param("per_page", self.per_page.as_deref(), "每页条数")?;
        let page = Page::new(number, size)?;
        Ok(PageRequest {
            number: number.unwrap_or(1),
            size: page.limit,
            probe: Page {
                offset: page.offset,
                limit: page.limit + 1,
            },
        })
    }
}

impl PageRequest {
    /// Drops the probe row and says which page comes next.
    pub(crate) fn split<T>(&self, mut items: Vec<T>) -> (Vec<T>, Option<i64>) {
        let more = i64::try_from(items.len()).unwrap_or(i64::MAX) > self.size;
        if more {
            items.truncate(usize::try_from(self.size).unwrap_or(usize::MAX));
        }
        (items, more.then_some(self.number + 1))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct YearParams {
    /// A year of the plan (default: its last year).
    #[param(value_type = Option<i16>, example = 2023)]
    pub(crate) year: Option<String>,
}

impl YearParams {
    pub(crate) fn parse(&self, state: &AppState) -> Result<i16, AppError> {
        match self.year.as_deref().map(str::trim) {
            None | Some("") => Ok(default_year(state)),
            Some(text) => parse_year("year", text),
        }
    }
}

/// The plan year shown when none is asked for: the last year of the pack.
pub(crate) fn default_year(state: &AppState) -> i16 {
    state.app.pack().years.last().copied().unwrap_or(0)
}
