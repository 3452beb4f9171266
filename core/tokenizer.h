/* tokenizer.h: exact tiktoken-compatible token counting, encoding, decoding and truncation
 * for OpenAI's cl100k_base and o200k_base encodings (byte-level BPE over their rank files). */
#ifndef MG_TOKENIZER_H
#define MG_TOKENIZER_H

#include "mg.h"

typedef struct mg_tok mg_tok;

/* Allow every special token of the encoding (tiktoken's allowed_special="all"). Bit i of an
 * allowed-special mask allows the encoding's i-th special token (see mg_tok_special). */
#define MG_TOK_SPECIAL_ALL 0xffffffffu

/* Folder holding <name>.tiktoken rank files. Default: $MOONGATE_HOME/data/tokenizers, then the
 * source tree, then the install prefix. Call before the first mg_tok_get/mg_tok_load. */
MG_API int mg_tok_set_dir(const char *dir);

/* Load an encoding ("cl100k_base", "o200k_base") once per process; call before fork to share
 * its tables. MG_OK, or MG_ERROR with a message from mg_tok_error(). Not thread-safe. */
MG_API int mg_tok_load(const char *name);
/* The loaded (or now loaded) encoding, or NULL with *err set to a static message. */
MG_API const mg_tok *mg_tok_get(const char *name, const char **err);
MG_API const char *mg_tok_error(void);
MG_API const char *mg_tok_name(const mg_tok *enc);
/* Number of ids (ranks + special ids are all below this). */
MG_API uint32_t mg_tok_vocab_size(const mg_tok *enc);
/* The i-th special token of the encoding: MG_OK with its text and id, MG_DECLINED past the end. */
MG_API int mg_tok_special(const mg_tok *enc, uint32_t i, const char **text, uint32_t *id);

/* Ordinary text: special-token text counts as plain text (tiktoken's encode_ordinary).
 * Invalid UTF-8 is read as a WHATWG decoder would (each maximal invalid subsequence is one
 * U+FFFD), so counts equal what a JS or Python client computes after decoding the bytes. */
MG_API int mg_tok_count(const mg_tok *enc, const char *s, size_t n, size_t *out);
/* Writes at most cap ids; *nout is the number of ids of the text. MG_AGAIN if cap < *nout. */
MG_API int mg_tok_encode(const mg_tok *enc, const char *s, size_t n, uint32_t *ids, size_t cap,
                         size_t *nout);
/* *prefix_bytes: length of the longest prefix made of the text's first k <= max_tokens tokens
 * that ends on a character boundary and itself counts at most max_tokens tokens. */
MG_API int mg_tok_truncate(const mg_tok *enc, const char *s, size_t n, size_t max_tokens,
                           size_t *prefix_bytes);

/* The same with special tokens: where allowed (mask), their text becomes their one id. */
MG_API int mg_tok_count_special(const mg_tok *enc, const char *s, size_t n, uint32_t allowed,
                                size_t *out);
MG_API int mg_tok_encode_special(const mg_tok *enc, const char *s, size_t n, uint32_t allowed,
                                 uint32_t *ids, size_t cap, size_t *nout);
MG_API int mg_tok_truncate_special(const mg_tok *enc, const char *s, size_t n, uint32_t allowed,
                                   size_t max_tokens, size_t *prefix_bytes);

/* Bytes of ids (may be invalid UTF-8 when a multi-byte character is split between ids).
 * Writes at most cap bytes; *nout is the full length; MG_AGAIN if cap < *nout.
 * MG_DECLINED for an id that is no token, with *nout its index in ids. */
MG_API int mg_tok_decode(const mg_tok *enc, const uint32_t *ids, size_t n, char *out, size_t cap,
                         size_t *nout);
/* The id whose bytes are exactly p[0..n) (tiktoken's encode_single_token), special tokens
 * included: MG_OK, or MG_DECLINED if those bytes are no single token. */
MG_API int mg_tok_rank(const mg_tok *enc, const char *p, size_t n, uint32_t *id);
/* The bytes of one id, pointing into the table (valid for the process): MG_OK or MG_DECLINED. */
MG_API int mg_tok_token_bytes(const mg_tok *enc, uint32_t id, const char **p, size_t *len);

#endif
