//! Prompts for claims: which template applies (chosen inside the claim's transaction from a
//! cached list of active templates) and the hydrated text (rendered after the claim commits).
//! A failure after the claim never fails the request: the claim is returned with a null
//! prompt and the error is recorded on the session.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use loop_core::Store;
use loop_core::dispatch::Claim;
use loop_core::template::{ActiveTemplate, SelectionContext, TemplateChooser, select};
use loop_prompts::{PromptMeta, hydrate};

use crate::AppState;
use crate::token;

/// Active templates are re-read at most this often (writes through this server invalidate
/// at once; other nodes' writes show up within this time).
const TEMPLATE_TTL: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct TemplateCache {
    entry: RwLock<Option<(Instant, Arc<Vec<ActiveTemplate>>)>>,
}

impl TemplateCache {
    pub async fn get(&self, store: &dyn Store) -> loop_core::Result<Arc<Vec<ActiveTemplate>>> {
        if let Some((at, list)) = self.entry.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < TEMPLATE_TTL
        {
            return Ok(list.clone());
        }
        let list = Arc::new(store.active_templates().await?);
        *self.entry.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    pub fn invalidate(&self) {
        *self.entry.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Selection over a snapshot of the active templates.
pub struct Chooser(pub Arc<Vec<ActiveTemplate>>);

impl TemplateChooser for Chooser {
    fn choose(&self, ctx: &SelectionContext) -> Option<ActiveTemplate> {
        select(&self.0, ctx).cloned()
    }
}

pub async fn chooser(state: &AppState) -> Arc<Chooser> {
    Arc::new(match state.templates.get(state.store.as_ref()).await {
        Ok(list) => Chooser(list),
        Err(e) => {
            tracing::error!(error = %e, "cannot load templates; claiming without a prompt");
            Chooser(Arc::new(Vec::new()))
        }
    })
}

/// The prompt and its `meta` for a committed claim.
pub async fn for_claim(state: &AppState, claim: &mut Claim) -> (Option<String>, Option<PromptMeta>) {
    let active = match &claim.template {
        Some(t) => Some(t.clone()),
        // A retried request: find the version the claim was made with.
        None => match (&claim.session.template_version_id, state.templates.get(state.store.as_ref()).await) {
            (Some(v), Ok(list)) => list.iter().find(|t| &t.version.id == v).cloned(),
            _ => None,
        },
    };
    let Some(active) = active else { return (None, None) };
    let meta = PromptMeta {
        template_id: active.template.id.clone(),
        template_slug: active.template.slug.clone(),
        version_id: active.version.id.clone(),
        version_number: active.version.version,
        session_id: Some(claim.session.id.clone()),
        lease_expires_at: Some(claim.session.lease_expires_at.to_string()),
        review_url: "POST /api/prompt-reviews",
        model: state.config.model_hints.for_claim(&active.template.slug, claim.issue.issue_type).map(str::to_owned),
    };
    let token = token::for_session(&state.config.api_key, &claim.session.id);
    let inputs = match claim.inputs.take() {
        Some(inputs) => Ok(*inputs),
        None => state.store.prompt_inputs(&claim.issue.id).await,
    };
    let rendered = match inputs {
        Ok(inputs) => {
            let ctx = hydrate(&inputs, &meta, &state.config.public_url, &token);
            state.prompts.render(&active.version.id, &active.version.content, ctx)
        }
        Err(e) => Err(e.to_string()),
    };
    match rendered {
        Ok(prompt) => (Some(prompt), Some(meta)),
        Err(error) => {
            tracing::error!(session = %claim.session.id, version = %active.version.id, %error, "prompt rendering failed");
            if let Err(e) = state.store.record_prompt_error(&claim.session.id, &error).await {
                tracing::error!(error = %e, "cannot record the prompt error");
            }
            (None, Some(meta))
        }
    }
}
