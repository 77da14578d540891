//! How names of things relate: a collection's singular (`policies` -> `policy`) and the
//! camelCase spelling of a snake_case member (`bucket_id` -> `bucketId`), which inference
//! uses to match path segments, members and envelopes.

/// `customers` -> `customer`, `policies` -> `policy`, `signer-groups` -> `signer_group`.
pub fn singular(name: &str) -> String {
    let n = name.replace('-', "_");
    if let Some(stem) = n.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = n.strip_suffix("sses") {
        format!("{stem}ss")
    } else if let Some(stem) = n.strip_suffix('s') {
        stem.to_owned()
    } else {
        n
    }
}

/// `bucket_id` -> `bucketId`.
pub fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
