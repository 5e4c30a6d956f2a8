//! The OpenAPI document, generated from the handlers' annotations so it describes what the
//! server really does.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Loop API", description = "Issues, dispatch and prompts for autonomous agents."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "issues"), (name = "relations"), (name = "comments"), (name = "projects"),
        (name = "goals"), (name = "labels"), (name = "templates"), (name = "dispatch"),
        (name = "sessions"), (name = "signals"), (name = "system"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("loop_<64 hex>").build(),
            ),
        );
    }
}
