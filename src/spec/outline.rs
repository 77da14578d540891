//! The typed part of a spec the catalogue needs: paths, security and security schemes, in
//! `openapiv3`'s types. Everything else (component schemas, examples, prose) is skipped by
//! serde without being built, which keeps start-up fast on large specs; schemas are read from
//! the raw document instead.

use indexmap::IndexMap;
use openapiv3::{Info, Paths, ReferenceOr, SecurityRequirement, SecurityScheme};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Outline {
    pub info: Info,
    pub paths: Paths,
    #[serde(default)]
    pub security: Option<Vec<SecurityRequirement>>,
    #[serde(default)]
    pub components: Option<OutlineComponents>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OutlineComponents {
    #[serde(rename = "securitySchemes", default)]
    pub security_schemes: IndexMap<String, ReferenceOr<SecurityScheme>>,
}
