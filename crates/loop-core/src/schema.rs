//! OpenAPI schemas for the validated number types, which derive cannot bound: each is a named
//! component with the range its parser enforces.

/// `bounded_schema!(Type, integer | number, MIN, MAX)`: `Type`'s schema, named after it.
macro_rules! bounded_schema {
    ($ty:ident, $kind:ident, $min:expr, $max:expr, $doc:expr) => {
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, Type};
                let kind = match stringify!($kind) {
                    "integer" => Type::Integer,
                    _ => Type::Number,
                };
                ObjectBuilder::new()
                    .schema_type(kind)
                    .minimum(Some($min))
                    .maximum(Some($max))
                    .description(Some($doc))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
        }
    };
}
