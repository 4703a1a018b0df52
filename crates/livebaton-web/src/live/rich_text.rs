//! [`RichTextEditor`]: the markup of the bundled client's rich-text editor, a WYSIWYG field for HTML values.
//!
//! The editor is progressive enhancement over a `<textarea>`: the textarea holds the value (HTML) and is what a form
//! sends, live or not. Without JavaScript it is all a reader sees; with the client, the stylesheet (under `html.lb-js`)
//! hides it and shows a toolbar and an editable area instead, and the client keeps the two in step:
//!
//! ```html
//! <div class="lb-rich" data-lb-rich>
//!   <div class="lb-rich-toolbar" id="ID-toolbar" role="toolbar" aria-label="Formatting" aria-controls="ID-area"
//!        data-lb-ignore>
//!     <button type="button" class="lb-rich-button" data-lb-command="bold" aria-label="Bold" aria-pressed="false"
//!             aria-keyshortcuts="Control+B Meta+B" title="Bold (Ctrl+B)">B</button> …
//!   </div>
//!   <div class="lb-rich-area" id="ID-area" role="textbox" aria-multiline="true" aria-labelledby="LABEL-ID"
//!        tabindex="0" data-lb-ignore="contenteditable aria-readonly"></div>
//!   <textarea class="lb-rich-source" id="ID" name="NAME">escaped HTML</textarea>
//! </div>
//! ```
//!
//! - `data-lb-ignore` tells the morph that the element's children (and the attributes it names) are the client's:
//!   the area's content is rebuilt by the client from the textarea's value, always through its allow-list, so the
//!   server renders the area empty and never puts unsanitised HTML in it.
//! - The toolbar is one Tab stop (arrow keys move inside it); its buttons have names, and the toggles `aria-pressed`.
//!   The client disables them, and makes the area read-only, while the textarea is disabled or read-only (a
//!   spectator's disabled fieldset does that), so the server decides who may edit exactly as for any other input.
//! - The area is named by the field's label (`aria-labelledby`; the label's `for` names the textarea, which works
//!   without JavaScript; the client sends a click on the label to the area) and described by the hints and errors.
//! - Nothing here sanitises: what the client sends is cleaned for display, but the server must sanitise the value
//!   it stores and shows (livebaton-content's `rich_text` does), like any other form value.

use super::Html;

/// The toolbar's buttons: the command the client runs, the accessible name, the visible text, the shortcut, and
/// whether it is a toggle (with `aria-pressed`). The link button asks for an address, so it is not a toggle. Each
/// name contains the visible text (WCAG 2.5.3, label in name: speech users say what they see); the lists' markers
/// (• and 1.) are drawn by the stylesheet, so that "1." is not text the name would have to contain.
const BUTTONS: [(&str, &str, &str, Option<&str>, bool); 8] = [
    ("bold", "Bold", "B", Some("B"), true),
    ("italic", "Italic", "I", Some("I"), true),
    ("link", "Link", "Link", Some("K"), false),
    ("h2", "H2 heading", "H2", None, true),
    ("h3", "H3 heading", "H3", None, true),
    ("ul", "Bulleted list", "List", None, true),
    ("ol", "Numbered list", "List", None, true),
    ("quote", "Quote", "“ Quote", None, true),
];

/// The markup of one rich-text field (see the module documentation for its contract). Build it with
/// [`RichTextEditor::new`], add what applies, and [`render`](Self::render) it next to the field's `<label>`.
#[derive(Clone, Debug)]
pub struct RichTextEditor<'a> {
    id: &'a str,
    name: &'a str,
    label_id: &'a str,
    value: &'a str,
    required: bool,
    invalid: bool,
    described_by: Option<&'a str>,
    toolbar_label: &'a str,
}

impl<'a> RichTextEditor<'a> {
    /// An editor whose textarea has `id` and `name` and holds `value` (HTML, escaped as text here), named by the
    /// element with id `label_id` (the field's `<label for=id>`, which needs that id too).
    pub fn new(id: &'a str, name: &'a str, label_id: &'a str, value: &'a str) -> Self {
        RichTextEditor {
            id,
            name,
            label_id,
            value,
            required: false,
            invalid: false,
            described_by: None,
            toolbar_label: "Formatting",
        }
    }

    /// A required field: `required` on the textarea (checked by browsers without JavaScript; a live form with
    /// `novalidate` checks on the server), `aria-required` on the area.
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The value was refused: `aria-invalid` on the area and the textarea.
    pub fn invalid(mut self, invalid: bool) -> Self {
        self.invalid = invalid;
        self
    }

    /// Space-separated ids of the hints and errors that describe the field (`aria-describedby`).
    pub fn described_by(mut self, ids: &'a str) -> Self {
        self.described_by = Some(ids).filter(|ids| !ids.trim().is_empty());
        self
    }

    /// The toolbar's accessible name (default "Formatting").
    pub fn toolbar_label(mut self, label: &'a str) -> Self {
        self.toolbar_label = label;
        self
    }

    /// The id of the editable area: the textarea's id with `-area`.
    pub fn area_id(&self) -> String {
        format!("{}-area", self.id)
    }

    /// The markup. Every value is escaped: ids and names as attributes, the HTML value as the textarea's text.
    pub fn render(&self) -> Html {
        let id = Html::escape(self.id);
        let area = Html::escape(&self.area_id());
        let mut aria = String::new();
        if let Some(ids) = self.described_by {
            aria.push_str(&format!(r#" aria-describedby="{}""#, Html::escape(ids)));
        }
        if self.invalid {
            aria.push_str(r#" aria-invalid="true""#);
        }
        let required = if self.required { " required" } else { "" };
        let area_required = if self.required { r#" aria-required="true""# } else { "" };
        Html(format!(
            concat!(
                r#"<div class="lb-rich" data-lb-rich>"#,
                r#"<div class="lb-rich-toolbar" id="{id}-toolbar" role="toolbar" aria-label="{toolbar_label}" "#,
                r#"aria-controls="{area}" data-lb-ignore>{buttons}</div>"#,
                r#"<div class="lb-rich-area" id="{area}" role="textbox" aria-multiline="true" "#,
                r#"aria-labelledby="{label}"{area_required}{aria} tabindex="0" "#,
                r#"data-lb-ignore="contenteditable aria-readonly"></div>"#,
                r#"<textarea class="lb-rich-source" id="{id}" name="{name}"{required}{aria}>{value}</textarea>"#,
                r#"</div>"#,
            ),
            id = id,
            toolbar_label = Html::escape(self.toolbar_label),
            area = area,
            buttons = buttons(),
            label = Html::escape(self.label_id),
            area_required = area_required,
            aria = aria,
            name = Html::escape(self.name),
            required = required,
            // A leading newline in a textarea is dropped by the HTML parser: one of our own keeps the value's.
            value = if self.value.starts_with('\n') {
                format!("\n{}", Html::escape(self.value))
            } else {
                Html::escape(self.value)
            },
        ))
    }
}

fn buttons() -> String {
    BUTTONS
        .iter()
        .map(|(command, label, text, key, toggle)| {
            let pressed = if *toggle { r#" aria-pressed="false""# } else { "" };
            let (shortcut, title) = match key {
                Some(key) => (
                    format!(r#" aria-keyshortcuts="Control+{key} Meta+{key}""#),
                    format!("{label} (Ctrl+{key})"),
                ),
                None => (String::new(), (*label).to_owned()),
            };
            format!(
                r#"<button type="button" class="lb-rich-button" data-lb-command="{command}" aria-label="{label}"{pressed}{shortcut} title="{title}"><span aria-hidden="true">{text}</span></button>"#
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute_of<'h>(html: &'h str, element_id: &str, attribute: &str) -> Option<&'h str> {
        let start = html.find(&format!(r#"id="{element_id}""#))?;
        let tag_start = html[..start].rfind('<')?;
        let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
        let at = tag.find(&format!(" {attribute}=\""))? + attribute.len() + 3;
        Some(&tag[at..at + tag[at..].find('"')?])
    }

    /// The area is named by the label and described by the hints, the toolbar controls the area, and the textarea
    /// keeps the form's name: the contract the client and assistive technology rely on.
    #[test]
    fn the_parts_are_labelled_and_wired_together() {
        let html = RichTextEditor::new("field-body", "data[body]", "field-body-label", "<p>Hi</p>")
            .required(true)
            .invalid(true)
            .described_by("field-body-hint field-body-error")
            .render()
            .into_string();
        assert!(html.starts_with(r#"<div class="lb-rich" data-lb-rich>"#), "{html}");
        assert_eq!(attribute_of(&html, "field-body-area", "role"), Some("textbox"));
        assert_eq!(attribute_of(&html, "field-body-area", "aria-multiline"), Some("true"));
        assert_eq!(attribute_of(&html, "field-body-area", "aria-labelledby"), Some("field-body-label"));
        assert_eq!(
            attribute_of(&html, "field-body-area", "aria-describedby"),
            Some("field-body-hint field-body-error")
        );
        assert_eq!(attribute_of(&html, "field-body-area", "aria-required"), Some("true"));
        assert_eq!(attribute_of(&html, "field-body-area", "aria-invalid"), Some("true"));
        assert_eq!(attribute_of(&html, "field-body-area", "data-lb-ignore"), Some("contenteditable aria-readonly"));
        assert_eq!(attribute_of(&html, "field-body-toolbar", "role"), Some("toolbar"));
        assert_eq!(attribute_of(&html, "field-body-toolbar", "aria-controls"), Some("field-body-area"));
        assert_eq!(attribute_of(&html, "field-body-toolbar", "aria-label"), Some("Formatting"));
        assert_eq!(attribute_of(&html, "field-body", "name"), Some("data[body]"));
        assert!(html.contains(r#"name="data[body]" required aria-describedby="field-body-hint field-body-error""#));
        // The area is empty: its content is the client's, built from the textarea through the allow-list.
        assert!(html.contains(r#"data-lb-ignore="contenteditable aria-readonly"></div>"#), "{html}");
        // Every button is a named, non-submitting button; the toggles say whether they are on.
        assert_eq!(html.matches(r#"<button type="button""#).count(), BUTTONS.len());
        assert!(html.contains(r#"data-lb-command="bold" aria-label="Bold" aria-pressed="false""#), "{html}");
        assert!(html.contains(r#"data-lb-command="link" aria-label="Link" aria-keyshortcuts"#), "{html}");
    }

    /// The value is text inside the textarea: markup in it can neither run nor close the textarea, and ids and names
    /// cannot leave their attributes.
    #[test]
    fn values_ids_and_names_are_escaped() {
        let value = r#"<p onclick="x">a</p></textarea><script>alert(1)</script>"#;
        let html = RichTextEditor::new(r#"x" onfocus="y"#, r#"n"><b>"#, "l'", value).render().into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("</textarea><script"), "{html}");
        assert!(html.contains("&lt;p onclick=&quot;x&quot;&gt;a&lt;/p&gt;&lt;/textarea&gt;&lt;script&gt;"), "{html}");
        assert!(!html.contains(r#"" onfocus="y"#), "{html}");
        assert!(html.contains(r#"id="x&quot; onfocus=&quot;y-area""#), "{html}");
        assert!(html.contains(r#"name="n&quot;&gt;&lt;b&gt;""#), "{html}");
        assert!(html.contains(r#"aria-labelledby="l&#39;""#), "{html}");
        assert_eq!(html.matches("</textarea>").count(), 1);
        // Optional parts stay out when not asked for.
        assert!(!html.contains("required") && !html.contains("aria-invalid") && !html.contains("aria-describedby"));
    }

    /// A value that starts with a newline keeps it (the parser drops the first newline of a textarea's text).
    #[test]
    fn a_leading_newline_survives_the_parser() {
        let html = RichTextEditor::new("a", "a", "l", "\n<p>x</p>").render().into_string();
        assert!(html.contains("\n\n&lt;p&gt;x&lt;/p&gt;</textarea>"), "{html}");
    }
}
