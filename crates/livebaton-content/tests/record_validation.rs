//! Record validation: title, slug, status, unknown keys, required fields, and every field type.

use livebaton_content::{
    FieldDefinition, FieldType, MAX_CONTENT_BYTES, RecordInput, Status, ValidRecord, ValidationErrors,
    frame_bytes_for_content, validate_record,
};
use serde_json::{Map, Value, json};

fn field(field_type: FieldType, key: &str) -> FieldDefinition {
    FieldDefinition {
        field_type,
        key: key.to_owned(),
        label: key.to_owned(),
        required: false,
        default: None,
        options: if field_type.has_options() { vec!["red".into(), "green".into(), "blue".into()] } else { Vec::new() },
        props: Map::new(),
    }
}

fn required(field_type: FieldType, key: &str) -> FieldDefinition {
    FieldDefinition { required: true, ..field(field_type, key) }
}

fn record(data: Value) -> RecordInput {
    let Value::Object(data) = data else { panic!("data must be an object") };
    RecordInput { title: "A title".into(), data, ..RecordInput::default() }
}

/// Validates `{ "v": value }` against one optional field `v` of `field_type`.
fn one(field_type: FieldType, value: Value) -> Result<ValidRecord, ValidationErrors> {
    validate_record(&[field(field_type, "v")], &record(json!({ "v": value })))
}

/// The stored value of `v`, panicking with the errors when invalid.
fn stored(field_type: FieldType, value: Value) -> Option<Value> {
    match one(field_type, value.clone()) {
        Ok(record) => record.data.get("v").cloned(),
        Err(errors) => panic!("{value} should be a valid {field_type:?}: {errors}"),
    }
}

/// The messages for `data.v`, panicking when valid.
fn rejected(field_type: FieldType, value: Value) -> Vec<String> {
    match one(field_type, value.clone()) {
        Ok(record) => panic!("{value} should be an invalid {field_type:?}, got {:?}", record.data),
        Err(errors) => {
            assert_eq!(errors.fields.len(), 1, "only data.v is wrong: {errors}");
            errors.get("data.v").to_vec()
        }
    }
}

// ---------------------------------------------------------------------------------------------------------- record

#[test]
fn a_minimal_record_gets_defaults() {
    let record = validate_record(&[], &RecordInput { title: "  Hello  ".into(), ..RecordInput::default() }).unwrap();
    assert_eq!(record.title, "Hello");
    assert_eq!(record.slug, None);
    assert_eq!(record.status, Status::Published);
    assert!(record.data.is_empty());
    assert!(record.metadata.is_empty());
}

#[test]
fn title_is_required_and_at_most_255_characters() {
    for blank in ["", "   ", "\t\n"] {
        let errors = validate_record(&[], &RecordInput { title: blank.into(), ..RecordInput::default() }).unwrap_err();
        assert_eq!(errors.get("title"), ["can't be blank"], "{blank:?}");
    }
    let ok = validate_record(&[], &RecordInput { title: "é".repeat(255), ..RecordInput::default() });
    assert_eq!(ok.unwrap().title.chars().count(), 255, "255 characters (510 bytes) is fine");
    let errors = validate_record(&[], &RecordInput { title: "a".repeat(256), ..RecordInput::default() }).unwrap_err();
    assert_eq!(errors.get("title"), ["must be at most 255 characters"]);
    assert!(validate_record(&[], &RecordInput { title: "x".into(), ..RecordInput::default() }).is_ok());
}

#[test]
fn slug_is_optional_and_must_match_the_pattern() {
    let with = |slug: &str| validate_record(&[], &RecordInput { slug: Some(slug.into()), ..record(json!({})) });
    assert_eq!(with("").unwrap().slug, None);
    assert_eq!(with("  ").unwrap().slug, None);
    assert_eq!(with("hello-world-2").unwrap().slug.as_deref(), Some("hello-world-2"));
    assert_eq!(with(" abc ").unwrap().slug.as_deref(), Some("abc"));
    for bad in ["Hello", "hello--world", "-hello", "hello-", "hello_world", "héllo", "a b", "a/b"] {
        assert!(with(bad).unwrap_err().get("slug")[0].contains("lowercase"), "{bad:?}");
    }
    assert!(with(&"a".repeat(255)).is_ok());
    assert_eq!(with(&"a".repeat(256)).unwrap_err().get("slug"), ["must be at most 255 characters"]);
}

#[test]
fn status_defaults_to_published_and_refuses_unknown_values() {
    let with = |status: Option<&str>| {
        validate_record(&[], &RecordInput { status: status.map(str::to_owned), ..record(json!({})) })
    };
    assert_eq!(with(None).unwrap().status, Status::Published);
    assert_eq!(with(Some("")).unwrap().status, Status::Published);
    assert_eq!(with(Some("draft")).unwrap().status, Status::Draft);
    assert_eq!(with(Some("archived")).unwrap().status, Status::Archived);
    for bad in ["deleted", "Published", "1"] {
        assert_eq!(with(Some(bad)).unwrap_err().get("status"), ["must be draft, published or archived"]);
    }
}

#[test]
fn metadata_is_kept() {
    let metadata = json!({"source": "import"}).as_object().cloned();
    let record = validate_record(&[], &RecordInput { metadata: metadata.clone(), ..record(json!({})) }).unwrap();
    assert_eq!(Some(record.metadata), metadata);
}

#[test]
fn unknown_data_keys_are_errors_not_dropped() {
    let fields = [field(FieldType::Text, "name")];
    let errors = validate_record(&fields, &record(json!({"name": "x", "nmae": "y", "admin": true}))).unwrap_err();
    assert_eq!(errors.get("data.nmae"), ["is not a field of this entity"]);
    assert_eq!(errors.get("data.admin"), ["is not a field of this entity"]);
    assert_eq!(errors.fields.len(), 2);
}

#[test]
fn every_problem_is_reported_at_once() {
    let fields = [required(FieldType::Text, "name"), field(FieldType::Number, "age"), field(FieldType::Date, "born")];
    let input = RecordInput {
        title: " ".into(),
        slug: Some("Bad Slug".into()),
        status: Some("gone".into()),
        data: json!({"age": "abc", "born": "2026-02-30", "extra": 1}).as_object().unwrap().clone(),
        metadata: None,
    };
    let errors = validate_record(&fields, &input).unwrap_err();
    let paths: Vec<&str> = errors.fields.keys().map(String::as_str).collect();
    assert_eq!(paths, ["data.age", "data.born", "data.extra", "data.name", "slug", "status", "title"]);
}

#[test]
fn three_problems_give_three_paths() {
    let fields = [required(FieldType::Email, "email"), field(FieldType::Url, "site")];
    let input = RecordInput { title: String::new(), ..record(json!({"site": "javascript:alert(1)"})) };
    let errors = validate_record(&fields, &input).unwrap_err();
    assert_eq!(errors.fields.len(), 3, "{errors}");
    assert_eq!(errors.get("title"), ["can't be blank"]);
    assert_eq!(errors.get("data.email"), ["can't be blank"]);
    assert_eq!(errors.get("data.site").len(), 1);
}

// -------------------------------------------------------------------------------------------------------- required

#[test]
fn required_fields_refuse_missing_null_and_blank_values() {
    for field_type in FieldType::ALL {
        let fields = [required(field_type, "v")];
        for blank in [None, Some(json!(null)), Some(json!("")), Some(json!("   "))] {
            let data = blank.clone().map_or_else(|| json!({}), |value| json!({ "v": value }));
            let errors = validate_record(&fields, &record(data)).unwrap_err();
            assert_eq!(errors.get("data.v"), ["can't be blank"], "{field_type:?} {blank:?}");
        }
    }
}

#[test]
fn required_checkbox_needs_a_ticked_option_and_required_boolean_accepts_false() {
    let fields = [required(FieldType::Checkbox, "v")];
    for empty in [json!([]), json!([""])] {
        let errors = validate_record(&fields, &record(json!({ "v": empty }))).unwrap_err();
        assert_eq!(errors.get("data.v"), ["can't be blank"]);
    }
    let fields = [required(FieldType::Boolean, "v")];
    let record = validate_record(&fields, &record(json!({"v": false}))).unwrap();
    assert_eq!(record.data["v"], json!(false));
}

#[test]
fn required_rich_text_that_shows_nothing_is_blank() {
    let fields = [required(FieldType::RichText, "v")];
    for empty in ["<p> </p>", "<script>alert(1)</script>", "<p>&nbsp;</p>"] {
        let errors = validate_record(&fields, &record(json!({ "v": empty }))).unwrap_err();
        assert_eq!(errors.get("data.v"), ["can't be blank"], "{empty:?}");
    }
    let image = validate_record(&fields, &record(json!({"v": "<img src=\"a.png\">"}))).unwrap();
    assert!(image.data["v"].as_str().unwrap().contains("<img"));
}

#[test]
fn optional_blank_and_missing_fields_are_absent() {
    for field_type in FieldType::ALL {
        for blank in [json!(null), json!(""), json!("  ")] {
            assert_eq!(stored(field_type, blank.clone()), None, "{field_type:?} {blank}");
        }
        let record = validate_record(&[field(field_type, "v")], &record(json!({}))).unwrap();
        assert!(record.data.is_empty(), "{field_type:?}");
    }
    assert_eq!(stored(FieldType::Checkbox, json!([])), None);
}

#[test]
fn defaults_are_not_applied_on_save() {
    let fields = [FieldDefinition { default: Some(json!("hello")), ..field(FieldType::Text, "v") }];
    assert!(validate_record(&fields, &record(json!({}))).unwrap().data.is_empty());
}

// ---------------------------------------------------------------------------------------------------- text types

#[test]
fn text_is_at_most_255_characters_and_stored_as_given() {
    assert_eq!(stored(FieldType::Text, json!("a".repeat(255))), Some(json!("a".repeat(255))));
    assert_eq!(stored(FieldType::Text, json!("ü".repeat(255))), Some(json!("ü".repeat(255))), "characters, not bytes");
    assert_eq!(rejected(FieldType::Text, json!("a".repeat(256))), ["must be at most 255 characters"]);
    assert_eq!(stored(FieldType::Text, json!(" padded ")), Some(json!(" padded ")));
    assert_eq!(rejected(FieldType::Text, json!(12)), ["must be text"]);
    assert_eq!(rejected(FieldType::Text, json!(["a"])), ["must be text"]);
    assert_eq!(rejected(FieldType::Text, json!(true)), ["must be text"]);
}

#[test]
fn textarea_is_at_most_5000_characters() {
    let long = "line\n".repeat(1000);
    assert_eq!(stored(FieldType::Textarea, json!(long)), Some(json!(long)));
    assert_eq!(rejected(FieldType::Textarea, json!("a".repeat(5001))), ["must be at most 5000 characters"]);
    assert_eq!(rejected(FieldType::Textarea, json!({"a": 1})), ["must be text"]);
}

#[test]
fn xss_strings_in_plain_text_fields_are_stored_unchanged() {
    let payload = "<script>alert(1)</script><img src=x onerror=alert(1)> & \"quotes\"";
    assert_eq!(stored(FieldType::Text, json!(payload)), Some(json!(payload)));
    assert_eq!(stored(FieldType::Textarea, json!(payload)), Some(json!(payload)));
}

#[test]
fn email_needs_one_at_a_local_part_and_a_dotted_domain() {
    assert_eq!(stored(FieldType::Email, json!("ada@example.com")), Some(json!("ada@example.com")));
    assert_eq!(stored(FieldType::Email, json!("  a.b+c@mail.example.org ")), Some(json!("a.b+c@mail.example.org")));
    for bad in ["ada", "@example.com", "ada@example", "ada@@example.com", "a@b@example.com", "ada @example.com"] {
        assert_eq!(rejected(FieldType::Email, json!(bad)), ["must be an email address like name@example.com"], "{bad}");
    }
    for bad in ["ada@example.", "ada@.com", "ada@exa..com", "ad\u{0}a@example.com"] {
        assert_eq!(rejected(FieldType::Email, json!(bad)).len(), 1, "{bad}");
    }
    assert_eq!(rejected(FieldType::Email, json!(5)), ["must be text"]);
}

#[test]
fn url_gets_https_when_it_has_no_scheme() {
    assert_eq!(stored(FieldType::Url, json!("example.com/a?b=1")), Some(json!("https://example.com/a?b=1")));
    assert_eq!(stored(FieldType::Url, json!("http://example.com")), Some(json!("http://example.com")));
    assert_eq!(stored(FieldType::Url, json!("HTTPS://Example.com")), Some(json!("HTTPS://Example.com")));
    assert_eq!(stored(FieldType::Url, json!(" https://example.com ")), Some(json!("https://example.com")));
    assert_eq!(stored(FieldType::Url, json!("//cdn.example.com/x")), Some(json!("https://cdn.example.com/x")));
    assert_eq!(stored(FieldType::Url, json!("localhost:4000/admin")), Some(json!("https://localhost:4000/admin")));
}

#[test]
fn url_refuses_other_schemes_whitespace_and_no_host() {
    for scheme in
        ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "mailto:a@b.c", "ftp://x.org"]
    {
        assert!(!rejected(FieldType::Url, json!(scheme)).is_empty(), "{scheme}");
    }
    for bad in ["exa mple.com", "java\tscript:alert(1)", "https://", "http:///path", "https://a.com/\"onmouseover=x"] {
        assert!(!rejected(FieldType::Url, json!(bad)).is_empty(), "{bad}");
    }
    assert_eq!(rejected(FieldType::Url, json!(false)), ["must be text"]);
}

#[test]
fn rich_text_is_sanitised() {
    let xss = r#"<script>alert(1)</script><p onclick="x()">hi</p><a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>"#;
    let clean = stored(FieldType::RichText, json!(xss)).unwrap();
    let clean = clean.as_str().unwrap();
    for gone in ["<script", "alert(1)", "onclick", "javascript:", "onerror"] {
        assert!(!clean.contains(gone), "{gone} survived in {clean}");
    }
    assert!(clean.contains("<p>hi</p>"), "{clean}");
    assert!(clean.contains(">x</a>"), "{clean}");
    let safe = "<p><strong>ok</strong></p>";
    assert_eq!(stored(FieldType::RichText, json!(safe)), Some(json!(safe)));
    assert_eq!(rejected(FieldType::RichText, json!(1)), ["must be text"]);
    let too_long = one(FieldType::RichText, json!("a".repeat(MAX_CONTENT_BYTES + 1))).unwrap_err();
    assert_eq!(too_long.get("data").len(), 1, "refused by the record's size: {too_long}");
}

// ------------------------------------------------------------------------------------------------------- numbers

#[test]
fn numbers_from_json_and_strings() {
    assert_eq!(stored(FieldType::Number, json!(42)), Some(json!(42)));
    assert_eq!(stored(FieldType::Number, json!(-7)), Some(json!(-7)));
    assert_eq!(stored(FieldType::Number, json!(2.5)), Some(json!(2.5)));
    assert_eq!(stored(FieldType::Number, json!(3.0)), Some(json!(3)), "integral floats become integers");
    assert_eq!(stored(FieldType::Number, json!("12")), Some(json!(12)));
    assert_eq!(stored(FieldType::Number, json!(" -3 ")), Some(json!(-3)));
    assert_eq!(stored(FieldType::Number, json!("-0.25")), Some(json!(-0.25)));
    assert_eq!(stored(FieldType::Number, json!("4.0")), Some(json!(4)));
    assert_eq!(stored(FieldType::Number, json!("1e3")), Some(json!(1000)));
    assert_eq!(stored(FieldType::Number, json!("9007199254740993")), Some(json!(9_007_199_254_740_993_i64)));
    assert_eq!(stored(FieldType::Number, json!(1e300)), Some(json!(1e300)));
}

#[test]
fn numbers_refuse_non_numbers() {
    for bad in ["abc", "12abc", "1,5", "NaN", "inf", "-infinity", "1e999", "0x10", "--1"] {
        assert_eq!(rejected(FieldType::Number, json!(bad)), ["must be a number"], "{bad}");
    }
    for bad in [json!(true), json!([1]), json!({"n": 1})] {
        assert_eq!(rejected(FieldType::Number, bad), ["must be a number"]);
    }
}

#[test]
fn booleans_accept_form_spellings() {
    for yes in [json!(true), json!("true"), json!("1"), json!(1), json!("on"), json!(1.0)] {
        assert_eq!(stored(FieldType::Boolean, yes.clone()), Some(json!(true)), "{yes}");
    }
    for no in [json!(false), json!("false"), json!("0"), json!(0), json!("off")] {
        assert_eq!(stored(FieldType::Boolean, no.clone()), Some(json!(false)), "{no}");
    }
    for bad in [json!("yes"), json!("TRUE!"), json!(2), json!([true]), json!({})] {
        assert_eq!(rejected(FieldType::Boolean, bad.clone()), ["must be true or false"], "{bad}");
    }
}

// --------------------------------------------------------------------------------------------------------- dates

#[test]
fn dates_are_real_calendar_days() {
    for good in ["2024-02-29", "2000-02-29", "2026-12-31", "2026-01-01", "0001-01-01", "9999-12-31"] {
        assert_eq!(stored(FieldType::Date, json!(good)), Some(json!(good)), "{good}");
    }
    assert_eq!(stored(FieldType::Date, json!(" 2026-03-04 ")), Some(json!("2026-03-04")));
    for impossible in ["2026-02-30", "2023-02-29", "1900-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00"]
    {
        assert_eq!(rejected(FieldType::Date, json!(impossible)), ["is not a real calendar date"], "{impossible}");
    }
    for malformed in ["2026-2-3", "03/04/2026", "2026-03-04T10:00", "20260304", "yesterday", "2026-0a-04"] {
        assert!(!rejected(FieldType::Date, json!(malformed)).is_empty(), "{malformed}");
    }
    assert_eq!(rejected(FieldType::Date, json!(20260304)), ["must be a date (YYYY-MM-DD)"]);
}

// ------------------------------------------------------------------------------------------------------- choices

#[test]
fn select_and_radio_need_one_of_the_options() {
    for field_type in [FieldType::Select, FieldType::Radio] {
        assert_eq!(stored(field_type, json!("green")), Some(json!("green")));
        assert_eq!(stored(field_type, json!(" blue ")), Some(json!("blue")));
        assert_eq!(rejected(field_type, json!("purple")), ["must be one of: red, green, blue"]);
        assert_eq!(rejected(field_type, json!("Red")), ["must be one of: red, green, blue"], "case matters");
        assert_eq!(rejected(field_type, json!(["red"])), ["must be text"]);
    }
}

#[test]
fn checkbox_is_a_deduplicated_subset_of_the_options() {
    assert_eq!(stored(FieldType::Checkbox, json!(["blue", "red", "blue"])), Some(json!(["red", "blue"])));
    assert_eq!(stored(FieldType::Checkbox, json!("green")), Some(json!(["green"])));
    assert_eq!(stored(FieldType::Checkbox, json!(["", "red"])), Some(json!(["red"])), "hidden empty input ignored");
    let messages = rejected(FieldType::Checkbox, json!(["red", "pink"]));
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("\"pink\""), "{messages:?}");
    assert_eq!(rejected(FieldType::Checkbox, json!(["red", 1])), ["must be a list of options"]);
    assert_eq!(rejected(FieldType::Checkbox, json!(true)), ["must be a list of options"]);
}

#[test]
fn values_are_normalised_per_field_in_one_record() {
    let fields = [
        field(FieldType::Number, "price"),
        field(FieldType::Url, "site"),
        field(FieldType::Boolean, "active"),
        field(FieldType::Checkbox, "tags"),
    ];
    let data = json!({"price": "9.5", "site": "example.com", "active": "on", "tags": "red"});
    let record = validate_record(&fields, &record(data)).unwrap();
    assert_eq!(
        Value::Object(record.data),
        json!({"price": 9.5, "site": "https://example.com", "active": true, "tags": ["red"]})
    );
}

/// One size limit for everything a form carries: a record whose content passes it (textareas of 5,000 characters
/// each, in several fields) is refused as a whole, on `data`, and one within it is accepted. The limit fits the default
/// WebSocket frame even URL-encoded, so whatever the API stores, the live form can edit.
#[test]
fn a_record_is_at_most_max_content_bytes_in_all() {
    let fields: Vec<FieldDefinition> = (0..5).map(|n| field(FieldType::Textarea, &format!("t{n}"))).collect();
    let text = "x".repeat(4_900);
    let within = (0..4).map(|n| (format!("t{n}"), json!(text))).collect::<Map<_, _>>();
    assert!(validate_record(&fields, &record(Value::Object(within))).is_ok(), "four textareas of 4,900 fit");
    let beyond = (0..5).map(|n| (format!("t{n}"), json!(text))).collect::<Map<_, _>>();
    let errors = validate_record(&fields, &record(Value::Object(beyond))).unwrap_err();
    assert_eq!(
        errors.get("data"),
        [format!("is too large: a record holds at most {MAX_CONTENT_BYTES} bytes of content in all")]
    );
    assert!(frame_bytes_for_content() <= 64 * 1024, "the default frame limit carries the largest form");
}
