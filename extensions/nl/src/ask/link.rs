//! Linking a question to the live catalog: which words name a relation, a column, or a
//! stored value. Names link by their words (`page_views` by "page views" or "page
//! view"), columns also by their comments (`COMMENT ON`), and the values of
//! low-cardinality text columns by their text ("Germany" → `country = 'Germany'`).
//! A word may link to several things; the question's structure picks one later.

use std::collections::HashMap;

use arrow::datatypes::DataType;
use streamhouse_executor::AskCatalog;

use super::words::{identifier_words, stem, tokenize, Token, FILLER, UNIT_SUFFIXES};

/// The longest phrase (in words) the linker tries.
const MAX_PHRASE_WORDS: usize = 4;
/// Values this short must be typed in their stored case or quoted ("US", not "us").
const SHORT_VALUE_CHARS: usize = 2;

/// What a phrase can stand for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Relation(usize),
    Column(usize, usize),
    /// A stored value of (relation, column).
    Value(usize, usize, String),
}

/// How a phrase linked: by a name is strongest, by a comment or a general concept weaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Evidence {
    Concept,
    Comment,
    Value,
    Name,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub target: Target,
    pub evidence: Evidence,
}

/// A phrase of the question (tokens `start..end`) and what it may stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub start: usize,
    pub end: usize,
    pub candidates: Vec<Candidate>,
}

impl Link {
    /// The strongest evidence among candidates.
    pub fn best_evidence(&self) -> Evidence {
        self.candidates.iter().map(|c| c.evidence).max().unwrap_or(Evidence::Concept)
    }
}

/// Words of general analytics concepts and what a column about them contains in its
/// name or comment; used only when nothing links by name or comment.
const CONCEPTS: &[(&[&str], &[&str])] = &[
    (
        &["revenue", "sale", "sales", "income", "turnover", "spend", "spent", "spending", "money", "earning", "earnings", "gmv", "paid", "value"],
        &["amount", "price", "total", "revenue", "cost", "euro", "dollar", "usd", "eur"],
    ),
    (&["slow", "fast", "speed", "latency", "delay", "duration", "response"], &["latency", "duration", "load", "elapsed", "response"]),
    (&["hot", "warm", "cold", "temp", "heat"], &["temperature", "temp"]),
    (&["charge", "power"], &["battery"]),
    (&["kind", "type", "category"], &["kind", "type", "category"]),
    (&["where", "location", "place"], &["site", "location", "city", "place"]),
];

/// Every phrase that names something in the catalog.
pub struct Lexicon {
    phrases: HashMap<Vec<String>, Vec<Candidate>>,
    /// Values that must match case-sensitively: (relation, column, value).
    short_values: Vec<(usize, usize, String)>,
}

impl Lexicon {
    pub fn new(catalog: &AskCatalog) -> Lexicon {
        let mut lexicon = Lexicon { phrases: HashMap::new(), short_values: Vec::new() };
        for (r, relation) in catalog.relations.iter().enumerate() {
            let name = identifier_words(&relation.name);
            lexicon.add(name.clone(), Target::Relation(r), Evidence::Name);
            lexicon.add(vec![relation.name.to_lowercase()], Target::Relation(r), Evidence::Name);
            if let Some(comment) = &relation.comment {
                lexicon.add_comment(comment, Target::Relation(r));
            }
            for (c, column) in relation.columns.iter().enumerate() {
                let words = identifier_words(&column.name);
                lexicon.add(words.clone(), Target::Column(r, c), Evidence::Name);
                lexicon.add(vec![column.name.to_lowercase()], Target::Column(r, c), Evidence::Name);
                let mut core = words.clone();
                while core.len() > 1 && core.last().is_some_and(|w| UNIT_SUFFIXES.contains(&w.as_str()) || w == "id") {
                    core.pop();
                    lexicon.add(core.clone(), Target::Column(r, c), Evidence::Name);
                }
                if let Some(comment) = &column.comment {
                    lexicon.add_comment(comment, Target::Column(r, c));
                }
                for value in column.values.iter().flatten() {
                    if value.chars().count() <= SHORT_VALUE_CHARS {
                        lexicon.short_values.push((r, c, value.clone()));
                        continue;
                    }
                    let phrase: Vec<String> = tokenize(value).iter().map(|t| t.stem.clone()).collect();
                    if !phrase.is_empty() {
                        lexicon.add(phrase, Target::Value(r, c, value.clone()), Evidence::Value);
                    }
                    // Values written with separators ("bank_transfer") also link as words.
                    let spaced: Vec<String> = identifier_words(value);
                    if !spaced.is_empty() {
                        lexicon.add(spaced, Target::Value(r, c, value.clone()), Evidence::Value);
                    }
                }
            }
            // Concepts: a column whose words contain a concept's markers.
            for (c, column) in relation.columns.iter().enumerate() {
                let mut described: Vec<String> = identifier_words(&column.name);
                if let Some(comment) = &column.comment {
                    described.extend(tokenize(comment).into_iter().map(|t| t.stem));
                }
                for (words, markers) in CONCEPTS {
                    let numeric_only = markers.contains(&"amount") || markers.contains(&"latency") || markers.contains(&"temperature");
                    if numeric_only && !is_numeric(&column.data_type) {
                        continue;
                    }
                    if described.iter().any(|w| markers.contains(&w.as_str())) {
                        for word in *words {
                            lexicon.add(vec![stem(word)], Target::Column(r, c), Evidence::Concept);
                        }
                    }
                }
            }
        }
        lexicon
    }

    fn add(&mut self, phrase: Vec<String>, target: Target, evidence: Evidence) {
        if phrase.is_empty() || phrase.len() > MAX_PHRASE_WORDS {
            return;
        }
        let candidates = self.phrases.entry(phrase).or_default();
        match candidates.iter_mut().find(|c| c.target == target) {
            Some(existing) => existing.evidence = existing.evidence.max(evidence),
            None => candidates.push(Candidate { target, evidence }),
        }
    }

    /// Every run of 1–3 content words of a comment links to what it describes.
    fn add_comment(&mut self, comment: &str, target: Target) {
        let words: Vec<String> = tokenize(comment).into_iter().map(|t| t.stem).collect();
        for start in 0..words.len() {
            for len in 1..=3.min(words.len() - start) {
                let phrase = &words[start..start + len];
                let first_or_last_filler = |w: &String| FILLER.contains(&w.as_str()) || w.parse::<f64>().is_ok();
                if first_or_last_filler(&phrase[0]) || first_or_last_filler(&phrase[len - 1]) {
                    continue;
                }
                self.add(phrase.to_vec(), target.clone(), Evidence::Comment);
            }
        }
    }

    /// Links the tokens not yet `used`, longest phrase first.
    pub fn link(&self, tokens: &[Token], used: &[bool]) -> Vec<Link> {
        let mut links = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if used[i] {
                i += 1;
                continue;
            }
            let mut found = None;
            for len in (1..=MAX_PHRASE_WORDS.min(tokens.len() - i)).rev() {
                if (i..i + len).any(|j| used[j]) {
                    continue;
                }
                let phrase: Vec<String> = tokens[i..i + len].iter().map(|t| t.stem.clone()).collect();
                let mut candidates = self.phrases.get(&phrase).cloned().unwrap_or_default();
                if len == 1 && tokens[i].quoted {
                    // A quoted text is also its own words: 'United States'.
                    let words: Vec<String> = tokenize(&tokens[i].text).iter().map(|t| t.stem.clone()).collect();
                    candidates.extend(self.phrases.get(&words).cloned().unwrap_or_default());
                }
                if len == 1 {
                    for (r, c, value) in &self.short_values {
                        let token = &tokens[i];
                        if token.raw == *value || (token.quoted && token.text == value.to_lowercase()) {
                            candidates.push(Candidate { target: Target::Value(*r, *c, value.clone()), evidence: Evidence::Value });
                        }
                    }
                }
                if !candidates.is_empty() {
                    found = Some(Link { start: i, end: i + len, candidates });
                    break;
                }
            }
            match found {
                Some(link) => {
                    i = link.end;
                    links.push(link);
                }
                None => i += 1,
            }
        }
        links
    }
}

pub fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

pub fn is_temporal(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64)
}

pub fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}
