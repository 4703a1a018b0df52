//! Entity validation: name (given and generated), display names, description, status, and field definitions.

use livebaton_content::{EntityInput, FieldType, Status, ValidEntity, ValidationErrors, validate_entity};
use serde_json::{Value, json};

fn entity(fields: Value) -> EntityInput {
    let Value::Array(fields_definition) = fields else { panic!("fields must be an array") };
    EntityInput {
        name: Some("product".into()),
        display_name: "Product".into(),
        display_name_plural: "Products".into(),
        fields_definition,
        ..EntityInput::default()
    }
}

fn named(name: Option<&str>, display_name: &str) -> Result<ValidEntity, ValidationErrors> {
    validate_entity(&EntityInput {
        name: name.map(str::to_owned),
        display_name: display_name.into(),
        ..entity(json!([]))
    })
}

const NAME_PATTERN: &str = "must start with a letter and contain only lowercase letters, numbers and underscores";

#[test]
fn a_minimal_entity_gets_defaults() {
    let valid = validate_entity(&entity(json!([]))).unwrap();
    assert_eq!(valid.name, "product");
    assert_eq!(valid.display_name, "Product");
    assert_eq!(valid.display_name_plural, "Products");
    assert_eq!(valid.description, "");
    assert_eq!(valid.icon, "");
    assert_eq!(valid.status, Status::Published);
    assert!(valid.fields_definition.is_empty());
    assert!(valid.settings.is_empty());
}

#[test]
fn name_is_generated_from_the_display_name_when_absent_or_empty() {
    assert_eq!(named(None, "Blog Post").unwrap().name, "blog_post");
    assert_eq!(named(Some(""), "Café Menu Items").unwrap().name, "cafe_menu_items");
    assert_eq!(named(Some("   "), "  Team  Members! ").unwrap().name, "team_members");
    assert_eq!(named(Some("custom_name"), "Blog Post").unwrap().name, "custom_name", "a given name wins");
}

#[test]
fn a_generated_name_is_cut_to_50_characters() {
    let long = "Quarterly Financial Reporting Documents For The Board Of Directors";
    let name = named(None, long).unwrap().name;
    assert!(name.len() <= 50, "{name}");
    assert_eq!(name, "quarterly_financial_reporting_documents_for_the");
}

#[test]
fn an_invalid_generated_name_is_reported_on_name() {
    assert_eq!(named(None, "3D Models").unwrap_err().get("name"), [NAME_PATTERN]);
    let errors = named(None, "?!").unwrap_err();
    assert_eq!(errors.get("name"), ["can't be blank"]);
    assert!(errors.get("display_name").is_empty(), "two characters are a valid display name");
}

#[test]
fn a_bad_display_name_is_not_reported_twice_through_the_generated_name() {
    let errors = named(None, "").unwrap_err();
    assert_eq!(errors.get("display_name"), ["can't be blank"]);
    assert!(errors.get("name").is_empty(), "{errors}");
    let errors = named(Some("a"), "").unwrap_err();
    assert_eq!(errors.get("name"), ["must be at least 2 characters"], "a typed name is always checked");
}

#[test]
fn name_must_match_the_pattern_and_length() {
    for good in ["ab", "blog_post", "item2", "a_1_b", &"a".repeat(50)] {
        assert!(named(Some(good), "Whatever").is_ok(), "{good}");
    }
    for bad in ["Blog", "2posts", "_post", "blog-post", "blog post", "bløg"] {
        assert_eq!(named(Some(bad), "Whatever").unwrap_err().get("name"), [NAME_PATTERN], "{bad}");
    }
    assert_eq!(named(Some("a"), "Whatever").unwrap_err().get("name"), ["must be at least 2 characters"]);
    assert_eq!(named(Some(&"a".repeat(51)), "Whatever").unwrap_err().get("name"), ["must be at most 50 characters"]);
}

#[test]
fn display_names_are_2_to_100_characters_trimmed() {
    let with = |display_name: &str, plural: &str| {
        validate_entity(&EntityInput {
            display_name: display_name.into(),
            display_name_plural: plural.into(),
            ..entity(json!([]))
        })
    };
    let valid = with("  Ox ", "ÉÉ").unwrap();
    assert_eq!((valid.display_name.as_str(), valid.display_name_plural.as_str()), ("Ox", "ÉÉ"));
    assert!(with(&"é".repeat(100), &"x".repeat(100)).is_ok(), "characters, not bytes");
    let errors = with(" A ", &"x".repeat(101)).unwrap_err();
    assert_eq!(errors.get("display_name"), ["must be at least 2 characters"]);
    assert_eq!(errors.get("display_name_plural"), ["must be at most 100 characters"]);
    assert_eq!(with("   ", "Oxen").unwrap_err().get("display_name"), ["can't be blank"]);
}

#[test]
fn description_icon_status_and_settings() {
    let input = EntityInput {
        description: Some(format!(" {} ", "d".repeat(500))),
        icon: Some(" hero-cube ".into()),
        status: Some("draft".into()),
        settings: json!({"mirror_data": true}).as_object().cloned(),
        ..entity(json!([]))
    };
    let valid = validate_entity(&input).unwrap();
    assert_eq!(valid.description.len(), 500);
    assert_eq!(valid.icon, "hero-cube");
    assert_eq!(valid.status, Status::Draft);
    assert_eq!(valid.settings["mirror_data"], json!(true));

    let input = EntityInput {
        description: Some("d".repeat(501)),
        icon: Some("i".repeat(101)),
        status: Some("live".into()),
        ..entity(json!([]))
    };
    let errors = validate_entity(&input).unwrap_err();
    assert_eq!(errors.get("description"), ["must be at most 500 characters"]);
    assert_eq!(errors.get("icon"), ["must be at most 100 characters"]);
    assert_eq!(errors.get("status"), ["must be draft, published or archived"]);
}

#[test]
fn field_definitions_are_parsed_with_props() {
    let valid = validate_entity(&entity(json!([
        {"type": "text", "key": "title_en", "label": " English title ", "required": true, "placeholder": "Type…"},
        {"type": "select", "key": "size", "label": "Size", "options": [" S ", "M", "", "M", "L"], "default": "M"},
        {"type": "boolean", "key": "active", "label": "Active", "required": "on", "default": "false"},
        {"type": "number", "key": "price", "label": "Price", "default": "9.50", "options": ["ignored"]},
    ])))
    .unwrap();
    let [title, size, active, price] = valid.fields_definition.as_slice() else { panic!("four fields") };
    assert_eq!(title.field_type, FieldType::Text);
    assert_eq!(title.label, "English title");
    assert!(title.required);
    assert_eq!(title.props.get("placeholder"), Some(&json!("Type…")));
    assert_eq!(title.props.len(), 1);
    assert_eq!(size.options, ["S", "M", "L"], "trimmed, blanks dropped, duplicates once");
    assert!(!size.required, "required defaults to false");
    assert_eq!(size.default, Some(json!("M")));
    assert!(active.required);
    assert_eq!(active.default, Some(json!(false)));
    assert_eq!(price.default, Some(json!(9.5)));
    assert!(price.options.is_empty(), "options of non-choice types are discarded");
}

#[test]
fn field_definition_problems_have_indexed_paths() {
    let errors = validate_entity(&entity(json!([
        {"type": "text", "key": "ok", "label": "Fine"},
        "not an object",
        {"type": "colour", "key": "Bad Key", "label": ""},
        {"key": "ok", "label": 5, "required": "maybe"},
        {"type": "date", "key": "k", "label": "Day", "default": "2026-02-30"},
    ])))
    .unwrap_err();
    assert_eq!(errors.get("fields_definition[1]"), ["must be an object with a type, a key and a label"]);
    assert!(errors.get("fields_definition[2].type")[0].starts_with("must be one of: text, textarea"));
    assert_eq!(errors.get("fields_definition[2].key"), [NAME_PATTERN]);
    assert_eq!(errors.get("fields_definition[2].label"), ["can't be blank"]);
    assert_eq!(errors.get("fields_definition[3].type"), ["can't be blank"]);
    assert_eq!(errors.get("fields_definition[3].key"), ["is already used by another field"]);
    assert_eq!(errors.get("fields_definition[3].label"), ["must be text"]);
    assert_eq!(errors.get("fields_definition[3].required"), ["must be true or false"]);
    assert_eq!(errors.get("fields_definition[4].default"), ["is not a real calendar date"]);
    assert_eq!(errors.fields.len(), 9, "{errors}");
}

#[test]
fn field_keys_are_unique_slug_like_and_at_most_50_characters() {
    let errors = validate_entity(&entity(json!([
        {"type": "text", "key": "name", "label": "A"},
        {"type": "text", "key": "name", "label": "B"},
        {"type": "text", "key": " name ", "label": "C"},
        {"type": "text", "key": "x", "label": "D"},
        {"type": "text", "key": "k".repeat(50), "label": "E"},
        {"type": "text", "key": "k".repeat(51), "label": "F"},
        {"type": "text", "key": "1st", "label": "G"},
        {"type": "text", "label": "H"},
    ])))
    .unwrap_err();
    assert!(errors.get("fields_definition[0].key").is_empty());
    assert_eq!(errors.get("fields_definition[1].key"), ["is already used by another field"]);
    assert_eq!(errors.get("fields_definition[2].key"), ["is already used by another field"]);
    assert!(errors.get("fields_definition[3].key").is_empty(), "one character is enough");
    assert!(errors.get("fields_definition[4].key").is_empty());
    assert_eq!(errors.get("fields_definition[5].key"), ["must be at most 50 characters"]);
    assert_eq!(errors.get("fields_definition[6].key"), [NAME_PATTERN]);
    assert_eq!(errors.get("fields_definition[7].key"), ["can't be blank"]);
    assert_eq!(errors.fields.len(), 5, "{errors}");
}

#[test]
fn choice_fields_need_a_non_blank_option() {
    for field_type in ["select", "radio", "checkbox"] {
        for options in [json!(null), json!([]), json!(["", "  "])] {
            let mut field = json!({"type": field_type, "key": "k", "label": "K", "options": options});
            if options.is_null() {
                field.as_object_mut().unwrap().remove("options");
            }
            let errors = validate_entity(&entity(json!([field]))).unwrap_err();
            assert_eq!(errors.get("fields_definition[0].options"), ["requires at least one option"], "{field}");
        }
        let errors = validate_entity(&entity(json!([
            {"type": field_type, "key": "k", "label": "K", "options": ["a", 1]}
        ])))
        .unwrap_err();
        assert_eq!(errors.get("fields_definition[0].options"), ["must be a list of text options"]);
        let errors = validate_entity(&entity(json!([
            {"type": field_type, "key": "k", "label": "K", "options": "a,b"}
        ])))
        .unwrap_err();
        assert_eq!(errors.get("fields_definition[0].options"), ["must be a list of text options"]);
    }
}

#[test]
fn a_default_must_be_a_valid_value_of_its_field() {
    let errors = validate_entity(&entity(json!([
        {"type": "select", "key": "a", "label": "A", "options": ["x"], "default": "y"},
        {"type": "number", "key": "b", "label": "B", "default": "abc"},
        {"type": "url", "key": "c", "label": "C", "default": "javascript:alert(1)"},
    ])))
    .unwrap_err();
    assert_eq!(errors.get("fields_definition[0].default"), ["must be one of: x"]);
    assert_eq!(errors.get("fields_definition[1].default"), ["must be a number"]);
    assert_eq!(errors.get("fields_definition[2].default").len(), 1);

    let valid = validate_entity(&entity(json!([
        {"type": "text", "key": "a", "label": "A", "default": ""},
        {"type": "url", "key": "b", "label": "B", "default": "example.com"},
    ])))
    .unwrap();
    assert_eq!(valid.fields_definition[0].default, None, "a blank default is no default");
    assert_eq!(valid.fields_definition[1].default, Some(json!("https://example.com")));
}

#[test]
fn every_entity_problem_is_reported_at_once() {
    let input = EntityInput {
        name: Some("Bad Name".into()),
        display_name: "X".into(),
        display_name_plural: String::new(),
        status: Some("nope".into()),
        fields_definition: vec![json!({"type": "radio", "key": "r", "label": "R"})],
        ..EntityInput::default()
    };
    let errors = validate_entity(&input).unwrap_err();
    let paths: Vec<&str> = errors.fields.keys().map(String::as_str).collect();
    assert_eq!(paths, ["display_name", "display_name_plural", "fields_definition[0].options", "name", "status"]);
}

#[test]
fn every_field_type_name_is_accepted() {
    let fields: Vec<Value> = FieldType::ALL
        .iter()
        .map(|t| json!({"type": t.as_str(), "key": format!("f_{}", t.as_str()), "label": t.as_str(), "options": ["a"]}))
        .collect();
    let valid = validate_entity(&entity(Value::Array(fields))).unwrap();
    let types: Vec<FieldType> = valid.fields_definition.iter().map(|f| f.field_type).collect();
    assert_eq!(types, FieldType::ALL);
}

/// A definition is loaded for every page and form of its entity: its size is bounded whoever sends it (issue 15).
#[test]
fn fields_and_options_are_bounded() {
    let field = |index: usize| json!({"type": "text", "key": format!("f{index}"), "label": "F"});
    assert!(validate_entity(&entity(Value::Array((0..100).map(field).collect()))).is_ok(), "100 fields are fine");
    let errors = validate_entity(&entity(Value::Array((0..101).map(field).collect()))).unwrap_err();
    assert_eq!(errors.get("fields_definition"), ["must have at most 100 fields"]);
    assert_eq!(errors.fields.len(), 1, "the items are not checked one by one: {errors}");

    let options = |count: usize| Value::Array((0..count).map(|i| json!(format!("o{i}"))).collect());
    let choice = |options: Value| json!([{"type": "select", "key": "k", "label": "K", "options": options}]);
    assert!(validate_entity(&entity(choice(options(100)))).is_ok(), "100 options are fine");
    // Counted as sent (before blanks and duplicates are dropped).
    let errors = validate_entity(&entity(choice(Value::Array(vec![json!("same"); 101])))).unwrap_err();
    assert_eq!(errors.get("fields_definition[0].options"), ["must have at most 100 options"]);
    // A huge definition is refused as a whole, by its size, before any item is looked at.
    let errors = validate_entity(&entity(choice(Value::Array(vec![json!("same"); 200_000])))).unwrap_err();
    let limit = livebaton_content::MAX_CONTENT_BYTES;
    assert_eq!(
        errors.get("fields_definition"),
        [format!("is too large: an entity holds at most {limit} bytes of definition")]
    );
    assert_eq!(errors.fields.len(), 1, "{errors}");
}

#[test]
fn labels_options_defaults_and_extra_properties_are_bounded() {
    let errors = validate_entity(&entity(json!([
        {"type": "text", "key": "a", "label": "l".repeat(100)},
        {"type": "text", "key": "b", "label": "l".repeat(101)},
        {"type": "radio", "key": "c", "label": "C", "options": ["o".repeat(255)]},
        {"type": "radio", "key": "d", "label": "D", "options": ["o".repeat(256)]},
        {"type": "rich_text", "key": "e", "label": "E", "default": "x".repeat(5_000)},
        {"type": "rich_text", "key": "f", "label": "F", "default": "x".repeat(5_001)},
        {"type": "text", "key": "g", "label": "G", "placeholder": "p".repeat(1_900)},
        {"type": "text", "key": "h", "label": "H", "placeholder": "p".repeat(2_000)},
    ])))
    .unwrap_err();
    assert_eq!(errors.get("fields_definition[1].label"), ["must be at most 100 characters"]);
    assert_eq!(errors.get("fields_definition[3].options"), ["each option must be at most 255 characters"]);
    assert_eq!(errors.get("fields_definition[5].default"), ["must be at most 5000 characters"]);
    assert_eq!(errors.get("fields_definition[7]"), ["must have at most 2000 characters of other properties (as JSON)"]);
    assert_eq!(errors.fields.len(), 4, "{errors}");

    let mut input = entity(json!([]));
    input.settings = Some(serde_json::from_value(json!({"theme": "t".repeat(10_000)})).unwrap());
    assert_eq!(validate_entity(&input).unwrap_err().get("settings"), ["must be at most 10000 characters as JSON"]);
}
