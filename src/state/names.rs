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

/// `AccountSid` -> `account_sid`, `bucketId` -> `bucket_id`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(snake("AccountSid"), "account_sid");
        assert_eq!(snake("bucketId"), "bucket_id");
        assert_eq!(snake("task_gid"), "task_gid");
        assert_eq!(camel("bucket_id"), "bucketId");
        assert_eq!(singular("policies"), "policy");
    }
}
