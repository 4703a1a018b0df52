//! Rich text's bounds and its output side: deep nesting and too many elements are refused before the HTML is parsed
//! (sanitising such input took seconds), within-bounds input sanitises quickly, and `SafeHtml::render` makes any stored
//! value safe to show.

use std::time::{Duration, Instant};

use livebaton_content::{
    FieldDefinition, FieldType, MAX_RICH_TEXT_DEPTH, MAX_RICH_TEXT_ELEMENTS, RecordInput, RichTextError, SafeHtml,
    validate_record,
};
use serde_json::{Map, json};

fn body_field() -> FieldDefinition {
    FieldDefinition {
        field_type: FieldType::RichText,
        key: "body".into(),
        label: "Body".into(),
        required: false,
        default: None,
        options: Vec::new(),
        props: Map::new(),
    }
}

/// The messages `data.body` gets for `html`, and how long validation took.
fn refusal(html: &str) -> (Vec<String>, Duration) {
    let mut data = Map::new();
    data.insert("body".into(), json!(html));
    let input = RecordInput { title: "T".into(), data, ..Default::default() };
    let start = Instant::now();
    let result = validate_record(&[body_field()], &input);
    let elapsed = start.elapsed();
    match result {
        Ok(record) => panic!("expected a refusal, got {} characters stored", record.data["body"].to_string().len()),
        Err(errors) => (errors.get("data.body").to_vec(), elapsed),
    }
}

/// `n` nested `<div>`s around a word.
fn nested_divs(n: usize) -> String {
    format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n))
}

/// The attack of issue 15: a 100,000-character body of nested `<div>` took about 2 s in ammonia (release build); a
/// record now holds at most 20,000 bytes, and the deepest body that fits is refused by the pre-scan, with a message
/// for the field, in far less time than parsing it would take.
#[test]
fn deeply_nested_html_is_refused_before_it_is_parsed() {
    let attack = nested_divs(19_000 / 11);
    assert!(attack.len() <= 19_000);
    let (messages, elapsed) = refusal(&attack);
    assert_eq!(messages, ["is nested too deeply (at most 32 levels)"]);
    assert!(elapsed < Duration::from_millis(200), "refused in {elapsed:?}");

    assert!(SafeHtml::sanitize(&nested_divs(MAX_RICH_TEXT_DEPTH)).is_ok(), "32 levels are fine");
    assert_eq!(SafeHtml::sanitize(&nested_divs(MAX_RICH_TEXT_DEPTH + 1)), Err(RichTextError::TooDeep));
}

#[test]
fn too_many_elements_are_refused() {
    let flat = "<p>x</p>".repeat(MAX_RICH_TEXT_ELEMENTS);
    assert!(SafeHtml::sanitize(&flat).is_ok(), "2,000 paragraphs are fine");
    let (messages, elapsed) = refusal(&format!("{flat}<p>x</p>"));
    assert_eq!(messages, ["has too many HTML elements (at most 2000)"]);
    assert!(elapsed < Duration::from_millis(200), "refused in {elapsed:?}");
}

/// The costliest inputs within the bounds still sanitise in milliseconds (debug build: tens of milliseconds), and
/// HTML that the parser would expand past the bounds (formatting re-opened in every paragraph) is refused too, so
/// whatever is stored can be rendered as markup.
#[test]
fn input_within_the_bounds_is_cheap_and_what_is_stored_stays_within_them() {
    let chains = format!("{}x{}", "<div>".repeat(32), "</div>".repeat(32)).repeat(MAX_RICH_TEXT_ELEMENTS / 32);
    let start = Instant::now();
    let clean = SafeHtml::sanitize(&chains).expect("within the bounds");
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
    assert_eq!(clean.as_str(), chains, "already clean HTML is kept as it is");

    // Formatting left open by its paragraph is re-opened by the parser in every later one: refused by the pre-scan
    // now, before any parsing (it was refused by the element count of the parser's output before).
    let formatting = "<b><i><u><s><em><strong><code><small>".repeat(3);
    let expanding = format!("<p>{formatting}</p>{}", "<p>x</p>".repeat(1900));
    assert_eq!(SafeHtml::sanitize(&expanding), Err(RichTextError::TooManyUnclosed));
}

/// What is stored under a rich-text key is sanitised again when shown, whatever it is; a stored value beyond the
/// bounds is shown as text (escaped), not parsed.
#[test]
fn render_makes_any_stored_value_safe() {
    let raw = "<img src=x onerror=alert(1)><script>alert(2)</script><p>kept</p>";
    let shown = SafeHtml::render(raw);
    for gone in ["<script", "onerror", "alert(2)"] {
        assert!(!shown.as_str().contains(gone), "{gone} in {shown}");
    }
    assert!(shown.as_str().contains("<p>kept</p>"), "{shown}");

    let deep = nested_divs(5_000);
    let start = Instant::now();
    let shown = SafeHtml::render(&format!("{deep}<script>alert(1)</script>"));
    assert!(start.elapsed() < Duration::from_millis(200), "took {:?}", start.elapsed());
    assert!(!shown.as_str().contains("<script"), "escaped: {}", &shown.as_str()[shown.as_str().len() - 60..]);
    assert!(shown.as_str().contains("&lt;script&gt;"));
}

/// Formatting tags closed by an ancestor (`<p><b x=1></p>`) stay active for the parser, which rebuilds all of them
/// before each later tag: a thousand of them in 16 KB, within the element and depth bounds, made megabytes. They are
/// refused beyond a dozen; sloppy markup with a few unclosed tags is still sanitised.
#[test]
fn formatting_tags_left_open_by_their_parents_are_bounded() {
    let attack: String = (0..1_000).map(|n| format!("<p><b x={n}></p>")).collect();
    assert!(attack.len() < 20_000);
    assert_eq!(SafeHtml::sanitize(&attack), Err(RichTextError::TooManyUnclosed));
    let sloppy: String = (0..5).map(|n| format!("<p><b>bold {n}</p>")).collect();
    assert!(SafeHtml::sanitize(&sloppy).is_ok(), "a few unclosed formatting tags are fine");
    assert!(SafeHtml::sanitize(&"<p><b>ok</b> <i>fine</i></p>".repeat(500)).is_ok(), "closed tags never count");
}
