//! The conflict panel of the collaborative forms: after a save over a row that moved, only the fields both sides
//! changed, each with "yours" and "theirs" side by side and a choice; the choices come back as the `resolve` event
//! (`resolve[<field>]` = `mine` or `theirs`). Every value is escaped; rich text is shown only as [`SafeHtml`]
//! sanitised for output ([`crate::content::ContentService::rich_values`]).

use std::collections::BTreeMap;

use livebaton::editing::merge::{Resolutions, Side};
use livebaton_content::SafeHtml;
use maud::{Markup, html};
use serde_json::Value;

use super::collab_form::Editable;
use super::markup::form_text;
use crate::content::MergeConflict;
use crate::content::editing::EditedRow;

/// Rich-text values of a conflict's fields, sanitised for output: `(mine, theirs)` by field name.
pub type ConflictRich = BTreeMap<String, (Option<SafeHtml>, Option<SafeHtml>)>;

/// The choices a submitted panel (`form`) makes, for the fields `conflict` offers only: anything else a client sends
/// is ignored, so the resolutions are bounded by the fields in conflict.
pub fn choices<Row>(conflict: &MergeConflict<Row>, form: &Value) -> Resolutions {
    conflict
        .fields
        .keys()
        .filter_map(|field| Some((field.clone(), Side::parse(&form_text(form, &format!("resolve[{field}]")))?)))
        .collect()
}

/// The conflict panel: only the fields both sides changed, each with yours and theirs side by side and a choice
/// ("Keep yours" / "Take theirs"), submitted as `resolve`; or discard the draft and load the row.
pub fn panel<E: Editable>(editable: &E, conflict: &MergeConflict<E::Row>, rich: &ConflictRich) -> Markup {
    let noun = editable.noun();
    let version = conflict.current.lock_version();
    html! {
        div.conflict #conflict role="alert" {
            strong { "Someone else saved this " (noun) " (version " (version) ") while you were editing." }
            @if conflict.fields.is_empty() {
                p { "It kept changing while yours was being saved. Save again." }
            } @else {
                p { "Their other changes are kept with yours. You both changed these fields: choose which to keep." }
            }
            form #conflict-form phx-submit="resolve" {
                @if !conflict.fields.is_empty() {
                    table.conflict-fields {
                        thead { tr { th { "Field" } th { "Yours" } th { "Theirs" } } }
                        tbody {
                            @for (name, field) in &conflict.fields {
                                @let (mine_rich, theirs_rich) = rich.get(name).map_or((None, None), |(m, t)| (m.as_ref(), t.as_ref()));
                                @let input = format!("resolve[{name}]");
                                tr data-field=(name) {
                                    th scope="row" { (editable.field_label(name)) }
                                    td.mine {
                                        label.inline {
                                            input type="radio" name=(input) value="mine" required;
                                            "Keep yours"
                                        }
                                        div.value { (editable.show_value(name, &field.mine, mine_rich)) }
                                    }
                                    td.theirs {
                                        label.inline {
                                            input type="radio" name=(input) value="theirs" required;
                                            "Take theirs"
                                        }
                                        div.value { (editable.show_value(name, &field.theirs, theirs_rich)) }
                                    }
                                }
                            }
                        }
                    }
                }
                div.actions {
                    button.small type="submit" {
                        @if conflict.fields.is_empty() { "Save again" } @else { "Save with these choices" }
                    }
                    button.small.secondary type="button" phx-click="discard" { "Discard mine, load theirs" }
                }
            }
        }
    }
}

/// A value as text in the conflict panel: a list as its items, nothing as "(empty)"; always escaped.
pub fn value_markup(value: &Value) -> Markup {
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    html! {
        @if text.trim().is_empty() { span.muted { "(empty)" } } @else { (text) }
    }
}
