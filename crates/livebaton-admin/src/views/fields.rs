//! The record form's inputs, one per field type, and reading them back from a submitted form.
//!
//! Names: `title`, `slug`, `status`, and `data[<key>]` per field (`data[<key>][]` for a checkbox group, so every ticked
//! option is sent). A boolean sends a hidden `false` before its checkbox, so unticking it is a change too.

use livebaton_content::{FieldDefinition, FieldType, RecordInput, ValidationErrors};
use livebaton_web::live::RichTextEditor;
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::markup::{Invalid, field_errors, form_text};
use crate::storage::Record;

/// A record's editable values as a form shows them (what the store has, or a draft).
pub fn record_values(record: &Record) -> RecordInput {
    RecordInput {
        title: record.title.clone(),
        slug: Some(record.slug.clone()),
        status: Some(record.status.as_str().to_owned()),
        data: record.data.clone(),
        metadata: None,
    }
}

/// Reads a submitted record form (decoded into an object of strings and arrays) as the input to validate.
pub fn record_input(fields: &[FieldDefinition], form: &Value) -> RecordInput {
    let mut data = Map::new();
    for field in fields {
        let name = format!("data[{}]", field.key);
        let value = match (field.field_type, form.get(&name)) {
            (FieldType::Checkbox, Some(Value::Array(values))) => {
                Value::Array(values.iter().filter(|v| v.as_str().is_some_and(|s| !s.is_empty())).cloned().collect())
            }
            (FieldType::Checkbox, Some(Value::String(one))) if !one.is_empty() => {
                Value::Array(vec![Value::from(one.clone())])
            }
            (FieldType::Checkbox, _) => Value::Array(Vec::new()),
            (_, Some(_)) => Value::String(form_text(form, &name)),
            (_, None) => continue,
        };
        data.insert(field.key.clone(), value);
    }
    let optional = |name: &str| Some(form_text(form, name)).filter(|text| !text.trim().is_empty());
    RecordInput {
        title: form_text(form, "title"),
        slug: optional("slug"),
        status: optional("status"),
        data,
        metadata: None,
    }
}

/// A value as an input's text.
pub fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(other) => other.to_string(),
    }
}

fn is_checked(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => matches!(text.as_str(), "true" | "on" | "1"),
        _ => false,
    }
}

fn contains(value: Option<&Value>, option: &str) -> bool {
    match value {
        Some(Value::Array(values)) => values.iter().any(|v| v.as_str() == Some(option)),
        Some(Value::String(text)) => text == option,
        _ => false,
    }
}

/// The class of a required field's label: the stylesheet marks it with a red `*` (generated content, so the label's
/// text stays the field's name), and its input carries `required`, which assistive technology announces.
const REQUIRED_LABEL: &str = "required";

/// Title, slug, status, then one input per field, each with its label and its errors. A new record (no status yet)
/// starts as a draft: publishing is a choice, not a default.
pub fn record_inputs(fields: &[FieldDefinition], values: &RecordInput, errors: &ValidationErrors) -> Markup {
    let status = values.status.as_deref().unwrap_or("draft");
    html! {
        p.hint.required-hint { "Fields marked " span.required-mark aria-hidden="true" { "*" } " are required." }
        div class=(wrap_class(errors, "title")) {
            label.(REQUIRED_LABEL) for="record-title" { "Title" }
            @let invalid = Invalid::of(errors, "title");
            input #record-title type="text" name="title" value=(values.title) required
                aria-invalid=[invalid.invalid] aria-describedby=[invalid.described_by];
            (field_errors(errors, "title"))
        }
        div class=(wrap_class(errors, "slug")) {
            label for="record-slug" { "Slug" }
            @let invalid = Invalid::of(errors, "slug");
            input #record-slug type="text" name="slug" value=(values.slug.as_deref().unwrap_or(""))
                aria-invalid=[invalid.invalid] aria-describedby={ "record-slug-hint" @if let Some(id) = &invalid.described_by { " " (id) } };
            p.hint #record-slug-hint { "Made from the title when empty." }
            (field_errors(errors, "slug"))
        }
        div class=(wrap_class(errors, "status")) {
            label for="record-status" { "Status" }
            @let invalid = Invalid::of(errors, "status");
            select #record-status name="status" aria-invalid=[invalid.invalid] aria-describedby=[invalid.described_by] {
                @for option in ["published", "draft", "archived"] {
                    option value=(option) selected[status == option] { (option) }
                }
            }
            (field_errors(errors, "status"))
        }
        @for field in fields {
            (field_input(field, values.data.get(&field.key), errors))
        }
    }
}

fn wrap_class(errors: &ValidationErrors, path: &str) -> &'static str {
    if errors.get(path).is_empty() { "input" } else { "input has-error" }
}

fn field_input(field: &FieldDefinition, value: Option<&Value>, errors: &ValidationErrors) -> Markup {
    let id = format!("field-{}", field.key);
    let name = format!("data[{}]", field.key);
    let path = format!("data.{}", field.key);
    let text = value_text(value);
    let label = html! { (field.label) };
    let required = field.required;
    let label_class = required.then_some(REQUIRED_LABEL);
    let Invalid { invalid, described_by } = Invalid::of(errors, &path);
    html! {
        div class=(wrap_class(errors, &path)) data-field-type=(field.field_type.as_str()) {
            @match field.field_type {
                FieldType::Text | FieldType::Email | FieldType::Url | FieldType::Number | FieldType::Date => {
                    @let kind = match field.field_type {
                        FieldType::Email => "email",
                        FieldType::Url => "url",
                        FieldType::Number => "text",
                        FieldType::Date => "date",
                        _ => "text",
                    };
                    label for=(id) class=[label_class] { (label) }
                    input id=(id) type=(kind) name=(name) value=(text) required[required] inputmode=[(field.field_type == FieldType::Number).then_some("decimal")]
                        aria-invalid=[invalid] aria-describedby=[described_by.as_deref()];
                }
                FieldType::Textarea => {
                    label for=(id) class=[label_class] { (label) }
                    textarea id=(id) name=(name) required[required] aria-invalid=[invalid]
                        aria-describedby=[described_by.as_deref()] { (text) }
                }
                FieldType::RichText => (rich_text_input(&id, &name, &text, label, label_class, described_by.as_deref(), required)),
                FieldType::Boolean => {
                    input type="hidden" name=(name) value="false";
                    label.inline for=(id) {
                        input id=(id) type="checkbox" name=(name) value="true" checked[is_checked(value)]
                            aria-invalid=[invalid] aria-describedby=[described_by.as_deref()];
                        (label)
                    }
                }
                FieldType::Select => {
                    label for=(id) class=[label_class] { (label) }
                    select id=(id) name=(name) required[required] aria-invalid=[invalid] aria-describedby=[described_by.as_deref()] {
                        option value="" { "—" }
                        @for option in &field.options {
                            option value=(option) selected[text == *option] { (option) }
                        }
                    }
                }
                FieldType::Radio | FieldType::Checkbox => {
                    @let group = format!("{id}-label");
                    @let input_name = if field.field_type == FieldType::Checkbox { format!("{name}[]") } else { name.clone() };
                    @let kind = if field.field_type == FieldType::Checkbox { "checkbox" } else { "radio" };
                    // ARIA allows `aria-required` on a radio group only; a required checkbox group has the mark.
                    @let radio = field.field_type == FieldType::Radio;
                    fieldset role=(if radio { "radiogroup" } else { "group" }) aria-labelledby=(group)
                        aria-required=[(radio && required).then_some("true")] aria-describedby=[described_by.as_deref()] {
                        label id=(group) class=[label_class] { (label) }
                        @if field.field_type == FieldType::Checkbox { input type="hidden" name=(input_name) value=""; }
                        @for (index, option) in field.options.iter().enumerate() {
                            @let option_id = format!("{id}-{index}");
                            label.inline for=(option_id) {
                                input id=(option_id) type=(kind) name=(input_name) value=(option) checked[contains(value, option)]
                                    aria-invalid=[invalid];
                                (option)
                            }
                        }
                    }
                }
            }
            (field_errors(errors, &path))
        }
    }
}

/// A rich-text field: the public editor of livebaton-web (a toolbar and an editable area over the textarea that
/// carries the value, so without JavaScript the textarea still works). Labelled by the field's label, described by the
/// hint; the server sanitises the value when the record is saved, whatever the editor sent.
fn rich_text_input(
    id: &str,
    name: &str,
    text: &str,
    label: Markup,
    label_class: Option<&str>,
    error_id: Option<&str>,
    required: bool,
) -> Markup {
    let label_id = format!("{id}-label");
    let hint_id = format!("{id}-hint");
    // The hint, and the messages of a refused value (see `Invalid`).
    let described = match error_id {
        Some(error_id) => format!("{hint_id} {error_id}"),
        None => hint_id.clone(),
    };
    let editor = RichTextEditor::new(id, name, &label_id, text)
        .required(required)
        .invalid(error_id.is_some())
        .described_by(&described);
    html! {
        label id=(label_id) for=(id) class=[label_class] { (label) }
        (editor.render())
        // The shortcuts exist only once the client runs the editor (html.lb-js); the plain textarea takes HTML.
        p.hint id=(hint_id) {
            span.lb-js-only { "Bold, italic, links, headings, lists and quotes (Ctrl+B, Ctrl+I, Ctrl+K). " }
            span.lb-no-js-only { "HTML. " }
            "Scripts and unsafe markup are removed when saved."
        }
    }
}

#[cfg(test)]
mod tests {
    use livebaton_web::live::decode_form;
    use serde_json::json;

    use super::*;

    fn field(kind: FieldType, key: &str) -> FieldDefinition {
        FieldDefinition {
            field_type: kind,
            key: key.into(),
            label: key.to_uppercase(),
            required: false,
            default: None,
            options: vec!["a".into(), "b".into()],
            props: Map::new(),
        }
    }

    /// Every required input is marked both ways (the visible `*` and `required` for assistive technology), optional
    /// ones neither; a new record starts as a draft.
    #[test]
    fn required_fields_are_marked_consistently_and_new_records_are_drafts() {
        let mut needed = field(FieldType::Text, "needed");
        needed.required = true;
        let mut choice = field(FieldType::Radio, "choice");
        choice.required = true;
        let fields = [needed, field(FieldType::Textarea, "optional"), choice];
        let html = record_inputs(&fields, &RecordInput::default(), &ValidationErrors::default()).into_string();
        let input = |id: &str| {
            let start = html.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("{id} in {html}"));
            html[start..].split('>').next().unwrap().to_owned()
        };
        assert!(input("record-title").contains("required"), "{html}");
        assert!(input("field-needed").contains("required"));
        assert!(!input("field-optional").contains("required"));
        assert!(
            html.contains(r#"role="radiogroup" aria-labelledby="field-choice-label" aria-required="true""#),
            "{html}"
        );
        // One mark per required label (title, needed, choice), and the hint that explains it.
        assert_eq!(html.matches(r#"class="required""#).count(), 3, "{html}");
        assert!(html.contains(r#"<label for="field-needed" class="required">NEEDED</label>"#), "{html}");
        assert!(html.contains(r#"<label for="field-optional">OPTIONAL</label>"#), "{html}");
        assert!(html.contains("are required."), "{html}");
        assert!(html.contains(r#"<option value="draft" selected>draft</option>"#), "{html}");
    }

    /// A refused value's input says so to assistive technology and names its message; the others say nothing.
    #[test]
    fn refused_inputs_are_marked_invalid_and_name_their_messages() {
        let fields =
            [field(FieldType::Text, "body"), field(FieldType::Radio, "choice"), field(FieldType::Text, "fine")];
        let mut errors = ValidationErrors::default();
        errors.add("title", "can't be blank");
        errors.add("data.body", "must be at most 255 characters");
        errors.add("data.choice", "must be one of the options");
        let html = record_inputs(&fields, &RecordInput::default(), &errors).into_string();
        let tag = |id: &str| {
            let start = html.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("{id} in {html}"));
            html[start..].split('>').next().unwrap().to_owned()
        };
        assert!(tag("record-title").contains(r#"aria-invalid="true" aria-describedby="error-title""#), "{html}");
        assert!(tag("field-body").contains(r#"aria-describedby="error-data-body""#), "{html}");
        assert!(html.contains(r#"<div class="field-errors" id="error-data-body"><p class="field-error">must be at"#));
        assert!(tag("field-choice-0").contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains(r#"aria-describedby="error-data-choice""#), "{html}");
        assert!(!tag("field-fine").contains("aria-invalid"), "{html}");
        assert!(tag("record-slug").contains(r#"aria-describedby="record-slug-hint""#), "{html}");
    }

    /// A rich-text field is the public editor: its area named by the field's label and described by the hint, its
    /// textarea still the form's `data[key]`, and a refused value marked invalid.
    #[test]
    fn a_rich_text_field_is_a_labelled_editor_over_its_textarea() {
        let mut body = field(FieldType::RichText, "body");
        body.required = true;
        let values = RecordInput { data: Map::from_iter([("body".into(), json!("<p>x</p>"))]), ..Default::default() };
        let mut errors = ValidationErrors::default();
        errors.add("data.body", "is too long");
        let html = record_inputs(&[body], &values, &errors).into_string();
        assert!(
            html.contains(r#"<label id="field-body-label" for="field-body" class="required">BODY</label>"#),
            "{html}"
        );
        assert!(html.contains(r#"aria-labelledby="field-body-label" aria-required="true" aria-describedby="field-body-hint error-data-body" aria-invalid="true""#), "{html}");
        assert!(
            html.contains(r#"<textarea class="lb-rich-source" id="field-body" name="data[body]" required"#),
            "{html}"
        );
        assert!(html.contains("&lt;p&gt;x&lt;/p&gt;</textarea>"), "{html}");
        assert!(html.contains(r#"<p class="hint" id="field-body-hint">"#), "{html}");
    }

    #[test]
    fn a_submitted_form_reads_back_as_the_record_input() {
        let fields =
            [field(FieldType::Text, "body"), field(FieldType::Checkbox, "tags"), field(FieldType::Boolean, "ok")];
        let form = Value::Object(decode_form(
            "title=Hi+there&slug=&status=draft&data%5Bbody%5D=x%3Cy&data%5Btags%5D%5B%5D=&data%5Btags%5D%5B%5D=b&data%5Bok%5D=false&data%5Bok%5D=true",
        ));
        let input = record_input(&fields, &form);
        assert_eq!(input.title, "Hi there");
        assert_eq!(input.slug, None);
        assert_eq!(input.status.as_deref(), Some("draft"));
        assert_eq!(input.data["body"], json!("x<y"));
        assert_eq!(input.data["tags"], json!(["b"]));
        assert_eq!(input.data["ok"], json!("true"));
    }

    #[test]
    fn an_unticked_group_is_an_empty_list() {
        let fields = [field(FieldType::Checkbox, "tags")];
        let form = Value::Object(decode_form("title=T&data%5Btags%5D%5B%5D="));
        assert_eq!(record_input(&fields, &form).data["tags"], json!([]));
    }

    #[test]
    fn every_input_has_a_label_and_values_are_escaped() {
        let fields: Vec<FieldDefinition> = FieldType::ALL.iter().map(|kind| field(*kind, kind.as_str())).collect();
        let mut values = RecordInput { title: "<script>alert(1)</script>".into(), ..Default::default() };
        for kind in FieldType::ALL {
            values.data.insert(kind.as_str().into(), json!("\"><img src=x onerror=alert(1)>"));
        }
        let html = record_inputs(&fields, &values, &ValidationErrors::default()).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        for kind in FieldType::ALL {
            assert!(html.contains(&format!("field-{}", kind.as_str())), "{kind:?} has no input");
            assert!(html.contains(&kind.as_str().to_uppercase()), "{kind:?} has no label");
        }
        for label in ["Title", "Slug", "Status"] {
            assert!(html.contains(&format!(">{label}</label>")), "{label}");
        }
    }
}
