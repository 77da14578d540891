//! Behaviours: the parts of an API that cannot be declared in a profile, one file per
//! behaviour, each generic (named after what it does, not after an API) and plugged into
//! the engine through the one extension point, [`crate::state::behaviour::Behaviour`]. A
//! profile names the behaviours it uses under `behaviours:` and binds them to operations
//! and resources; [`build`] makes them from that.

pub mod spend_policy;
pub mod timeseries;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::profile::{self, Profile};
use crate::spec::SpecError;
use crate::state::behaviour::{Behaviour, Factory};

/// Every behaviour there is, by the name a profile's `use:` gives.
const REGISTRY: &[(&str, Factory)] = &[
    ("spend_policy", spend_policy::make),
    ("timeseries", timeseries::make),
];

/// The names of the registered behaviours.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(n, _)| *n).collect()
}

/// The behaviours `profile` names, built with their settings; an unknown one, or settings a
/// behaviour refuses, stop start-up with the profile's file and pointer.
pub fn build(
    profile: &Profile,
    spec_file: &Path,
) -> Result<BTreeMap<String, Arc<dyn Behaviour>>, SpecError> {
    let file = profile::file_for(spec_file);
    let mut out = BTreeMap::new();
    for (name, using) in &profile.behaviours {
        let at = format!("/behaviours/{}", crate::spec::pointer::escape(name));
        let kind = using.kind();
        let Some((_, make)) = REGISTRY.iter().find(|(n, _)| *n == kind) else {
            return Err(SpecError::new(
                file,
                at,
                format!("no behaviour '{kind}' (known: {})", names().join(", ")),
            ));
        };
        let built = make(&using.settings()).map_err(|reason| SpecError::new(&file, &at, reason))?;
        out.insert(name.clone(), built);
    }
    for (op, over) in &profile.operations {
        check_named(
            &file,
            &out,
            &format!("/operations/{op}/behaviour"),
            over.behaviour.as_deref(),
        )?;
    }
    for (resource, over) in &profile.resources {
        check_named(
            &file,
            &out,
            &format!("/resources/{resource}/behaviour"),
            over.behaviour.as_deref(),
        )?;
    }
    Ok(out)
}

/// A behaviour an operation or resource names must be one `behaviours:` declares.
fn check_named(
    file: &Path,
    built: &BTreeMap<String, Arc<dyn Behaviour>>,
    at: &str,
    named: Option<&str>,
) -> Result<(), SpecError> {
    match named {
        Some(n) if !built.contains_key(n) => Err(SpecError::new(
            file,
            at,
            format!("'{n}' is not a behaviour declared under `behaviours`"),
        )),
        _ => Ok(()),
    }
}
