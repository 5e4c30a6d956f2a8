//! Serde helpers for request bodies: the difference between absent and `null`, and fields
//! that must be JSON objects.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Deserialises a field that distinguishes "absent" (outer `None`, via `#[serde(default)]`)
/// from an explicit `null` (`Some(None)`); PATCH bodies need the difference.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An optional reference to another row (`projectId`, `parentId`, `goalId`). A blank string,
/// which some clients send for "none", is none.
pub fn reference<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|id| !id.trim().is_empty()))
}

/// `reference` in a PATCH body: absent keeps the reference, `null` or `""` clears it.
pub fn reference_patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    reference(d).map(Some)
}

/// Deserialises a PATCH field that may be left out but not set to `null` (the field is not
/// nullable, so `null` is an error naming it rather than "leave unchanged").
pub fn present<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// A count stored in a signed 64-bit column: 0 to `i64::MAX` (a larger one would wrap).
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Integer>::deserialize(d)? {
        Some(Integer(n)) if n < 0 => Err(serde::de::Error::custom(format!("must be 0 or more, got {n}"))),
        n => Ok(n.map(|Integer(n)| n as u64)),
    }
}

/// A number of 0 or more, as JSON may spell it (`3` or `3.0`).
pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Integer::deserialize(d)? {
        Integer(n) if n < 0 => Err(serde::de::Error::custom(format!("must be 0 or more, got {n}"))),
        Integer(n) => Ok(n as u64),
    }
}

/// An integer as JSON may spell it: `3` or `3.0` (JSON Schema counts both as integers, and
/// JavaScript clients cannot tell them apart). A fraction, or a number beyond 64 bits, is
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integer(pub i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Number::deserialize(d)? {
            n if n.is_i64() => Ok(Integer(n.as_i64().unwrap_or_default())),
            n if n.is_u64() => Err(D::Error::custom(format!("must be at most {}, got {n}", i64::MAX))),
            n => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Integer(x as i64)),
                _ => Err(D::Error::custom(format!("must be an integer, got {n}"))),
            },
        }
    }
}

/// `TryFrom<Integer>` for types that parse an `i64`, so that they read `3.0` as `3`.
macro_rules! from_integer {
    ($($ty:ty),*) => {$(
        impl TryFrom<$crate::input::Integer> for $ty {
            type Error = String;
            fn try_from(n: $crate::input::Integer) -> Result<Self, String> {
                Self::try_from(n.0)
            }
        }
    )*};
}
pub(crate) use from_integer;

/// An amount (a cost): a number of 0 or more.
pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(x) if x < 0.0 => Err(serde::de::Error::custom("must be 0 or more")),
        x => Ok(x),
    }
}

/// A struct-typed field that must be a JSON object. (serde also accepts a JSON array for a
/// struct, filling fields by position; a body like `"hypothesis": ["x", 0.5]` is a mistake.)
pub fn object<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    let map = Map::<String, Value>::deserialize(d)?;
    from_object(map)
}

/// Deserialises from an object, keeping the inner path in the error as `@<path>: <message>`
/// so the caller can name the nested field (see `NESTED_PATH_MARK`).
fn from_object<T: DeserializeOwned, E: serde::de::Error>(map: Map<String, Value>) -> Result<T, E> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        E::custom(format!("{NESTED_PATH_MARK}{path}: {}", e.into_inner()))
    })
}

/// Marks an error message whose leading path belongs under the field that failed.
pub const NESTED_PATH_MARK: &str = "@";

/// [`object`] for an optional field.
pub fn optional_object<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    object(d).map(Some)
}

/// [`object`] for an optional field that may also be `null` (= absent).
pub fn object_or_null<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    match Option::<Map<String, Value>>::deserialize(d)? {
        None => Ok(None),
        Some(map) => from_object(map).map(Some),
    }
}

/// [`object`] for a nullable PATCH field.
pub fn nullable_object<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    match Option::<Map<String, Value>>::deserialize(d)? {
        None => Ok(Some(None)),
        Some(map) => {
            serde_json::from_value(Value::Object(map)).map(|t| Some(Some(t))).map_err(serde::de::Error::custom)
        }
    }
}
