//! What a customer's feedback is about: its sentiment and its themes.
//!
//! This module owns the theme vocabulary and the pure rules that classify feedback, used both
//! when a `feedback.given` event is decided and when a version 1 event, which had neither field,
//! is read ([`upcast`](crate::upcast)). The rules must therefore never change meaning for stored
//! events: a new rule needs a new schema version of `feedback.given`.
//!
//! - Sentiment follows from CSAT alone: 4 and 5 are positive, 3 neutral, 1 and 2 negative.
//! - Themes come from the caller (survey checkboxes) and from keywords in the comment. The comment
//!   is lower-cased and split into words, a word being a run of letters and digits; a keyword
//!   matches a word that begins with it, and a two-word keyword matches two consecutive words
//!   that begin with its two words. There is no negation: "not rude" still names
//!   `agent_conduct`. Feedback without a comment has only the themes the caller gave.

use std::collections::BTreeSet;

use crate::types::named_enum;

named_enum!(
    /// How the customer felt about the resolution, from their CSAT score.
    Sentiment, "sentiment" {
        Positive = "positive",
        Neutral = "neutral",
        Negative = "negative",
    }
);

named_enum!(
    /// What a piece of feedback is about. Declared in name order, so that sorting themes sorts
    /// them by name.
    Theme, "themes" {
        AccountAccess = "account_access",
        AgentConduct = "agent_conduct",
        Billing = "billing",
        Communication = "communication",
        ProductQuality = "product_quality",
        ResolutionQuality = "resolution_quality",
        ResponseTime = "response_time",
    }
);

/// The keywords of each theme, as the module documentation describes their matching.
pub const KEYWORDS: &[(Theme, &[&str])] = &[
    (Theme::AccountAccess, &["login", "password", "lock", "account", "access"]),
    (
        Theme::AgentConduct,
        &["agent", "rude", "polite", "impolite", "friendly", "helpful", "unhelpful"],
    ),
    (Theme::Billing, &["bill", "charg", "invoice", "price", "pricing", "refund", "payment"]),
    (
        Theme::Communication,
        &["reply", "replied", "replies", "update", "updating", "inform", "communicat", "email"],
    ),
    (Theme::ProductQuality, &["bug", "crash", "broken", "defect", "quality"]),
    (
        Theme::ResolutionQuality,
        &["fix", "solved", "resolved", "unresolved", "workaround", "still broken"],
    ),
    (Theme::ResponseTime, &["slow", "wait", "delay", "hours", "days", "quick", "fast"]),
];

impl Sentiment {
    /// The sentiment of a CSAT score: 4 and 5 positive, 3 neutral, 1 and 2 negative. Scores
    /// outside 1 to 5 never reach an event; 0 counts as negative and above 5 as positive.
    pub fn from_csat(csat: u8) -> Sentiment {
        match csat {
            0..=2 => Sentiment::Negative,
            3 => Sentiment::Neutral,
            _ => Sentiment::Positive,
        }
    }
}

/// The themes a comment names by keyword, sorted by name, each once.
pub fn comment_themes(comment: &str) -> BTreeSet<Theme> {
    let lower = comment.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    KEYWORDS
        .iter()
        .filter(|(_, keywords)| keywords.iter().any(|keyword| names(&words, keyword)))
        .map(|(theme, _)| *theme)
        .collect()
}

/// Whether `keyword` (one or more words) matches consecutive `words`, each beginning with the
/// keyword's word at the same place.
fn names(words: &[&str], keyword: &str) -> bool {
    let stems: Vec<&str> = keyword.split(' ').collect();
    words.windows(stems.len()).any(|run| run.iter().zip(&stems).all(|(w, s)| w.starts_with(s)))
}

/// The themes of a `feedback.given` event: those the caller gave together with those the
/// comment names, sorted by name, each once.
pub fn feedback_themes(given: &[Theme], comment: Option<&str>) -> Vec<Theme> {
    let mut themes = comment.map(comment_themes).unwrap_or_default();
    themes.extend(given.iter().copied());
    themes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_are_declared_in_name_order() {
        let names: Vec<&str> = Theme::ALL.iter().map(Theme::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();

        assert_eq!(names, sorted);
        assert_eq!(KEYWORDS.iter().map(|(t, _)| *t).collect::<Vec<_>>(), Theme::ALL);
    }

    #[test]
    fn sentiment_follows_csat() {
        let table = [
            (1, Sentiment::Negative),
            (2, Sentiment::Negative),
            (3, Sentiment::Neutral),
            (4, Sentiment::Positive),
            (5, Sentiment::Positive),
        ];

        for (csat, expected) in table {
            assert_eq!(Sentiment::from_csat(csat), expected, "csat {csat}");
        }
    }

    #[test]
    fn keywords_match_words_that_begin_with_them_whatever_the_case() {
        use Theme::*;
        let table: &[(&str, &[Theme])] = &[
            ("", &[]),
            ("Thanks!", &[]),
            ("I was CHARGED twice", &[Billing]),
            ("Waited for days, the agent was rude.", &[AgentConduct, ResponseTime]),
            ("It is still broken", &[ProductQuality, ResolutionQuality]),
            ("still, nothing was broken", &[ProductQuality]),
            ("Locked out after the password reset; e-mail never came", &[AccountAccess]),
            ("No one replied to my emails", &[Communication]),
            // A keyword matches the start of a word only.
            ("prefix bugs debug", &[ProductQuality]),
            ("debug unfixed", &[]),
        ];

        for (comment, expected) in table {
            let found: Vec<Theme> = comment_themes(comment).into_iter().collect();
            assert_eq!(found, *expected, "{comment:?}");
        }
    }

    #[test]
    fn given_and_derived_themes_are_merged_sorted_and_once_each() {
        let given = [Theme::ResponseTime, Theme::Billing, Theme::ResponseTime];

        let themes = feedback_themes(&given, Some("Refund took hours"));

        assert_eq!(themes, vec![Theme::Billing, Theme::ResponseTime]);
        assert_eq!(feedback_themes(&[], None), vec![]);
        assert_eq!(feedback_themes(&[Theme::Communication], None), vec![Theme::Communication]);
    }

    #[test]
    fn an_unknown_theme_is_refused_naming_the_field_and_value() {
        let err = Theme::parse("speed").unwrap_err();

        assert_eq!(
            err.to_string(),
            "invalid themes: \"speed\" is not one of account_access, agent_conduct, billing, \
             communication, product_quality, resolution_quality, response_time"
        );
    }
}
