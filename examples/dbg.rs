use api_sandbox::generate::Generator;
use api_sandbox::schema::Direction;
use serde_json::json;
fn main() {
    let doc = json!({"components": {"schemas": {
        "P": {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object"}}}},
        "M": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "Page": {"allOf": [{"$ref": "#/components/schemas/P"}, {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/M"}}}}]}
    }}});
    let mut g = Generator::new(&doc, 0, "x", Direction::Response);
    println!("{}", g.value_at("/components/schemas/Page"));
}
