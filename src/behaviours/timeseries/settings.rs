//! The `timeseries` behaviour's settings, as the profile gives them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// What the behaviour does for an operation the profile binds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Ingest,
    IngestBatch,
    Query,
    Summary,
    Overview,
    ContainerStats,
    ContainerDelete,
}

fn default_container_member() -> String {
    "bucketId".into()
}
fn default_source_member() -> String {
    "dataSourceId".into()
}
fn default_retention_member() -> String {
    "retentionDays".into()
}

/// The profile's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub containers: String,
    pub sources: String,
    #[serde(default)]
    pub rules: Option<String>,
    #[serde(default)]
    pub answers: BTreeMap<String, Role>,
    /// The member of sources, points and requests naming the container.
    #[serde(default = "default_container_member")]
    pub container_member: String,
    /// The member of points and requests naming the source.
    #[serde(default = "default_source_member")]
    pub source_member: String,
    /// The container's member giving how many days readings stay visible.
    #[serde(default = "default_retention_member")]
    pub retention_member: String,
    /// A container whose `status` is this takes no readings (409).
    #[serde(default)]
    pub closed_status: Option<String>,
    /// Names in messages (`Bucket not found`).
    #[serde(default)]
    pub labels: Labels,
    /// The tenant's organisation and plan as the overview shows them.
    #[serde(default)]
    pub overview: Map<String, Value>,
    /// `container_stats`: the member added to the container and what it counts, by member:
    /// a resource (its records under the container) or `points`.
    #[serde(default)]
    pub stats: Map<String, Value>,
    /// `container_delete`: what the answer's `deletedResources` counts, the same way.
    #[serde(default)]
    pub deleted: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Labels {
    pub container: String,
    pub source: String,
}

impl Default for Labels {
    fn default() -> Self {
        Self {
            container: "Container".into(),
            source: "Data source".into(),
        }
    }
}
