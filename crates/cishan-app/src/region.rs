//! The region this deployment serves, from its pack.

use crate::{level_name, App};

/// One division as served by the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DivisionView {
    pub code: String,
    pub name: String,
    pub level: &'static str,
    pub parent: Option<String>,
}

/// The region and its divisions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegionView {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub timezone: String,
    pub divisions: Vec<DivisionView>,
}

impl App {
    pub fn region(&self) -> RegionView {
        let pack = self.pack();
        RegionView {
            code: pack.code.to_string(),
            name: pack.name.clone(),
            name_en: pack.name_en.clone(),
            timezone: pack.timezone.clone(),
            divisions: pack
                .divisions
                .iter()
                .map(|d| DivisionView {
                    code: d.code.to_string(),
                    name: d.name.clone(),
                    level: level_name(d.level),
                    parent: d.parent.as_ref().map(ToString::to_string),
                })
                .collect(),
        }
    }
}
