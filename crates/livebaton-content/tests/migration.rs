//! Carrying record values over an entity's new field definitions: removed keys are dropped, retyped values are kept
//! only when valid for their new type, and text never becomes markup (it is escaped into rich text).

use livebaton_content::{FieldDefinition, FieldType, migrate_data, reshapes_data};
use serde_json::{Map, Value, json};

fn field(field_type: FieldType, key: &str) -> FieldDefinition {
    FieldDefinition {
        field_type,
        key: key.into(),
        label: key.into(),
        required: false,
        default: None,
        options: if field_type.has_options() { vec!["red".into(), "green".into()] } else { Vec::new() },
        props: Map::new(),
    }
}

fn data(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else { panic!("an object") };
    map
}

/// The repro of issue 15: a textarea holding markup becomes a rich-text field. The value is kept as text: escaped,
/// so it shows as what was typed and never runs.
#[test]
fn text_becomes_escaped_rich_text() {
    let old = [field(FieldType::Textarea, "body")];
    let new = [field(FieldType::RichText, "body")];
    assert!(reshapes_data(&old, &new));
    let stored = data(json!({"body": "<img src=x onerror=alert(1)><script>alert(2)</script>\nline 2 & more"}));
    let migrated = migrate_data(&old, &new, &stored).expect("the value changes");
    assert_eq!(
        migrated["body"],
        json!("<p>&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;<br>line 2 &amp; more</p>")
    );
}

#[test]
fn removed_keys_are_dropped_and_unchanged_fields_kept() {
    let old = [field(FieldType::Text, "summary"), field(FieldType::RichText, "body")];
    let new = [field(FieldType::RichText, "body")];
    assert!(reshapes_data(&old, &new));
    let stored = data(json!({"summary": "<b>hi</b>", "body": "<p>kept as stored</p>"}));
    assert_eq!(migrate_data(&old, &new, &stored), Some(data(json!({"body": "<p>kept as stored</p>"}))));
    assert_eq!(migrate_data(&new, &new, &data(json!({"body": "<p>x</p>"}))), None, "nothing to do");
    assert!(!reshapes_data(&new, &new));
}

/// A key removed and re-added as rich text: the old value is already gone (pruned with the removal); data left by an
/// older version under a key that had no field is treated as text of unknown origin, and escaped.
#[test]
fn a_key_reused_for_rich_text_never_shows_old_markup() {
    let with_body = [field(FieldType::Textarea, "body")];
    let without = [field(FieldType::Text, "title2")];
    let stored = data(json!({"body": "<script>alert(1)</script>"}));
    let pruned = migrate_data(&with_body, &without, &stored).expect("pruned");
    assert!(pruned.is_empty());

    let rich = [field(FieldType::Text, "title2"), field(FieldType::RichText, "body")];
    assert!(reshapes_data(&without, &rich), "an added key can meet old data");
    let orphan = migrate_data(&without, &rich, &stored).expect("escaped");
    assert_eq!(orphan["body"], json!("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"));
}

#[test]
fn retyped_values_are_kept_when_valid_and_dropped_when_not() {
    let old = [
        field(FieldType::Text, "count"),
        field(FieldType::Text, "size"),
        field(FieldType::Number, "code"),
        field(FieldType::Select, "colour"),
        field(FieldType::Checkbox, "tags"),
        field(FieldType::RichText, "html"),
    ];
    let new = [
        field(FieldType::Number, "count"),
        field(FieldType::Number, "size"),
        field(FieldType::Text, "code"),
        field(FieldType::Checkbox, "colour"),
        field(FieldType::Text, "tags"),
        field(FieldType::Textarea, "html"),
    ];
    let stored = data(json!({
        "count": " 12 ", "size": "large", "code": 7, "colour": "red", "tags": ["red", "green"], "html": "<p>x</p>"
    }));
    let migrated = migrate_data(&old, &new, &stored).expect("changed");
    assert_eq!(
        Value::Object(migrated),
        json!({"count": 12, "code": "7", "colour": ["red"], "tags": "red, green", "html": "<p>x</p>"})
    );
}

/// Thousands of lines would be thousands of `<br>`, past the element bound: the text is kept on one line instead.
#[test]
fn long_text_with_many_lines_is_kept() {
    let old = [field(FieldType::Textarea, "body")];
    let new = [field(FieldType::RichText, "body")];
    let text = "a\n".repeat(2_400);
    let migrated = migrate_data(&old, &new, &data(json!({ "body": text }))).expect("changed");
    let html = migrated["body"].as_str().expect("kept");
    assert!(html.starts_with("<p>a a a") && !html.contains("<br>"), "{}", &html[..20]);
}
