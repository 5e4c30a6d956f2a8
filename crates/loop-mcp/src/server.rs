//! The MCP protocol side, and the only module that knows `rmcp` (pinned: its releases break
//! often, and this is the one place they touch). Tools, prompts and resources map onto
//! [`crate::tools`] and the Loop API.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, JsonObject, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::tools::{self, Context, ToolSet};

/// Where a request's [`Context`] comes from: one for the whole stdio connection, or one per
/// HTTP request, made from its headers (whose token it acts with).
#[derive(Clone)]
enum Contexts {
    Connection(Arc<Context>),
    PerRequest(Arc<dyn Fn(&http::request::Parts) -> Context + Send + Sync>),
}

/// The MCP server. Cheap to clone (the HTTP transport makes one per request).
#[derive(Clone)]
pub struct LoopMcp {
    set: ToolSet,
    contexts: Contexts,
}

impl LoopMcp {
    fn context(&self, rc: &RequestContext<RoleServer>) -> Result<Arc<Context>, ErrorData> {
        match &self.contexts {
            Contexts::Connection(ctx) => Ok(ctx.clone()),
            Contexts::PerRequest(make) => match rc.extensions.get::<http::request::Parts>() {
                Some(parts) => Ok(Arc::new(make(parts))),
                None => Err(ErrorData::internal_error("no HTTP request to act for", None)),
            },
        }
    }
}

/// Serves MCP over stdin and stdout until the client hangs up. Logs must go to stderr.
pub async fn serve_stdio(ctx: Context, set: ToolSet) -> Result<(), String> {
    let server = LoopMcp { set, contexts: Contexts::Connection(Arc::new(ctx)) };
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| e.to_string())?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The Streamable HTTP endpoint (stateless: no sessions, POST only), as a tower service to
/// mount at `/mcp` behind the API's authentication. `context` makes each request's context
/// from its HTTP head (the caller's `Authorization`, `X-Loop-Agent`). Hosts are not checked
/// here: the endpoint is behind a Bearer key, and `loop serve` may be reached by any name.
pub fn http_service(
    set: ToolSet,
    context: impl Fn(&http::request::Parts) -> Context + Send + Sync + 'static,
) -> StreamableHttpService<LoopMcp, NeverSessionManager> {
    let server = LoopMcp { set, contexts: Contexts::PerRequest(Arc::new(context)) };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config)
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

fn tool(t: tools::Tool) -> rmcp::model::Tool {
    rmcp::model::Tool::new(t.name, t.description, Arc::new(object(t.input_schema))).with_annotations(
        ToolAnnotations::new()
            .read_only(t.read_only)
            .destructive(t.destructive)
            .idempotent(t.idempotent)
            .open_world(false),
    )
}

impl ServerHandler for LoopMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_prompts().enable_resources().build())
            .with_server_info(Implementation::new("loop-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(crate::PRIME)
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::list(self.set).into_iter().find(|t| t.name == name).map(tool)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _rc: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list(self.set).into_iter().map(tool).collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        rc: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = self.context(&rc)?;
        let out = tools::call(&ctx, self.set, &request.name, request.arguments.unwrap_or_default()).await;
        let content = vec![ContentBlock::text(out.text)];
        let mut result = if out.is_error { CallToolResult::error(content) } else { CallToolResult::success(content) };
        result.structured_content = out.structured;
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let ctx = self.context(&rc)?;
        let prompts = crate::catalog::prompts(&ctx).await.map_err(|e| ErrorData::internal_error(e, None))?;
        let argument = || {
            PromptArgument::new("issue")
                .with_description("The issue (id or number) to render it for")
                .with_required(true)
        };
        Ok(ListPromptsResult::with_all_items(
            prompts.into_iter().map(|p| Prompt::new(p.name, Some(p.description), Some(vec![argument()]))).collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        rc: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let ctx = self.context(&rc)?;
        let issue = request.arguments.as_ref().and_then(|a| a.get("issue")).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let issue = issue
            .ok_or_else(|| ErrorData::invalid_params("argument issue (an issue id or number) is required", None))?;
        let text = crate::catalog::render(&ctx, &request.name, &issue)
            .await
            .map_err(|e| ErrorData::invalid_params(e, None))?;
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("{} for issue {issue}", request.name))
            .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        rc: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let ctx = self.context(&rc)?;
        let issues = crate::catalog::recent_issues(&ctx).await.map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(ListResourcesResult::with_all_items(
            issues
                .into_iter()
                .map(|(number, title)| {
                    Resource::new(format!("loop://issues/{number}"), format!("#{number} {title}"))
                        .with_mime_type("application/json")
                })
                .collect(),
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _rc: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("loop://issues/{number}", "issue")
                .with_description("An issue with its relations and labels, by number")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        rc: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let ctx = self.context(&rc)?;
        let number = request
            .uri
            .strip_prefix("loop://issues/")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ErrorData::resource_not_found(format!("no such resource: {}", request.uri), None))?;
        let issue = crate::catalog::issue(&ctx, number).await.map_err(|e| ErrorData::resource_not_found(e, None))?;
        let text = serde_json::to_string_pretty(&issue).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri).with_mime_type("application/json")])
            .into())
    }
}
