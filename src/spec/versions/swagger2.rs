//! Swagger 2.0 into OpenAPI 3.0, as the 3.0 specification's own migration notes describe
//! it: `definitions`, shared `parameters` and `responses` and `securityDefinitions` move
//! under `components`; `host`, `basePath` and `schemes` become `servers`; a `body`
//! parameter becomes the request body and `formData` parameters a form body's schema, in
//! the media types `consumes` lists; response schemas are offered in every type `produces`
//! lists; simple parameters get a `schema` (with `collectionFormat` as `style`/`explode`);
//! `x-nullable` is `nullable` and `type: file` a binary string.

use serde_json::{Map, Value, json};

use super::schemas;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// Keywords of a 2.0 simple parameter (or header) that belong in its 3.0 `schema`.
const SCHEMA_KEYS: [&str; 16] = [
    "type",
    "format",
    "items",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
];

pub fn convert(doc: &Value) -> Value {
    let global = Context {
        doc,
        consumes: media_list(doc.get("consumes")),
        produces: media_list(doc.get("produces")),
    };
    let mut out = Map::new();
    out.insert("openapi".into(), json!("3.0.3"));
    for key in ["info", "tags", "security", "externalDocs"] {
        if let Some(v) = doc.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("servers".into(), servers(doc));
    let mut paths = Map::new();
    if let Some(Value::Object(p)) = doc.get("paths") {
        for (path, item) in p {
            paths.insert(path.clone(), global.path_item(item));
        }
    }
    out.insert("paths".into(), Value::Object(paths));
    out.insert("components".into(), global.components());
    let mut converted = Value::Object(out);
    rewrite_refs(&mut converted);
    schemas::each_schema(&mut converted, &mut schema_fixes);
    converted
}

struct Context<'a> {
    doc: &'a Value,
    consumes: Vec<String>,
    produces: Vec<String>,
}

fn media_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn or_json(list: Vec<String>) -> Vec<String> {
    if list.is_empty() {
        vec!["application/json".into()]
    } else {
        list
    }
}

/// `{scheme}://{host}{basePath}`, or the base path alone when no host is named.
fn servers(doc: &Value) -> Value {
    let base = doc.get("basePath").and_then(Value::as_str).unwrap_or("");
    let Some(host) = doc.get("host").and_then(Value::as_str) else {
        let url = if base.is_empty() { "/" } else { base };
        return json!([{ "url": url }]);
    };
    let schemes = media_list(doc.get("schemes"));
    let schemes = if schemes.is_empty() {
        vec!["https".to_owned()]
    } else {
        schemes
    };
    Value::Array(
        schemes
            .iter()
            .map(|s| json!({ "url": format!("{s}://{host}{base}") }))
            .collect(),
    )
}

impl Context<'_> {
    fn components(&self) -> Value {
        let mut c = Map::new();
        if let Some(defs) = self.doc.get("definitions") {
            c.insert("schemas".into(), defs.clone());
        }
        if let Some(Value::Object(params)) = self.doc.get("parameters") {
            // Body and form parameters are folded into request bodies where they are used.
            let simple: Map<String, Value> = params
                .iter()
                .filter(|(_, p)| !is_body_or_form(p))
                .map(|(k, p)| (k.clone(), simple_parameter(p)))
                .collect();
            c.insert("parameters".into(), Value::Object(simple));
        }
        if let Some(Value::Object(responses)) = self.doc.get("responses") {
            let converted: Map<String, Value> = responses
                .iter()
                .map(|(k, r)| (k.clone(), response(r, &or_json(self.produces.clone()))))
                .collect();
            c.insert("responses".into(), Value::Object(converted));
        }
        if let Some(Value::Object(defs)) = self.doc.get("securityDefinitions") {
            let schemes: Map<String, Value> = defs
                .iter()
                .map(|(k, s)| (k.clone(), security_scheme(s)))
                .collect();
            c.insert("securitySchemes".into(), Value::Object(schemes));
        }
        Value::Object(c)
    }

    /// A shared parameter a `$ref` names, or the parameter itself.
    fn resolve<'p>(&'p self, p: &'p Value) -> &'p Value {
        p.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/parameters/"))
            .and_then(|name| self.doc.get("parameters")?.get(name))
            .unwrap_or(p)
    }

    fn path_item(&self, item: &Value) -> Value {
        let Value::Object(item) = item else {
            return item.clone();
        };
        let shared: Vec<Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Map::new();
        for (k, v) in item {
            if METHODS.contains(&k.as_str()) {
                out.insert(k.clone(), self.operation(v, &shared));
            } else if k != "parameters" {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }

    fn operation(&self, op: &Value, shared: &[Value]) -> Value {
        let Value::Object(op) = op else {
            return op.clone();
        };
        let consumes = if op.contains_key("consumes") {
            or_json(media_list(op.get("consumes")))
        } else {
            or_json(self.consumes.clone())
        };
        let produces = if op.contains_key("produces") {
            or_json(media_list(op.get("produces")))
        } else {
            or_json(self.produces.clone())
        };
        let mut params: Vec<Value> = shared.to_vec();
        if let Some(Value::Array(own)) = op.get("parameters") {
            // An operation's parameter replaces a path item's of the same name and place.
            for p in own {
                let key = |v: &Value| {
                    let v = self.resolve(v);
                    (v.get("name").cloned(), v.get("in").cloned())
                };
                params.retain(|q| key(q) != key(p));
                params.push(p.clone());
            }
        }
        let mut out = Map::new();
        for (k, v) in op {
            match k.as_str() {
                "parameters" | "consumes" | "produces" | "schemes" => {}
                "responses" => {
                    let rs: Map<String, Value> = v
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(code, r)| (code.clone(), response(r, &produces)))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.insert(k.clone(), Value::Object(rs));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        let (simple, body) = self.split_parameters(&params, &consumes);
        if !simple.is_empty() {
            out.insert("parameters".into(), Value::Array(simple));
        }
        if let Some(body) = body {
            out.insert("requestBody".into(), body);
        }
        Value::Object(out)
    }

    /// Simple parameters (as 3.0 parameters, shared ones still by reference), and the
    /// request body the body or form parameters make.
    fn split_parameters(
        &self,
        params: &[Value],
        consumes: &[String],
    ) -> (Vec<Value>, Option<Value>) {
        let mut simple = Vec::new();
        let mut body = None;
        let mut form = Vec::new();
        for p in params {
            let resolved = self.resolve(p);
            match resolved.get("in").and_then(Value::as_str) {
                Some("body") => body = Some(resolved.clone()),
                Some("formData") => form.push(resolved.clone()),
                _ if p.get("$ref").is_some() => simple.push(p.clone()),
                _ => simple.push(simple_parameter(p)),
            }
        }
        if let Some(b) = body {
            let schema = b.get("schema").cloned().unwrap_or_else(|| json!({}));
            let content: Map<String, Value> = consumes
                .iter()
                .map(|ct| (ct.clone(), json!({ "schema": schema })))
                .collect();
            let mut rb = json!({"content": content, "required": b.get("required").cloned().unwrap_or(json!(false))});
            if let Some(d) = b.get("description") {
                rb["description"] = d.clone();
            }
            return (simple, Some(rb));
        }
        if form.is_empty() {
            return (simple, None);
        }
        (simple, Some(form_body(&form, consumes)))
    }
}

fn is_body_or_form(p: &Value) -> bool {
    matches!(
        p.get("in").and_then(Value::as_str),
        Some("body" | "formData")
    )
}

/// Form parameters as one object schema, in the form media type the operation consumes.
fn form_body(form: &[Value], consumes: &[String]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in form {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut schema = schema_of(p);
        if let Some(d) = p.get("description") {
            schema.insert("description".into(), d.clone());
        }
        properties.insert(name.to_owned(), Value::Object(schema));
        if p.get("required") == Some(&json!(true)) {
            required.push(json!(name));
        }
    }
    let has_file = form
        .iter()
        .any(|p| p.get("type").and_then(Value::as_str) == Some("file"));
    let media = consumes
        .iter()
        .find(|c| c.starts_with("multipart/") || c.starts_with("application/x-www-form-urlencoded"))
        .cloned()
        .unwrap_or_else(|| {
            if has_file {
                "multipart/form-data".into()
            } else {
                "application/x-www-form-urlencoded".into()
            }
        });
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    json!({"required": true, "content": {media: {"schema": schema}}})
}

/// A query, path, header or cookie parameter: its type keywords move into `schema`.
fn simple_parameter(p: &Value) -> Value {
    let Value::Object(p) = p else {
        return p.clone();
    };
    let mut out: Map<String, Value> = p
        .iter()
        .filter(|(k, _)| {
            !SCHEMA_KEYS.contains(&k.as_str())
                && *k != "collectionFormat"
                && *k != "allowEmptyValue"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(
        "schema".into(),
        Value::Object(schema_of(&Value::Object(p.clone()))),
    );
    let query = p.get("in").and_then(Value::as_str) == Some("query");
    match p.get("collectionFormat").and_then(Value::as_str) {
        Some("multi") => {
            out.insert("style".into(), json!("form"));
            out.insert("explode".into(), json!(true));
        }
        Some("ssv") if query => {
            out.insert("style".into(), json!("spaceDelimited"));
            out.insert("explode".into(), json!(false));
        }
        Some("pipes") if query => {
            out.insert("style".into(), json!("pipeDelimited"));
            out.insert("explode".into(), json!(false));
        }
        _ if p.get("type").and_then(Value::as_str) == Some("array") => {
            // csv, the 2.0 default
            out.insert("explode".into(), json!(false));
        }
        _ => {}
    }
    Value::Object(out)
}

fn schema_of(p: &Value) -> Map<String, Value> {
    SCHEMA_KEYS
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), p.get(*k)?.clone())))
        .collect()
}

fn response(r: &Value, produces: &[String]) -> Value {
    let Value::Object(r) = r else {
        return r.clone();
    };
    if r.contains_key("$ref") {
        return Value::Object(r.clone());
    }
    let mut out = Map::new();
    out.insert(
        "description".into(),
        r.get("description").cloned().unwrap_or(json!("")),
    );
    if let Some(schema) = r.get("schema") {
        let content: Map<String, Value> = produces
            .iter()
            .map(|ct| {
                let mut media = json!({ "schema": schema });
                if let Some(ex) = r.get("examples").and_then(|e| e.get(ct)) {
                    media["example"] = ex.clone();
                }
                (ct.clone(), media)
            })
            .collect();
        out.insert("content".into(), Value::Object(content));
    }
    if let Some(Value::Object(headers)) = r.get("headers") {
        let hs: Map<String, Value> = headers
            .iter()
            .map(|(name, h)| {
                let mut header = json!({"schema": schema_of(h)});
                if let Some(d) = h.get("description") {
                    header["description"] = d.clone();
                }
                (name.clone(), header)
            })
            .collect();
        out.insert("headers".into(), Value::Object(hs));
    }
    Value::Object(out)
}

fn security_scheme(s: &Value) -> Value {
    match s.get("type").and_then(Value::as_str) {
        Some("basic") => json!({"type": "http", "scheme": "basic"}),
        Some("oauth2") => {
            let flow = match s.get("flow").and_then(Value::as_str) {
                Some("password") => "password",
                Some("application") => "clientCredentials",
                Some("accessCode") => "authorizationCode",
                _ => "implicit",
            };
            let mut f = json!({"scopes": s.get("scopes").cloned().unwrap_or(json!({}))});
            for key in ["authorizationUrl", "tokenUrl"] {
                if let Some(u) = s.get(key) {
                    f[key] = u.clone();
                }
            }
            json!({"type": "oauth2", "flows": {flow: f}})
        }
        _ => s.clone(),
    }
}

/// Every `$ref` to a 2.0 location, to where 3.0 keeps it.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref"
                    && let Value::String(r) = child
                {
                    for (was, now) in [
                        ("#/definitions/", "#/components/schemas/"),
                        ("#/parameters/", "#/components/parameters/"),
                        ("#/responses/", "#/components/responses/"),
                    ] {
                        if let Some(rest) = r.strip_prefix(was) {
                            *r = format!("{now}{rest}");
                        }
                    }
                } else {
                    rewrite_refs(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn schema_fixes(map: &mut Map<String, Value>) {
    if let Some(n) = map.remove("x-nullable") {
        map.insert("nullable".into(), n);
    }
    if map.get("type").and_then(Value::as_str) == Some("file") {
        map.insert("type".into(), json!("string"));
        map.insert("format".into(), json!("binary"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swagger_document_becomes_openapi_3() {
        let doc = json!({
            "swagger": "2.0", "info": {"title": "T", "version": "1"},
            "host": "api.example.com", "basePath": "/v2", "schemes": ["https"],
            "consumes": ["application/json"], "produces": ["application/json"],
            "securityDefinitions": {"key": {"type": "apiKey", "name": "api_key", "in": "header"}, "basic": {"type": "basic"}},
            "parameters": {"limit": {"name": "limit", "in": "query", "type": "integer", "maximum": 50}},
            "definitions": {"Pet": {"type": "object", "properties": {"name": {"type": "string", "x-nullable": true}}}},
            "paths": {"/pets": {
                "get": {"parameters": [{"$ref": "#/parameters/limit"}, {"name": "tags", "in": "query", "type": "array", "items": {"type": "string"}, "collectionFormat": "multi"}],
                        "responses": {"200": {"description": "ok", "schema": {"type": "array", "items": {"$ref": "#/definitions/Pet"}}}}},
                "post": {"parameters": [{"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Pet"}}],
                         "responses": {"201": {"description": "made", "schema": {"$ref": "#/definitions/Pet"}}}}},
              "/pets/{id}/photo": {"post": {"consumes": ["multipart/form-data"], "parameters": [
                  {"name": "id", "in": "path", "required": true, "type": "string"},
                  {"name": "file", "in": "formData", "type": "file", "required": true},
                  {"name": "caption", "in": "formData", "type": "string"}],
                  "responses": {"204": {"description": "stored"}}}}}
        });
        let v3 = convert(&doc);
        assert_eq!(v3["servers"][0]["url"], "https://api.example.com/v2");
        assert_eq!(
            v3["components"]["schemas"]["Pet"]["properties"]["name"]["nullable"],
            true
        );
        assert_eq!(
            v3["components"]["parameters"]["limit"]["schema"]["maximum"],
            50
        );
        assert_eq!(
            v3["components"]["securitySchemes"]["basic"]["scheme"],
            "basic"
        );
        let get = &v3["paths"]["/pets"]["get"];
        assert_eq!(
            get["parameters"][0]["$ref"],
            "#/components/parameters/limit"
        );
        assert_eq!(get["parameters"][1]["explode"], true);
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
            "#/components/schemas/Pet"
        );
        let post = &v3["paths"]["/pets"]["post"];
        assert_eq!(post["requestBody"]["required"], true);
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Pet"
        );
        let photo = &v3["paths"]["/pets/{id}/photo"]["post"];
        let form = &photo["requestBody"]["content"]["multipart/form-data"]["schema"];
        assert_eq!(form["properties"]["file"]["format"], "binary");
        assert_eq!(form["required"], json!(["file"]));
        assert_eq!(photo["parameters"][0]["schema"]["type"], "string");
    }
}
