#include "init/user.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace skiff {
namespace {

constexpr unsigned long kMaxId = 2147483647ul;

bool parse_id(const std::string& s, unsigned long* out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::strtoul(s.c_str(), nullptr, 10);
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

// Calls fn(fields) for each line of a colon-separated database; a missing file is an empty one.
template <typename Fn>
void each_entry(const std::string& path, Fn fn) {
  FILE* f = fopen(path.c_str(), "re");
  if (!f) return;
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    std::string l(line, static_cast<size_t>(n));
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l.empty() || l[0] == '#') continue;
    if (fn(split(l, ':'))) break;
  }
  free(line);
  fclose(f);
}

}  // namespace

ResolvedUser resolve_user(const std::string& spec, const std::string& passwd_path, const std::string& group_path) {
  std::string user_part = spec, group_part;
  bool has_group = false;
  if (auto p = spec.find(':'); p != std::string::npos) {
    user_part = spec.substr(0, p);
    group_part = spec.substr(p + 1);
    has_group = true;
  }
  if (user_part.empty()) user_part = "0";

  ResolvedUser u;
  std::string user_name;
  unsigned long num;
  bool user_numeric = parse_id(user_part, &num);
  if (user_numeric && num > kMaxId) throw config_error("uids and gids must be in range 0-2147483647");
  bool found = false;
  each_entry(passwd_path, [&](const std::vector<std::string>& f) {
    if (f.size() < 4) return false;
    unsigned long uid, gid;
    if (!parse_id(f[2], &uid) || !parse_id(f[3], &gid)) return false;
    if ((user_numeric && uid == num) || (!user_numeric && f[0] == user_part)) {
      u.uid = static_cast<uid_t>(uid);
      u.gid = static_cast<gid_t>(gid);
      if (f.size() > 5 && !f[5].empty()) u.home = f[5];
      user_name = f[0];
      found = true;
      return true;
    }
    return false;
  });
  if (!found) {
    if (!user_numeric) throw config_error("unable to find user " + user_part + ": no matching entries in passwd file");
    u.uid = static_cast<uid_t>(num);
    u.gid = 0;
  }

  if (has_group) {
    bool group_numeric = parse_id(group_part, &num);
    if (group_numeric && num > kMaxId) throw config_error("uids and gids must be in range 0-2147483647");
    bool gfound = false;
    if (group_numeric) {
      u.gid = static_cast<gid_t>(num);
      gfound = true;
    } else {
      each_entry(group_path, [&](const std::vector<std::string>& f) {
        unsigned long gid;
        if (f.size() >= 3 && f[0] == group_part && parse_id(f[2], &gid)) {
          u.gid = static_cast<gid_t>(gid);
          gfound = true;
          return true;
        }
        return false;
      });
    }
    if (!gfound) throw config_error("unable to find group " + group_part + ": no matching entries in group file");
  }

  // Supplementary groups: every group that lists the user by name (Docker adds them only
  // when no explicit group was given).
  if (!user_name.empty() && !has_group) {
    each_entry(group_path, [&](const std::vector<std::string>& f) {
      unsigned long gid;
      if (f.size() < 4 || !parse_id(f[2], &gid)) return false;
      for (const auto& member : split(f[3], ','))
        if (member == user_name && static_cast<gid_t>(gid) != u.gid) u.groups.push_back(static_cast<gid_t>(gid));
      return false;
    });
  }
  return u;
}

std::vector<gid_t> additional_groups(const std::vector<std::string>& entries, const std::string& group_path) {
  std::vector<gid_t> out;
  for (const auto& e : entries) {
    bool found = false;
    unsigned long gid = 0;
    each_entry(group_path, [&](const std::vector<std::string>& f) {
      unsigned long g;
      if (f.size() >= 3 && parse_id(f[2], &g) && (f[0] == e || f[2] == e)) {
        gid = g;
        found = true;
        return true;
      }
      return false;
    });
    if (!found) {
      if (!parse_id(e, &gid)) throw config_error("Unable to find group " + e + ": no matching entries in group file");
      if (gid > kMaxId) throw config_error("uids and gids must be in range 0-2147483647");
    }
    out.push_back(static_cast<gid_t>(gid));
  }
  return out;
}

}  // namespace skiff
