// Tiny JSON helpers for the monitor (no JSON library: the monitor must stay small).
//  - append_json_string: quotes and escapes bytes the way Go's encoding/json (and Docker's
//    json-file writer) does: \" \\ \n \r \t, other control chars and <>& as \u00XX,
//    U+2028/U+2029 escaped, every byte of invalid UTF-8 replaced by \ufffd.
//  - json_valid: syntax check, used before embedding JSON text received from skiff-init.
//  - json_string_field: the value of a top-level string member of an object.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace skiff::monitor {

void append_json_string(std::string& out, const char* data, size_t len);
inline void append_json_string(std::string& out, std::string_view s) { append_json_string(out, s.data(), s.size()); }
std::string json_quote(std::string_view s);

// True when text is exactly one JSON value (surrounding whitespace allowed).
bool json_valid(std::string_view text);

// For an object text, finds the top-level member `key` whose value is a string and stores
// it decoded in out. False when text is not an object, the key is absent or not a string.
bool json_string_field(std::string_view text, std::string_view key, std::string& out);

// Length of the valid UTF-8 sequence at p (1..4), 0 when the bytes are not valid UTF-8
// (overlong forms, surrogates, > U+10FFFF, truncated sequences): Go's utf8.DecodeRune rules.
size_t utf8_sequence_length(const unsigned char* p, size_t avail);

}  // namespace skiff::monitor
