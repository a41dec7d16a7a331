// Resolves Docker's User field ("", "name", "uid", "name:group", "uid:gid") against the container's
// own /etc/passwd and /etc/group (read after pivot_root, never the host's, never through NSS).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace skiff {

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
  std::string home = "/";
};

ResolvedUser resolve_user(const std::string& spec, const std::string& passwd_path = "/etc/passwd",
                          const std::string& group_path = "/etc/group");

// --group-add entries (group names or gids) as gids, from the container's /etc/group; a name it
// lacks is an error, a number it lacks is taken as is (Docker's rules and messages).
std::vector<gid_t> additional_groups(const std::vector<std::string>& entries,
                                     const std::string& group_path = "/etc/group");

}  // namespace skiff
