//! What saving an entity definition would break or delete, so the entity form asks before it saves: a new machine
//! name moves the entity's URLs (the old ones redirect), and a removed or retyped field that records hold values in
//! drops those values (a retyped one keeps those valid for the new type). Counts come from the store.

use livebaton_content::EntityInput;
use maud::{Markup, html};
use serde_json::Value;

use crate::storage::{Entity, Store, StoreError};

/// The consequences of saving `values` over `entity`, worth a confirmation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaChange {
    /// The old and the new machine name, when it changes.
    pub renamed: Option<(String, String)>,
    /// Removed fields that hold data: label and how many records have a value in it.
    pub removed: Vec<(String, i64)>,
    /// Fields whose type changes and that hold data: label, old and new type, and the count.
    pub retyped: Vec<(String, String, String, i64)>,
}

impl SchemaChange {
    /// Whether nothing needs confirming.
    pub fn is_empty(&self) -> bool {
        self.renamed.is_none() && self.removed.is_empty() && self.retyped.is_empty()
    }

    /// What saving `values` over `entity` would do, with counts from `store`.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot count.
    pub async fn of(store: &Store, entity: &Entity, values: &EntityInput) -> Result<Self, StoreError> {
        let mut change = SchemaChange::default();
        let name = values.name.as_deref().map(str::trim).unwrap_or_default();
        if !name.is_empty() && name != entity.name {
            change.renamed = Some((entity.name.clone(), name.to_owned()));
        }
        let text = |field: &Value, key: &str| field.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        for field in &entity.fields_definition {
            let now = values.fields_definition.iter().find(|new| text(new, "key") == field.key);
            let old_type = field.field_type.as_str().to_owned();
            match now {
                None => {
                    let count = store.count_records_with_value(entity.id, &field.key).await?;
                    if count > 0 {
                        change.removed.push((field.label.clone(), count));
                    }
                }
                Some(new) if text(new, "type") != old_type && !text(new, "type").is_empty() => {
                    let count = store.count_records_with_value(entity.id, &field.key).await?;
                    if count > 0 {
                        change.retyped.push((field.label.clone(), old_type, text(new, "type"), count));
                    }
                }
                Some(_) => {}
            }
        }
        Ok(change)
    }

    /// The confirmation panel: each consequence in a sentence, and the two choices.
    pub fn panel(&self) -> Markup {
        let records = |count: i64| if count == 1 { "1 record has".to_owned() } else { format!("{count} records have") };
        html! {
            div.notice.warn #schema-confirm role="alertdialog" aria-labelledby="schema-confirm-title" {
                p #schema-confirm-title { strong { "Saving this changes what exists:" } }
                ul {
                    @if let Some((old, new)) = &self.renamed {
                        li {
                            "The machine name changes from " code { (old) } " to " code { (new) } ": its pages move to "
                            code { "/admin/entities/" (new) "/…" } " and " code { "/e/" (new) "/…" }
                            " (links to the old name are redirected)."
                        }
                    }
                    @for (label, count) in &self.removed {
                        li { (records(*count)) " a value in " strong { (label) } ", which is removed: those values are deleted." }
                    }
                    @for (label, old, new, count) in &self.retyped {
                        li {
                            (records(*count)) " a value in " strong { (label) } ", which changes from " (old) " to " (new)
                            ": values that are not valid as " (new) " are deleted."
                        }
                    }
                }
                div.actions {
                    button.danger type="button" phx-click="save_confirmed" { "Save anyway" }
                    button type="button" phx-click="save_cancel" { "Keep editing" }
                }
            }
        }
    }
}
