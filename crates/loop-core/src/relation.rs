//! Relations between issues, and what makes two of them the same.

use serde::{Deserialize, Serialize};

use crate::issue::string_enum;
use crate::{Error, Result, Timestamp};

string_enum!(
    /// `blocks` and `blocked_by` are the same edge seen from either end.
    RelationType { Blocks = "blocks", BlockedBy = "blocked_by", Related = "related", Duplicate = "duplicate" }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    pub id: String,
    #[serde(rename = "type")]
    pub relation_type: RelationType,
    /// The subject: `{issueId} {type} {relatedIssueId}`, e.g. "A blocks B".
    pub issue_id: String,
    pub related_issue_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The body of `POST /api/issues/:id/relations`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRelation {
    #[serde(rename = "type")]
    pub relation_type: RelationType,
    pub related_issue_id: String,
}

/// The direction-free identity of a relation: two relations with the same edge are duplicates.
/// `A blocks B` and `B blocked_by A` are one `Block { blocker: A, blocked: B }`; `related` is
/// symmetric; `duplicate` keeps its direction ("A duplicates B").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edge {
    pub kind: EdgeKind,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    Block,
    Related,
    Duplicate,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Block => "block",
            EdgeKind::Related => "related",
            EdgeKind::Duplicate => "duplicate",
        }
    }
}

impl Edge {
    pub fn of(relation_type: RelationType, issue_id: &str, related_issue_id: &str) -> Self {
        let (a, b) = (issue_id.to_owned(), related_issue_id.to_owned());
        match relation_type {
            RelationType::Blocks => Edge { kind: EdgeKind::Block, from: a, to: b },
            RelationType::BlockedBy => Edge { kind: EdgeKind::Block, from: b, to: a },
            RelationType::Related if a <= b => Edge { kind: EdgeKind::Related, from: a, to: b },
            RelationType::Related => Edge { kind: EdgeKind::Related, from: b, to: a },
            RelationType::Duplicate => Edge { kind: EdgeKind::Duplicate, from: a, to: b },
        }
    }
}

/// Rules checked before a relation is stored.
pub fn check_new_relation(issue_id: &str, input: &NewRelation, related_exists: bool) -> Result<Edge> {
    if input.related_issue_id == issue_id {
        return Err(Error::invalid("relatedIssueId", "self_relation", "an issue cannot be related to itself"));
    }
    if !related_exists {
        return Err(Error::invalid(
            "relatedIssueId",
            "related_issue_not_found",
            format!("related issue {} not found", input.related_issue_id),
        ));
    }
    Ok(Edge::of(input.relation_type, issue_id, &input.related_issue_id))
}

/// The error for a new block `edge` between `issue` and `related` that would close a loop:
/// its blocker already waits for the issue it would block.
pub fn blocking_loop(edge: &Edge, issue: &crate::issue::Issue, related: &crate::issue::Issue) -> Error {
    let number = |id: &str| if id == issue.id { issue.number } else { related.number };
    let (blocker, blocked) = (number(&edge.from), number(&edge.to));
    Error::invalid(
        "relatedIssueId",
        "blocking_cycle",
        format!(
            "#{blocker} already waits for #{blocked} (directly or through other issues): with this block each would wait for the other for ever"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_blocked_by_are_one_edge() {
        assert_eq!(Edge::of(RelationType::Blocks, "a", "b"), Edge::of(RelationType::BlockedBy, "b", "a"));
        assert_eq!(Edge::of(RelationType::Related, "a", "b"), Edge::of(RelationType::Related, "b", "a"));
        assert_ne!(Edge::of(RelationType::Duplicate, "a", "b"), Edge::of(RelationType::Duplicate, "b", "a"));
    }
}
