"""Tiny GGUF models whose greedy answer is known, to test ASK's local-model backend end to
end — candle's GGUF loader, the tokenizer rebuilt from the file's metadata, the chat format,
generation, and the executor's planning and retry rules — without a multi-gigabyte model.

The model is a real Qwen2 network (one block) with hand-set weights: attention and MLP
weights are zero, so each position's output is its own token embedding; the embedding of
each token of a chain is a unit vector, and the output projection maps it to the next token
of the chain. Greedy decoding after the prompt's last token ("\\n" after the assistant
header) therefore writes the chain: the words of `answer`, then <|im_end|>.
"""
import numpy as np
import gguf

HIDDEN = 64
HEADS = 4
FFN = 128
CONTEXT = 8192


def byte_alphabet():
    """GPT-2's byte-to-character map of byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def build(path, answer_words, architecture="qwen2"):
    """Writes a model answering every question with "".join(answer_words) to `path`."""
    alphabet = byte_alphabet()
    to_token = lambda text: "".join(alphabet[b] for b in text.encode())
    byte_tokens = [alphabet[b] for b in range(256)]
    words = [to_token(w) for w in answer_words]
    assert len(set(words)) == len(words) and not set(words) & set(byte_tokens), "chain words must be distinct multi-byte tokens"
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    # One merge, of two NUL bytes, which no prompt holds: llama.cpp refuses a byte-level
    # BPE vocabulary without merges.
    merged = alphabet[0] + alphabet[0]
    tokens = byte_tokens + words + [merged] + specials
    types = [gguf.TokenType.NORMAL] * (len(byte_tokens) + len(words) + 1) + [gguf.TokenType.CONTROL] * len(specials)
    ids = {t: i for i, t in enumerate(tokens)}
    chain = [alphabet[ord("\n")]] + words + ["<|im_end|>"]
    assert len(chain) - 1 <= HIDDEN

    embedding = np.zeros((len(tokens), HIDDEN), dtype=np.float32)
    output = np.zeros((len(tokens), HIDDEN), dtype=np.float32)
    for slot, (source, target) in enumerate(zip(chain, chain[1:])):
        embedding[ids[source], slot] = 1.0
        output[ids[target], slot] = 4.0

    w = gguf.GGUFWriter(str(path), architecture)
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(1)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(HEADS)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")  # Qwen2's split rules, as real Qwen GGUF files name them
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{alphabet[0]} {alphabet[0]}"])
    w.add_eos_token_id(ids["<|endoftext|>"])
    w.add_bos_token_id(ids["<|endoftext|>"])

    zeros = lambda *shape: np.zeros(shape, dtype=np.float32)
    ones = lambda n: np.ones(n, dtype=np.float32)
    w.add_tensor("token_embd.weight", embedding)
    w.add_tensor("output_norm.weight", ones(HIDDEN))
    w.add_tensor("output.weight", output)
    for name, tensor in {
        "attn_norm.weight": ones(HIDDEN), "ffn_norm.weight": ones(HIDDEN),
        "attn_q.weight": zeros(HIDDEN, HIDDEN), "attn_k.weight": zeros(HIDDEN, HIDDEN), "attn_v.weight": zeros(HIDDEN, HIDDEN),
        "attn_q.bias": zeros(HIDDEN), "attn_k.bias": zeros(HIDDEN), "attn_v.bias": zeros(HIDDEN),
        "attn_output.weight": zeros(HIDDEN, HIDDEN),
        "ffn_gate.weight": zeros(FFN, HIDDEN), "ffn_up.weight": zeros(FFN, HIDDEN), "ffn_down.weight": zeros(HIDDEN, FFN),
    }.items():
        w.add_tensor(f"blk.0.{name}", tensor)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
