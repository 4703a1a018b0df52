//! The conflict panel of a collaborative form: after a save over a row that moved, only the fields both sides changed,
//! each with "yours" and "theirs" side by side and a choice; the choices come back as the `resolve` event
//! (`resolve[<field>]` = `mine` or `theirs`). Every value is escaped or, for rich text, what the application's
//! [`Editable::conflict_values`] made safe.

use livebaton::editing::merge::{MergeConflict, Resolutions, Side};
use serde_json::Value;

use super::editable::{ConflictValues, Editable, VersionedRow};
use crate::live::Html;

/// The text value `name` of a decoded form (the last one if the name was repeated), or "".
pub(crate) fn form_text(form: &Value, name: &str) -> String {
    match form.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(values)) => values.last().and_then(|v| v.as_str()).unwrap_or("").to_owned(),
        _ => String::new(),
    }
}

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
/// ("Keep yours" / "Take theirs"), submitted as `resolve`; or discard the draft and load the row. Focusable and marked
/// `data-lb-focus`: after the failed save the client moves focus to it, where the eyes must go.
pub fn panel<E: Editable>(editable: &E, conflict: &MergeConflict<E::Row>, shown: &ConflictValues) -> Html {
    let noun = editable.noun();
    let version = conflict.current.lock_version();
    let mut html = format!(
        r#"<div class="conflict" id="conflict" role="alert" tabindex="-1" data-lb-focus><strong>Someone else saved this {noun} (version {version}) while you were editing.</strong>"#
    );
    if conflict.fields.is_empty() {
        html.push_str("<p>It kept changing while yours was being saved. Save again.</p>");
    } else {
        html.push_str(
            "<p>Their other changes are kept with yours. You both changed these fields: choose which to keep.</p>",
        );
    }
    html.push_str(r#"<form id="conflict-form" phx-submit="resolve">"#);
    if !conflict.fields.is_empty() {
        html.push_str(
            r#"<table class="conflict-fields"><thead><tr><th>Field</th><th>Yours</th><th>Theirs</th></tr></thead><tbody>"#,
        );
        for (name, field) in &conflict.fields {
            let (mine, theirs) = match shown.get(name) {
                Some((mine, theirs)) => (mine.clone(), theirs.clone()),
                None => (super::value_html(&field.mine), super::value_html(&field.theirs)),
            };
            let (name_attr, input) = (Html::escape(name), Html::escape(&format!("resolve[{name}]")));
            let label = Html::escape(&editable.field_label(name));
            html.push_str(&format!(
                r#"<tr data-field="{name_attr}"><th scope="row">{label}</th><td class="mine"><label class="inline"><input type="radio" name="{input}" value="mine" required>Keep yours</label><div class="value">{mine}</div></td><td class="theirs"><label class="inline"><input type="radio" name="{input}" value="theirs" required>Take theirs</label><div class="value">{theirs}</div></td></tr>"#
            ));
        }
        html.push_str("</tbody></table>");
    }
    let submit = if conflict.fields.is_empty() { "Save again" } else { "Save with these choices" };
    html.push_str(&format!(
        r#"<div class="actions"><button class="small" type="submit">{submit}</button><button class="small secondary" type="button" phx-click="discard">Discard mine, load theirs</button></div></form></div>"#
    ));
    Html::new(html)
}
