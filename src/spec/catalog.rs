//! The operation catalogue: every (method, path) of a spec with its parameters, request body,
//! responses and security, flattened out of the typed `openapiv3` model. Schemas are not copied
//! here: each one is named by its JSON pointer into the raw document, which is what the schema
//! layer compiles and the generator walks.

use openapiv3::{
    APIKeyLocation, Parameter, ParameterSchemaOrContent, PathStyle, QueryStyle, ReferenceOr,
    SecurityScheme, StatusCode,
};
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::SpecError;
use super::outline::Outline;
use super::pointer;

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query => "query",
            Self::Header => "header",
            Self::Cookie => "cookie",
        }
    }
}

/// How an array or object parameter is serialised (OpenAPI `style` + `explode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Form,
    Simple,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
    Label,
    Matrix,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub style: Style,
    pub explode: bool,
    /// Pointer to the parameter's schema (or to its single content entry's schema).
    pub schema: Option<String>,
    /// True when the value is JSON text (`content: application/json`) rather than a styled value.
    pub json_content: bool,
}

#[derive(Debug, Clone)]
pub struct Media {
    pub media_type: String,
    pub schema: Option<String>,
    /// Pointer to the media type object, where `example` / `examples` live.
    pub pointer: String,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub required: bool,
    pub content: Vec<Media>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Code(u16),
    /// `4XX`: the leading digit.
    Range(u16),
    Default,
}

impl Status {
    pub fn matches(self, code: u16) -> bool {
        match self {
            Self::Code(c) => c == code,
            Self::Range(r) => code / 100 == r,
            Self::Default => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub required: bool,
    pub schema: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: Status,
    pub content: Vec<Media>,
    pub headers: Vec<Header>,
}

/// One way a request can authenticate; every scheme in `all` must be present.
#[derive(Debug, Clone, Default)]
pub struct SecurityAlternative {
    pub all: Vec<Credential>,
}

/// Where one credential is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Header(String),
    Query(String),
    Cookie(String),
    /// `Authorization: <scheme> <token>`; `bearer`, `basic`, ...
    Authorization(String),
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// `operationId`, or `METHOD /path` when the spec gives none.
    pub id: String,
    pub method: http::Method,
    pub path: String,
    pub pointer: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    /// Alternatives (OR); empty means no authentication.
    pub security: Vec<SecurityAlternative>,
}

impl Operation {
    /// The response the spec declares for `code`: exact code, then `NXX`, then `default`.
    pub fn response_for(&self, code: u16) -> Option<&Response> {
        [
            Status::Code(code),
            Status::Range(code / 100),
            Status::Default,
        ]
        .into_iter()
        .find_map(|s| self.responses.iter().find(|r| r.status == s))
    }

    /// The success response served by default: the lowest declared 2xx, else `2XX`, else `default`.
    pub fn success(&self) -> Option<(u16, &Response)> {
        let mut codes: Vec<(u16, &Response)> = self
            .responses
            .iter()
            .filter_map(|r| match r.status {
                Status::Code(c) if (200..300).contains(&c) => Some((c, r)),
                _ => None,
            })
            .collect();
        codes.sort_by_key(|(c, _)| *c);
        codes.into_iter().next().or_else(|| {
            self.responses
                .iter()
                .find(|r| r.status == Status::Range(2))
                .or_else(|| self.responses.iter().find(|r| r.status == Status::Default))
                .map(|r| (200, r))
        })
    }

    /// Whether the spec declares `code` explicitly or through a range.
    pub fn declares(&self, code: u16) -> bool {
        self.responses
            .iter()
            .any(|r| r.status != Status::Default && r.status.matches(code))
    }
}

/// Builds the catalogue. `doc` is the raw bundled document; `api` its typed view.
pub fn build(
    file: &std::path::Path,
    doc: &Value,
    api: &Outline,
) -> Result<Vec<Operation>, SpecError> {
    let ctx = Ctx {
        file,
        doc,
        cache: RefCell::new(HashMap::new()),
    };
    let global_security = api.security.clone().unwrap_or_default();
    let mut ops = Vec::new();
    for (path, item) in api.paths.iter() {
        let item_ptr = pointer::join("/paths", path);
        let (item, item_ptr) = ctx.item_or_ref(item, &item_ptr)?;
        for (method, op) in item.iter() {
            let op_ptr = pointer::join(&item_ptr, method);
            let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|e| SpecError::new(file, &op_ptr, e.to_string()))?;
            let mut params: Vec<Param> = Vec::new();
            // Path-level parameters first; an operation-level one with the same name and place wins.
            let levels = [
                (&item.parameters, format!("{item_ptr}/parameters")),
                (&op.parameters, format!("{op_ptr}/parameters")),
            ];
            for (list, list_ptr) in levels {
                for (i, p) in list.iter().enumerate() {
                    let param = ctx.param(p, &format!("{list_ptr}/{i}"))?;
                    params.retain(|q| !(q.name == param.name && q.location == param.location));
                    params.push(param);
                }
            }
            let body = match &op.request_body {
                None => None,
                Some(b) => {
                    let (b, b_ptr) = ctx.item_or_ref(b, &format!("{op_ptr}/requestBody"))?;
                    Some(Body {
                        required: b.required,
                        content: media_list(&b.content, &b_ptr),
                    })
                }
            };
            let mut responses = Vec::new();
            let resp_ptr = format!("{op_ptr}/responses");
            for (status, r) in &op.responses.responses {
                let status = match status {
                    StatusCode::Code(c) => Status::Code(*c),
                    StatusCode::Range(r) => Status::Range(*r),
                };
                let key = match status {
                    Status::Code(c) => c.to_string(),
                    Status::Range(r) => format!("{r}XX"),
                    Status::Default => "default".into(),
                };
                responses.push(ctx.response(status, r, &pointer::join(&resp_ptr, &key))?);
            }
            if let Some(r) = &op.responses.default {
                responses.push(ctx.response(Status::Default, r, &format!("{resp_ptr}/default"))?);
            }
            let requirements = op.security.as_ref().unwrap_or(&global_security);
            let security = requirements
                .iter()
                .map(|req| ctx.security_alternative(api, req, &op_ptr))
                .collect::<Result<Vec<_>, _>>()?;
            ops.push(Operation {
                id: op
                    .operation_id
                    .clone()
                    .unwrap_or_else(|| format!("{method} {path}")),
                method,
                path: path.clone(),
                pointer: op_ptr,
                params,
                body,
                responses,
                security,
            });
        }
    }
    Ok(ops)
}

fn media_list(content: &indexmap::IndexMap<String, openapiv3::MediaType>, at: &str) -> Vec<Media> {
    content
        .iter()
        .map(|(mt, m)| {
            let ptr = pointer::join(&format!("{at}/content"), mt);
            Media {
                media_type: mt.to_ascii_lowercase(),
                schema: m.schema.as_ref().map(|_| format!("{ptr}/schema")),
                pointer: ptr,
            }
        })
        .collect()
}

struct Ctx<'a> {
    file: &'a std::path::Path,
    doc: &'a Value,
    /// `$ref` string -> (deserialised target, its pointer).
    cache: RefCell<HashMap<String, Resolved>>,
}

/// A deserialised `$ref` target and the pointer it was read from.
type Resolved = (Rc<dyn Any>, String);

/// An item borrowed from the typed document, or a shared deserialised `$ref` target.
enum Shared<'r, T> {
    Borrowed(&'r T),
    Cached(Rc<T>),
}

impl<T> std::ops::Deref for Shared<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Self::Borrowed(t) => t,
            Self::Cached(t) => t,
        }
    }
}

impl Ctx<'_> {
    /// Returns the item behind a `ReferenceOr`, and the pointer of the node it was read from.
    /// Items are borrowed; referenced nodes are deserialised once per target and shared
    /// (specs point hundreds of operations at the same few parameters and responses).
    fn item_or_ref<'r, T: DeserializeOwned + Clone + 'static>(
        &self,
        r: &'r ReferenceOr<T>,
        at: &str,
    ) -> Result<(Shared<'r, T>, String), SpecError> {
        match r {
            ReferenceOr::Item(item) => Ok((Shared::Borrowed(item), at.to_owned())),
            ReferenceOr::Reference { reference } => {
                if let Some((item, target)) = self.cache.borrow().get(reference)
                    && let Ok(item) = item.clone().downcast::<T>()
                {
                    return Ok((Shared::Cached(item), target.clone()));
                }
                let node = serde_json::json!({ "$ref": reference });
                let (value, target) = pointer::resolve(self.doc, &node)
                    .map_err(|e| SpecError::new(self.file, format!("{at}/$ref"), e.to_string()))?;
                let target = target.unwrap_or_default();
                let item: Rc<T> = Rc::new(T::deserialize(value).map_err(|e| {
                    SpecError::new(self.file, &target, format!("not a valid object here: {e}"))
                })?);
                self.cache
                    .borrow_mut()
                    .insert(reference.clone(), (item.clone(), target.clone()));
                Ok((Shared::Cached(item), target))
            }
        }
    }

    fn param(&self, p: &ReferenceOr<Parameter>, at: &str) -> Result<Param, SpecError> {
        let (p, ptr) = self.item_or_ref(p, at)?;
        let (location, style, default_explode) = match &*p {
            Parameter::Query { style, .. } => {
                let s = match style {
                    QueryStyle::Form => Style::Form,
                    QueryStyle::SpaceDelimited => Style::SpaceDelimited,
                    QueryStyle::PipeDelimited => Style::PipeDelimited,
                    QueryStyle::DeepObject => Style::DeepObject,
                };
                (Location::Query, s, s == Style::Form)
            }
            Parameter::Path { style, .. } => {
                let s = match style {
                    PathStyle::Simple => Style::Simple,
                    PathStyle::Label => Style::Label,
                    PathStyle::Matrix => Style::Matrix,
                };
                (Location::Path, s, false)
            }
            Parameter::Header { .. } => (Location::Header, Style::Simple, false),
            Parameter::Cookie { .. } => (Location::Cookie, Style::Form, true),
        };
        let data = p.parameter_data_ref();
        let (schema, json_content) = match &data.format {
            ParameterSchemaOrContent::Schema(_) => (Some(format!("{ptr}/schema")), false),
            ParameterSchemaOrContent::Content(c) => {
                let m = media_list(c, &ptr);
                let first = m.into_iter().next();
                let json = first.as_ref().is_some_and(|m| is_json(&m.media_type));
                (first.and_then(|m| m.schema), json)
            }
        };
        Ok(Param {
            name: data.name.clone(),
            location,
            // Path parameters are always required, whatever the spec says.
            required: data.required || location == Location::Path,
            style,
            explode: data.explode.unwrap_or(default_explode),
            schema,
            json_content,
        })
    }

    fn response(
        &self,
        status: Status,
        r: &ReferenceOr<openapiv3::Response>,
        at: &str,
    ) -> Result<Response, SpecError> {
        let (r, ptr) = self.item_or_ref(r, at)?;
        let mut headers = Vec::new();
        for (name, h) in &r.headers {
            let (h, h_ptr) =
                self.item_or_ref(h, &pointer::join(&format!("{ptr}/headers"), name))?;
            let schema = match h.format {
                ParameterSchemaOrContent::Schema(_) => Some(format!("{h_ptr}/schema")),
                ParameterSchemaOrContent::Content(_) => None,
            };
            headers.push(Header {
                name: name.clone(),
                required: h.required,
                schema,
            });
        }
        Ok(Response {
            status,
            content: media_list(&r.content, &ptr),
            headers,
        })
    }

    fn security_alternative(
        &self,
        api: &Outline,
        req: &openapiv3::SecurityRequirement,
        at: &str,
    ) -> Result<SecurityAlternative, SpecError> {
        let schemes = api.components.as_ref().map(|c| &c.security_schemes);
        let mut all = Vec::new();
        for name in req.keys() {
            let scheme = schemes.and_then(|s| s.get(name)).ok_or_else(|| {
                SpecError::new(
                    self.file,
                    format!("{at}/security"),
                    format!(
                        "security scheme '{name}' is not defined in components.securitySchemes"
                    ),
                )
            })?;
            let scheme_ptr = pointer::join("/components/securitySchemes", name);
            let (scheme, _) = self.item_or_ref(scheme, &scheme_ptr)?;
            all.push(credential(&scheme));
        }
        Ok(SecurityAlternative { all })
    }
}

/// Where a security scheme's credential is carried.
fn credential(scheme: &SecurityScheme) -> Credential {
    match scheme {
        SecurityScheme::APIKey { location, name, .. } => match location {
            APIKeyLocation::Header => Credential::Header(name.to_ascii_lowercase()),
            APIKeyLocation::Query => Credential::Query(name.clone()),
            APIKeyLocation::Cookie => Credential::Cookie(name.clone()),
        },
        SecurityScheme::HTTP { scheme, .. } => {
            Credential::Authorization(scheme.to_ascii_lowercase())
        }
        SecurityScheme::OAuth2 { .. } | SecurityScheme::OpenIDConnect { .. } => {
            Credential::Authorization("bearer".into())
        }
    }
}

/// The credential of the security scheme `name` in `components.securitySchemes`, or `None`
/// when the spec has no such scheme (or it is not a valid one).
pub fn scheme_credential(doc: &Value, name: &str) -> Option<Credential> {
    let node = doc.pointer(&pointer::join("/components/securitySchemes", name))?;
    let (node, _) = pointer::resolve(doc, node).ok()?;
    let scheme: SecurityScheme = serde_json::from_value(node.clone()).ok()?;
    Some(credential(&scheme))
}

/// `application/json`, `application/problem+json`, `application/vnd.x+json; charset=utf-8`...
pub fn is_json(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence.ends_with("+json")
        || essence == "*/*"
        || essence == "application/*"
}
