//! `ASK`'s offline translator: questions in English to SQL with no model and no network.
//!
//! [`words`] tokenizes; [`link`] finds which words name relations, columns (by name or
//! `COMMENT ON` text) and stored values; [`understand`] reads the question's structure
//! into a typed [`plan::QueryPlan`]; the plan renders SQL naming only linked things.
//! A word it cannot place is a refusal, never a guess; choices between equally good
//! readings are stated as notes (notices for the user).

mod link;
mod plan;
mod understand;
mod words;

use streamhouse_executor::{AskCatalog, Refusal, Translation, Translator};

/// Reads questions by words alone (the embedding model, when loaded, is not yet used
/// for linking; see the notes it returns).
#[derive(Debug, Default)]
pub struct OfflineTranslator;

impl Translator for OfflineTranslator {
    fn translate(&self, question: &str, catalog: &AskCatalog) -> Result<Translation, Refusal> {
        let lexicon = link::Lexicon::new(catalog);
        let reading = understand::understand(question, catalog, &lexicon)?;
        Ok(Translation { sql: reading.plan.to_sql(catalog), notes: reading.notes })
    }
}

#[cfg(test)]
mod tests;
