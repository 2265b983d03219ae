//! A question often comes after a sentence that only says why it is asked: "We're
//! putting together the board deck. How much revenue …?", "Quick sanity check before the
//! review: how many orders …". Such a preamble is not part of the query: its words are
//! not read, except the stored values it names ("We're reviewing the Lyon site. Which of
//! its sensors …?": the sensors of Lyon).

use super::*;

/// Words a sentence that asks or requests starts with.
const ASKING_WORDS: &[&str] = &[
    "how", "what", "what's", "whats", "which", "who", "whom", "whose", "where", "when", "did", "do", "does", "is", "are", "was",
    "were", "has", "have", "can", "could", "would", "will", "show", "list", "give", "find", "count", "get", "tell", "compare",
    "rank", "total", "number", "average", "avg", "sum", "top",
];

/// Words a sentence about the asker or the occasion starts with ("I'm on support …",
/// "We're reviewing …", "Hey, quick one: …"); "our 3 oldest accounts" is about data.
const CONTEXT_OPENERS: &[&str] = &["i", "im", "we", "hey", "hi", "hello", "quick", "ok", "okay", "so"];

/// Words that mark such a sentence wherever they stand ("Marketer here.", "Sales needs a
/// lead list:", "The sales lead asked me something:").
const CONTEXT_WORDS: &[&str] = &["here", "wants", "want", "asked", "asks", "need", "needs", "needed"];

impl Reader<'_> {
    /// The tokens of the leading sentences that neither ask nor request but speak of the
    /// asker ("Marketer here.") or name nothing the catalog holds ("Finance recap:"), when a
    /// later sentence names something: `0..end`. `linked`: the tokens a phrase of the
    /// catalog links.
    pub(super) fn preamble(&self, linked: &[bool]) -> Option<std::ops::Range<usize>> {
        let sentences = self.sentences();
        let asks = |s: &(usize, usize, bool)| self.asks(s);
        let about_asker = |&(from, to, _): &(usize, usize, bool)| self.tokens[from].is_any(CONTEXT_OPENERS) || self.tokens[from..to].iter().any(|t| !t.quoted && t.is_any(CONTEXT_WORDS));
        // Nothing linked, no number, date or calendar word ("Last 24 hours: …" says when).
        let names_nothing = |&(from, to, _): &(usize, usize, bool)| {
            (from..to).all(|i| {
                let t = &self.tokens[i];
                !linked[i] && !t.quoted && t.number.is_none() && t.date.is_none() && time_unit(&t.text).is_none() && month(&t.text).is_none()
            })
        };
        let names_something = |&(from, to, _): &(usize, usize, bool)| (from..to).any(|i| linked[i]);
        let leading = sentences.iter().take_while(|s| !asks(s) && (about_asker(s) || names_nothing(s))).count();
        if leading > 0 && sentences[leading..].iter().any(names_something) {
            return Some(0..sentences[leading - 1].1);
        }
        // "Finance wants the mean and the total of …", "The CFO asked for …": who asks, then what.
        let wants = (1..4.min(self.tokens.len())).find(|&k| self.tokens[k].is_any(&["wants", "needs", "asks", "asked", "asking", "requested"]))?;
        let who_unnamed = (0..wants).all(|i| !self.tokens[i].quoted && self.tokens[i].number.is_none() && self.tokens[i].date.is_none() && !self.tokens[i].pause_before);
        (who_unnamed && (wants + 1..self.tokens.len()).any(|i| linked[i])).then_some(0..wants + 1)
    }

    /// The sentences: `(from, to, ends with a question mark)`; a sentence ends at '.', '!',
    /// '?' or ':' between two tokens.
    pub(super) fn sentences(&self) -> Vec<(usize, usize, bool)> {
        let mut sentences = Vec::new();
        let mut start = 0;
        for i in 0..self.tokens.len() {
            let gap_end = self.tokens.get(i + 1).map_or(self.question.len(), |t| t.span.0);
            let gap: String = self.question.chars().skip(self.tokens[i].span.1).take(gap_end.saturating_sub(self.tokens[i].span.1)).collect();
            if gap.contains(['.', '!', '?', ':']) || i + 1 == self.tokens.len() {
                sentences.push((start, i + 1, gap.contains('?')));
                start = i + 1;
            }
        }
        sentences
    }

    fn asks(&self, &(from, _, question_mark): &(usize, usize, bool)) -> bool {
        question_mark || self.tokens[from].is_any(ASKING_WORDS)
    }

    /// A leading label, when a later sentence names something itself: "Power
    /// users: accounts with at least 10 page views …", "Heat alert review for Austin's
    /// outdoor sensors: every reading over 30 °C …". The label's links are read ("Austin",
    /// "outdoor"); its words the catalog does not know only name the occasion, and are not
    /// a reason to refuse. `linked`: the tokens a phrase of the catalog links.
    pub(super) fn label(&self, linked: &[bool]) -> Option<std::ops::Range<usize>> {
        let sentences = self.sentences();
        let (label, rest) = sentences.split_first()?;
        let names_something = |&(from, to, _): &(usize, usize, bool)| (from..to).any(|i| linked[i]);
        (!self.asks(label) && rest.iter().any(names_something)).then_some(label.0..label.1)
    }

    /// The preamble's tokens left unread: all but its phrases of time and number — a
    /// number or date and the words leading to it ("in the last 90 days", "over 500
    /// euros") and the unit after it.
    pub(super) fn preamble_unread(&self, preamble: &std::ops::Range<usize>) -> Vec<usize> {
        const LEADS: &[&str] = &[
            "in", "the", "last", "past", "over", "within", "since", "during", "of", "between", "from", "and", "to", "before", "after", "above",
            "below", "under", "more", "less", "than", "at", "least", "most", "older", "newer", "this", "on",
        ];
        let mut read = vec![false; self.tokens.len()];
        for j in preamble.clone().filter(|&j| self.tokens[j].number.is_some() || self.tokens[j].date.is_some()) {
            read[j] = true;
            let mut k = j;
            while k > preamble.start && self.tokens[k - 1].is_any(LEADS) && !self.tokens[k].pause_before {
                k -= 1;
                read[k] = true;
            }
            let mut k = j + 1;
            while k < preamble.end && !self.tokens[k].pause_before {
                let t = &self.tokens[k];
                if !(time_unit(&t.text).is_some() || month(&t.text).is_some() || UNITS.contains(&t.text.as_str()) || t.number.is_some() || t.is_any(&["ago", "and", "to"])) {
                    break;
                }
                read[k] = true;
                k += 1;
            }
        }
        preamble.clone().filter(|&j| !read[j]).collect()
    }

    /// Of the preamble's links, only stored values stay.
    pub(super) fn keep_preamble_values(&mut self, preamble: &std::ops::Range<usize>, links: &mut Vec<Link>) {
        links.retain(|l| !preamble.contains(&l.start) || l.candidates.iter().any(|c| matches!(c.target, Target::Value(..)) && c.evidence >= Evidence::Value));
        let kept: Vec<String> = links.iter().filter(|l| preamble.contains(&l.start)).map(|l| self.tokens[l.start..l.end].iter().map(|t| t.raw.as_str()).collect::<Vec<_>>().join(" ")).collect();
        self.notes.push(if kept.is_empty() {
            "read the opening sentence as context, not as part of the question".to_string()
        } else {
            format!("read the opening sentence as context; kept only the values it names ({})", kept.join(", "))
        });
    }
}
