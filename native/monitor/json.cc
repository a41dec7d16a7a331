#include "monitor/json.h"

#include <cstdint>

namespace skiff::monitor {

size_t utf8_sequence_length(const unsigned char* p, size_t avail) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // accepted range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  if (avail < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return len;
}

void append_json_string(std::string& out, const char* data, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
  out.push_back('"');
  size_t start = 0, i = 0;
  while (i < len) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
        i++;
        continue;
      }
      out.append(data + start, i - start);
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
      }
      start = ++i;
      continue;
    }
    size_t n = utf8_sequence_length(p + i, len - i);
    if (n == 0) {
      out.append(data + start, i - start);
      out += "\\ufffd";
      start = ++i;
      continue;
    }
    if (n == 3 && c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
      out.append(data + start, i - start);
      out += p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
      i += 3;
      start = i;
      continue;
    }
    i += n;
  }
  out.append(data + start, len - start);
  out.push_back('"');
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s.data(), s.size());
  return out;
}

namespace {

// Recursive-descent reader over a JSON text. Only what the monitor needs: validation and
// decoding of strings.
class Reader {
 public:
  explicit Reader(std::string_view t) : t_(t) {}

  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) i_++;
  }
  bool at_end() {
    ws();
    return i_ == t_.size();
  }
  bool peek(char c) {
    ws();
    return i_ < t_.size() && t_[i_] == c;
  }
  bool eat(char c) {
    if (!peek(c)) return false;
    i_++;
    return true;
  }

  bool value(int depth) {
    if (depth > 64) return false;
    ws();
    if (i_ >= t_.size()) return false;
    char c = t_[i_];
    if (c == '{') return object(depth, nullptr, nullptr, nullptr);
    if (c == '[') {
      i_++;
      if (eat(']')) return true;
      do {
        if (!value(depth + 1)) return false;
      } while (eat(','));
      return eat(']');
    }
    if (c == '"') return string(nullptr);
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    return literal("true") || literal("false") || literal("null");
  }

  // Parses an object; when key is set, stores the decoded value of that top-level string
  // member in *out and sets *found.
  bool object(int depth, std::string_view* key, std::string* out, bool* found) {
    if (!eat('{')) return false;
    if (eat('}')) return true;
    do {
      ws();
      std::string name;
      if (!string(&name)) return false;
      if (!eat(':')) return false;
      ws();
      if (key && name == *key && i_ < t_.size() && t_[i_] == '"') {
        std::string v;
        if (!string(&v)) return false;
        if (!*found) {
          *out = std::move(v);
          *found = true;
        }
      } else if (!value(depth + 1)) {
        return false;
      }
    } while (eat(','));
    return eat('}');
  }

 private:
  bool literal(const char* word) {
    std::string_view w(word);
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  bool digits() {
    size_t s = i_;
    while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') i_++;
    return i_ > s;
  }

  bool number() {
    if (t_[i_] == '-') i_++;
    if (i_ < t_.size() && t_[i_] == '0') {
      i_++;
    } else if (!digits()) {
      return false;
    }
    if (i_ < t_.size() && t_[i_] == '.') {
      i_++;
      if (!digits()) return false;
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      i_++;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) i_++;
      if (!digits()) return false;
    }
    return true;
  }

  static void put_utf8(std::string* out, uint32_t cp) {
    if (!out) return;
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool hex4(uint32_t& v) {
    if (i_ + 4 > t_.size()) return false;
    v = 0;
    for (int k = 0; k < 4; k++) {
      char c = t_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return false;
    }
    return true;
  }

  bool string(std::string* out) {
    if (i_ >= t_.size() || t_[i_] != '"') return false;
    i_++;
    while (i_ < t_.size()) {
      unsigned char c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(static_cast<char>(c));
        i_++;
        continue;
      }
      if (++i_ >= t_.size()) return false;
      char e = t_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          if (out) out->push_back(e);
          break;
        case 'b':
          if (out) out->push_back('\b');
          break;
        case 'f':
          if (out) out->push_back('\f');
          break;
        case 'n':
          if (out) out->push_back('\n');
          break;
        case 'r':
          if (out) out->push_back('\r');
          break;
        case 't':
          if (out) out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && t_.substr(i_, 2) == "\\u") {
            size_t save = i_;
            i_ += 2;
            uint32_t lo;
            if (!hex4(lo)) return false;
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              i_ = save;
              cp = 0xFFFD;
            }
          } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;
          }
          put_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  std::string_view t_;
  size_t i_ = 0;
};

}  // namespace

bool json_valid(std::string_view text) {
  Reader r(text);
  return r.value(0) && r.at_end();
}

bool json_string_field(std::string_view text, std::string_view key, std::string& out) {
  Reader r(text);
  bool found = false;
  if (!r.peek('{')) return false;
  if (!r.object(0, &key, &out, &found) || !r.at_end()) return false;
  return found;
}

}  // namespace skiff::monitor
