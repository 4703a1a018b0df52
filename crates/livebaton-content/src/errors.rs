//! Validation errors: every problem of a submission at once, by field.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Messages by field path (`title`, `name`, `fields_definition[2].key`, `data.published_on`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors {
    /// Field path → messages, in a stable order.
    pub fields: BTreeMap<String, Vec<String>>,
}

impl ValidationErrors {
    /// Records a message for `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.fields.entry(field.into()).or_default().push(message.into());
    }

    /// Whether nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The messages of one field.
    pub fn get(&self, field: &str) -> &[String] {
        self.fields.get(field).map_or(&[], Vec::as_slice)
    }

    /// `Ok(value)` if nothing was wrong, else these errors.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (field, messages) in &self.fields {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{field} {message}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
