//! Prompt reviews drive the improvement loop: each review moves its version's score, and a
//! version that scores poorly (or has gathered many reviews) gets an issue asking an agent to
//! draft a better one.

use std::collections::BTreeSet;

use crate::comment::AuthorType;
use crate::issue::NewIssue;
use crate::template::{PromptReview, PromptTemplate, PromptVersion};

/// EWMA smoothing: a new review weighs 30%.
pub const ALPHA: f64 = 0.3;
/// A score is only judged after this many reviews.
pub const MIN_REVIEWS: u64 = 3;

/// The mean of a review's three scores.
pub fn composite(r: &PromptReview) -> f64 {
    (r.clarity.value() + r.completeness.value() + r.relevance.value()) as f64 / 3.0
}

/// The version's score after one more review: an EWMA (α 0.3) of review composites. A human
/// review counts double: it is applied as two consecutive steps (weight 1 − 0.7² = 51%).
pub fn next_score(old: Option<f64>, r: &PromptReview) -> f64 {
    let c = composite(r);
    let step = |s: f64| ALPHA * c + (1.0 - ALPHA) * s;
    match (old, r.author_type) {
        (None, _) => c,
        (Some(s), AuthorType::Agent) => step(s),
        (Some(s), AuthorType::Human) => step(step(s)),
    }
}

/// Whether a version with this score and this many reviews (since it became active or was last
/// the subject of an improvement request) should get an improvement issue: under the settings'
/// score threshold after `MIN_REVIEWS`, or at their review count whatever the score.
pub fn needs_improvement(score: f64, reviews_since: u64, settings: &crate::settings::Settings) -> bool {
    (reviews_since >= MIN_REVIEWS && score < settings.score_threshold()) || reviews_since >= settings.review_count()
}

pub fn title(slug: &str, score: f64, reviews_since: u64, version: i64) -> String {
    format!("Improve prompt template: {slug} (avg review {score:.1}/5, {reviews_since} reviews since v{version})")
}

/// The labels an improvement issue carries (name, colour).
pub const LABELS: [(&str, &str); 2] = [("prompt-improvement", "#f59e0b"), ("meta", "#6b7280")];

/// The issue asking an agent to improve `version` of `template`: its score, and the averages
/// and recurring feedback of the reviews since it became active. `label_ids` are the ids of
/// [`LABELS`].
pub fn request(
    template: &PromptTemplate,
    version: &PromptVersion,
    score: f64,
    reviews: &[(PromptReview, Option<i64>)],
    label_ids: Vec<String>,
) -> crate::Result<NewIssue> {
    let n = reviews.len() as f64;
    let avg = |f: fn(&PromptReview) -> u8| reviews.iter().map(|(r, _)| f(r) as f64).sum::<f64>() / n;
    let feedback: Vec<&str> = reviews.iter().filter_map(|(r, _)| r.feedback.as_deref()).collect();
    let themes = themes(&feedback, 8);
    let mut description = format!(
        "The **{}** prompt template (v{}) has received {} reviews since it became active, with a score of {:.2}/5 \
         (EWMA of the mean of clarity, completeness and relevance; human reviews count double).\n\n\
         - Clarity: {:.2}/5\n- Completeness: {:.2}/5\n- Relevance: {:.2}/5\n- Dispatches: {}\n\n",
        template.slug,
        version.version,
        reviews.len(),
        score,
        avg(|r| r.clarity.value()),
        avg(|r| r.completeness.value()),
        avg(|r| r.relevance.value()),
        version.usage_count,
    );
    if themes.is_empty() {
        description.push_str("No recurring feedback themes yet.\n\n");
    } else {
        description.push_str("Common feedback themes:\n");
        for (phrase, count) in &themes {
            description.push_str(&format!("- \"{phrase}\" (mentioned in {count} reviews)\n"));
        }
        description.push('\n');
    }
    description.push_str("Review the full feedback and propose an improved version as a draft.\n");
    serde_json::from_value(serde_json::json!({
        "title": title(&template.slug, score, reviews.len() as u64, version.version),
        "description": description,
        "type": "task",
        "status": "todo",
        "priority": 3,
        "labelIds": label_ids,
    }))
    .map_err(crate::Error::internal)
}

/// Recurring phrases across feedback, most frequent first: runs of two or more words (ignoring
/// filler words) that at least two reviews contain, each counted once per review. Overlapping
/// runs found in the same reviews are merged into the longer phrase. Pure and deterministic, so
/// the same reviews always give the same themes.
pub fn themes(feedback: &[&str], max: usize) -> Vec<(String, usize)> {
    let reviews: Vec<Vec<String>> = feedback.iter().map(|t| words(t)).collect();
    let count = |phrase: &[String]| reviews.iter().filter(|w| w.windows(phrase.len()).any(|x| x == phrase)).count();

    let mut grams: BTreeSet<Vec<String>> = BTreeSet::new();
    for w in &reviews {
        for n in 2..=3 {
            grams.extend(w.windows(n).map(<[String]>::to_vec));
        }
    }
    let mut found: Vec<(Vec<String>, usize)> =
        grams.into_iter().map(|g| (g.clone(), count(&g))).filter(|(_, c)| *c >= 2).collect();

    // Merge runs that overlap (the end of one is the start of the other) when the merged phrase
    // occurs in as many reviews: "branch naming convention" + "naming convention prs".
    loop {
        let mut merged = None;
        'search: for (i, (a, ca)) in found.iter().enumerate() {
            for (j, (b, cb)) in found.iter().enumerate() {
                if i == j || ca != cb {
                    continue;
                }
                for k in (1..a.len().min(b.len())).rev() {
                    if a[a.len() - k..] == b[..k] {
                        let joined: Vec<String> = a.iter().chain(&b[k..]).cloned().collect();
                        if count(&joined) == *ca {
                            merged = Some((i, j, joined, *ca));
                            break 'search;
                        }
                    }
                }
            }
        }
        let Some((i, j, joined, c)) = merged else { break };
        found = found.into_iter().enumerate().filter(|(x, _)| *x != i && *x != j).map(|(_, f)| f).collect();
        if !found.iter().any(|(g, _)| *g == joined) {
            found.push((joined, c));
        }
    }

    // Longer phrases first among equals; a run inside a longer phrase with the same count adds
    // nothing.
    found.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.len().cmp(&a.0.len())).then(a.0.cmp(&b.0)));
    let mut out: Vec<(Vec<String>, usize)> = Vec::new();
    for (g, c) in found {
        if out.iter().any(|(h, d)| *d == c && h.windows(g.len()).any(|x| x == g.as_slice())) {
            continue;
        }
        out.push((g, c));
        if out.len() == max {
            break;
        }
    }
    out.into_iter().map(|(g, c)| (g.join(" "), c)).collect()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
        .map(|w| w.trim_matches(|c| c == '-' || c == '\'').to_lowercase())
        .filter(|w| w.len() > 1 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "to", "of", "in", "on", "for", "with", "is", "it", "this", "that", "was",
    "be", "are", "as", "at", "by", "from", "i", "we", "you", "me", "my", "our", "so", "too", "very", "not", "no",
    "should", "would", "could", "there", "what", "when", "which", "about", "into", "than", "then", "also", "just",
    "more", "less", "some", "any", "all", "its", "it's", "were", "been", "being", "have", "has", "had", "do", "does",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn review(scores: (i64, i64, i64), author: AuthorType) -> PromptReview {
        PromptReview {
            id: "r".into(),
            version_id: "v".into(),
            issue_id: "i".into(),
            clarity: scores.0.try_into().unwrap(),
            completeness: scores.1.try_into().unwrap(),
            relevance: scores.2.try_into().unwrap(),
            feedback: None,
            author_type: author,
            author_name: None,
            session_id: None,
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn the_score_is_an_ewma_with_human_reviews_counting_double() {
        let s1 = next_score(None, &review((5, 5, 5), AuthorType::Agent));
        let s2 = next_score(Some(s1), &review((4, 4, 4), AuthorType::Agent));
        let s3 = next_score(Some(s2), &review((1, 1, 1), AuthorType::Agent));
        assert_eq!((s1, (s2 * 100.0).round() / 100.0, (s3 * 100.0).round() / 100.0), (5.0, 4.7, 3.59));
        let human = next_score(Some(5.0), &review((1, 1, 1), AuthorType::Human));
        assert!((human - (5.0 - 0.51 * 4.0)).abs() < 1e-9, "{human}");
    }

    #[test]
    fn improvement_is_needed_for_low_scores_or_many_reviews() {
        let seed = crate::settings::Settings::default();
        assert!(!needs_improvement(2.0, 2, &seed));
        assert!(needs_improvement(3.4, 3, &seed));
        assert!(!needs_improvement(4.5, 14, &seed));
        assert!(needs_improvement(4.5, 15, &seed));
        let strict: crate::settings::Settings = serde_json::from_value(serde_json::json!({
            "improvementScoreThreshold": 4.5, "improvementReviewCount": 5,
            "labels": {"autoGenerated": null, "needsHumanReview": null, "autoMerged": null}}))
        .unwrap();
        assert!(needs_improvement(4.4, 3, &strict) && needs_improvement(5.0, 5, &strict));
        assert_eq!(
            title("task-execution", 3.64, 23, 5),
            "Improve prompt template: task-execution (avg review 3.6/5, 23 reviews since v5)"
        );
    }

    #[test]
    fn themes_are_recurring_phrases_counted_per_review() {
        let fb = [
            "Missing: should specify branch naming convention",
            "The branch naming convention was unclear to me",
            "branch naming convention! And the API reference section is too long",
            "API reference section is too long",
        ];
        let t = themes(&fb, 5);
        assert_eq!(t[0], ("branch naming convention".to_string(), 3));
        assert_eq!(t[1], ("api reference section long".to_string(), 2));
        assert_eq!(t.len(), 2, "{t:?}");
        let same = ["Missing the branch naming convention for PRs"; 3];
        assert_eq!(themes(&same, 5), [("missing branch naming convention prs".to_string(), 3)]);
        assert!(t.iter().all(|(g, _)| g != "branch naming"), "a sub-phrase with the same count is dropped: {t:?}");
        assert_eq!(themes(&fb, 5), t, "deterministic");
    }
}
