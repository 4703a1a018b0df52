//! Slugs: `slugify`, `entity_name_from`, `field_key_from` and `unique_slug`, with property tests.

use std::collections::HashSet;

use livebaton_content::{
    EntityInput, RecordInput, entity_name_from, field_key_from, slugify, unique_slug, validate_entity, validate_record,
};
use proptest::prelude::*;

/// The record slug pattern `^[a-z0-9]+(?:-[a-z0-9]+)*$`, written independently of the crate.
fn is_record_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

#[test]
fn slugify_lowercases_and_joins_words_with_one_separator() {
    assert_eq!(slugify("Hello, World!", '-'), "hello-world");
    assert_eq!(slugify("  --Multiple   spaces & symbols--  ", '-'), "multiple-spaces-symbols");
    assert_eq!(slugify("Blog Post 2", '_'), "blog_post_2");
    assert_eq!(slugify("snake_case_input", '-'), "snake-case-input");
    assert_eq!(slugify("ABC123def", '-'), "abc123def");
}

#[test]
fn slugify_folds_accents_and_drops_apostrophes() {
    assert_eq!(slugify("Crème Brûlée à la française", '-'), "creme-brulee-a-la-francaise");
    assert_eq!(slugify("Straße Æsir Œuvre Łódź", '-'), "strasse-aesir-oeuvre-lodz");
    assert_eq!(slugify("ÉCOLE", '-'), "ecole");
    assert_eq!(slugify("Don't stop", '-'), "dont-stop");
    assert_eq!(slugify("It’s here", '-'), "its-here");
}

#[test]
fn a_field_key_is_made_from_its_label_and_starts_with_a_letter() {
    assert_eq!(field_key_from("Publication date"), "publication_date");
    assert_eq!(field_key_from("Crème brûlée?"), "creme_brulee");
    assert_eq!(field_key_from("3D model"), "field_3d_model");
    assert_eq!(field_key_from("?!"), "");
    assert!(field_key_from(&"word ".repeat(40)).len() <= 50);
}

proptest! {
    /// Whatever label is typed, the key made from it is accepted by entity validation (or is empty, and then the
    /// form asks for one).
    #[test]
    fn a_key_made_from_any_label_is_valid(label in "\\PC{0,80}") {
        let key = field_key_from(&label);
        if !key.is_empty() {
            let input = EntityInput {
                display_name: "Things".into(),
                display_name_plural: "Things".into(),
                fields_definition: vec![serde_json::json!({"type": "text", "key": key, "label": "L"})],
                ..Default::default()
            };
            prop_assert!(validate_entity(&input).is_ok(), "{key:?} from {label:?}: {:?}", validate_entity(&input).err());
        }
    }
}

#[test]
fn slugify_can_be_empty() {
    assert_eq!(slugify("", '-'), "");
    assert_eq!(slugify("¿?!… —", '-'), "");
    assert_eq!(slugify("日本語", '-'), "");
    assert_eq!(slugify("日本 2024", '-'), "2024");
}

#[test]
fn entity_names_use_underscores() {
    assert_eq!(entity_name_from("Team Members"), "team_members");
    assert_eq!(entity_name_from(&"word ".repeat(30)).len(), 49, "cut at a word boundary below 50");
    assert_eq!(entity_name_from(&"x".repeat(80)), "x".repeat(50), "no boundary: hard cut");
}

#[test]
fn unique_slug_counts_from_two() {
    let taken: HashSet<&str> = ["post", "post-2", "post-3"].into();
    assert_eq!(unique_slug("post", |s| taken.contains(s)), "post-4");
    assert_eq!(unique_slug("fresh", |s| taken.contains(s)), "fresh");
    assert_eq!(unique_slug("post-2", |s| taken.contains(s)), "post-2-2");
}

#[test]
fn unique_slug_of_an_empty_base_is_item() {
    assert_eq!(unique_slug("", |_| false), "item");
    let taken: HashSet<&str> = ["item"].into();
    assert_eq!(unique_slug("", |s| taken.contains(s)), "item-2");
}

#[test]
fn unique_slug_stays_within_255_characters() {
    let base = format!("{}-{}", "a".repeat(200), "b".repeat(100));
    let first = unique_slug(&base, |_| false);
    assert_eq!(first, "a".repeat(200), "cut at the hyphen");
    let long = "c".repeat(300);
    let taken = "c".repeat(255);
    let second = unique_slug(&long, |s| s == taken);
    assert_eq!(second, format!("{}-2", "c".repeat(253)));
}

#[test]
fn a_slug_generated_from_a_title_is_a_valid_record_slug() {
    let title = "Ünïcödé ".repeat(40);
    let slug = unique_slug(&slugify(&title, '-'), |_| false);
    let input = RecordInput { title: "t".into(), slug: Some(slug), ..RecordInput::default() };
    assert!(validate_record(&[], &input).is_ok());
}

proptest! {
    #[test]
    fn slugify_output_is_a_record_slug_or_empty(text in any::<String>()) {
        let slug = slugify(&text, '-');
        prop_assert!(slug.is_empty() || is_record_slug(&slug), "{:?} -> {:?}", text, slug);
    }

    #[test]
    fn slugify_is_idempotent(text in "\\PC{0,40}") {
        let once = slugify(&text, '-');
        prop_assert_eq!(slugify(&once, '-'), once);
    }

    #[test]
    fn entity_names_from_letters_are_valid(text in "[A-Za-z][A-Za-z0-9 éü!-]{1,80}") {
        let name = entity_name_from(&text);
        prop_assert!(name.len() <= 50);
        prop_assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{:?}", name);
        prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        prop_assert!(!name.ends_with('_'));
    }

    #[test]
    fn unique_slug_never_returns_a_taken_slug(
        base in "([a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,3})?",
        extra in proptest::collection::vec("[a-z0-9-]{1,12}", 0..8),
        suffixes in proptest::collection::vec(2u32..12, 0..10),
    ) {
        let stem = if base.is_empty() { "item".to_owned() } else { base.clone() };
        let mut taken: HashSet<String> = extra.into_iter().collect();
        taken.insert(stem.clone());
        taken.extend(suffixes.into_iter().map(|n| format!("{stem}-{n}")));
        let slug = unique_slug(&base, |s| taken.contains(s));
        prop_assert!(!taken.contains(&slug), "{:?} is taken", slug);
        prop_assert!(slug.starts_with(&stem));
        prop_assert!(is_record_slug(&slug), "{:?}", slug);
    }
}
