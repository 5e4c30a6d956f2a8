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
    /// For a block: the blocker counts as finished only once its pull request is merged,
    /// not when it is done. Sent only when true: a relation keeps the contract's shape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_merged: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

impl Relation {
    /// The same relation told from `issue_id`'s side: "B blocked_by A" seen from A reads
    /// "A blocks B", and `related` is symmetric. A `duplicate` keeps its direction (there is no
    /// word for the other side), so `issueId` still says which issue is the duplicate.
    pub fn seen_from(self, issue_id: &str) -> Relation {
        let inverse = match self.relation_type {
            RelationType::Blocks => RelationType::BlockedBy,
            RelationType::BlockedBy => RelationType::Blocks,
            RelationType::Related => RelationType::Related,
            RelationType::Duplicate => return self,
        };
        if self.issue_id == issue_id || self.related_issue_id != issue_id {
            return self;
        }
        Relation { relation_type: inverse, issue_id: self.related_issue_id, related_issue_id: self.issue_id, ..self }
    }
}

/// The body of `POST /api/issues/:id/relations`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRelation {
    #[serde(rename = "type")]
    pub relation_type: RelationType,
    pub related_issue_id: String,
    /// For `blocks` and `blocked_by`: the blocker counts as finished only once its pull
    /// request is merged, so the dependant starts on code that is on the base branch.
    /// [default: the waiting issue's project's `waitForMerge`]
    #[serde(default)]
    pub until_merged: Option<bool>,
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
    if input.until_merged == Some(true)
        && !matches!(input.relation_type, RelationType::Blocks | RelationType::BlockedBy)
    {
        return Err(Error::invalid(
            "untilMerged",
            "not_a_block",
            "applies to blocks and blocked_by only: only a blocker can be waited for",
        ));
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
    fn a_relation_reads_from_the_side_it_is_seen_from() {
        let r = |t: RelationType, a: &str, b: &str| Relation {
            id: "r".into(),
            relation_type: t,
            issue_id: a.into(),
            related_issue_id: b.into(),
            until_merged: false,
            created_at: crate::Timestamp::from_millis(0),
        };
        let seen = |rel: Relation, from: &str| {
            let s = rel.seen_from(from);
            (s.issue_id, s.relation_type, s.related_issue_id)
        };
        assert_eq!(seen(r(RelationType::BlockedBy, "b", "a"), "a"), ("a".into(), RelationType::Blocks, "b".into()));
        assert_eq!(seen(r(RelationType::Blocks, "a", "b"), "b"), ("b".into(), RelationType::BlockedBy, "a".into()));
        assert_eq!(seen(r(RelationType::Blocks, "a", "b"), "a"), ("a".into(), RelationType::Blocks, "b".into()));
        assert_eq!(seen(r(RelationType::Related, "a", "b"), "b"), ("b".into(), RelationType::Related, "a".into()));
        assert_eq!(seen(r(RelationType::Duplicate, "a", "b"), "b"), ("a".into(), RelationType::Duplicate, "b".into()));
    }

    #[test]
    fn blocks_and_blocked_by_are_one_edge() {
        assert_eq!(Edge::of(RelationType::Blocks, "a", "b"), Edge::of(RelationType::BlockedBy, "b", "a"));
        assert_eq!(Edge::of(RelationType::Related, "a", "b"), Edge::of(RelationType::Related, "b", "a"));
        assert_ne!(Edge::of(RelationType::Duplicate, "a", "b"), Edge::of(RelationType::Duplicate, "b", "a"));
    }
}
