//! Property: for every operation of every spec the tests load, a body generated from any
//! seed validates against the schema it was generated from (responses and request bodies,
//! with and without property examples). Also: the same seed gives the same value, and a
//! generator reusing the spec's flattened schemas gives what one working them out anew gives.

use std::path::Path;
use std::sync::LazyLock;

use api_sandbox::generate::Generator;
use api_sandbox::schema::{Direction, SchemaSet, violations};
use api_sandbox::spec::Spec;
use api_sandbox::spec::catalog::is_json;
use proptest::prelude::*;

use crate::common::{bundled_dakota, test_spec, vendor_dakota};

struct Loaded {
    spec: Spec,
    schemas: SchemaSet,
    /// (what, schema pointer, direction) for every JSON body of every operation.
    targets: Vec<(String, String, Direction)>,
}

static SPECS: LazyLock<Vec<Loaded>> = LazyLock::new(|| {
    let mut paths = vec![
        bundled_dakota(),
        test_spec("petstore.yaml"),
        test_spec("kitchen-sink.yaml"),
    ];
    paths.extend(vendor_dakota());
    paths
        .iter()
        .map(|p| {
            let spec = Spec::load(Path::new(p)).expect("spec loads");
            let schemas = SchemaSet::new(&spec.doc).expect("schemas compile");
            let mut targets = Vec::new();
            for op in &spec.operations {
                for r in &op.responses {
                    for m in r.content.iter().filter(|m| is_json(&m.media_type)) {
                        if let Some(s) = &m.schema {
                            targets.push((
                                format!("{} {:?} response", op.id, r.status),
                                s.clone(),
                                Direction::Response,
                            ));
                        }
                    }
                }
                for m in op
                    .body
                    .iter()
                    .flat_map(|b| &b.content)
                    .filter(|m| is_json(&m.media_type))
                {
                    if let Some(s) = &m.schema {
                        targets.push((
                            format!("{} request body", op.id),
                            s.clone(),
                            Direction::Request,
                        ));
                    }
                }
            }
            Loaded {
                spec,
                schemas,
                targets,
            }
        })
        .collect()
});

fn check_all(seed: u64, use_examples: bool) -> Result<usize, TestCaseError> {
    let mut checked = 0;
    for loaded in SPECS.iter() {
        for (what, ptr, direction) in &loaded.targets {
            let mut g = Generator::new(&loaded.spec.doc, seed, what, *direction);
            g.use_examples = use_examples;
            let value = g.value_at(ptr);
            let validator = loaded
                .schemas
                .compile(*direction, ptr)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let problems = violations(&validator, &value);
            prop_assert!(
                problems.is_empty(),
                "{}: {what} (seed {seed}) generated {value} which violates {problems:?}",
                loaded.spec.title
            );
            checked += 1;
        }
    }
    Ok(checked)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_bodies_validate(seed in any::<u64>(), use_examples in any::<bool>()) {
        let checked = check_all(seed, use_examples)?;
        prop_assert!(checked > 200, "only {checked} schemas were exercised");
    }
}

/// For every body of every spec, with and without examples: the value from a generator that
/// reuses the spec's cache of flattened schemas and the values it generated without drawing
/// randomness (filled by the first pass, read by the second) is the one a generator without
/// either makes.
fn check_cached(seed: u64, use_examples: bool) -> Result<usize, TestCaseError> {
    let mut checked = 0;
    for loaded in SPECS.iter() {
        for _pass in 0..2 {
            for (what, ptr, direction) in &loaded.targets {
                let mut plain = Generator::new(&loaded.spec.doc, seed, what, *direction);
                plain.use_examples = use_examples;
                let plain = plain.value_at(ptr);
                let mut cached = Generator::for_spec(&loaded.spec, seed, what, *direction);
                cached.use_examples = use_examples;
                let cached = cached.value_at(ptr);
                prop_assert_eq!(
                    &plain,
                    &cached,
                    "{}: {} (seed {})",
                    loaded.spec.title,
                    what,
                    seed
                );
                checked += 1;
            }
        }
    }
    Ok(checked)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn cached_schemas_generate_the_same_values(seed in any::<u64>(), use_examples in any::<bool>()) {
        let checked = check_cached(seed, use_examples)?;
        prop_assert!(checked > 400, "only {checked} schemas were compared");
    }
}

#[test]
fn same_seed_same_value_different_seed_different_value() {
    let loaded = &SPECS[0];
    let (what, ptr, dir) = loaded
        .targets
        .iter()
        .find(|(w, _, _)| w.starts_with("createCustomer"))
        .expect("createCustomer exists");
    // Without property examples, which are the same whatever the seed.
    let make = |seed| {
        let mut g = Generator::new(&loaded.spec.doc, seed, what, *dir);
        g.use_examples = false;
        g.value_at(ptr)
    };
    let (a, b, c) = (make(9), make(9), make(10));
    assert_eq!(
        serde_json::to_string(&a).ok(),
        serde_json::to_string(&b).ok()
    );
    assert_ne!(a, c);
}

/// A generator told when a record is made mints a time-ordered id with that time, as the
/// create and made-record paths tell it; untold, it draws a recent time.
#[test]
fn a_generated_id_carries_the_time_it_is_told() {
    let schema = serde_json::json!({"type": "string", "pattern": "^req_[0-9a-hjkmnp-tv-z]{26}$"});
    let doc = serde_json::Value::Null;
    let time_of = |id: &serde_json::Value| {
        let id = id.as_str().expect("a string id");
        let ulid = ulid::Ulid::from_string(&id[4..].to_ascii_uppercase()).expect("a ULID");
        ulid.timestamp_ms()
    };
    let mut told = Generator::new(&doc, 7, "a record", Direction::Response);
    told.minted_at = Some(1_750_000_000_000);
    assert_eq!(time_of(&told.value(&schema)), 1_750_000_000_000);
    let mut untold = Generator::new(&doc, 7, "a record", Direction::Response);
    assert_ne!(time_of(&untold.value(&schema)), 1_750_000_000_000);
}
