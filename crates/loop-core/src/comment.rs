//! Comments, threaded to any depth.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::actor::ActorKind;
use crate::issue::string_enum;
use crate::text::{RequiredBody, Title};
use crate::{Actor, Timestamp};

string_enum!(AuthorType { Human = "human", Agent = "agent" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub id: String,
    pub body: String,
    pub issue_id: String,
    pub author_name: String,
    pub author_type: AuthorType,
    pub parent_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A comment with its replies, recursively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThreadedComment {
    #[serde(flatten)]
    pub comment: Comment,
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub replies: Vec<ThreadedComment>,
}

/// The body of `POST /api/issues/:id/comments`. `content` is accepted for `body` (the polling
/// guide uses it); `authorType` and `authorName` default from the caller.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewComment {
    #[serde(alias = "content")]
    #[cfg_attr(feature = "openapi", schema(value_type = RequiredBody))]
    pub body: RequiredBody,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Title>))]
    pub author_name: Option<Title>,
    #[serde(default)]
    pub author_type: Option<AuthorType>,
    #[serde(default)]
    pub parent_id: Option<String>,
}

impl NewComment {
    /// Who wrote it: the given values, else the caller. Bearer callers are agents unless they
    /// say otherwise.
    pub fn author(&self, actor: &Actor) -> (String, AuthorType) {
        let author_type = self.author_type.unwrap_or(AuthorType::Agent);
        (author_name(self.author_name.as_deref(), actor, author_type), author_type)
    }
}

/// The name an author goes by: the one given, else the actor's (an agent, a named token),
/// else (the master key acting for someone unnamed) the author type itself, `agent` or `human`.
pub fn author_name(given: Option<&str>, actor: &Actor, author_type: AuthorType) -> String {
    match (given, actor.kind) {
        (Some(n), _) => n.to_owned(),
        (None, ActorKind::Human) if *actor == Actor::human() => author_type.as_str().to_owned(),
        (None, _) => actor.name.clone(),
    }
}

/// How deep replies nest when shown. Deeper replies are listed at the last level, oldest
/// first: rendering and serialising a tree thousands deep would overflow the stack.
pub const MAX_DEPTH: usize = 32;

/// Builds the reply tree from a flat list ordered by creation time. Replies whose parent is
/// missing from the list are shown at the top level rather than lost.
pub fn thread(comments: Vec<Comment>) -> Vec<ThreadedComment> {
    let ids: std::collections::HashSet<String> = comments.iter().map(|c| c.id.clone()).collect();
    let mut children: HashMap<Option<String>, Vec<Comment>> = HashMap::new();
    for c in comments {
        let key = c.parent_id.clone().filter(|p| ids.contains(p));
        children.entry(key).or_default().push(c);
    }
    build(None, 1, &mut children)
}

/// The replies to `key` at `depth` (1 for top-level comments).
fn build(
    key: Option<String>,
    depth: usize,
    children: &mut HashMap<Option<String>, Vec<Comment>>,
) -> Vec<ThreadedComment> {
    let list = children.remove(&key).unwrap_or_default();
    list.into_iter()
        .map(|c| {
            let replies = if depth + 1 < MAX_DEPTH {
                build(Some(c.id.clone()), depth + 1, children)
            } else {
                descendants(&c.id, children)
                    .into_iter()
                    .map(|d| ThreadedComment { comment: d, replies: vec![] })
                    .collect()
            };
            ThreadedComment { comment: c, replies }
        })
        .collect()
}

/// Every reply below `id`, however deep, oldest first; found without recursion.
fn descendants(id: &str, children: &mut HashMap<Option<String>, Vec<Comment>>) -> Vec<Comment> {
    let mut found = Vec::new();
    let mut pending = vec![id.to_owned()];
    while let Some(parent) = pending.pop() {
        for c in children.remove(&Some(parent)).unwrap_or_default() {
            pending.push(c.id.clone());
            found.push(c);
        }
    }
    found.sort_by_key(|c| c.created_at);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, parent: Option<&str>) -> Comment {
        Comment {
            id: id.into(),
            body: id.into(),
            issue_id: "i".into(),
            author_name: "a".into(),
            author_type: AuthorType::Agent,
            parent_id: parent.map(Into::into),
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn replies_nest_at_most_max_depth_deep_and_none_is_lost() {
        let n = 5_000;
        let chain: Vec<Comment> = (0..n)
            .map(|i| Comment {
                created_at: Timestamp::from_millis(i as i64),
                ..c(&i.to_string(), (i > 0).then(|| (i - 1).to_string()).as_deref())
            })
            .collect();
        let t = thread(chain);
        let (mut level, mut depth) = (&t, 1);
        while let [only] = level.as_slice() {
            if only.replies.is_empty() {
                break;
            }
            level = &only.replies;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(level.len(), n - (MAX_DEPTH - 1), "the rest, flat at the last level");
        assert_eq!(level.last().unwrap().comment.id, (n - 1).to_string(), "oldest first");
        assert!(serde_json::to_string(&t).is_ok());
    }

    #[test]
    fn replies_to_replies_are_kept() {
        let t = thread(vec![c("1", None), c("2", Some("1")), c("3", Some("2")), c("4", None)]);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].replies[0].comment.id, "2");
        assert_eq!(t[0].replies[0].replies[0].comment.id, "3");
        assert_eq!(t[1].comment.id, "4");
    }
}
