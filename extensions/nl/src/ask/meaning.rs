//! Linking by meaning: words the lexicon could not place ("clientele", "patrons") are
//! compared with short descriptions of every relation and column — their name words and
//! their `COMMENT ON` text — by all-MiniLM-L6-v2 sentence embeddings. A word links only
//! when one description is clearly the closest ([`MIN_SIMILARITY`], [`MIN_MARGIN`]);
//! otherwise it stays unplaced and ASK refuses, as it does without the model.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use streamhouse_executor::AskCatalog;

use super::link::Target;
use super::words::identifier_words;
use crate::embed::Embedder;

/// The least cosine similarity between a word and a description for a link.
pub const MIN_SIMILARITY: f32 = 0.45;
/// How much closer the best description must be than the next one of another relation
/// or column, so that a word between two meanings is not guessed.
pub const MIN_MARGIN: f32 = 0.06;
/// Descriptions remembered across questions (text → vector); cleared when it grows past this.
const MAX_CACHED_VECTORS: usize = 10_000;

/// Embeds words and descriptions, remembering description vectors across questions.
pub struct MeaningLinker {
    embedder: Arc<Embedder>,
    cache: Mutex<HashMap<String, Vec<f32>>>,
}

/// A word placed by meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct MeaningLink {
    pub target: Target,
    pub similarity: f32,
}

impl MeaningLinker {
    pub fn new(embedder: Arc<Embedder>) -> Self {
        MeaningLinker { embedder, cache: Mutex::new(HashMap::new()) }
    }

    /// For each word, the relation or column it means, if one clearly stands out.
    pub fn link(&self, words: &[String], catalog: &AskCatalog) -> Result<Vec<Option<MeaningLink>>, String> {
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let described = descriptions(catalog);
        let texts: Vec<&str> = described.iter().map(|(_, text)| text.as_str()).collect();
        let vectors = self.vectors(&texts)?;
        let word_texts: Vec<&str> = words.iter().map(String::as_str).collect();
        let word_vectors = self.embedder.embed(&word_texts)?;
        Ok(word_vectors
            .iter()
            .map(|w| {
                let mut scored: Vec<(f32, &Target)> = described.iter().zip(&vectors).map(|((target, _), v)| (dot(w, v), target)).collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                let (best, target) = *scored.first()?;
                // A relation's own columns do not compete with it ("clientele" is customers
                // whether or not it is also close to customers.customer_id).
                let rival = |t: &Target| t != target && !matches!((target, t), (Target::Relation(r), Target::Column(cr, _)) if r == cr);
                let runner_up = scored.iter().find(|(_, t)| rival(t)).map_or(0.0, |(s, _)| *s);
                (best >= MIN_SIMILARITY && best - runner_up >= MIN_MARGIN).then(|| MeaningLink { target: target.clone(), similarity: best })
            })
            .collect())
    }

    fn vectors(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let missing: Vec<&str> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            texts.iter().copied().filter(|t| !cache.contains_key(*t)).collect()
        };
        let computed = if missing.is_empty() { Vec::new() } else { self.embedder.embed(&missing)? };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() + computed.len() > MAX_CACHED_VECTORS {
            cache.clear();
        }
        for (text, vector) in missing.iter().zip(computed) {
            cache.insert(text.to_string(), vector);
        }
        texts.iter().map(|t| cache.get(*t).cloned().ok_or_else(|| "embedding cache lost a vector".to_string())).collect()
    }
}

/// "page views: page views (visits, hits) …", "latency ms of page views: page load time …".
fn descriptions(catalog: &AskCatalog) -> Vec<(Target, String)> {
    let mut out = Vec::new();
    for (r, relation) in catalog.relations.iter().enumerate() {
        let name = identifier_words(&relation.name).join(" ");
        out.push((Target::Relation(r), with_comment(name.clone(), relation.comment.as_deref())));
        for (c, column) in relation.columns.iter().enumerate() {
            let text = format!("{} of {name}", identifier_words(&column.name).join(" "));
            out.push((Target::Column(r, c), with_comment(text, column.comment.as_deref())));
        }
    }
    out
}

fn with_comment(text: String, comment: Option<&str>) -> String {
    match comment {
        Some(comment) => format!("{text}: {comment}"),
        None => text,
    }
}

/// Cosine similarity of unit vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
