//! Linking a question to the live catalog: which words name a relation, a column, or a
//! stored value. Names link by their words (`page_views` by "page views" or "page
//! view"), columns also by their comments (`COMMENT ON`), and the values of
//! low-cardinality text columns by their text ("Germany" → `country = 'Germany'`).
//! A word may link to several things; the question's structure picks one later.

use std::collections::HashMap;

use arrow::datatypes::DataType;
use streamhouse_executor::AskCatalog;

use super::words::{aggregate_word, identifier_words, stem, superlative, tokenize, Token, FILLER, UNIT_SUFFIXES};

/// The longest phrase (in words) the linker tries.
const MAX_PHRASE_WORDS: usize = 4;
/// Values this short must be typed in their stored case or quoted ("US", not "us").
const SHORT_VALUE_CHARS: usize = 2;

/// What a phrase can stand for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Relation(usize),
    Column(usize, usize),
    /// A stored value of (relation, column).
    Value(usize, usize, String),
    /// Stored values of (relation, column) starting with this text ("blog pages": the
    /// paths under `/blog`).
    Prefix(usize, usize, String),
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
    /// Whether the phrase names a column, not a stored value or a relation: "paid by
    /// customer segment" groups, "placed by enterprise customers" says who.
    pub fn names_a_column(&self) -> bool {
        self.candidates.iter().any(|c| matches!(c.target, Target::Column(..)) && c.evidence >= Evidence::Comment)
            && !self.candidates.iter().any(|c| matches!(c.target, Target::Value(..) | Target::Relation(..)) && c.evidence >= Evidence::Value)
    }

    /// The strongest evidence among candidates.
    pub fn best_evidence(&self) -> Evidence {
        self.candidates.iter().map(|c| c.evidence).max().unwrap_or(Evidence::Concept)
    }
}

/// Words of general analytics concepts and what a column about them contains in its
/// name or comment; used only when nothing links by name or comment.
const CONCEPTS: &[(&[&str], &[&str])] = &[
    (
        &["revenue", "sale", "sales", "size", "price", "priced", "cost", "income", "turnover", "spend", "spent", "spending", "spender", "spenders", "money", "earning", "earnings", "gmv", "paid", "value", "takings", "worth", "earned", "earn", "earns", "ticket", "we sell", "we sold"],
        &["amount", "price", "total", "revenue", "cost", "euro", "dollar", "usd", "eur"],
    ),
    (&["slow", "fast", "speed", "latency", "delay", "duration", "response", "long", "wait", "waiting", "loading"], &["latency", "duration", "load", "elapsed", "response"]),
    (&["hot", "warm", "cold", "temp", "heat"], &["temperature", "temp"]),
    (&["charge"], &["battery"]),
    (&["way of paying", "ways of paying", "way to pay", "ways to pay", "means of payment", "payment type", "payment types"], &["method"]),
    (&["referral", "referrals"], &["referrer"]),
];

/// Words for the things a relation holds, and what the relation's name or comment
/// contains when it holds them: "shoppers" are the customers, "accounts" the users.
const RELATION_CONCEPTS: &[(&[&str], &[&str])] = &[
    (&["shopper", "buyer", "client", "purchaser"], &["customer", "buyer", "client"]),
    (&["account", "member", "subscriber"], &["user", "account", "member"]),
    (&["people", "person", "visitor", "reader"], &["user", "visitor"]),
    (&["unit", "sensor", "device", "probe", "gadget", "hardware"], &["device", "sensor"]),
    (&["request", "pageview", "impression"], &["view", "request"]),
    (&["purchase"], &["order"]),
    (&["message", "sample", "datapoint"], &["reading", "measurement", "telemetry"]),
];

/// Irregular verbs and the noun a stored value would use: "bought" is a 'purchase'.
const VERB_NOUNS: &[(&str, &str)] = &[("bought", "purchase"), ("buy", "purchase"), ("buys", "purchase"), ("clicked", "click"), ("searched", "search")];

/// Words that only say "the value of" the column before them ("humidity value").
const GENERIC_NOUNS: &[&str] = &["value", "values", "level", "levels"];

/// Adjectives of countries, for "German customers" when `country = 'Germany'` is stored.
const DEMONYMS: &[(&str, &str)] = &[
    ("german", "germany"), ("french", "france"), ("japanese", "japan"), ("brazilian", "brazil"), ("indian", "india"),
    ("american", "united states"), ("british", "united kingdom"), ("english", "united kingdom"), ("spanish", "spain"),
    ("italian", "italy"), ("chinese", "china"), ("canadian", "canada"), ("dutch", "netherlands"), ("mexican", "mexico"),
    ("australian", "australia"), ("swiss", "switzerland"), ("austrian", "austria"), ("swedish", "sweden"), ("polish", "poland"),
    ("korean", "south korea"), ("irish", "ireland"), ("portuguese", "portugal"), ("belgian", "belgium"), ("danish", "denmark"),
    ("norwegian", "norway"), ("finnish", "finland"), ("turkish", "turkey"), ("argentinian", "argentina"), ("nigerian", "nigeria"),
];

/// Everyday words for common stored values: "the UK", "on phones" (`device = 'mobile'`).
const VALUE_ALIASES: &[(&str, &str)] = &[
    ("uk", "united kingdom"), ("usa", "united states"), ("phone", "mobile"), ("phones", "mobile"), ("smartphone", "mobile"),
    ("smartphones", "mobile"), ("cellphone", "mobile"), ("cellphones", "mobile"), ("european", "eu"), ("europe", "eu"),
];

/// Everyday phrases for common stored values, linked when a column stores the value
/// (any case): "sent back" orders are the 'returned' ones, an "OK" response is a 200.
const VALUE_PHRASES: &[(&str, &str)] = &[
    ("sent back", "returned"), ("send back", "returned"), ("came back", "returned"),
    ("waiting to be shipped", "pending"), ("waiting to ship", "pending"), ("not shipped yet", "pending"), ("not yet shipped", "pending"),
    ("awaiting shipment", "pending"), ("canceled", "cancelled"), ("called off", "cancelled"),
    ("wire transfer", "bank_transfer"), ("bank wire", "bank_transfer"),
    ("cart", "add_to_cart"), ("basket", "add_to_cart"), ("ok", "200"), ("successful", "200"), ("success", "200"),
    ("cancellation", "cancelled"), ("cancellations", "cancelled"), ("page not found", "404"), ("not modified", "304"), ("internal server error", "500"),
];

/// Whether the words are an everyday phrase for a stored value ("came back").
pub fn is_value_phrase(words: &str) -> bool {
    VALUE_PHRASES.iter().any(|(phrase, _)| *phrase == words)
}

/// Every phrase that names something in the catalog.
pub struct Lexicon {
    phrases: HashMap<Vec<String>, Vec<Candidate>>,
    /// Values that must match case-sensitively: (relation, column, value).
    short_values: Vec<(usize, usize, String)>,
    /// Long words of column names, which a shorter question word may begin ("humid").
    name_words: Vec<(String, Target)>,
    /// Integer columns (relation, column): their stored codes ("status 500") are not what a
    /// number after a thing's name means ("customer 500" is that customer's id).
    integer_columns: Vec<(usize, usize)>,
}

impl Lexicon {
    pub fn new(catalog: &AskCatalog) -> Lexicon {
        let mut lexicon = Lexicon { phrases: HashMap::new(), short_values: Vec::new(), name_words: Vec::new(), integer_columns: Vec::new() };
        let mut concept_scores: HashMap<(String, Target), usize> = HashMap::new();
        for (r, relation) in catalog.relations.iter().enumerate() {
            let name = identifier_words(&relation.name);
            lexicon.add(name.clone(), Target::Relation(r), Evidence::Name);
            // The head noun alone: `page_views` are also "views".
            if name.len() > 1 {
                lexicon.add(name[name.len() - 1..].to_vec(), Target::Relation(r), Evidence::Comment);
            }
            lexicon.add(vec![relation.name.to_lowercase()], Target::Relation(r), Evidence::Name);
            // "page_views" typed as is: its token's stem is singular.
            lexicon.add(vec![stem(&relation.name.to_lowercase())], Target::Relation(r), Evidence::Name);
            if let Some(comment) = &relation.comment {
                lexicon.add_comment(comment, Target::Relation(r), name.last().map(String::as_str));
            }
            // The relation's name and the synonyms its comment gives in parentheses.
            let mut described: Vec<String> = name.clone();
            if let Some(comment) = &relation.comment {
                for part in comment.split('(').skip(1) {
                    let inside = part.split(')').next().unwrap_or("");
                    described.extend(tokenize(inside).into_iter().map(|t| t.stem));
                }
            }
            for (words, markers) in RELATION_CONCEPTS {
                if described.iter().any(|w| markers.contains(&w.as_str())) {
                    for word in *words {
                        lexicon.add(vec![stem(word)], Target::Relation(r), Evidence::Concept);
                    }
                }
            }
            for (c, column) in relation.columns.iter().enumerate() {
                let words = identifier_words(&column.name);
                lexicon.add(words.clone(), Target::Column(r, c), Evidence::Name);
                // `events.event_type` is also the events' "type".
                if words.len() > 1 && stem(&words[0]) == *name.last().unwrap_or(&String::new()) {
                    let rest = words[1..].to_vec();
                    if rest.iter().any(|w| w != "id" && !UNIT_SUFFIXES.contains(&w.as_str())) {
                        lexicon.add(rest, Target::Column(r, c), Evidence::Name);
                    }
                }
                for word in &words {
                    if word.len() >= 6 {
                        lexicon.name_words.push((word.clone(), Target::Column(r, c)));
                    }
                }
                lexicon.add(vec![column.name.to_lowercase()], Target::Column(r, c), Evidence::Name);
                let mut core = words.clone();
                // The relation's own key by its bare noun ("views" of `page_views.view_id`) is
                // weaker than the relation: "page views" are rows, not ids.
                let own_key = words.len() == 2 && words[1] == "id" && name.last() == Some(&words[0]);
                // "order numbers": the ids of orders.
                if words.len() > 1 && words.last().is_some_and(|w| w == "id") {
                    let mut numbered = words[..words.len() - 1].to_vec();
                    numbered.push("number".into());
                    lexicon.add(numbered, Target::Column(r, c), Evidence::Name);
                }
                while core.len() > 1 && core.last().is_some_and(|w| UNIT_SUFFIXES.contains(&w.as_str()) || w == "id") {
                    core.pop();
                    lexicon.add(core.clone(), Target::Column(r, c), if own_key { Evidence::Comment } else { Evidence::Name });
                }
                if let Some(comment) = &column.comment {
                    lexicon.add_comment(comment, Target::Column(r, c), None);
                    if column.data_type.is_integer() {
                        lexicon.add_code_names(comment, r, c);
                    }
                    lexicon.add_value_names(comment, r, c, column.values.iter().flatten());
                }
                lexicon.add_paths(r, c, column.values.iter().flatten());
                for (phrase, named) in VALUE_PHRASES {
                    if let Some(value) = column.values.iter().flatten().find(|v| v.eq_ignore_ascii_case(named)) {
                        let words: Vec<String> = tokenize(phrase).into_iter().map(|t| t.stem).collect();
                        lexicon.add(words, Target::Value(r, c, value.clone()), Evidence::Value);
                    }
                }
                if column.data_type.is_integer() {
                    lexicon.integer_columns.push((r, c));
                }
                for value in column.values.iter().flatten() {
                    if value.starts_with('/') {
                        continue;
                    }
                    if value.chars().count() <= SHORT_VALUE_CHARS {
                        // Short integer codes ("5") would take any small number of the
                        // question ("customer 5"); only text like "US" is kept.
                        if !column.data_type.is_integer() {
                            lexicon.short_values.push((r, c, value.clone()));
                        }
                        continue;
                    }
                    let phrase: Vec<String> = tokenize(value).iter().map(|t| t.stem.clone()).collect();
                    if !phrase.is_empty() {
                        lexicon.add(phrase, Target::Value(r, c, value.clone()), Evidence::Value);
                    }
                    // Values written with separators ("bank_transfer") also link as words, and
                    // by their last word ("scrolls" are 'page_scroll' events).
                    let spaced: Vec<String> = identifier_words(value);
                    if !spaced.is_empty() && value.contains(['_', '-']) && !value.starts_with('/') {
                        if let Some(last) = spaced.last().filter(|w| w.len() >= 4 && spaced.len() > 1) {
                            lexicon.add(vec![stem(last)], Target::Value(r, c, value.clone()), Evidence::Value);
                        }
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
                        // How much the column is about the concept: its words among the description's.
                        let score = described.iter().filter(|w| words.contains(&w.as_str()) || markers.contains(&w.as_str())).count();
                        for word in *words {
                            // A phrase ("way of paying") links as its words.
                            let phrase: Vec<String> = tokenize(word).into_iter().map(|t| t.stem).collect();
                            concept_scores.insert((phrase.join(" "), Target::Column(r, c)), score);
                            lexicon.add(phrase, Target::Column(r, c), Evidence::Concept);
                        }
                    }
                }
            }
        }
        for candidates in lexicon.phrases.values_mut() {
            // A word that names a relation by name or comment ("visitors") does not also
            // stand for the relations of a general concept.
            if candidates.iter().any(|c| c.evidence > Evidence::Concept) {
                candidates.retain(|c| !(matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Concept));
            }
        }
        // Among candidates a choice cannot tell apart, the column most about the concept
        // comes first ("takings": the order total described as revenue and sales).
        for (phrase, candidates) in lexicon.phrases.iter_mut() {
            if let [word] = phrase.as_slice() {
                candidates.sort_by_key(|c| std::cmp::Reverse(concept_scores.get(&(word.clone(), c.target.clone())).copied().unwrap_or(0)));
            }
        }
        lexicon
    }

    /// Path-like values (`/docs`, `/docs/intro`) link by their first segment: "docs
    /// page" is `/docs` when only that path has it, else every path under it.
    fn add_paths<'v>(&mut self, r: usize, c: usize, values: impl Iterator<Item = &'v String>) {
        // Keyed by the segment as stored: "/Blog" and "/blog" are different paths.
        let mut by_segment: HashMap<String, Vec<&String>> = HashMap::new();
        let mut values_root = None;
        for value in values.filter(|v| v.starts_with('/')) {
            if value == "/" {
                values_root = Some(value.clone());
            }
            if let Some(segment) = value[1..].split('/').next().filter(|s| !s.is_empty()) {
                by_segment.entry(segment.to_string()).or_default().push(value);
            }
        }
        // "the home page": the root path.
        if let Some(root) = values_root {
            for words in [&["home", "page"][..], &["homepage"], &["front", "page"], &["landing", "page"]] {
                self.add(words.iter().map(|w| w.to_string()).collect(), Target::Value(r, c, root.clone()), Evidence::Value);
            }
        }
        for (segment, paths) in by_segment {
            let target = match paths.as_slice() {
                [one] => Target::Value(r, c, one.to_string()),
                _ => Target::Prefix(r, c, format!("/{segment}")),
            };
            let words: Vec<String> = tokenize(&segment.replace(['-', '_'], " ")).into_iter().map(|t| t.stem).collect();
            // "docs page", "docs section", "blog posts".
            for noun in ["page", "section", "area", "post"] {
                let mut with_noun = words.clone();
                with_noun.push(noun.to_string());
                self.add(with_noun, target.clone(), Evidence::Value);
            }
            // "documentation pages": the docs.
            if segment == "docs" {
                self.add(vec!["documentation".into()], target.clone(), Evidence::Value);
                self.add(vec!["documentation".into(), "page".into()], target.clone(), Evidence::Value);
            }
            self.add(words, target.clone(), Evidence::Comment);
            // "/docs" or "/blog/" typed: that path and every path under it.
            for typed in [format!("/{}", segment.to_lowercase()), format!("/{}/", segment.to_lowercase())] {
                if !paths.iter().any(|p| p.to_lowercase() == typed) {
                    self.add(vec![typed.clone()], Target::Prefix(r, c, format!("/{segment}")), Evidence::Value);
                    self.add(vec![stem(&typed)], Target::Prefix(r, c, format!("/{segment}")), Evidence::Value);
                }
            }
            for path in &paths {
                self.add(vec![path.to_lowercase()], Target::Value(r, c, path.to_string()), Evidence::Value);
                // (A typed "/docs" is singularized like any word.)
                self.add(vec![stem(&path.to_lowercase())], Target::Value(r, c, path.to_string()), Evidence::Value);
                // "the release notes page": a nested path by its last segment's words.
                if let Some(last) = path.rsplit('/').next().filter(|last| path.matches('/').count() > 1 && !last.is_empty()) {
                    let mut words: Vec<String> = tokenize(&last.replace(['-', '_'], " ")).into_iter().map(|t| t.stem).collect();
                    words.push("page".to_string());
                    self.add(words, Target::Value(r, c, path.to_string()), Evidence::Value);
                }
            }
        }
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

    /// "HTTP status code, e.g. 200, 404 not found, 500 server error": the words after a
    /// code in an integer column's comment name that code ("server errors" are 500s).
    fn add_code_names(&mut self, comment: &str, r: usize, c: usize) {
        let tokens = tokenize(comment);
        for (at, code) in tokens.iter().enumerate() {
            let Some(number) = code.number.filter(|n| n.fract() == 0.0) else { continue };
            let name: Vec<String> = tokens[at + 1..]
                .iter()
                .take_while(|t| !t.pause_before && t.number.is_none() && t.text.chars().all(char::is_alphabetic) && !t.is_any(&["or", "and", "e", "g"]))
                .take(3)
                .map(|t| t.stem.clone())
                .collect();
            if !name.is_empty() {
                self.add(name, Target::Value(r, c, format!("{}", number as i64)), Evidence::Value);
            }
        }
    }

    /// "sales region: EU (Europe), LATAM (Latin America)": the words in parentheses after a
    /// stored value in its column's comment name that value.
    fn add_value_names<'v>(&mut self, comment: &str, r: usize, c: usize, values: impl Iterator<Item = &'v String>) {
        for value in values {
            let Some(at) = comment.find(&format!("{value} (")) else { continue };
            let inside = &comment[at + value.len() + 2..];
            let Some(end) = inside.find(')') else { continue };
            let name: Vec<String> = tokenize(&inside[..end]).into_iter().map(|t| t.stem).collect();
            if name.len() > 1 || name.first().is_some_and(|w| w.len() > SHORT_VALUE_CHARS) {
                self.add(name, Target::Value(r, c, value.clone()), Evidence::Value);
            }
        }
    }

    /// Every run of 1–3 content words of a comment links to what it describes.
    /// `head`: the relation's own noun ("reading"): in "sensor readings" the word before
    /// it only qualifies it, so "sensors" are not the readings.
    fn add_comment(&mut self, comment: &str, target: Target, head: Option<&str>) {
        // "kind of sensor" is also said "type of sensor".
        if comment.contains("kind") && !comment.contains("type") {
            self.add_comment(&comment.replace("kind", "type"), target.clone(), head);
        }
        let tokens = tokenize(comment);
        let words: Vec<String> = tokens.iter().map(|t| t.stem.clone()).collect();
        // "signup time" is a phrase (though "time" alone carries nothing), also said
        // "signup date".
        for pair in tokens.windows(2) {
            if pair[1].is("time") && !FILLER.contains(&pair[0].text.as_str()) && pair[0].number.is_none() {
                self.add(vec![pair[0].stem.clone(), "date".to_string()], target.clone(), Evidence::Comment);
                self.add(vec![pair[0].stem.clone(), "time".to_string()], target.clone(), Evidence::Comment);
            }
        }
        // "customer segment" is also said "customer type".
        for pair in tokens.windows(2) {
            if pair[1].is_any(&["segment", "category", "tier", "class"]) && !FILLER.contains(&pair[0].text.as_str()) && pair[0].number.is_none() {
                self.add(vec![pair[0].stem.clone(), stem("type")], target.clone(), Evidence::Comment);
            }
        }
        // "kind of sensor" is also said "sensor kind".
        for at in 1..tokens.len().saturating_sub(1) {
            let (head, owner) = (&tokens[at - 1], &tokens[at + 1]);
            if tokens[at].text == "of" && ![head, owner].iter().any(|t| FILLER.contains(&t.text.as_str()) || t.number.is_some()) {
                self.add(vec![owner.stem.clone(), head.stem.clone()], target.clone(), Evidence::Comment);
            }
        }
        for start in 0..words.len() {
            for len in 1..=3.min(words.len() - start) {
                let phrase = &words[start..start + len];
                // Only runs of content words: "load time", not "cancelled or returned"; a
                // plural noun counts as written ("visits", though "visit" is a verb too).
                if tokens[start..start + len].iter().any(|t| FILLER.contains(&t.text.as_str()) || t.number.is_some()) {
                    continue;
                }
                // "kind of sensor", "sensor id": a column's owner named alone is the owner
                // (the devices), not this column.
                let owner = len == 1
                    && matches!(target, Target::Column(..))
                    && ((start >= 2 && tokens[start - 1].text == "of") || tokens.get(start + 1).is_some_and(|t| t.is_any(&["id", "ids"])));
                let qualifier = len == 1 && head.is_some_and(|h| tokens.get(start + 1).is_some_and(|t| t.stem == h));
                if owner || qualifier {
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
                if (i..i + len).any(|j| used[j]) || (i + 1..i + len).any(|j| tokens[j].pause_before) {
                    continue;
                }
                let phrase: Vec<String> = tokens[i..i + len].iter().map(|t| t.stem.clone()).collect();
                let mut candidates = self.phrases.get(&phrase).cloned().unwrap_or_default();
                if len == 1 && tokens[i].quoted {
                    // A quoted text is also its own words: 'United States'.
                    let words: Vec<String> = tokenize(&tokens[i].text).iter().map(|t| t.stem.clone()).collect();
                    candidates.extend(self.phrases.get(&words).cloned().unwrap_or_default());
                }
                if len == 1 && !tokens[i].quoted && tokens[i].text == tokens[i].stem && FILLER.contains(&tokens[i].stem.as_str()) {
                    // "hit", "visit" as verbs: only a name or a stored value, not a comment's "hits".
                    candidates.retain(|c| c.evidence >= Evidence::Value);
                }
                if len == 1 && candidates.is_empty() {
                    candidates = self.word_forms(&tokens[i]);
                }
                if len == 1 && tokens[i].number.is_some() && i > 0 && self.names_a_relation(&tokens[i - 1]) {
                    // "customer 500": the customer with that id, not a stored code 500.
                    candidates.retain(|c| !matches!(&c.target, Target::Value(r, col, _) if self.integer_columns.contains(&(*r, *col))));
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
        absorb_generic_nouns(tokens, attach_columns_to_relations(tokens, used, links))
    }

    /// Whether the word is a relation's name ("customer", "devices").
    fn names_a_relation(&self, token: &Token) -> bool {
        self.phrases
            .get(std::slice::from_ref(&token.stem))
            .is_some_and(|cs| cs.iter().any(|c| matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name))
    }

    /// Other forms of one word: a verb's noun ("ordered" → orders, "purchased" → the
    /// value 'purchase'), or the start of a long column word ("humid" → humidity).
    fn word_forms(&self, token: &Token) -> Vec<Candidate> {
        let mut found = Vec::new();
        if token.quoted {
            return found;
        }
        let word = &token.text;
        if let Some((_, country)) = DEMONYMS.iter().chain(VALUE_ALIASES).find(|(adjective, _)| adjective == word) {
            let phrase: Vec<String> = country.split(' ').map(stem).collect();
            for c in self.phrases.get(&phrase).into_iter().flatten() {
                if matches!(c.target, Target::Value(..)) {
                    found.push(c.clone());
                }
            }
            // "European orders": a short stored value ('EU') the alias names.
            for (r, c, value) in &self.short_values {
                if value.eq_ignore_ascii_case(country) {
                    found.push(Candidate { target: Target::Value(*r, *c, value.clone()), evidence: Evidence::Value });
                }
            }
        }
        if let Some((_, noun)) = VERB_NOUNS.iter().find(|(verb, _)| verb == word) {
            for c in self.phrases.get(&vec![stem(noun)]).into_iter().flatten() {
                if matches!(c.target, Target::Value(..) | Target::Relation(_)) && c.evidence >= Evidence::Comment {
                    found.push(Candidate { target: c.target.clone(), evidence: Evidence::Comment });
                }
            }
        }
        if word.len() > 4 && word.ends_with("ed") {
            for base in [&word[..word.len() - 2], &word[..word.len() - 1]] {
                for c in self.phrases.get(&vec![stem(base)]).into_iter().flatten() {
                    if matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name || matches!(c.target, Target::Value(..)) && c.evidence == Evidence::Value {
                        found.push(Candidate { target: c.target.clone(), evidence: Evidence::Comment });
                    }
                }
            }
        }
        // "clicked", "bought": the stored 'click', 'purchase' before the relation holding it.
        let verb = word.len() > 4 && word.ends_with("ed") || VERB_NOUNS.iter().any(|(verb, _)| verb == word);
        if verb && found.iter().any(|c| matches!(c.target, Target::Value(..))) {
            for c in found.iter_mut().filter(|c| matches!(c.target, Target::Relation(_))) {
                c.evidence = Evidence::Concept;
            }
        }
        if found.is_empty() && token.stem.len() >= 5 {
            // "returns" → the status 'returned', "deliveries"… no: only a verb's -ed form.
            for ending in ["ed", "d"] {
                for c in self.phrases.get(&vec![format!("{}{ending}", token.stem)]).into_iter().flatten() {
                    if matches!(c.target, Target::Value(..)) && c.evidence == Evidence::Value {
                        found.push(Candidate { target: c.target.clone(), evidence: Evidence::Comment });
                    }
                }
            }
        }
        // The start of a long column word ("humid"), unless the word is vocabulary ("count").
        if found.is_empty() && word.len() >= 5 && !FILLER.contains(&word.as_str()) && aggregate_word(word).is_none() && superlative(word).is_none() {
            let prefix = if word.len() > 6 && word.ends_with("ed") { &word[..word.len() - 2] } else { word.as_str() };
            for (name_word, target) in &self.name_words {
                if name_word.starts_with(prefix) && name_word.len() > prefix.len() {
                    found.push(Candidate { target: target.clone(), evidence: Evidence::Comment });
                }
            }
        }
        found
    }
}

/// A word of the money concept ("revenue", "sales", "takings").
pub fn is_money_word(word: &str) -> bool {
    CONCEPTS[0].0.iter().any(|w| stem(w) == word)
}

pub fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

pub fn is_temporal(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64)
}

/// "customer country", "names of the customers", "country's customers": a column next
/// to a relation that has it is that relation's column, and the two are one link.
/// "humidity value", "battery level": a column's link takes the generic noun after it,
/// unless that noun names something by name or value.
fn absorb_generic_nouns(tokens: &[Token], links: Vec<Link>) -> Vec<Link> {
    let column_link = |l: &Link| l.candidates.iter().any(|c| matches!(c.target, Target::Column(..)) && c.evidence >= Evidence::Comment);
    let mut out: Vec<Link> = Vec::new();
    for link in links {
        let generic = link.end == link.start + 1 && tokens[link.start].is_any(GENERIC_NOUNS) && link.best_evidence() < Evidence::Value;
        if let Some(previous) = out.last_mut().filter(|p| generic && p.end == link.start && column_link(p)) {
            previous.end = link.end;
            continue;
        }
        out.push(link);
    }
    out
}

fn attach_columns_to_relations(tokens: &[Token], used: &[bool], links: Vec<Link>) -> Vec<Link> {
    // "customer country", "country's customers"; "names of the top 5 customers".
    let adjacent = |from: usize, to: usize| (from..to).all(|i| tokens[i].is_any(&["s"]));
    let joined_by_of = |from: usize, to: usize| (from..to).all(|i| used[i] || tokens[i].is_any(&["of", "the", "s", "all", "for"]));
    // The one relation a link names by its name (not by a comment).
    let relation_of = |link: &Link| -> Option<usize> {
        let relations: Vec<usize> = link
            .candidates
            .iter()
            .filter_map(|c| if let (Target::Relation(r), Evidence::Name) = (&c.target, c.evidence) { Some(*r) } else { None })
            .collect();
        (relations.len() == 1).then(|| relations[0])
    };
    // A link that may be a stored value ("enterprise customers") stays a value.
    let columns_in = |link: &Link, r: usize| -> Vec<Candidate> {
        if link.candidates.iter().any(|c| matches!(c.target, Target::Value(..) | Target::Prefix(..))) {
            return Vec::new();
        }
        link.candidates.iter().filter(|c| matches!(c.target, Target::Column(cr, _) if cr == r)).cloned().collect()
    };
    let mut out: Vec<Link> = Vec::new();
    let mut i = 0;
    while i < links.len() {
        if i + 1 < links.len() {
            let (a, b) = (&links[i], &links[i + 1]);
            let merged = relation_of(a)
                .filter(|_| adjacent(a.end, b.start))
                .map(|r| columns_in(b, r))
                .filter(|c| !c.is_empty() && relation_of(b).is_none())
                .or_else(|| {
                    relation_of(b)
                        .filter(|_| joined_by_of(a.end, b.start))
                        .map(|r| columns_in(a, r))
                        .filter(|c| !c.is_empty() && relation_of(a).is_none())
                });
            // "… 60 readings, device ids": a pause keeps them apart.
            if let Some(candidates) = merged.filter(|_| !tokens[b.start].pause_before) {
                out.push(Link { start: a.start, end: b.end, candidates });
                i += 2;
                continue;
            }
        }
        out.push(links[i].clone());
        i += 1;
    }
    out
}
