//! Words of a question: tokens (words, numbers, dates, quoted text), a light stemmer so
//! "orders" meets `order_id`, and the fixed vocabulary of analytics questions (aggregates,
//! grouping, comparisons, time) that is not about any particular catalog.

/// One token of a question.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Lower-cased text.
    pub text: String,
    /// As typed (values like "US" are matched case-sensitively when short).
    pub raw: String,
    /// `text` singularized.
    pub stem: String,
    pub number: Option<f64>,
    /// `YYYY-MM-DD`.
    pub date: Option<(i32, u32, u32)>,
    /// Text the user put in quotes: a value, never vocabulary.
    pub quoted: bool,
    /// A comma, colon, semicolon, question mark, full stop or spaced dash stands before
    /// it: no phrase spans it
    /// ("more than 60 readings, device ids" is not `readings.device_id`).
    pub pause_before: bool,
    /// Where it stands in the question, in characters `[start, end)`: a text typed with
    /// hyphens ("LYO-OUT") is several tokens, read back whole from the question.
    pub span: (usize, usize),
}

impl Token {
    fn word(raw: &str) -> Token {
        let text = raw.to_lowercase();
        // "500s" (responses with status 500) is the number.
        let digits = text.strip_suffix('s').filter(|d| d.len() == 3 && d.chars().all(|c| c.is_ascii_digit())).unwrap_or(&text);
        let number = digits
            .replace(',', "")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .or_else(|| small_number(&text).filter(|_| !matches!(text.as_str(), "a" | "an" | "zero")))
            // "20k euros": thousands.
            .or_else(|| text.strip_suffix('k').and_then(|n| n.parse::<f64>().ok()).filter(|n| n.is_finite()).map(|n| n * 1000.0));
        Token { stem: stem(&text), text, raw: raw.to_string(), number, date: None, quoted: false, pause_before: false, span: (0, 0) }
    }

    pub fn is(&self, word: &str) -> bool {
        self.text == word
    }

    pub fn is_any(&self, words: &[&str]) -> bool {
        words.contains(&self.text.as_str())
    }

    /// A word that only carries the sentence ("the", "please", "show"), by itself or its stem.
    pub fn is_filler(&self) -> bool {
        FILLER.contains(&self.text.as_str()) || FILLER.contains(&self.stem.as_str())
    }
}

/// Splits a question into tokens. Quoted text ('…' or "…") stays one token; dates
/// `YYYY-MM-DD` and numbers (`1,000`, `2.5`, `$40`, `40€`) are recognized.
pub fn tokenize(question: &str) -> Vec<Token> {
    let chars: Vec<char> = question.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    // Indexes of the tokens a pause stands before.
    let mut pauses: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' || c == '“' || c == '‘' {
            let close = match c {
                '“' => '”',
                '‘' => '’',
                other => other,
            };
            // An apostrophe inside a word ("what's") is not a quote.
            let inside_word = i > 0 && chars[i - 1].is_alphanumeric();
            if let Some(end) = (i + 1..chars.len()).find(|&j| chars[j] == close).filter(|_| !inside_word) {
                let raw: String = chars[i + 1..end].iter().collect();
                if !raw.trim().is_empty() {
                    let mut token = Token::word(raw.trim());
                    token.quoted = true;
                    token.span = (i, end + 1);
                    tokens.push(token);
                }
                i = end + 1;
                continue;
            }
            i += 1;
            continue;
        }
        let negative = c == '-' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit() && (i == 0 || chars[i - 1].is_whitespace());
        if c.is_alphanumeric() || c == '_' || negative || (c == '/' && i + 1 < chars.len() && chars[i + 1].is_alphanumeric()) {
            let start = i;
            if negative {
                i += 1;
            }
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '/'
                    // "/docs/getting-started": a path keeps its hyphens.
                    || (chars[i] == '-' && chars[start] == '/' && i + 1 < chars.len() && chars[i + 1].is_alphanumeric())
                    || ((chars[i] == '.' || chars[i] == ',' || chars[i] == '-')
                        && i + 1 < chars.len()
                        && chars[i + 1].is_ascii_digit()
                        && (chars[start].is_ascii_digit() || chars[start] == '-')))
            {
                i += 1;
            }
            let mut raw: String = chars[start..i].iter().collect();
            // "sign-up", "check-out": one word, as usually written.
            if i + 1 < chars.len() && chars[i] == '-' && chars[i + 1].is_alphabetic() {
                let end = (i + 1..chars.len()).find(|&j| !chars[j].is_alphanumeric()).unwrap_or(chars.len());
                let second: String = chars[i + 1..end].iter().collect();
                if JOINED_WORDS.contains(&format!("{raw}{second}").to_lowercase().as_str()) {
                    raw = format!("{raw}{second}");
                    i = end;
                }
            }
            // "300ms", "1.5sec", "20c": a number with its unit glued on is both.
            if let Some((number, unit)) = glued_unit(&raw) {
                let split = start + number.chars().count();
                tokens.push(Token { span: (start, split), ..Token::word(number) });
                tokens.push(Token { span: (split, i), ..Token::word(unit) });
                continue;
            }
            let mut token = Token::word(&raw);
            token.span = (start, i);
            token.date = parse_date(&raw);
            if token.date.is_some() {
                token.number = None;
            }
            tokens.push(token);
            continue;
        }
        if matches!(c, '<' | '>' | '=') {
            let start = i;
            while i < chars.len() && matches!(chars[i], '<' | '>' | '=') {
                i += 1;
            }
            tokens.push(Token { span: (start, i), ..Token::word(&chars[start..i].iter().collect::<String>()) });
            continue;
        }
        // A dash between words ("… - just their emails", "— names") pauses too.
        let dash = matches!(c, '—' | '–') || (c == '-' && i > 0 && chars[i - 1].is_whitespace() && chars.get(i + 1).is_some_and(|n| n.is_whitespace()));
        // A full stop ends a sentence: "Five newest registrations. Email and date only."
        let full_stop = c == '.' && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if matches!(c, ',' | ';' | ':' | '?' | '!') || dash || full_stop {
            pauses.push(tokens.len());
        }
        // "device + browser": and.
        if c == '+' {
            tokens.push(Token { span: (i, i + 1), ..Token::word("and") });
        }
        i += 1;
    }
    for at in pauses {
        if let Some(token) = tokens.get_mut(at) {
            token.pause_before = true;
        }
    }
    halves(tokens)
}

/// "half a second", "half an hour": 0.5 of the unit.
fn halves(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].is("half") && !tokens[i].quoted && tokens.get(i + 1).is_some_and(|t| t.is_any(&["a", "an"])) && tokens.get(i + 2).is_some_and(|t| time_unit(&t.text).is_some()) {
            let mut half = Token::word("0.5");
            half.raw = format!("{} {}", tokens[i].raw, tokens[i + 1].raw);
            half.span = (tokens[i].span.0, tokens[i + 1].span.1);
            out.push(half);
            i += 2;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

fn parse_date(raw: &str) -> Option<(i32, u32, u32)> {
    if raw.contains('/') {
        return parse_slashed_date(raw);
    }
    let mut parts = raw.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 {
        return None;
    }
    let (y, m, d) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// "14/02/2025" (day first) or "02/14/2025" (month first), when the numbers tell which;
/// "03/04/2025" could be either and is no date.
fn parse_slashed_date(raw: &str) -> Option<(i32, u32, u32)> {
    let parts: Vec<&str> = raw.split('/').collect();
    let [a, b, y] = parts[..] else { return None };
    if y.len() != 4 {
        return None;
    }
    let (a, b, y): (u32, u32, i32) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
    let (m, d) = match (a > 12, b > 12) {
        (true, false) => (b, a),
        (false, true) => (a, b),
        _ => return None,
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// A singular form: "categories" → "category", "devices" → "device", "status" stays.
pub fn stem(word: &str) -> String {
    let w = word;
    if FILLER.contains(&w) {
        return w.to_string(); // "was", "has", "is" are not plurals
    }
    if w.len() > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if w.len() > 4 && (w.ends_with("sses") || w.ends_with("xes") || w.ends_with("ches") || w.ends_with("shes") || w.ends_with("uses")) {
        return w[..w.len() - 2].to_string();
    }
    if w.len() >= 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") && !w.ends_with("ms") {
        return w[..w.len() - 1].to_string();
    }
    w.to_string()
}

/// Name parts of an identifier: `latency_ms` → ["latency", "ms"], `pageViews` → ["page", "view"].
pub fn identifier_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words.iter().map(|w| stem(w)).collect()
}

/// Unit suffixes of column names, dropped to find what a column measures
/// (`latency_ms` is "latency", `created_at` is "created").
pub const UNIT_SUFFIXES: &[&str] = &["ms", "s", "sec", "secs", "second", "pct", "percent", "usd", "eur", "at", "c", "kb", "mb", "bytes", "byte", "count", "cnt", "num", "amt"];

/// Words that carry no meaning of their own in an analytics question.
pub const FILLER: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "with", "within", "and", "or", "is", "are", "was", "were", "be",
    "been", "being", "do", "does", "did", "done", "has", "have", "had", "what", "what's", "whats", "which", "who", "whose", "where",
    "when", "how", "me", "us", "we", "our", "i", "my", "you", "your", "it", "its", "they", "their", "them", "there", "that",
    "this", "these", "those", "show", "list", "give", "get", "find", "tell", "display", "see", "return", "fetch", "compute",
    "calculate", "report", "please", "can", "could", "would", "should", "will", "want", "need", "like", "know", "all", "any",
    "some", "every", "overall", "altogether", "data", "record", "row", "entry", "entrie", "figure", "number", "amount",
    "so", "far", "ever", "currently", "now", "right", "just", "only", "also", "as", "by", "per", "each", "across", "over", "than",
    "about", "here", "s", "t", "let", "let's", "lets", "broken", "down", "grouped", "group", "split", "breakdown", "up", "out",
    "did", "happen", "happened", "occur", "occurred", "recorded", "logged", "made", "placed", "seen", "received", "got", "came",
    "come", "visit", "visited", "hit", "taken", "take", "measure", "measured", "reported", "stored", "registered", "created",
    "processed", "generated", "sent", "went", "go", "currently", "total", "whole", "entire", "time", "times", "period", "much",
    "many", "stat", "stats", "statistic", "statistics", "metric", "metrics", "result", "results", "info", "information", "detail",
    "details", "summary", "summarize", "summarise", "breakdowns", "happening", "going", "been", "then", "if", "but", "into",
    "since", "until", "before", "after", "during", "between", "last", "past", "previous", "recent", "recently", "latest", "newest",
    "first", "top", "bottom", "most", "least", "highest", "lowest", "have", "having", "compared", "versus", "vs", "respectively",
    "not", "no", "e", "g", "eg", "ie", "etc", "everyone", "everybody", "something", "anything", "yet", "through", "via",
    "called", "named", "ago", "opened", "joined", "combination", "combinations", "still", "sitting", "single", "point",
    "ran", "run", "runs", "volume", "activity", "back", "open", "opens", "alphabetical", "alphabetically", "add", "adds", "living", "live", "lives", "one", "compare", "please", "looked", "ended", "read", "everything", "mix", "dropped", "fell", "rose", "reached", "very",
    "answer", "answered", "originated", "originate", "receive", "make",
    "exactly", "roughly", "approximately", "around", "individual", "separately", "distribution", "trend", "table", "tables",
    // Verbs of analytics questions that say nothing about which data.
    "bring", "brings", "brought", "send", "sends", "took", "takes", "get", "gets", "got", "gotten", "make", "makes", "use",
    "used", "uses", "produce", "produced", "produces", "generate", "generates", "cause", "caused", "causes", "drive", "drives",
    "drove", "driven", "sit", "sits", "too", "anyone", "anybody", "someone", "somebody", "anywhere", "put", "puts", "=", "counted",
    "she", "he", "him", "her", "his", "hers", "dated", "fleet", "including", "keep", "home", "chronological", "chronologically",
    "settled", "settle", "inclusive", "both", "booked", "re", "ve", "ll", "d", "m", "pull",
    "sat", "following", "somewhere", "running", "showed", "shown", "paying", "tiny", "case", "brand", "once", "nor", "adding", "added",
    "appear", "appears", "appeared", "exist", "exists", "existed", "belong", "belongs", "belonged", "contain", "contains", "ever",
    "see", "saw", "seen", "look", "looks", "place", "places", "submitted", "triggered", "performed",
    "observed", "noted", "tracked", "captured", "collected", "sold", "bought", "paid", "ordered", "viewed", "visiting", "using",
    "coming", "sending", "reporting", "recording", "being", "served", "serve", "based", "located", "reported", "placed", "sent", "get", "far", "overall", "per", "whose", "who", "whom", "had",
    // "new users in the last 90 days", "order history of customer 12", "customers ordering
    // each month": the rows themselves, in the range asked.
    "new", "history", "ordering", "shopping", "among", "amongst", "inside",
    "arrived", "arrive", "arrives", "arriving", "land", "landed", "lands", "landing", "ones", "check", "checked",
    // Verbs of events ("battery dipped below 10%"), read with the comparison.
    "exceeded", "exceeds", "exceed", "spiked", "peaked", "touched", "climbed", "dipped", "drops", "drop",
    // "pages that threw 500s", "events free users trigger", "loads that finished in under
    // 100 ms", "ids, plus their counts", "the last thing device 29 reported", "humid air".
    "threw", "throw", "throws", "thrown", "trigger", "triggers", "finish", "finished", "finishes", "plus", "thing", "things", "air",
];

/// Units read off a number they are glued to ("300ms"). Not a bare "s": "404s" are 404s.
const GLUED_UNITS: &[&str] = &["ms", "sec", "secs", "min", "mins", "c", "f", "kb", "mb", "gb", "pct"];

/// A number written with its unit ("300ms") split into the two.
fn glued_unit(raw: &str) -> Option<(&str, &str)> {
    let split = raw.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = raw.split_at(split);
    let numeric = !number.is_empty() && number.trim_start_matches('-').chars().all(|c| c.is_ascii_digit() || c == '.') && number.chars().any(|c| c.is_ascii_digit());
    (numeric && GLUED_UNITS.contains(&unit.to_lowercase().as_str())).then_some((number, unit))
}

/// Words often written with a hyphen ("sign-up date"), read as one.
const JOINED_WORDS: &[&str] = &["signup", "signups", "checkout", "checkouts", "login", "logins", "logout", "email", "emails", "setup", "signin"];

/// Units typed after numbers ("1000 ms", "90%", "100 euros"); they qualify the number.
pub const UNITS: &[&str] = &[
    "ms", "millisecond", "milliseconds", "s", "sec", "secs", "second", "seconds", "minute", "minutes", "%", "percent", "pct",
    "degree", "degrees", "c", "celsius", "f", "euro", "euros", "eur", "€", "dollar", "dollars", "usd", "$", "kb", "mb", "gb",
    "byte", "bytes", "unit", "units", "point", "points", "times", "percentage",
];

/// Aggregate a word asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    /// The maximum minus the minimum ("temperature spread", "the difference between the
    /// highest and lowest …").
    Spread,
}

impl Aggregate {
    pub fn sql(self) -> &'static str {
        match self {
            Aggregate::Count | Aggregate::CountDistinct => "count",
            Aggregate::Sum => "sum",
            Aggregate::Avg => "avg",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Median => "median",
            Aggregate::Spread => "spread",
        }
    }
}

/// The aggregate a single word names, if any.
pub fn aggregate_word(word: &str) -> Option<Aggregate> {
    Some(match word {
        "average" | "avg" | "mean" | "typical" | "averaging" | "averaged" | "averages" => Aggregate::Avg,
        "median" | "medians" => Aggregate::Median,
        "total" | "totals" | "sum" | "summed" | "combined" | "cumulative" => Aggregate::Sum,
        "maximum" | "max" | "peak" | "biggest" | "largest" | "highest" | "greatest" | "longest" | "slowest" | "hottest" | "warmest"
        | "worst" | "wettest" | "humidest" | "strongest" | "dampest" | "priciest" | "costliest" => Aggregate::Max,
        "minimum" | "min" | "smallest" | "lowest" | "least" | "shortest" | "fastest" | "coldest" | "coolest" | "cheapest" | "driest" | "quickest" | "weakest" => Aggregate::Min,
        "count" | "counts" | "headcount" => Aggregate::Count,
        _ => return None,
    })
}

/// Direction a superlative ranks by: `true` for descending ("most", "slowest", "highest").
pub fn superlative(word: &str) -> Option<bool> {
    match word {
        "most" | "highest" | "largest" | "biggest" | "greatest" | "top" | "max" | "maximum" | "slowest" | "longest" | "hottest"
        | "warmest" | "heaviest" | "busiest" | "worst" | "expensive" | "more" | "best" | "popular" | "active" | "frequent"
        | "common" | "wettest" | "humidest" | "strongest" | "chattiest" | "noisiest" | "healthiest" | "dampest" | "priciest" | "costliest" => Some(true),
        "least" | "lowest" | "smallest" | "fewest" | "min" | "minimum" | "fastest" | "shortest" | "coldest" | "coolest" | "cheapest"
        | "bottom" | "quietest" | "less" | "rarest" | "driest" | "quickest" | "weakest" => Some(false),
        _ => None,
    }
}

/// Calendar units of time ranges and buckets, as DataFusion's `date_trunc` and intervals
/// name them.
pub fn time_unit(word: &str) -> Option<&'static str> {
    Some(match word {
        "second" | "seconds" | "sec" | "secs" => "second",
        "minute" | "minutes" | "min" | "mins" => "minute",
        "hour" | "hours" | "hr" | "hrs" | "hourly" => "hour",
        "day" | "days" | "daily" | "date" | "dates" => "day",
        "week" | "weeks" | "weekly" => "week",
        "month" | "months" | "monthly" => "month",
        "quarter" | "quarters" | "quarterly" => "quarter",
        "year" | "years" | "yearly" | "annual" | "annually" => "year",
        _ => return None,
    })
}

pub fn month(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];
    MONTHS.iter().position(|m| *m == word || (word.len() == 3 && m.starts_with(word) && word != "may")).map(|i| i as u32 + 1)
}

pub fn small_number(word: &str) -> Option<f64> {
    const NUMBERS: [&str; 13] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
    NUMBERS.iter().position(|n| *n == word).map(|i| i as f64).or(match word {
        "fifteen" => Some(15.0),
        "twenty" => Some(20.0),
        "thirty" => Some(30.0),
        "fifty" => Some(50.0),
        "hundred" => Some(100.0),
        "a" | "an" => Some(1.0),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_quotes_dates_and_numbers() {
        let t = tokenize("What's the avg latency_ms in 'United States' since 2025-06-01 over $1,000.50?");
        let texts: Vec<_> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["what", "s", "the", "avg", "latency_ms", "in", "united states", "since", "2025-06-01", "over", "1,000.50"]);
        assert!(t[6].quoted);
        assert_eq!(t[8].date, Some((2025, 6, 1)));
        assert_eq!(t[10].number, Some(1000.5));
        assert_eq!(tokenize("top 5 /checkout pages")[2].text, "/checkout");
        let glued: Vec<_> = tokenize("above 300ms, 1.5sec or -18c; 404s and").into_iter().map(|t| (t.text, t.number)).collect();
        let words: Vec<_> = glued.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(words, ["above", "300", "ms", "1.5", "sec", "or", "-18", "c", "404s", "and"]);
        assert_eq!(glued[1].1, Some(300.0));
        assert_eq!(glued[6].1, Some(-18.0));
        let paused: Vec<_> = tokenize("more than 60 readings, device ids").into_iter().map(|t| t.pause_before).collect();
        assert_eq!(paused, [false, false, false, false, true, false]);
    }

    #[test]
    fn stems_and_identifier_words() {
        assert_eq!(stem("categories"), "category");
        assert_eq!(stem("devices"), "device");
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("addresses"), "address");
        assert_eq!(identifier_words("page_views"), ["page", "view"]);
        assert_eq!(identifier_words("latencyMs"), ["latency", "ms"]);
    }
}
