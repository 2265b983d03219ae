//! `ASK` with a generative model: a local GGUF file (`ask_model = '/path/model.gguf'`) or
//! an OpenAI-compatible chat-completions endpoint (`ask_endpoint`).
//!
//! The model sees only the linked part of the catalog: the relations the question's words
//! link to (by the offline translator's lexicon: names, comments, stored values), or every
//! relation when none links. Each is described as a `CREATE TABLE` with its comments, the
//! stored values of low-cardinality columns and the time span of time columns, so the model
//! can spell values as stored. The model answers with SQL; the executor then applies the
//! same rules as for every translator (one read-only SELECT, capped rows, planned by
//! DataFusion) and, when the SQL fails them, calls [`Translator::retry`] once: the model
//! sees its SQL and the error and writes another. Both backends share all of this; they
//! differ only in how a conversation becomes an answer ([`Generate`]).

mod endpoint;
mod model;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use streamhouse_executor::{AskCatalog, AskRelation, Refusal, Translation, Translator};

pub use endpoint::{Endpoint, EndpointConfig};
pub use model::{ChatFormat, LocalModel, Turn};

use crate::ask::linked_relations;

/// The most tokens an answer may take (a query, not an essay).
pub const MAX_ANSWER_TOKENS: usize = 384;
/// How long one answer may take (the retry gets as long again; ASK's own limit is 30 s).
pub const GENERATION_TIME_LIMIT: Duration = Duration::from_secs(12);
/// Stored values listed per column in the prompt.
const MAX_PROMPT_VALUES: usize = 20;

const INSTRUCTIONS: &str = "You translate questions into one PostgreSQL SELECT statement over the tables below. \
Use only these tables and columns, spell values as listed, and answer with the SQL alone: no explanation.";

/// A model that continues a conversation: the one thing the backends do differently.
pub trait Generate: Send + Sync {
    /// The assistant's answer to `turns`, at most [`MAX_ANSWER_TOKENS`] long, given up at
    /// `deadline`. The error says what went wrong, for the refusal.
    fn answer(&self, turns: &[Turn], deadline: Instant) -> Result<String, String>;
    /// Who answered, for the notes and refusals ("the local model m.gguf (qwen2)").
    fn describe(&self) -> String;
}

/// A GGUF model on candle; one question at a time (the model holds its KV cache).
struct LocalBackend {
    model: Mutex<LocalModel>,
    /// "the local model m.gguf (qwen2)", for the notes.
    who: String,
}

impl Generate for LocalBackend {
    fn answer(&self, turns: &[Turn], deadline: Instant) -> Result<String, String> {
        let mut model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        let prompt = model.format().render(turns);
        model.complete(&prompt, MAX_ANSWER_TOKENS, deadline)
    }

    fn describe(&self) -> String {
        self.who.clone()
    }
}

/// Translates with a generative model: a local GGUF file or an OpenAI-compatible endpoint.
pub struct GenerativeTranslator {
    backend: Box<dyn Generate>,
}

impl GenerativeTranslator {
    /// A local GGUF model (Qwen2, Qwen3 or Llama).
    pub fn load(path: &Path) -> Result<GenerativeTranslator, String> {
        let model = LocalModel::load(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let who = format!("the local model {name} ({})", model.architecture());
        Ok(GenerativeTranslator::new(Box::new(LocalBackend { model: Mutex::new(model), who })))
    }

    /// An OpenAI-compatible chat-completions endpoint.
    pub fn remote(config: EndpointConfig) -> Result<GenerativeTranslator, String> {
        Ok(GenerativeTranslator::new(Box::new(Endpoint::new(config)?)))
    }

    pub fn new(backend: Box<dyn Generate>) -> GenerativeTranslator {
        GenerativeTranslator { backend }
    }

    fn answer(&self, turns: &[Turn], shown: &[String]) -> Result<Translation, Refusal> {
        let deadline = Instant::now() + GENERATION_TIME_LIMIT;
        let who = self.backend.describe();
        let text = self.backend.answer(turns, deadline).map_err(|e| Refusal(format!("{who}: {e}")))?;
        let sql = extract_sql(&text).ok_or_else(|| Refusal(format!("{who} wrote no SQL: {text:?}")))?;
        let notes = vec![format!("answered by {who}, shown the tables {}", shown.join(", "))];
        Ok(Translation { sql, notes })
    }
}

impl Translator for GenerativeTranslator {
    fn translate(&self, question: &str, catalog: &AskCatalog) -> Result<Translation, Refusal> {
        let (system, shown) = system_prompt(question, catalog)?;
        self.answer(&[Turn { role: "system", text: &system }, Turn { role: "user", text: question }], &shown)
    }

    fn retry(&self, question: &str, catalog: &AskCatalog, first: &Translation, error: &str) -> Option<Result<Translation, Refusal>> {
        let attempt = || {
            let (system, shown) = system_prompt(question, catalog)?;
            let correction = format!("That SQL failed: {error}\nWrite a corrected query.");
            self.answer(
                &[
                    Turn { role: "system", text: &system },
                    Turn { role: "user", text: question },
                    Turn { role: "assistant", text: &first.sql },
                    Turn { role: "user", text: &correction },
                ],
                &shown,
            )
        };
        Some(attempt())
    }
}

/// The instructions followed by the linked relations as `CREATE TABLE` statements, and
/// the relations' qualified names.
fn system_prompt(question: &str, catalog: &AskCatalog) -> Result<(String, Vec<String>), Refusal> {
    if catalog.relations.is_empty() {
        return Err(Refusal("there are no tables to answer from".into()));
    }
    let mut chosen = linked_relations(question, catalog);
    if chosen.is_empty() {
        chosen = (0..catalog.relations.len()).collect();
    }
    let relations: Vec<&AskRelation> = chosen.iter().map(|&r| &catalog.relations[r]).collect();
    let shown = relations.iter().map(|r| qualified(r, catalog)).collect();
    let tables = relations.iter().map(|r| describe(r, catalog)).collect::<Vec<_>>().join("\n\n");
    Ok((format!("{INSTRUCTIONS}\n\n{tables}"), shown))
}

fn qualified(relation: &AskRelation, catalog: &AskCatalog) -> String {
    if relation.schema == catalog.default_schema {
        relation.name.clone()
    } else {
        format!("{}.{}", relation.schema, relation.name)
    }
}

/// Stored text as the prompt shows it: a value or comment spelling a chat token
/// (`<|im_end|>`) must not end the turn it is quoted in.
fn quoted(text: &str) -> String {
    text.replace("<|", "< |").replace("<think>", "< think>").replace("</think>", "< /think>")
}

/// One relation as the model reads it.
fn describe(relation: &AskRelation, catalog: &AskCatalog) -> String {
    let mut out = String::new();
    if let Some(comment) = &relation.comment {
        out.push_str(&format!("-- {}\n", quoted(comment)));
    }
    out.push_str(&format!("CREATE TABLE {} (\n", qualified(relation, catalog)));
    let columns: Vec<String> = relation
        .columns
        .iter()
        .map(|c| {
            let mut line = format!("  {} {}", c.name, streamhouse_executor::sql_type_name(&c.data_type));
            let mut remarks = Vec::new();
            if let Some(comment) = &c.comment {
                remarks.push(quoted(comment));
            }
            if let Some(values) = c.values.as_ref().filter(|v| !v.is_empty()) {
                let listed: Vec<String> = values.iter().take(MAX_PROMPT_VALUES).map(|v| format!("'{}'", quoted(v).replace('\'', "''"))).collect();
                let more = if values.len() > MAX_PROMPT_VALUES { ", …" } else { "" };
                remarks.push(format!("values {}{more}", listed.join(", ")));
            }
            if let Some((from, to)) = c.time_span {
                remarks.push(format!("from {} to {}", micros_to_text(from), micros_to_text(to)));
            }
            if !remarks.is_empty() {
                line.push_str(&format!(" -- {}", remarks.join("; ")));
            }
            line
        })
        .collect();
    out.push_str(&columns.join(",\n"));
    out.push_str("\n);");
    out
}

fn micros_to_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| micros.to_string())
}

/// The SQL in a model's answer: after any `<think>…</think>` reasoning, inside a ```sql
/// fence when there is one, up to the first `;`, trimmed; `None` when nothing is left.
pub fn extract_sql(answer: &str) -> Option<String> {
    let mut text = answer.rsplit_once("</think>").map_or(answer, |(_, after)| after).trim();
    if let Some(start) = text.find("```") {
        let fenced = &text[start + 3..];
        let fenced = fenced.strip_prefix("sql").or_else(|| fenced.strip_prefix("SQL")).unwrap_or(fenced);
        text = fenced.split("```").next().unwrap_or(fenced);
    }
    let sql = text.split(';').next().unwrap_or(text).trim();
    (!sql.is_empty()).then(|| sql.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_is_taken_from_fences_and_up_to_the_first_semicolon() {
        assert_eq!(extract_sql("SELECT 1;").as_deref(), Some("SELECT 1"));
        assert_eq!(extract_sql("```sql\nSELECT a FROM t\n```\nThis counts.").as_deref(), Some("SELECT a FROM t"));
        assert_eq!(extract_sql("  SELECT 1; DROP TABLE t;").as_deref(), Some("SELECT 1"));
        assert_eq!(extract_sql("``` ```"), None);
        assert_eq!(extract_sql(""), None);
        assert_eq!(extract_sql("<think>\nSELECT 2? no; count them</think>\n\nSELECT count(*) FROM t").as_deref(), Some("SELECT count(*) FROM t"));
    }

    #[test]
    fn stored_text_cannot_spell_a_chat_token() {
        assert_eq!(quoted("x<|im_end|>y"), "x< |im_end|>y");
        assert!(!quoted("<think>a</think>").contains("<think>"));
    }

    #[test]
    fn conversations_end_where_the_answer_starts() {
        let turns = [Turn { role: "system", text: "S" }, Turn { role: "user", text: "Q" }];
        assert_eq!(ChatFormat::ChatMl.render(&turns), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
        let llama = ChatFormat::Llama3.render(&turns);
        assert!(llama.starts_with("<|begin_of_text|><|start_header_id|>system") && llama.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
        assert!(ChatFormat::ChatMlNoThinking.render(&turns).ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        assert!(ChatFormat::Plain.render(&turns).ends_with("### assistant\n"));
    }
}
