//! Start-up on a spec of a big real API's size: a synthetic OpenAPI 3.0 document of about
//! 4 MB and 420 operations (140 resources, each listed, created and read, with schemas of
//! 30 described properties, nested objects, enums and shared error responses), written to a
//! temporary folder and served by the release `sandbox` binary.
//!
//! ```text
//! cargo bench --bench bigspec
//! ```
//!
//! Reports, median of 5 spawns: the time from spawning `sandbox serve` to the first 200
//! answer of `GET /res0/items` (goal < 250 ms), and the server's VmRSS then and its peak
//! (goal < 150 MB before traffic). The same for the bundled specs, for comparison. Goals are
//! reported, never enforced.

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use support::{Target, first_answer, free_port, sandbox_binary, sandbox_command, status_kb};

const RESOURCES: usize = 140;
const PROPERTIES: usize = 78;
const RUNS: usize = 5;

fn main() -> ExitCode {
    support::async_main("bigspec", run)
}

async fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("openapi.json");
    let doc = synthetic();
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(&file, &text)?;
    let ops = RESOURCES * 3;
    println!(
        "synthetic spec: {:.1} MB, {ops} operations, {} schemas",
        text.len() as f64 / 1_048_576.0,
        RESOURCES * 3
    );
    measure("synthetic 4 MB spec", &file, "/res0/items", true).await?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    measure(
        "bundled Dakota",
        &root.join("specs/dakota/openapi.yaml"),
        "/customers",
        false,
    )
    .await?;
    measure(
        "bundled dakkio",
        &root.join("specs/dakkio/openapi.yaml"),
        "/api/buckets",
        false,
    )
    .await?;
    Ok(())
}

async fn measure(name: &str, spec: &Path, path: &str, goals: bool) -> Result<()> {
    let bin = sandbox_binary()?;
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut peak = Vec::new();
    for _ in 0..RUNS {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}{path}");
        let target = Target::get_url(url, "dakkio_a_bench");
        let cmd = sandbox_command(&bin, spec, port);
        let (took, _, server) = first_answer(name, cmd, port, &target, Duration::from_secs(30))
            .await
            .with_context(|| format!("serving {}", spec.display()))?;
        times.push(took.as_secs_f64() * 1000.0);
        rss.push(status_kb(server.pid(), "VmRSS:")? as f64 / 1024.0);
        peak.push(status_kb(server.pid(), "VmHWM:")? as f64 / 1024.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (t, r, p) = (median(&mut times), median(&mut rss), median(&mut peak));
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let goal = |what: &str, ok: bool| {
        if goals {
            format!(" ({what}: {})", verdict(ok))
        } else {
            String::new()
        }
    };
    println!(
        "{name}: first answer {t:.0} ms (min {:.0}){}; VmRSS {r:.1} MB, peak {p:.1} MB{}",
        times[0],
        goal("goal < 250 ms", t < 250.0),
        goal("goal < 150 MB", p < 150.0)
    );
    Ok(())
}

/// The synthetic document: resources `res0`..`res139`, each with `GET/POST /resN/items`
/// and `GET /resN/items/{id}`, schemas of many described properties, and shared errors.
fn synthetic() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in 0..RESOURCES {
        let name = format!("Res{r}");
        let mut props = Map::new();
        props.insert("id".into(), json!({"type": "string", "readOnly": true}));
        for p in 0..PROPERTIES {
            let description = format!(
                "Property {p} of resource {r}. It describes one aspect of the record in words, as real specs do at length, so that the document reaches the size of a big public API."
            );
            let schema = match p % 6 {
                0 => json!({"type": "string", "maxLength": 200, "description": description}),
                1 => json!({"type": "integer", "minimum": 0, "description": description}),
                2 => json!({"type": "boolean", "description": description}),
                3 => {
                    json!({"type": "string", "enum": ["alpha", "beta", "gamma", "delta"], "description": description})
                }
                4 => {
                    json!({"type": "string", "format": "date-time", "nullable": true, "description": description})
                }
                _ => json!({"type": "object", "description": description, "properties": {
                    "street": {"type": "string"}, "city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}),
            };
            props.insert(format!("field_{p}"), schema);
        }
        schemas.insert(
            name.clone(),
            json!({"type": "object", "required": ["id", "field_0"], "properties": props}),
        );
        schemas.insert(
            format!("{name}List"),
            json!({"type": "object", "properties": {
                "data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}},
                "has_more": {"type": "boolean"}}}),
        );
        schemas.insert(
            format!("{name}Create"),
            json!({"type": "object", "required": ["field_0"], "properties": {
                "field_0": {"type": "string", "maxLength": 200}, "field_1": {"type": "integer", "minimum": 0}}}),
        );
        let one = |s: &str| json!({"$ref": format!("#/components/schemas/{s}")});
        let ok = |s: &str| json!({"description": "OK", "content": {"application/json": {"schema": one(s)}}});
        paths.insert(
            format!("/res{r}/items"),
            json!({
                "get": {"operationId": format!("list{name}"), "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                    "responses": {"200": ok(&format!("{name}List")), "400": {"$ref": "#/components/responses/Error"}}},
                "post": {"operationId": format!("create{name}"),
                    "requestBody": {"required": true, "content": {"application/json": {"schema": one(&format!("{name}Create"))}}},
                    "responses": {"201": ok(&name), "400": {"$ref": "#/components/responses/Error"}}}
            }),
        );
        paths.insert(
            format!("/res{r}/items/{{id}}"),
            json!({"get": {"operationId": format!("get{name}"),
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": ok(&name), "404": {"$ref": "#/components/responses/Error"}}}}),
        );
    }
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"message": {"type": "string"}, "code": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Synthetic big API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    })
}
