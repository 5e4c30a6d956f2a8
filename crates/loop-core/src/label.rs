//! Labels: flat names with a colour.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::input::present;
use crate::text::Text;

/// Colours are free text (`#f59e0b`, `red`), 1–50 characters.
pub type Color = Text<1, 50>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: String,
    pub name: String,
    pub color: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<Timestamp>,
}

/// The short form of a label inside an issue detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelRef {
    pub id: String,
    pub name: String,
    pub color: String,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLabel {
    #[serde(deserialize_with = "trimmed")]
    #[cfg_attr(feature = "openapi", schema(value_type = Text<1, 100>))]
    pub name: Text<1, 100>,
    #[cfg_attr(feature = "openapi", schema(value_type = Color))]
    pub color: Color,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelPatch {
    #[serde(default, deserialize_with = "trimmed_present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<Text<1, 100>>))]
    pub name: Option<Text<1, 100>>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<Color>))]
    pub color: Option<Color>,
}

/// A label is found by its name (in template conditions, in the CLI), so the spaces around a
/// name are not part of it: `" bug "` is the label `bug`.
fn trimmed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Text<1, 100>, D::Error> {
    Text::new(crate::text::trim(&String::deserialize(d)?)).map_err(serde::de::Error::custom)
}

fn trimmed_present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Text<1, 100>>, D::Error> {
    trimmed(d).map(Some)
}

impl Label {
    pub fn apply_patch(&mut self, patch: LabelPatch) {
        if let Some(n) = patch.name {
            self.name = n.to_string();
        }
        if let Some(c) = patch.color {
            self.color = c.to_string();
        }
    }
}

impl LabelPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.color.is_none()
    }
}
