//! Our Dakota spec (`specs/dakota/openapi.yaml`) against the official one (`../shared`),
//! operation by operation: same path and method, operationId, parameters (name, place,
//! required), request media types, response statuses and media types, and for every JSON
//! body the same property names and `required` members, two levels deep.

use std::collections::BTreeSet;
use std::path::Path;

use api_sandbox::generate::flatten;
use api_sandbox::spec::{Operation, Spec};
use serde_json::Value;

use crate::common::{bundled_dakota, vendor_dakota};

/// Property names and required members of a schema, and of its object members.
fn shape(spec: &Spec, schema: &Value, depth: usize) -> Vec<String> {
    let flat = flatten(&spec.doc, schema);
    let mut out = Vec::new();
    if let Some(req) = flat.get("required").and_then(Value::as_array) {
        let mut r: Vec<&str> = req.iter().filter_map(Value::as_str).collect();
        r.sort_unstable();
        out.push(format!("required {r:?}"));
    }
    if let Some(props) = flat.get("properties").and_then(Value::as_object) {
        let names: BTreeSet<&String> = props.keys().collect();
        out.push(format!("properties {names:?}"));
        if depth > 0 {
            for (name, p) in props {
                out.extend(
                    shape(spec, p, depth - 1)
                        .into_iter()
                        .map(|s| format!("{name}.{s}")),
                );
            }
        }
    }
    if let Some(items) = flat.get("items") {
        out.extend(
            shape(spec, items, depth)
                .into_iter()
                .map(|s| format!("[].{s}")),
        );
    }
    out
}

fn describe(spec: &Spec, op: &Operation) -> Vec<String> {
    let mut d = vec![format!("operationId {}", op.id)];
    let mut params: Vec<String> = op
        .params
        .iter()
        .map(|p| {
            format!(
                "param {} in {} required {}",
                p.name,
                p.location.as_str(),
                p.required
            )
        })
        .collect();
    params.sort();
    d.extend(params);
    if let Some(body) = &op.body {
        d.push(format!("body required {}", body.required));
        for m in &body.content {
            d.push(format!("body media {}", m.media_type));
            if let Some(s) = m.schema.as_deref().and_then(|p| spec.at(p)) {
                d.extend(shape(spec, s, 1).into_iter().map(|x| format!("body {x}")));
            }
        }
    }
    let mut responses: Vec<String> = Vec::new();
    for r in &op.responses {
        for m in &r.content {
            responses.push(format!("response {:?} media {}", r.status, m.media_type));
            if let Some(s) = m.schema.as_deref().and_then(|p| spec.at(p)) {
                responses.extend(
                    shape(spec, s, 1)
                        .into_iter()
                        .map(|x| format!("response {:?} {x}", r.status)),
                );
            }
        }
        if r.content.is_empty() {
            responses.push(format!("response {:?} no content", r.status));
        }
    }
    responses.sort();
    d.extend(responses);
    d
}

#[test]
fn our_dakota_spec_matches_the_official_one() {
    let Some(official) = vendor_dakota() else {
        return;
    };
    let theirs = Spec::load(Path::new(&official)).expect("official spec loads");
    let ours = Spec::load(Path::new(&bundled_dakota())).expect("our spec loads");
    let mut matched = 0;
    let mut problems = Vec::new();
    for op in &theirs.operations {
        let Some(mine) = ours
            .operations
            .iter()
            .find(|o| o.method == op.method && o.path == op.path)
        else {
            problems.push(format!("{} {}: missing", op.method, op.path));
            continue;
        };
        let (a, b) = (describe(&theirs, op), describe(&ours, mine));
        let missing: Vec<&String> = a.iter().filter(|x| !b.contains(x)).collect();
        let extra: Vec<&String> = b.iter().filter(|x| !a.contains(x)).collect();
        if missing.is_empty() && extra.is_empty() {
            matched += 1;
        } else {
            problems.push(format!(
                "{} {}: official only {missing:?}; ours only {extra:?}",
                op.method, op.path
            ));
        }
    }
    let line = format!("{matched}/{} operations match", theirs.operations.len());
    println!("{line}");
    assert!(problems.is_empty(), "{line}\n{}", problems.join("\n"));
    assert_eq!(
        ours.operations.len(),
        theirs.operations.len(),
        "ours has operations the official spec lacks"
    );
}
